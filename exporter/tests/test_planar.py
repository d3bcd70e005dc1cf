"""Planar flow export (flowexport.planar): invertibility rule, float64 maths, a written package."""
import json

import numpy as np
import pytest
import torch

from flowexport import ExportError
from flowexport.planar import check_layers, export_planar, planar_generate, planar_inverse
from tiny import reference, vector_manifest


def quiet(*_):
    pass


def layers(k=4, seed=0, dim=2):
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(k):
        w = rng.normal(size=dim)
        u = rng.normal(size=dim) * 0.8
        uw = u @ w
        if uw <= -0.9:  # keep uᵀw > −1 (Rezende & Mohamed's û)
            u = u + (-0.5 - uw) * w / (w @ w)
        out.append({"u": u.tolist(), "w": w.tolist(), "b": float(rng.normal())})
    return out


def manifest(name="tiny-planar"):
    return vector_manifest(name, family="planar", defaultTemperature=0.5)


def test_round_trip_and_logdet_float64():
    ls = layers(8)
    x = np.random.default_rng(1).normal(size=(64, 2)) * 2
    z, ld = planar_inverse(ls, x)
    x2, ld2 = planar_generate(ls, z)
    assert np.abs(x2 - x).max() < 1e-10 and np.abs(ld + ld2).max() < 1e-10
    # the logDet is the log|det| of the generate Jacobian (finite differences)
    eps = 1e-6
    jac = np.stack([(planar_generate(ls, z + eps * e)[0] - planar_generate(ls, z - eps * e)[0]) / (2 * eps)
                    for e in np.eye(2)], 2)
    assert np.allclose(np.log(np.abs(np.linalg.det(jac))), ld2, atol=1e-6)


def test_near_singular_layer_inverts():
    # uᵀw close to −1: the layer is nearly flat along w; the bracketed Newton still finds the root
    w = np.array([1.0, 0.5])
    u = -0.999 * w / (w @ w)
    ls = [{"u": u.tolist(), "w": w.tolist(), "b": 0.3}]
    z = np.random.default_rng(2).normal(size=(100, 2)) * 3
    x, _ = planar_generate(ls, z)
    z2, _ = planar_inverse(ls, x)
    assert np.abs(z2 - z).max() < 1e-8


def test_refuses_non_invertible_layer(models):
    ls = layers(3)
    w = np.array(ls[1]["w"])
    ls[1]["u"] = (-1.0 * w / (w @ w)).tolist()  # uᵀw = −1 exactly
    with pytest.raises(ExportError, match=r"planar layer 1: uᵀw = -1 ≤ −1"):
        check_layers(ls, 2)
    ls[1]["u"] = (-1.5 * w / (w @ w)).tolist()
    with pytest.raises(ExportError, match="planar layer 1"):
        export_planar(ls, manifest(), models / "tiny-planar", reference(), sampling_bound=[-6, 6], log=quiet)
    assert list(models.iterdir()) == []


def test_refuses_bad_shapes_and_manifest(models):
    with pytest.raises(ExportError, match="u has 3"):
        check_layers([{"u": [1, 2, 3], "w": [1, 0], "b": 0}], 2)
    with pytest.raises(ExportError, match="family"):
        export_planar(layers(), vector_manifest("tiny-planar", family="nope"), models / "tiny-planar", reference(), log=quiet)
    assert list(models.iterdir()) == []


def test_export_writes_a_complete_package(models):
    ls = layers(6)
    report = export_planar(ls, manifest(), models / "tiny-planar", reference(), sampling_bound=[-8, 8], log=quiet)
    d = models / "tiny-planar"
    assert sorted(p.name for p in d.iterdir()) == ["flow.json", "generate.onnx", "planar.json", "reference.json"]
    m = json.loads((d / "flow.json").read_text())
    assert m["graphs"] == {"generate": "generate.onnx"}
    assert m["program"] == {"kind": "planar", "file": "planar.json", "layers": 6}
    assert set(m["files"]) == {"generate.onnx", "planar.json", "reference.json"}
    assert m["sampling"]["maxTemperature"] >= 0.5
    pj = json.loads((d / "planar.json").read_text())
    assert len(pj["layers"]) == 6 and all(np.dot(l["u"], l["w"]) > -1 for l in pj["layers"])
    ref = json.loads((d / "reference.json").read_text())
    z = np.array(ref["latents"])
    x, ld = planar_generate(pj["layers"], z)
    assert np.abs(x - np.array(ref["inputs"])).max() < 1e-9
    assert np.allclose(np.array(ref["logDet"]), -ld)
    assert all(r["ok"] for r in report["checks"])
