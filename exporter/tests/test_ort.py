"""The ONNX checks need node and a flowserve checkout's onnxruntime-node: missing either is one clear message."""
import os

import numpy as np
import pytest

from flowexport import RuntimeUnavailable
from flowexport.ort import check_runtime, flowserve_root, run_onnx


def test_finds_the_checkout_it_sits_in(monkeypatch):
    monkeypatch.delenv("FLOWSERVE_ROOT", raising=False)
    root = flowserve_root()
    assert (root / "node_modules" / "onnxruntime-node").is_dir() and (root / "exporter" / "flowexport").is_dir()


def test_flowserve_root_without_node_modules(monkeypatch, tmp_path):
    monkeypatch.setenv("FLOWSERVE_ROOT", str(tmp_path))
    with pytest.raises(RuntimeUnavailable, match=r"onnxruntime-node is not installed in FLOWSERVE_ROOT=.*: run `npm ci` there"):
        check_runtime()


def test_node_missing_from_path(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(RuntimeUnavailable, match="node not found on PATH"):
        run_onnx([])


def test_binary_round_trip_keeps_non_finite_values(tmp_path):
    # an identity graph: NaN and ±inf survive the base64 transport both ways
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), str(tmp_path / "id.onnx"))
    x = np.array([[1.5, np.nan, np.inf], [-np.inf, 0.0, -2.25]])
    (out,) = run_onnx([(tmp_path / "id.onnx", {"x": x})])
    np.testing.assert_array_equal(out["y"], x)
    assert out["__inputs__"] == ["x"] and out["__outputs__"] == ["y"]
