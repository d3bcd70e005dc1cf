"""float16 weights in a package: large float32 initializers stored as float16, cast back inside the graph.

Why: a package must fit in 8 MiB (scripts/verify_package.py); storing the parameters as float16 halves
their bytes, so twice as many fit. Only the storage changes: each converted initializer `W` becomes a
float16 initializer `W__fp16` followed by `Cast(to=FLOAT)` whose output is named `W`, so every consumer
is unchanged and all compute stays float32 (onnxruntime folds the Cast once, at session creation). The
graph inputs and outputs keep their float32 types. The price is the rounding of each weight to float16
(relative error <= 2^-11 for |w| >= 2^-14; absolute <= 2^-25 below): measure what it does to log p
before shipping (scripts/measure_half.py).

Converted: float32 initializers with at least `min_elements` elements, in the main graph and in any
subgraph (If / Loop / Scan bodies; their Cast nodes go first in the subgraph that owns the
initializer). Untouched: smaller ones (scalars, shape constants), every non-float32 initializer,
sparse initializers, and initializers that are also graph inputs (overridable defaults: their type
is part of the graph's interface). Refused (ValueError): a weight outside float16's finite range
(|w| > 65504), external data that was not loaded, a default-domain opset below 6 (Cast's `to` was a
string) or above 17 (the service's limit). The opset is not changed.
"""
from __future__ import annotations

import copy

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FLOAT16_MAX = float(np.finfo(np.float16).max)  # 65504
SUFFIX = "__fp16"


def _opset(model: onnx.ModelProto) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def _subgraphs(graph: onnx.GraphProto):
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield attr.g
            elif attr.type == onnx.AttributeProto.GRAPHS:
                yield from attr.graphs


def _all_names(graph: onnx.GraphProto, names: set) -> set:
    """Every value name in the graph and its subgraphs (new names must not collide in any scope)."""
    names.update(v.name for v in list(graph.input) + list(graph.output) + list(graph.value_info))
    names.update(t.name for t in graph.initializer)
    names.update(s.values.name for s in graph.sparse_initializer)
    for node in graph.node:
        names.update(node.input)
        names.update(node.output)
        if node.name:
            names.add(node.name)
    for g in _subgraphs(graph):
        _all_names(g, names)
    return names


def _unique(base: str, taken: set) -> str:
    name, i = base, 1
    while name in taken:
        name, i = f"{base}_{i}", i + 1
    taken.add(name)
    return name


def _convert_graph(graph: onnx.GraphProto, min_elements: int, taken: set, converted: list) -> None:
    for g in _subgraphs(graph):  # subgraph initializers are scoped to their subgraph
        _convert_graph(g, min_elements, taken, converted)
    inputs = {i.name for i in graph.input}
    casts = []
    for t in graph.initializer:
        if t.data_type != TensorProto.FLOAT or int(np.prod(t.dims, dtype=np.int64)) < min_elements or t.name in inputs:
            continue
        if t.data_location == TensorProto.EXTERNAL and not t.raw_data:
            raise ValueError(f"initializer {t.name!r} is external data that was not loaded: onnx.load the model with its "
                             "external data (the default) before converting")
        w = numpy_helper.to_array(t)
        big = np.abs(w[np.isfinite(w)])
        if big.size and big.max() > FLOAT16_MAX:
            raise ValueError(f"initializer {t.name!r} has |w| up to {big.max():.6g}, outside float16's finite range "
                             f"(±{FLOAT16_MAX:g}); keep it float32 (raise min_elements above its {w.size} elements) or rescale it")
        original = t.name
        half = numpy_helper.from_array(w.astype(np.float16), _unique(original + SUFFIX, taken))
        half.doc_string = t.doc_string
        t.CopyFrom(half)
        casts.append(helper.make_node("Cast", [half.name], [original], name=_unique(original + "__cast", taken),
                                      to=TensorProto.FLOAT))
        converted.append((original, w.size))
    if casts:
        nodes = casts + list(graph.node)
        del graph.node[:]
        graph.node.extend(nodes)


def weights_to_float16(model: onnx.ModelProto, min_elements: int = 1024) -> onnx.ModelProto:
    """A copy of `model` whose float32 initializers of >= min_elements elements are stored as float16 and
    cast to float32 by a Cast node named after them (see the module docstring). The input is not modified;
    the result passes onnx.checker."""
    opset = _opset(model)
    if not 6 <= opset <= 17:
        raise ValueError(f"default-domain opset {opset}: weights_to_float16 handles opsets 6 to 17")
    out = copy.deepcopy(model)
    taken = _all_names(out.graph, set())
    converted: list = []
    _convert_graph(out.graph, int(min_elements), taken, converted)
    onnx.checker.check_model(out)
    return out
