"""The one exception type users of the exporter need to catch."""
from __future__ import annotations


class ExportError(RuntimeError):
    """The flow, its manifest or the exported graphs failed a check; nothing was written.
    The message says which contract or rule was broken and how to fix it."""


class RuntimeUnavailable(ExportError):
    """The ONNX checks cannot run: node or flowserve's onnxruntime-node is missing (flowexport.ort)."""
