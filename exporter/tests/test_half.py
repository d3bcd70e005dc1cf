"""flowexport.half: float16 storage of large weights, cast to float32 inside the graph. The bytes halve,
the graph checks, small and non-float32 initializers are untouched, and onnxruntime gives the float32
model's outputs with its weights rounded to float16 (and differs from the unrounded one by no more than
that rounding implies). The onnxruntime tests need node + onnxruntime-node: they fail, never skip, without
them (README)."""
import copy

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from flowexport.half import weights_to_float16
from flowexport.onnx_io import externalize_shared
from flowexport.ort import run_onnx

EPS16 = 2.0 ** -11      # float16 relative rounding (round to nearest, 11-bit significand)
TINY16 = 2.0 ** -25     # float16 absolute rounding below its normal range (subnormal spacing 2^-24)


class Tiny(torch.nn.Module):
    """Two dense layers (8192 and 4096 weights: converted) with small biases and a scalar (kept)."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.a = torch.nn.Linear(64, 128)
        self.b = torch.nn.Linear(128, 32)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.2)
            self.a.weight[0, :8] = torch.tensor([1e-6, -3e-7, 1e-5, 7e-5, 1234.5, -0.1, 3.0, 0.0])  # subnormal, large
        self.register_buffer("scale", torch.tensor(1.7))

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return self.b(h) * self.scale, h.sum(1)


def export(module, path):
    torch.onnx.export(module, (torch.zeros(3, 64),), str(path), input_names=["x"], output_names=["y", "s"],
                      opset_version=17, dynamic_axes={"x": {0: "N"}, "y": {0: "N"}, "s": {0: "N"}})
    return onnx.load(str(path))


def rounded(module):
    """The same module with every weight of >= 1024 elements rounded to float16 (what the graph stores)."""
    m = copy.deepcopy(module)
    with torch.no_grad():
        for p in list(m.parameters()) + list(m.buffers()):
            if p.numel() >= 1024:
                p.copy_(p.half().float())
    return m


@pytest.fixture
def tiny(tmp_path):
    module = Tiny().eval()
    model = export(module, tmp_path / "f32.onnx")
    half = weights_to_float16(model)
    onnx.save(half, str(tmp_path / "f16.onnx"))
    return module, model, half, tmp_path


def inits(model):
    return {t.name: t for t in model.graph.initializer}


def test_big_weights_become_float16_behind_a_cast_and_nothing_else_changes(tiny):
    module, model, half, _ = tiny
    before, after = inits(model), inits(half)
    big = {n for n, t in before.items() if np.prod(t.dims) >= 1024}
    assert big == {"a.weight", "b.weight"}
    for name, t in before.items():
        if name in big:  # renamed, float16, the rounded values; a Cast restores the name as float32
            h = after[name + "__fp16"]
            assert h.data_type == TensorProto.FLOAT16 and list(h.dims) == list(t.dims)
            np.testing.assert_array_equal(numpy_helper.to_array(h), numpy_helper.to_array(t).astype(np.float16))
            (cast,) = [n for n in half.graph.node if n.output == [name]]
            assert cast.op_type == "Cast" and list(cast.input) == [h.name] and cast.attribute[0].i == TensorProto.FLOAT
            assert name not in after
        else:  # small initializers (biases, the scalar, shape constants): byte for byte the same
            assert after[name].SerializeToString() == t.SerializeToString()
    # the original nodes, io and opset are untouched; the Casts come first
    assert list(half.graph.node[2:]) == list(model.graph.node) and all(n.op_type == "Cast" for n in half.graph.node[:2])
    assert list(half.graph.input) == list(model.graph.input) and list(half.graph.output) == list(model.graph.output)
    assert all(v.type.tensor_type.elem_type == TensorProto.FLOAT for v in list(half.graph.input) + list(half.graph.output))
    assert list(half.opset_import) == list(model.opset_import)
    onnx.checker.check_model(half, full_check=True)
    # the input model is not modified, and a second conversion finds nothing left to convert
    assert inits(model).keys() == before.keys() and model.graph.initializer[0].data_type == TensorProto.FLOAT
    assert weights_to_float16(half).SerializeToString() == half.SerializeToString()


def test_the_file_and_the_shared_weights_halve(tiny):
    _, model, half, tmp_path = tiny
    n_big = 64 * 128 + 128 * 32
    size32, size16 = (tmp_path / "f32.onnx").stat().st_size, (tmp_path / "f16.onnx").stat().st_size
    saved = size32 - size16
    assert 2 * n_big - 200 <= saved <= 2 * n_big, (size32, size16)  # two Cast nodes cost < 200 bytes
    assert 0.45 < size16 / size32 < 0.55
    # as a package stores them: one external-data blob (flowexport.onnx_io), float16 tensors 64-byte aligned
    blob32 = externalize_shared([copy.deepcopy(model)], "weights.bin")
    blob16 = externalize_shared([copy.deepcopy(half)], "weights.bin")
    assert len(blob32) - len(blob16) >= 2 * n_big - 64 and len(blob16) < 0.55 * len(blob32)


def test_onnxruntime_gives_the_rounded_weights_outputs(tiny):
    module, model, half, tmp_path = tiny
    export(rounded(module), tmp_path / "rounded.onnx")
    x = np.random.default_rng(1).normal(size=(16, 64))
    r16, r_round, r32 = run_onnx([(tmp_path / p, {"x": x}) for p in ("f16.onnx", "rounded.onnx", "f32.onnx")])
    assert r16["__inputs__"] == ["x"] and r16["__outputs__"] == ["y", "s"]
    for k in ("y", "s"):  # same float32 graph, same float32 weights: equal up to float32 summation order
        np.testing.assert_allclose(r16[k], r_round[k], rtol=1e-6, atol=1e-6)
    with torch.no_grad():  # and PyTorch's float32 run of the rounded module
        y_t, s_t = rounded(module)(torch.tensor(x, dtype=torch.float32))
    np.testing.assert_allclose(r16["y"], y_t.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(r16["s"], s_t.numpy(), rtol=1e-5, atol=1e-5)

    # against the unrounded float32 model: at most what rounding each weight implies, propagated in
    # float64 (|dW| <= max(2^-11 |W|, 2^-25) elementwise; tanh is 1-Lipschitz), plus float32 slack
    w1, b1 = module.a.weight.detach().double().numpy(), module.a.bias.detach().double().numpy()
    w2, b2 = module.b.weight.detach().double().numpy(), module.b.bias.detach().double().numpy()
    s = float(module.scale)
    e1, e2 = (np.maximum(EPS16 * np.abs(w), TINY16) for w in (w1, w2))
    for w, e in ((w1, e1), (w2, e2)):  # the rounding itself obeys the bound
        assert np.all(np.abs(w.astype(np.float32).astype(np.float16).astype(np.float64) - w) <= e)
    h = np.tanh(x @ w1.T + b1)
    dh = np.abs(x) @ e1.T
    w2_hat = w2.astype(np.float32).astype(np.float16).astype(np.float64)
    bound_y = abs(s) * (np.abs(h) @ e2.T + dh @ np.abs(w2_hat).T)
    bound_s = dh.sum(1)
    dy, ds = np.abs(r16["y"] - r32["y"]), np.abs(r16["s"] - r32["s"])
    assert np.all(dy <= bound_y + 1e-5 * (1 + np.abs(r32["y"]))), (dy - bound_y).max()
    assert np.all(ds <= bound_s + 1e-5 * (1 + np.abs(r32["s"]))), (ds - bound_s).max()
    assert dy.max() > 1e-4 and ds.max() > 1e-4  # the weights really changed (float32 noise is ~1e-6)


def _linear_if(w_outer, w_then):
    """y = x @ (w_then if sum(x) > 0 else w_outer): w_then is the then-branch's own initializer, w_outer an
    outer-scope one the else-branch reads."""
    def branch(name, nodes, inits):
        return helper.make_graph(nodes, name, [], [helper.make_tensor_value_info(f"{name}_y", TensorProto.FLOAT, None)], inits)

    then_g = branch("then", [helper.make_node("MatMul", ["x", "w_then"], ["then_y"])], [numpy_helper.from_array(w_then, "w_then")])
    else_g = branch("else", [helper.make_node("MatMul", ["x", "w_outer"], ["else_y"])], [])
    nodes = [helper.make_node("ReduceSum", ["x"], ["total"], keepdims=0),
             helper.make_node("Greater", ["total", "zero"], ["cond"]),
             helper.make_node("If", ["cond"], ["y"], then_branch=then_g, else_branch=else_g)]
    graph = helper.make_graph(nodes, "if", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 32])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 32])],
                              [numpy_helper.from_array(w_outer, "w_outer"), numpy_helper.from_array(np.float32(0), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_subgraph_initializers_and_outer_scope_references(tmp_path):
    rng = np.random.default_rng(2)
    w_outer, w_then = (rng.normal(size=(32, 32)).astype(np.float32) for _ in range(2))
    half = weights_to_float16(_linear_if(w_outer, w_then))
    assert {t.name: t.data_type for t in half.graph.initializer} == {"w_outer__fp16": TensorProto.FLOAT16, "zero": TensorProto.FLOAT}
    then_g = half.graph.node[-1].attribute[0].g if half.graph.node[-1].attribute[0].name == "then_branch" else half.graph.node[-1].attribute[1].g
    assert [t.name for t in then_g.initializer] == ["w_then__fp16"] and then_g.node[0].op_type == "Cast"
    onnx.save(half, str(tmp_path / "if.onnx"))
    x_pos, x_neg = np.abs(rng.normal(size=(4, 32))), -np.abs(rng.normal(size=(4, 32)))
    pos, neg = run_onnx([(tmp_path / "if.onnx", {"x": x_pos}), (tmp_path / "if.onnx", {"x": x_neg})])
    r = lambda w: w.astype(np.float16).astype(np.float64)  # noqa: E731
    np.testing.assert_allclose(pos["y"], x_pos.astype(np.float32) @ r(w_then), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(neg["y"], x_neg.astype(np.float32) @ r(w_outer), rtol=1e-5, atol=1e-5)


def test_non_float32_and_graph_input_initializers_are_untouched():
    big = 2048
    graph = helper.make_graph(
        [helper.make_node("Identity", [n], [n + "_out"]) for n in ("x", "d", "i", "w")], "kinds",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 2]),
         helper.make_tensor_value_info("w", TensorProto.FLOAT, [big])],  # an overridable default
        [helper.make_tensor_value_info(n + "_out", t, shape) for n, t, shape in
         (("x", TensorProto.FLOAT, ["N", 2]), ("d", TensorProto.DOUBLE, [big]), ("i", TensorProto.INT64, [big]),
          ("w", TensorProto.FLOAT, [big]))],
        [numpy_helper.from_array(np.linspace(0, 1, big), "d"), numpy_helper.from_array(np.arange(big, dtype=np.int64), "i"),
         numpy_helper.from_array(np.full(big, 0.1, np.float32), "w"),
         numpy_helper.from_array(np.full(big, 0.1, np.float16), "h")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    assert weights_to_float16(model).SerializeToString() == model.SerializeToString()


def test_refusals(tmp_path):
    module = Tiny().eval()
    model = export(module, tmp_path / "f32.onnx")
    # external data not loaded: nothing to convert from
    onnx.save(model, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.bin", size_threshold=1024)
    with pytest.raises(ValueError, match="external data that was not loaded"):
        weights_to_float16(onnx.load(str(tmp_path / "ext.onnx"), load_external_data=False))
    # loaded (the default): fine
    weights_to_float16(onnx.load(str(tmp_path / "ext.onnx")))
    # a weight float16 cannot hold
    with torch.no_grad():
        module.b.weight[0, 0] = 1e5
    with pytest.raises(ValueError, match=r"'b.weight' has \|w\| up to 100000, outside float16's finite range"):
        weights_to_float16(export(module, tmp_path / "big.onnx"))
    # opsets outside 6..17
    with pytest.raises(ValueError, match="opset 18"):
        m = copy.deepcopy(model)
        m.opset_import[0].version = 18
        weights_to_float16(m)
