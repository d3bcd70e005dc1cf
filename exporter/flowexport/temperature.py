"""The measured usable temperature range of a package: flow.json's `sampling` block.

The service samples by decoding ε ~ N(0, T²·I) through inverse.onnx (float32, onnxruntime-node).
How far T can go before samples leave the data is a property of the trained flow, not a constant,
so it is measured and written down with the rule that produced it (src/config/manifest-schema.ts,
SamplingSchema; docs/model-package.md, Sampling):

    draws ε: `draws` standard-normal rows, torch.randn(draws, D, dtype=float64,
             generator=torch.Generator().manual_seed(seed)), split into latent parts in manifest order
    T usable: T·ε decoded through the ONNX inverse gives only finite outputs (x in model input space,
             x in data space, logDet) and at most `maxOutside` draws have any data-space value outside
             `bound`
    maxTemperature: the largest T on the grid `grid`, 2·`grid`, … ≤ 2 such that it and every smaller
             grid point are usable (one set of draws, scaled by every T, so the points are comparable)

Defaults: draws 1024, seed 0, grid 0.05, maxOutside 1; bound = data.range widened by its width on
each side ([−1, 2] for [0, 1]); data without a range (vectors) use the caller's bound (e.g. the
training data's box widened by its width), else ±1e4.

Measure shipped packages from their files alone, and with --write add or update `sampling` in their
flow.json (which is not in the sha256 `files` list):

    python3 -m flowexport.temperature models/*            [--write] [--bound LO HI]

A package that already has `sampling` is re-measured with its recorded criterion (--bound overrides
the bound). A package whose defaultTemperature exceeds the measured maximum is reported and not written.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import torch

from .errors import ExportError
from .lu import LUFactors
from .ort import run_onnx
from .preprocessing import transform_inverse
from .stability import draws as standard_normal_draws

DRAWS = 1024
SEED = 0
GRID = 0.05
MAX_OUTSIDE = 1
T_LIMIT = 2.0              # the service's ceiling for any T
VECTOR_BOUND = (-1e4, 1e4)
_CHUNK_VALUES = 8_000_000  # decoded values per onnxruntime call: bounds the request/response size


def default_bound(data: dict, bound=None) -> list:
    """data.range widened by its width on each side; without a range, `bound` or ±1e4."""
    r = data.get("range")
    if r is not None:
        if bound is not None:
            raise ExportError(f"a sampling bound is only for data without a range; data.range {list(r)} fixes it "
                              f"(widened by its width: {_widen(r)})")
        return _widen(r)
    if bound is None:
        return [float(v) for v in VECTOR_BOUND]
    lo, hi = (float(v) for v in bound)
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ExportError(f"sampling bound {list(bound)}: must be [low, high], finite, low < high")
    return [lo, hi]


def _widen(r) -> list:
    lo, hi = float(r[0]), float(r[1])
    return [lo - (hi - lo), hi + (hi - lo)]


def box_bound(data) -> list:
    """The box of a data set (all values), widened by its width on each side: a vector model's bound."""
    a = np.asarray(data, np.float64)
    return _widen([float(a.min()), float(a.max())])


def criterion_for(data: dict, bound=None) -> dict:
    return {"draws": DRAWS, "seed": SEED, "bound": default_bound(data, bound), "maxOutside": MAX_OUTSIDE, "grid": GRID}


def grid_points(grid: float) -> list:
    """grid, 2·grid, … ≤ 2, rounded so that 3·0.05 is written as 0.15."""
    count = int(math.floor(T_LIMIT / grid + 1e-9))
    return [round(k * grid, 10) for k in range(1, count + 1)]


def measure(inverse_path, parts: list, transform: dict, criterion: dict, w_inv_feeds: dict | None = None) -> dict:
    """Decode the criterion's draws at ascending grid temperatures until the first unusable one.
    Returns {"maxTemperature": float | None (None: not even the first grid point is usable),
    "criterion": criterion, "rows": [{temperature, nonFinite, outside, ok}, ...]} (rows stop at the
    first failure)."""
    count, lo, hi = int(criterion["draws"]), float(criterion["bound"][0]), float(criterion["bound"][1])
    eps = standard_normal_draws(parts, count, int(criterion["seed"]))
    names = [p["name"] for p in parts]
    dim = sum(int(np.prod(p["shape"])) for p in parts)
    temps = grid_points(float(criterion["grid"]))
    chunk = max(1, _CHUNK_VALUES // (count * dim))
    rows, best = [], None
    for start in range(0, len(temps), chunk):
        ts = temps[start:start + chunk]
        outs = run_onnx([(inverse_path, {**{n: t * e for n, e in zip(names, eps)}, **(w_inv_feeds or {})}) for t in ts])
        for t, out in zip(ts, outs):
            row = _judge(t, out, count, transform, lo, hi, int(criterion["maxOutside"]))
            rows.append(row)
            if not row["ok"]:
                return {"maxTemperature": best, "criterion": criterion, "rows": rows}
            best = t
    return {"maxTemperature": best, "criterion": criterion, "rows": rows}


def _judge(t: float, out: dict, count: int, transform: dict, lo: float, hi: float, max_outside: int) -> dict:
    y = out["x"].reshape(count, -1)
    with np.errstate(all="ignore"):
        x = transform_inverse(torch.tensor(y), transform).numpy()
    finite = np.isfinite(y).all(1) & np.isfinite(x).all(1) & np.isfinite(out["logDet"].reshape(count))
    outside = finite & ((x < lo) | (x > hi)).any(1)
    non_finite, n_out = int((~finite).sum()), int(outside.sum())
    return {"temperature": t, "count": count, "nonFinite": non_finite, "outside": n_out,
            "ok": non_finite == 0 and n_out <= max_outside}


def sampling_block(result: dict) -> dict:
    return {"maxTemperature": result["maxTemperature"], "criterion": result["criterion"]}


def explain_failure(result: dict) -> str:
    """The first unusable temperature, in words."""
    r = result["rows"][-1]
    c = result["criterion"]
    return (f"at T = {r['temperature']:g}, {r['nonFinite']} of {r['count']} draws decode to non-finite values and "
            f"{r['outside']} fall outside {c['bound']} (at most {c['maxOutside']} allowed)")


def package_inputs(folder) -> tuple:
    """(manifest, inverse graph path, W^-1 feeds) of a written package, W^-1 from lu.json as the service builds it."""
    folder = Path(folder)
    m = json.loads((folder / "flow.json").read_text())
    layers = json.loads((folder / m["lu"]["file"]).read_text())["layers"] if m.get("lu") else []
    feeds = {l["inverseInput"]: LUFactors.from_json(l).w_inv() for l in layers}
    return m, folder / m["graphs"]["inverse"], feeds


def measure_package(folder, bound=None) -> dict:
    """measure() for a written package: its recorded criterion if it has `sampling`, else the defaults.
    `bound` applies to packages without data.range only (ranged data fix their own)."""
    m, inverse, feeds = package_inputs(folder)
    if m["data"].get("range") is not None:
        bound = None
    if m.get("sampling"):
        criterion = dict(m["sampling"]["criterion"])
        if bound is not None:
            criterion["bound"] = default_bound(m["data"], bound)
    else:
        criterion = criterion_for(m["data"], bound)
    return measure(inverse, m["latent"]["parts"], m["preprocessing"]["transform"], criterion, feeds)


def with_sampling(manifest: dict, sampling: dict) -> dict:
    """The manifest with `sampling` right after defaultTemperature (flow.json's documented order)."""
    out = {}
    for k, v in manifest.items():
        if k == "sampling":
            continue
        out[k] = v
        if k == "defaultTemperature":
            out["sampling"] = sampling
    if "sampling" not in out:
        out["sampling"] = sampling
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description="Measure packages' usable temperature range from their files (flow.json `sampling`).")
    p.add_argument("folders", nargs="+", type=Path)
    p.add_argument("--write", action="store_true", help="add or update `sampling` in each flow.json")
    p.add_argument("--bound", type=float, nargs=2, metavar=("LO", "HI"),
                   help="data-space bound for packages without data.range (default: the recorded one, else ±1e4)")
    args = p.parse_args(argv)
    bad = 0
    for folder in args.folders:
        if not (folder / "flow.json").exists():
            continue
        m = json.loads((folder / "flow.json").read_text())
        if m.get("program") is not None:
            # loops (autoregressive, planar, ODE) are measured by their own exporters, which run the loop
            print(f"{folder.name:<16} family {m['family']}: measured by its exporter (flowexport.autoregressive/planar/cnf), "
                  f"maxTemperature {m.get('sampling', {}).get('maxTemperature', 'none')}; skipped")
            continue
        result = measure_package(folder, args.bound)
        t_max, c = result["maxTemperature"], result["criterion"]
        stop = result["rows"][-1]
        tail = (f"first unusable T = {stop['temperature']:g}: {stop['outside']} outside, {stop['nonFinite']} non-finite"
                if not stop["ok"] else f"usable up to the ceiling T = {T_LIMIT:g} ({stop['outside']} outside there)")
        print(f"{folder.name:<16} maxTemperature {t_max if t_max is not None else 'none'}  (draws {c['draws']}, seed {c['seed']}, "
              f"bound {c['bound']}, maxOutside {c['maxOutside']}, grid {c['grid']}); {tail}; defaultTemperature {m['defaultTemperature']}")
        if t_max is None:
            print(f"  - not even T = {c['grid']} is usable: {explain_failure(result)}")
            bad += 1
            continue
        if m["defaultTemperature"] > t_max:
            print(f"  - defaultTemperature {m['defaultTemperature']} exceeds the measured maximum {t_max}: not written; "
                  "lower the default (a packaging decision) and run again")
            bad += 1
            continue
        if args.write:
            old = m.get("sampling")
            m = with_sampling(m, sampling_block(result))
            (folder / "flow.json").write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n")
            print(f"  wrote sampling to {folder / 'flow.json'}" + (f" (was {old['maxTemperature']})" if old else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
