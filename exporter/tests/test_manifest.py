"""Manifest validation: the committed JSON Schema (generated from the service's TypeBox schema) and
the messages a user gets for each violation, before anything is traced or written."""
import json
from pathlib import Path

import pytest

from flowexport import ExportError, check_manifest
from flowexport.manifest import schema, schema_problems, suggest_name
from tiny import image_manifest, vector_manifest

ROOT = Path(__file__).resolve().parents[2]


def problems_of(manifest, folder="tiny"):
    with pytest.raises(ExportError) as e:
        check_manifest(manifest, Path("/nonexistent") / folder)
    return str(e.value)


def test_a_good_manifest_passes_and_comes_back_complete():
    full = check_manifest(vector_manifest(), "models/tiny")
    assert full["formatVersion"] == 1 and full["latent"]["size"] == 2 and full["lu"] is None and full["files"] == {}
    check_manifest(image_manifest(), "models/tiny-image")


def test_every_shipped_flow_json_passes_the_exported_schema():
    # the Python validator agrees with the service's TypeBox check on the packages the service loads
    for flow_json in sorted((ROOT / "models").glob("*/flow.json")):
        assert schema_problems(json.loads(flow_json.read_text())) == [], flow_json


def test_name_pattern_is_explained_with_a_suggestion():
    msg = problems_of(vector_manifest(name="My_Ring"), "My_Ring")
    assert "name 'My_Ring': must match ^[a-z0-9][a-z0-9-]{0,63}$ (lower-case letters, digits, '-'), e.g. 'my-ring'" in msg
    assert suggest_name("--Über Flow 2__") == "ber-flow-2"


def test_family_lists_the_allowed_values():
    assert "family 'spline': must be one of nice, realnvp, glow, maf, iaf, planar, ffjord" in problems_of(vector_manifest(family="spline"))


def test_default_temperature_above_two():
    assert "defaultTemperature 3: must be ≤ 2" in problems_of(vector_manifest(defaultTemperature=3))
    assert "defaultTemperature 0: must be > 0" in problems_of(vector_manifest(defaultTemperature=0))


def test_missing_training_names_what_it_needs():
    m = vector_manifest()
    del m["training"]
    assert "manifest is missing 'training' (required: dataset; see docs/model-package.md)" in problems_of(m)


def test_nested_fields_are_named_by_path():
    m = vector_manifest()
    m["data"]["shape"] = [0]
    m["latent"]["parts"][0]["shape"] = [0]
    msg = problems_of(m)
    assert "data.shape[0] 0: must be ≥ 1" in msg
    assert "latent.parts[0].shape[0] 0: must be ≥ 1" in msg


def test_every_violation_is_listed_not_just_the_first():
    msg = problems_of(vector_manifest(family="spline", defaultTemperature=3))
    assert msg.count("\n  - ") == 2, msg


def test_union_with_an_object_reports_inside_the_object():
    # calibration is "object or null": an incomplete object must say what it lacks, not "not valid under anyOf"
    cal = {"split": "x", "count": 3, "targetFalsePositiveRate": 0.01, "scores": {}}
    msg = problems_of(vector_manifest(calibration=cal))
    assert "calibration is missing 'defaultScore'" in msg
    assert "anyOf" not in msg and "given schemas" not in msg


def test_test_protocol_and_sampling_blocks_are_checked():
    m = vector_manifest()
    m["training"]["test"]["protocol"] = {"dequantization": "gaussian", "draws": 0}
    msg = problems_of(m)
    assert "training.test.protocol.dequantization 'gaussian': must be one of centre, uniform, none" in msg
    assert "training.test.protocol.draws 0: must be ≥ 1" in msg
    m = vector_manifest()
    m["training"]["test"]["protocol"]["extra"] = 1
    assert "training.test.protocol has unknown field 'extra'" in problems_of(m)


def test_unknown_top_level_fields_are_refused_not_dropped():
    msg = problems_of(vector_manifest(defaultTemprature=0.5))
    assert "unknown field(s) 'defaultTemprature'" in msg


def test_service_load_rules_beyond_the_schema():
    assert "must equal the package folder's name 'other'" in problems_of(vector_manifest(), "other")
    m = vector_manifest()
    m["latent"]["parts"][0]["shape"] = [3]
    assert "latent.parts [[3]]: sizes add up to 3, the data dimension is 2" in problems_of(m)
    m = image_manifest()
    m["data"]["bitDepth"] = None
    assert "image models need shape [C, H, W], a range and a bitDepth" in problems_of(m, "tiny-image")
    cal = {"split": "x", "count": 3, "defaultScore": "complexity", "targetFalsePositiveRate": 0.01,
           "scores": {"nll": {"mean": 0, "std": 1, "min": 0, "max": 1, "threshold": 1}}}
    assert "calibration.defaultScore 'complexity': must be a score this model computes (nll, typicality)" in problems_of(vector_manifest(calibration=cal))


def test_values_json_cannot_hold_are_refused():
    m = vector_manifest()
    m["training"]["test"]["meanLogLikelihood"] = float("nan")
    assert "NaN or Infinity" in problems_of(m) and "training.test.meanLogLikelihood nan" in problems_of(m)


def test_numpy_and_tuples_are_accepted_as_json_would_carry_them():
    import numpy as np
    m = vector_manifest()
    m["data"]["shape"] = (np.int64(2),)
    m["defaultTemperature"] = np.float32(0.5)
    assert check_manifest(m, "x/tiny")["data"]["shape"] == [2]


def test_the_schema_is_the_generated_one():
    s = schema()
    assert s["$comment"].startswith("Generated from src/config/manifest-schema.ts")
    assert {"sampling", "training", "calibration"} <= set(s["properties"])
