"""The measured temperature range (flow.json `sampling`) on a flow with a known answer.

Scale(a) decodes draw ε at temperature T to exactly a·T·ε, so with the bound [−B, B] a draw is
outside iff a·T·max|ε| > B. With maxOutside = 1 the usable T are those where the second-largest
per-draw max|ε| (m2) still fits: T ≤ B / (a·m2). Choosing a = B / (0.825·m2) puts the answer at 0.8,
with a 3 % margin either side of the grid points 0.8 and 0.85 (float32 rounding is far smaller).
"""
import json

import numpy as np
import pytest

from flowexport import ExportError, export_package
from flowexport.stability import draws
from flowexport.temperature import (DRAWS, SEED, criterion_for, default_bound, grid_points, main, measure_package)
from tiny import Scale, reference, vector_manifest

BOUND = [-3.0, 3.0]


def second_largest_draw() -> float:
    (eps,) = draws([{"name": "z", "shape": [2]}], DRAWS, SEED)
    return float(np.sort(np.abs(eps).max(1))[-2])


def quiet(*_):
    pass


def test_grid_and_bounds():
    g = grid_points(0.05)
    assert len(g) == 40 and g[0] == 0.05 and g[2] == 0.15 and g[-1] == 2.0
    assert default_bound({"range": [0, 1]}) == [-1.0, 2.0]
    assert default_bound({"range": None}) == [-1e4, 1e4]
    assert default_bound({"range": None}, (-2, 5)) == [-2.0, 5.0]
    with pytest.raises(ExportError, match="only for data without a range"):
        default_bound({"range": [0, 1]}, (-2, 5))
    assert criterion_for({"range": [0, 255]}) == {"draws": 1024, "seed": 0, "bound": [-255.0, 510.0], "maxOutside": 1, "grid": 0.05}


def test_export_measures_the_known_maximum_and_writes_it(models):
    a = BOUND[1] / (0.825 * second_largest_draw())
    report = export_package(Scale(a), vector_manifest(), models / "tiny", reference(), sampling_bound=BOUND, log=quiet)
    want = {"maxTemperature": 0.8, "criterion": {"draws": 1024, "seed": 0, "bound": BOUND, "maxOutside": 1, "grid": 0.05}}
    assert report["sampling"] == want
    rows = {r["temperature"]: r for r in report["temperatures"]}
    assert rows[0.8]["outside"] <= 1 and rows[0.85]["outside"] >= 2 and max(rows) == 0.85  # stops at the first failure
    flow_json = json.loads((models / "tiny" / "flow.json").read_text())
    assert flow_json["sampling"] == want
    assert list(flow_json).index("sampling") == list(flow_json).index("defaultTemperature") + 1
    # the CLI re-measures the package from its files alone, with the recorded criterion
    assert measure_package(models / "tiny")["maxTemperature"] == 0.8


def test_default_temperature_above_the_measured_maximum_is_refused(models):
    a = BOUND[1] / (0.825 * second_largest_draw())
    with pytest.raises(ExportError, match=r"defaultTemperature 1 is above the measured maximum temperature 0.8 .*choose defaultTemperature <= 0.8"):
        export_package(Scale(a), vector_manifest(defaultTemperature=1), models / "tiny", reference(), sampling_bound=BOUND, log=quiet)
    assert list(models.iterdir()) == []


def test_refused_when_not_even_the_first_grid_point_is_usable(models):
    # 0.05·|ε| > 0.01 for most draws: a flow that lands outside its data at any temperature
    with pytest.raises(ExportError, match=r"sampling is unusable at every temperature: at T = 0.05, 0 of 1024 draws decode to non-finite values and \d+ fall outside \[-0.01, 0.01\]"):
        export_package(Scale(1.0), vector_manifest(defaultTemperature=0.05), models / "tiny", reference(), sampling_bound=[-0.01, 0.01], log=quiet)
    assert list(models.iterdir()) == []


def test_cli_writes_sampling_and_refuses_a_default_above_the_maximum(models, capsys):
    a = BOUND[1] / (0.825 * second_largest_draw())
    export_package(Scale(a), vector_manifest(), models / "tiny", reference(), sampling_bound=BOUND, log=quiet)
    path = models / "tiny" / "flow.json"
    m = json.loads(path.read_text())
    del m["sampling"]
    path.write_text(json.dumps(m, indent=2) + "\n")
    assert main([str(models / "tiny"), "--write", "--bound", *map(str, BOUND)]) == 0
    assert json.loads(path.read_text())["sampling"]["maxTemperature"] == 0.8
    m = json.loads(path.read_text())
    m["defaultTemperature"] = 1.5
    del m["sampling"]
    path.write_text(json.dumps(m, indent=2) + "\n")
    assert main([str(models / "tiny"), "--write", "--bound", *map(str, BOUND)]) == 1
    assert "defaultTemperature 1.5 exceeds the measured maximum 0.8: not written" in capsys.readouterr().out
    assert "sampling" not in json.loads(path.read_text())
