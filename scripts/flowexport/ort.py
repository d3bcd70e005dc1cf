"""Run ONNX graphs through onnxruntime-node (the runtime the service uses) via scripts/ort-run.mjs."""
from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

ORT_RUN = Path(__file__).resolve().parent.parent / "ort-run.mjs"


def run_onnx(runs: list) -> list:
    """runs: [(model_path, {name: ndarray})] -> [{output name: float64 ndarray}], all feeds as float32."""
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("node not found on PATH (needed for the onnxruntime-node checks)")
    request = {"runs": [
        {"model": str(Path(model).resolve()),
         "feeds": {k: {"dims": list(v.shape), "data": np.asarray(v, np.float32).ravel().tolist()} for k, v in feeds.items()}}
        for model, feeds in runs
    ]}
    with tempfile.TemporaryDirectory(prefix="ort-run-") as d:
        req, out = Path(d) / "req.json", Path(d) / "out.json"
        req.write_text(json.dumps(request))
        proc = subprocess.run([node, str(ORT_RUN), str(req), str(out)], capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            raise RuntimeError(f"ort-run.mjs failed ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
    outs = []
    for r in result["runs"]:
        arrays = {name: np.array([float(v) for v in o["data"]], np.float64).reshape(o["dims"]) for name, o in r["outputs"].items()}
        arrays["__inputs__"], arrays["__outputs__"] = r["inputNames"], r["outputNames"]
        outs.append(arrays)
    return outs
