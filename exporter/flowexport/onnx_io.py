"""Trace a flow direction to ONNX and move the weights of several graphs into one shared file.

Both graphs of a package reference the same `weights.bin` (ONNX external data). Tensors are
deduplicated by content (dtype + bytes), so a coupling net used by forward and inverse is stored
once even when constant folding gave it different names in the two graphs. Offsets are 64-byte
aligned. Small tensors (shape constants, scalars) stay inline.
"""
from __future__ import annotations

import hashlib
import io
import warnings

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ALIGN = 64
_FLOAT_TYPES = {onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16}


class _Direction(torch.nn.Module):
    """Exposes flow.forward or flow.inverse as the traced module's forward."""

    def __init__(self, flow: torch.nn.Module, inverse: bool):
        super().__init__()
        self.flow = flow
        self.inverse = inverse

    def forward(self, *args):
        return self.flow.inverse(*args) if self.inverse else self.flow(*args)


def trace_to_onnx(flow, args, input_names, output_names, batch_names, inverse: bool, opset: int,
                  shapes: dict | None = None) -> onnx.ModelProto:
    """Trace one direction; dim 0 of every name in batch_names is the dynamic batch axis 'N'.
    shapes: {io name: [dims]} written into the graph (strings are symbolic dims)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # TracerWarnings about python ints are expected (static shapes)
        torch.onnx.export(
            _Direction(flow, inverse), tuple(args), buf,
            input_names=list(input_names), output_names=list(output_names),
            dynamic_axes={name: {0: "N"} for name in batch_names},
            opset_version=opset, do_constant_folding=True, export_params=True,
            training=torch.onnx.TrainingMode.EVAL,
        )
    model = onnx.load_from_string(buf.getvalue())
    _annotate_shapes(model, shapes or {})
    onnx.checker.check_model(model)
    return model


def _annotate_shapes(model: onnx.ModelProto, shapes: dict) -> None:
    """Write the exact graph io shapes ([N, ...static dims]); the tracer leaves some symbolic."""
    for value in list(model.graph.input) + list(model.graph.output):
        if value.name not in shapes:
            continue
        dims = value.type.tensor_type.shape.dim
        del dims[:]
        for d in shapes[value.name]:
            entry = dims.add()
            if isinstance(d, str):
                entry.dim_param = d
            else:
                entry.dim_value = int(d)


def _constants_to_initializers(graph: onnx.GraphProto, min_bytes: int) -> None:
    """Large Constant nodes (folded masks, priors) become initializers so they can be externalized."""
    keep = []
    for node in graph.node:
        if node.op_type == "Constant" and len(node.attribute) == 1 and node.attribute[0].name == "value":
            t = node.attribute[0].t
            if t.data_type in _FLOAT_TYPES and numpy_helper.to_array(t).nbytes >= min_bytes:
                init = onnx.TensorProto()
                init.CopyFrom(t)
                init.name = node.output[0]
                graph.initializer.append(init)
                continue
        keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def externalize_shared(models: list, location: str, min_bytes: int = 16) -> bytes:
    """Rewrite the models' float initializers as external data in one blob; returns the blob."""
    blob = bytearray()
    table: dict[bytes, tuple[int, int]] = {}
    for model in models:
        _constants_to_initializers(model.graph, min_bytes)
        for t in model.graph.initializer:
            if t.data_type not in _FLOAT_TYPES:
                continue
            arr = numpy_helper.to_array(t)
            raw = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
            if len(raw) < min_bytes:
                continue
            key = hashlib.sha256(bytes([t.data_type]) + raw).digest()
            if key not in table:
                blob.extend(b"\0" * ((-len(blob)) % ALIGN))
                table[key] = (len(blob), len(raw))
                blob.extend(raw)
            offset, length = table[key]
            for field in ("raw_data", "float_data", "double_data", "int32_data", "int64_data"):
                t.ClearField(field)
            del t.external_data[:]
            t.data_location = onnx.TensorProto.EXTERNAL
            for k, v in (("location", location), ("offset", str(offset)), ("length", str(length))):
                entry = t.external_data.add()
                entry.key, entry.value = k, v
    return bytes(blob)


def graph_io(model: onnx.ModelProto) -> tuple[list, list]:
    inits = {t.name for t in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    return inputs, [o.name for o in model.graph.output]


def opset_of(model: onnx.ModelProto) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def non_standard_ops(model: onnx.ModelProto) -> list:
    return sorted({f"{n.domain}::{n.op_type}" for n in model.graph.node if n.domain not in ("", "ai.onnx")})
