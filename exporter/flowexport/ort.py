"""Run ONNX graphs through onnxruntime-node, the runtime the service uses, via ort-run.mjs.

The exporter's agreement checks must see the graphs exactly as flowserve will run them, so they go
through Node and the onnxruntime-node of a flowserve checkout rather than a Python onnxruntime
(which may be another version, and is not a dependency). Two things are needed:

  * `node` (>= 20) on PATH;
  * a flowserve checkout with its node_modules installed (`npm ci`): $FLOWSERVE_ROOT if set, else
    the checkout this package sits in (an editable install from <checkout>/exporter).

ort-run.mjs ships inside this package and loads onnxruntime-node from that checkout, so a
non-editable install works as long as FLOWSERVE_ROOT points at a checkout.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .errors import RuntimeUnavailable

RUNNER = Path(__file__).resolve().with_name("ort-run.mjs")
_ORT_PACKAGE = Path("node_modules") / "onnxruntime-node" / "package.json"
_FIX = "run `npm ci` in your flowserve checkout or set FLOWSERVE_ROOT to a checkout where it ran"
_DTYPES = {"float32": "<f4", "float64": "<f8", "int64": "<i8", "int32": "<i4", "uint8": "u1", "bool": "?"}


def flowserve_root() -> Path:
    """The flowserve checkout whose onnxruntime-node runs the checks (see the module docstring)."""
    env = os.environ.get("FLOWSERVE_ROOT")
    if env:
        root = Path(env).expanduser().resolve()
        if not (root / _ORT_PACKAGE).is_file():
            raise RuntimeUnavailable(f"onnxruntime-node is not installed in FLOWSERVE_ROOT={root} "
                                     f"(no {_ORT_PACKAGE.parent}): run `npm ci` there")
        return root
    here = Path(__file__).resolve().parent
    for candidate in here.parents:
        if (candidate / _ORT_PACKAGE).is_file():
            return candidate
    raise RuntimeUnavailable(f"onnxruntime-node not found: flowexport ({here}) does not sit in a flowserve checkout "
                             f"with node_modules installed; {_FIX}. The exporter checks every graph with the "
                             "runtime the service uses.")


def node_executable() -> str:
    node = shutil.which("node")
    if node is None:
        raise RuntimeUnavailable("node not found on PATH: the exporter checks graphs with onnxruntime-node, the runtime "
                                 "flowserve uses; install Node.js >= 20 (the version flowserve runs on) and put it on PATH")
    return node


def check_runtime() -> Path:
    """Raise RuntimeUnavailable with the fix unless node and onnxruntime-node are usable; returns the checkout."""
    node_executable()
    return flowserve_root()


def _feed(v) -> dict:
    a = np.ascontiguousarray(np.asarray(v, np.float32))
    return {"dims": list(a.shape), "type": "float32", "b64": base64.b64encode(a.astype("<f4").tobytes()).decode()}


def _array(o: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(o["b64"]), dtype=_DTYPES[o["type"]])
    return raw.astype(np.float64).reshape(o["dims"])


def run_onnx(runs: list) -> list:
    """runs: [(model_path, {name: ndarray})] -> [{output name: float64 ndarray}], all feeds as float32.
    Each result also holds "__inputs__" and "__outputs__", the graph io names onnxruntime sees."""
    node = node_executable()
    root = flowserve_root()
    request = {"binary": True, "runs": [{"model": str(Path(model).resolve()), "feeds": {k: _feed(v) for k, v in feeds.items()}}
                                        for model, feeds in runs]}
    with tempfile.TemporaryDirectory(prefix="ort-run-") as d:
        req, out = Path(d) / "req.json", Path(d) / "out.json"
        req.write_text(json.dumps(request))
        proc = subprocess.run([node, str(RUNNER), str(req), str(out)], capture_output=True, text=True, timeout=900,
                              env={**os.environ, "FLOWSERVE_ROOT": str(root)})
        if proc.returncode != 0:
            raise RuntimeError(f"ort-run.mjs failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
    outs = []
    for r in result["runs"]:
        arrays = {name: _array(o) for name, o in r["outputs"].items()}
        arrays["__inputs__"], arrays["__outputs__"] = r["inputNames"], r["outputNames"]
        outs.append(arrays)
    return outs
