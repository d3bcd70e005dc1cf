"""The peer for tools/bench-serving.ts: what a user would write instead of flowserve.

FastAPI + PyTorch eager serving the SAME Glow (glow-fashion) and RealNVP (realnvp-mnist) with the SAME
weights, in the service's native JSON format:

    POST /likelihood {"model": M, "inputs": [[784 floats in data space], ...]}   or
                     {"model": M, "images": ["<base64 PNG>", ...]}                (decoded with PIL)
      -> {"model": M, "results": [{"logLikelihood": ..., "bitsPerDim": ...}, ...]}
    GET /healthz -> {"status": "ok"};  GET /readyz -> 200 once the models are loaded

The model classes are the training code's (scripts/flow_models.py, hyper-parameters from each
flow.json's training.architecture). Checkpoints are not shipped, so the weights come from the ONNX
initializers (onnx.numpy_helper), matched to the torch parameters and buffers by name and shape.
Two kinds of initializer do not carry a torch name, because the exporter folded them:
  * ZeroConv's exp(3 * logs): the initializer is 3 * logs (the input of an Exp whose output scales the
    conv that holds `...net.4.conv.weight`), so logs = value / 3;
  * RealNVP's masks (constant-folded; rebuilt by the constructor, deterministic).
Glow's 1x1 convolutions take W as an argument (built from lu.json exactly as the service does:
W = P L (U + diag(sign * exp(logS))), float64 then float32), and log|det W| = spatial * sum logS is
added outside, as in the service. At start every model is checked against its reference.json
(float64 PyTorch log p of the exporter) and the process refuses to start when the log-likelihoods
differ by more than 1e-4 relative.

A user's choices, kept: a pydantic request model (FastAPI's idiom), a plain `def` handler (FastAPI
runs it in its thread pool, its advice for blocking work), torch.inference_mode, no batching across
requests. torch.set_num_threads: PEER_THREADS, default the number of cores divided by the number of
uvicorn workers (WEB_CONCURRENCY, set by uvicorn --workers), at least 1.

    /usr/bin/python3 -m uvicorn --app-dir tools/peer fastapi_peer:app --port 8090 --workers 2 --log-level warning
    /usr/bin/python3 tools/peer/fastapi_peer.py --check        # verify against reference.json and exit
"""
from __future__ import annotations

import base64
import io
import json
import math
import os
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np
import onnx
import torch
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "exporter"))
from flow_models import Glow, RealNVP  # noqa: E402  (the training code's classes)

MODEL_DIR = Path(os.environ.get("MODEL_DIR", ROOT / "models"))
MODELS = [m for m in os.environ.get("PEER_MODELS", "glow-fashion,realnvp-mnist").split(",") if m]
LOG2PI = math.log(2 * math.pi)

try:
    from PIL import Image
except ImportError:  # the peer still serves "inputs"; images answer 415
    Image = None


def threads() -> int:
    if os.environ.get("PEER_THREADS"):
        return max(1, int(os.environ["PEER_THREADS"]))
    workers = int(os.environ.get("WEB_CONCURRENCY", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


torch.set_num_threads(threads())


def load_initializers(onnx_path: Path):
    g = onnx.load(str(onnx_path))  # external data (weights.bin) resolves next to the graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.graph.initializer}
    # ZeroConv scales: initializer -> Exp -> Mul(conv output) ; conv weight name gives the module path
    producers = {o: n for n in g.graph.node for o in n.output}
    consumers = {}
    for n in g.graph.node:
        for i in n.input:
            consumers.setdefault(i, []).append(n)
    folded = {}
    for name, value in inits.items():
        if not name.startswith("onnx::"):
            continue
        for exp in consumers.get(name, []):
            if exp.op_type != "Exp":
                continue
            for mul in consumers.get(exp.output[0], []):
                if mul.op_type != "Mul":
                    continue
                other = [i for i in mul.input if i != exp.output[0]][0]
                conv = producers.get(other)
                if conv is not None and conv.op_type == "Conv" and conv.input[1].endswith(".conv.weight"):
                    module = conv.input[1][: -len(".conv.weight")].removeprefix("flow.")
                    folded[module + ".logs"] = value / 3.0
    return inits, folded


def lu_matrices(lu_path: Path):
    ws, logdet = [], 0.0
    for layer in json.loads(lu_path.read_text())["layers"]:
        c = layer["channels"]
        p = np.zeros((c, c))
        p[np.arange(c), np.asarray(layer["perm"])] = 1.0
        l = np.tril(np.asarray(layer["lower"], np.float64), -1) + np.eye(c)
        u = np.triu(np.asarray(layer["upper"], np.float64), 1) + np.diag(np.asarray(layer["signS"]) * np.exp(np.asarray(layer["logS"])))
        ws.append(torch.tensor(p @ l @ u, dtype=torch.float32))
        logdet += layer["spatial"] * float(np.sum(layer["logS"]))
    return ws, logdet


class Served:
    """One model: torch module with the ONNX weights, preprocessing and prior around it."""

    def __init__(self, name: str):
        d = MODEL_DIR / name
        self.manifest = json.loads((d / "flow.json").read_text())
        arch = dict(self.manifest["training"]["architecture"])
        arch["shape"] = tuple(arch["shape"])
        family = self.manifest["family"]
        self.flow = Glow(**arch) if family == "glow" else RealNVP(**arch)
        self.flow.eval()
        inits, folded = load_initializers(d / "forward.onnx")
        state = self.flow.state_dict()
        loaded, missing = 0, []
        with torch.no_grad():
            for key, tensor in state.items():
                src = inits.get("flow." + key)
                if src is None:
                    src = folded.get(key)
                if src is not None and tuple(src.shape) == tuple(tensor.shape):
                    tensor.copy_(torch.from_numpy(np.array(src)).to(tensor.dtype))
                    loaded += 1
                else:
                    missing.append(key)
        # not in the graph by design: Glow's LU parameters (W is an input), actnorm's init flag, masks and index buffers
        unexpected = [k for k in missing if not (".invconv." in k or k.endswith(("initialized", "mask", "_idx", "l_mask")))]
        if unexpected:
            raise RuntimeError(f"{name}: no ONNX initializer for {unexpected}")
        self.loaded = loaded
        self.ws, self.lu_logdet = lu_matrices(d / "lu.json") if family == "glow" else ([], 0.0)
        self.shape = tuple(self.manifest["data"]["shape"])
        self.dim = int(np.prod(self.shape))
        self.transform = self.manifest["preprocessing"]["transform"]

    def preprocess(self, x: np.ndarray):
        """Data space -> model input space (float64), and log|dy/dx| per row (src/flow/preprocess.ts)."""
        t = self.transform
        if t["kind"] == "affine":
            return t["scale"] * x + t["shift"], np.full(x.shape[0], self.dim * math.log(abs(t["scale"])))
        if t["kind"] == "logit":
            a = t["alpha"]
            s = a + (1 - 2 * a) * x
            y = np.log(s) - np.log1p(-s)
            return y, np.sum(math.log(1 - 2 * a) - np.log(s) - np.log1p(-s), axis=1)
        return x, np.zeros(x.shape[0])

    def log_likelihood(self, x: np.ndarray) -> np.ndarray:
        y, ld_pre = self.preprocess(x.reshape(-1, self.dim).astype(np.float64))
        with torch.inference_mode():
            out = self.flow(torch.from_numpy(y.astype(np.float32)).reshape(-1, *self.shape), *self.ws)
        *parts, ld = out
        z = np.concatenate([p.reshape(p.shape[0], -1).double().numpy() for p in parts], axis=1)
        log_prior = -0.5 * np.sum(z * z, axis=1) - 0.5 * self.dim * LOG2PI
        return log_prior + ld.double().numpy() + ld_pre + self.lu_logdet

    def check(self):
        ref = json.loads((MODEL_DIR / self.manifest["name"] / "reference.json").read_text())
        got = self.log_likelihood(np.asarray(ref["inputs"], np.float64))
        want = np.asarray(ref["logProb"])
        rel = float(np.max(np.abs(got - want) / np.maximum(1.0, np.abs(want))))
        return {"model": self.manifest["name"], "maxAbs": float(np.max(np.abs(got - want))), "maxRel": rel, "parameters": self.loaded}


SERVED = {name: Served(name) for name in MODELS}
CHECKS = [s.check() for s in SERVED.values()]
for c in CHECKS:
    if c["maxRel"] > 1e-4:
        raise SystemExit(f"peer: {c['model']} disagrees with reference.json: {c}")

if __name__ == "__main__" and "--check" in sys.argv:
    print(json.dumps({"checks": CHECKS, "threads": torch.get_num_threads(), "torch": torch.__version__, "pil": Image is not None}))
    sys.exit(0)

from fastapi import FastAPI, HTTPException  # noqa: E402
from pydantic import BaseModel  # noqa: E402

app = FastAPI(title="flowserve peer (FastAPI + PyTorch eager)")


class LikelihoodRequest(BaseModel):
    model: str
    inputs: Optional[List[List[float]]] = None
    images: Optional[List[str]] = None


def decode_png(b64: str, shape) -> np.ndarray:
    if Image is None:
        raise HTTPException(415, "PIL is not installed: send inputs")
    img = Image.open(io.BytesIO(base64.b64decode(b64)))
    img = img.convert("L") if shape[0] == 1 else img.convert("RGB")
    pixels = np.asarray(img, dtype=np.float64)
    if shape[0] > 1:
        pixels = pixels.transpose(2, 0, 1)
    return (pixels.reshape(-1) + 0.5) / 256.0


@app.get("/healthz")
def healthz():
    return {"status": "ok"}


@app.get("/readyz")
def readyz():
    return {"status": "ready", "checks": CHECKS, "threads": torch.get_num_threads()}


@app.post("/likelihood")
def likelihood(req: LikelihoodRequest):
    served = SERVED.get(req.model)
    if served is None:
        raise HTTPException(404, f"unknown model {req.model}")
    if req.inputs is not None:
        x = np.asarray(req.inputs, dtype=np.float64)
    elif req.images is not None:
        x = np.stack([decode_png(s, served.shape) for s in req.images])
    else:
        raise HTTPException(400, "send inputs or images")
    if x.ndim != 2 or x.shape[1] != served.dim:
        raise HTTPException(400, f"each input must have {served.dim} values")
    lp = served.log_likelihood(x)
    bpd = -(lp - served.dim * 8 * math.log(2)) / (served.dim * math.log(2))
    return {"model": req.model, "results": [{"logLikelihood": float(a), "bitsPerDim": float(b)} for a, b in zip(lp, bpd)]}
