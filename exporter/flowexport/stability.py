"""Sampling stability: decode standard-normal draws through an exported ONNX inverse graph.

The service samples by decoding eps ~ N(0, T^2 I) with 0 < T <= 2 through inverse.onnx (float32,
onnxruntime-node). A flow whose inverse divides by an unbounded learned scale (e.g. Glow's original
sigmoid coupling) can decode such draws to Inf/NaN or to absurd values; the exporter refuses those
packages, and the same check runs on shipped packages from their files alone:

    PYTHONPATH=exporter /usr/bin/python3 -m flowexport.stability models/*            # T = 1, 2 (the gate)
    PYTHONPATH=exporter /usr/bin/python3 -m flowexport.stability models/* --temperatures 0.7 1 1.5 2

A sample fails when any of its outputs (x in model input space, x in data space, logDet) is
non-finite, or, at T <= 1, when max |x| in data space exceeds `limit`. Above T = 1 only finiteness
is required: a T = 2 draw lies far outside the typical set (|eps| ~ 2 sqrt(D)) and an expanding
flow may legitimately map it far outside the data range (the service clamps pixels for images). The draws are fixed (seeded) and the
same eps is scaled by each T, so temperatures are directly comparable. The usable range with a
data-space bound, written into flow.json as `sampling`, is flowexport.temperature's.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from .lu import LUFactors
from .ort import run_onnx
from .preprocessing import transform_inverse

GATE_TEMPERATURES = (1.0, 2.0)   # the exporter refuses a package failing at either
SAMPLE_COUNT = 512
ABS_LIMIT = 1e4                  # max |x| in data space, enforced at T <= 1
SEED = 0


def draws(parts: list, count: int = SAMPLE_COUNT, seed: int = SEED) -> list:
    """Fixed standard-normal draws, one [count, *shape] float64 array per latent part."""
    g = torch.Generator().manual_seed(seed)
    dim = sum(int(np.prod(p["shape"])) for p in parts)
    eps = torch.randn(count, dim, generator=g, dtype=torch.float64).numpy()
    out, o = [], 0
    for p in parts:
        size = int(np.prod(p["shape"]))
        out.append(eps[:, o:o + size].reshape(count, *p["shape"]))
        o += size
    return out


def sample_stability(inverse_path, parts: list, transform: dict, w_inv_feeds: dict | None = None,
                     temperatures=GATE_TEMPERATURES, count: int = SAMPLE_COUNT, limit: float = ABS_LIMIT,
                     seed: int = SEED) -> list:
    """Decode `count` draws at each temperature through the ONNX inverse (onnxruntime-node, float32).
    Returns one dict per temperature: nonFinite (samples with any non-finite output), maxAbsX (data
    space, over the finite samples; inf if none), maxAbsY (model input space), tooLarge (samples with
    |x| > limit, counted at T <= 1 only), ok."""
    eps = draws(parts, count, seed)
    names = [p["name"] for p in parts]
    w_inv_feeds = w_inv_feeds or {}
    outs = run_onnx([(inverse_path, {**{n: t * e for n, e in zip(names, eps)}, **w_inv_feeds}) for t in temperatures])
    results = []
    for t, out in zip(temperatures, outs):
        y = out["x"].reshape(count, -1)
        with np.errstate(all="ignore"):
            x = transform_inverse(torch.tensor(y), transform).numpy()
        finite = np.isfinite(y).all(1) & np.isfinite(x).all(1) & np.isfinite(out["logDet"].reshape(count))
        abs_x = np.where(np.isfinite(x), np.abs(x), np.inf).max(1)
        max_x = float(abs_x[finite].max()) if finite.any() else float("inf")
        max_y = float(np.abs(y[finite]).max()) if finite.any() else float("inf")
        non_finite = int((~finite).sum())
        too_large = int((finite & (abs_x > limit)).sum()) if t <= 1 else 0
        results.append({"temperature": float(t), "count": count, "nonFinite": non_finite, "tooLarge": too_large,
                        "maxAbsX": max_x, "maxAbsY": max_y, "limit": limit,
                        "ok": non_finite == 0 and too_large == 0})
    return results


def check_package(folder, temperatures=GATE_TEMPERATURES, count: int = SAMPLE_COUNT, limit: float = ABS_LIMIT,
                  seed: int = SEED) -> list:
    """sample_stability for a written package, from its files alone (W^-1 from lu.json as the service builds it)."""
    folder = Path(folder)
    m = json.loads((folder / "flow.json").read_text())
    layers = json.loads((folder / m["lu"]["file"]).read_text())["layers"] if m.get("lu") else []
    feeds = {l["inverseInput"]: LUFactors.from_json(l).w_inv() for l in layers}
    return sample_stability(folder / m["graphs"]["inverse"], m["latent"]["parts"], m["preprocessing"]["transform"],
                            feeds, temperatures, count, limit, seed)


def format_row(name: str, r: dict) -> str:
    bound = f"|x|>{r['limit']:g} {r['tooLarge']:>3}" if r["temperature"] <= 1 else f"{'(no |x| bound)':<12}"
    return (f"{name:<16} T={r['temperature']:<4g} non-finite {r['nonFinite']:>3}/{r['count']}  "
            f"{bound}  max |x| {r['maxAbsX']:.4g} (model space {r['maxAbsY']:.4g})  "
            f"{'ok' if r['ok'] else 'FAIL'}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Decode standard-normal draws through packages' ONNX inverse graphs.")
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--temperatures", type=float, nargs="+", default=list(GATE_TEMPERATURES))
    p.add_argument("--count", type=int, default=SAMPLE_COUNT)
    p.add_argument("--limit", type=float, default=ABS_LIMIT)
    args = p.parse_args(argv)
    bad = 0
    for folder in args.folders:
        if not (folder / "flow.json").exists():
            continue
        for r in check_package(folder, args.temperatures, args.count, args.limit):
            print(format_row(folder.name, r))
            bad += not r["ok"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
