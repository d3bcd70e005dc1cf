#!/usr/bin/env python3
"""Check shipped packages the way the service uses them, from the files alone (no PyTorch model).

    /usr/bin/python3 scripts/verify_package.py models/*

For each folder: flow.json against the service's schema and load-time rules (flowexport.manifest),
sha256 of every file, graph io names/shapes and opset, external data inside weights.bin, W / W^-1
from lu.json (||W W^-1 - I||inf <= 1e-5), then onnxruntime-node (flowexport/ort-run.mjs) on
reference.json: latents (3e-4 abs-ish, float32), full logDet (pre + graph + LU) and logProb (1e-4
relative), the data-space round trip, sampling stability (512 standard-normal draws at T = 1 and
T = 2 through the inverse graph: all finite, max |x| <= 1e4), the `sampling` block (present, and
re-measuring its criterion gives the same maxTemperature, which is >= defaultTemperature;
flowexport.temperature), calibration.nllQuantiles (101, sorted, spanning the calibration nll when
present), and the size limits (package <= 8 MiB, all <= 16 MiB).
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np
import onnx
import torch

# the exporter library of this checkout (exporter/flowexport), whether or not it is pip-installed
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exporter"))
from flowexport import LUFactors, log_standard_normal, transform_forward, transform_inverse  # noqa: E402
from flowexport.manifest import schema_problems, semantic_problems  # noqa: E402
from flowexport.ort import run_onnx  # noqa: E402
from flowexport.stability import format_row, sample_stability  # noqa: E402
from flowexport.temperature import explain_failure, measure  # noqa: E402

PACKAGE_LIMIT, TOTAL_LIMIT = 8 * 1024 * 1024, 16 * 1024 * 1024
LATENT_TOL = 3e-4  # |z - z_ref| / (1 + |z_ref|)


def verify(folder: Path) -> list:
    problems = []
    m = json.loads((folder / "flow.json").read_text())
    problems += schema_problems(m)
    if problems:  # the rest assumes a schema-valid manifest
        return problems
    problems += semantic_problems(m, folder.name)
    for f, digest in m["files"].items():
        if hashlib.sha256((folder / f).read_bytes()).hexdigest() != digest:
            problems.append(f"sha256 mismatch: {f}")
    listed = set(m["files"]) | {"flow.json"}
    extra = {p.name for p in folder.iterdir()} - listed
    if extra:
        problems.append(f"unlisted files {sorted(extra)}")
    parts = m["latent"]["parts"]
    names = [p["name"] for p in parts]
    lu = json.loads((folder / m["lu"]["file"]).read_text())["layers"] if m["lu"] else []
    factors = [LUFactors.from_json(l) for l in lu]
    for l, f in zip(lu, factors):
        residual = np.abs(f.w() @ f.w_inv() - np.eye(f.channels)).sum(1).max()
        if residual > 1e-5:
            problems.append(f"{l['name']}: ||W W^-1 - I|| = {residual:.2e}")
    weights = folder / m["graphs"]["weights"]
    for g, want_in, want_out in ((m["graphs"]["forward"], ["x"] + [l["forwardInput"] for l in lu], names + ["logDet"]),
                                 (m["graphs"]["inverse"], names + [l["inverseInput"] for l in lu], ["x", "logDet"])):
        model = onnx.load(str(folder / g), load_external_data=False)
        inits = {t.name for t in model.graph.initializer}
        got_in = [i.name for i in model.graph.input if i.name not in inits]
        got_out = [o.name for o in model.graph.output]
        if got_in != want_in or got_out != want_out:
            problems.append(f"{g}: io {got_in} -> {got_out}")
        opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        if opset > 17:
            problems.append(f"{g}: opset {opset}")
        for t in model.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                ext = {e.key: e.value for e in t.external_data}
                if ext["location"] != weights.name or int(ext["offset"]) % 64 or int(ext["offset"]) + int(ext["length"]) > weights.stat().st_size:
                    problems.append(f"{g}: bad external data for {t.name}: {ext}")
    ref = json.loads((folder / "reference.json").read_text())
    x = torch.tensor(ref["inputs"], dtype=torch.float64)
    n = x.shape[0]
    x = x.reshape(n, *m["data"]["shape"])
    y, ld_pre = transform_forward(x, m["preprocessing"]["transform"])
    w = {l["forwardInput"]: f.w() for l, f in zip(lu, factors)}
    w_inv = {l["inverseInput"]: f.w_inv() for l, f in zip(lu, factors)}
    (fwd,) = run_onnx([(folder / m["graphs"]["forward"], {"x": y.numpy(), **w})])
    (inv,) = run_onnx([(folder / m["graphs"]["inverse"], {**{k: fwd[k] for k in names}, **w_inv})])
    z = np.concatenate([fwd[k].reshape(n, -1) for k in names], 1)
    ld_lu = sum(f.logdet() for f in factors)
    log_det = ld_pre.numpy() + fwd["logDet"] + ld_lu
    log_prob = log_standard_normal(torch.tensor(z)).numpy() + log_det
    err_z = np.max(np.abs(z - np.array(ref["latents"])) / (1 + np.abs(np.array(ref["latents"]))))
    err_lp = np.max(np.abs(log_prob - np.array(ref["logProb"])) / np.maximum(1, np.abs(np.array(ref["logProb"]))))
    err_ld = np.max(np.abs(log_det - np.array(ref["logDet"])) / np.maximum(1, np.abs(np.array(ref["logDet"]))))
    x_back = transform_inverse(torch.tensor(inv["x"]), m["preprocessing"]["transform"]).numpy().reshape(n, -1)
    err_rt = np.max(np.abs(x_back - np.array(ref["inputs"])))
    err_ldsum = np.max(np.abs(fwd["logDet"] + inv["logDet"]) / np.maximum(1, np.abs(fwd["logDet"])))
    # latents: float32 rounding amplified through deep flows (Glow ~1.1e-4); the rest: 1e-4
    for label, err, limit in (("latents", err_z, LATENT_TOL), ("logProb", err_lp, 1e-4), ("logDet", err_ld, 1e-4),
                              ("round trip", err_rt, 1e-4), ("fwd+inv logDet", err_ldsum, 1e-4)):
        if not err <= limit:
            problems.append(f"{label}: error {err:.2e}")
    # the W^-1 feeds built above, not a second read of lu.json
    for r in sample_stability(folder / m["graphs"]["inverse"], parts, m["preprocessing"]["transform"], w_inv):
        if not r["ok"]:
            problems.append("sampling stability: " + format_row(folder.name, r))
    t_max = None
    if not m.get("sampling"):
        problems.append("no `sampling` block: run python3 -m flowexport.temperature --write on the package")
    else:
        result = measure(folder / m["graphs"]["inverse"], parts, m["preprocessing"]["transform"], m["sampling"]["criterion"], w_inv)
        t_max = result["maxTemperature"]
        if t_max != m["sampling"]["maxTemperature"]:
            problems.append(f"sampling.maxTemperature {m['sampling']['maxTemperature']} but re-measuring its criterion gives {t_max}"
                            + (f" ({explain_failure(result)})" if not result["rows"][-1]["ok"] else ""))
        if t_max is not None and m["defaultTemperature"] > t_max:
            problems.append(f"defaultTemperature {m['defaultTemperature']} exceeds the measured maximum {t_max}")
    cal = m.get("calibration") or {}
    q = cal.get("nllQuantiles")
    if q is None:
        if cal:
            problems.append("calibration has no nllQuantiles: /likelihood batchTest is refused")
    elif len(q) != 101 or any(b < a for a, b in zip(q, q[1:])):
        problems.append(f"calibration.nllQuantiles: want 101 ascending values, got {len(q)}")
    size = sum(p.stat().st_size for p in folder.iterdir())
    if size > PACKAGE_LIMIT:
        problems.append(f"size {size} > {PACKAGE_LIMIT}")
    test = m["training"].get("test", {})
    print(f"{folder.name:<16} {size / 1e6:6.2f} MB  latents {err_z:.1e}  logProb {err_lp:.1e}  round trip {err_rt:.1e}  "
          f"test {test.get('meanLogLikelihood', float('nan')):.2f} nats / {test.get('bitsPerDim', float('nan')):.4f} bpd  "
          f"max T {t_max}  "
          f"{'OK' if not problems else 'PROBLEMS'}")
    return problems


def main(folders) -> int:
    folders = [Path(f) for f in folders if (Path(f) / "flow.json").exists()]
    bad = 0
    for folder in folders:
        problems = verify(folder)
        for p in problems:
            print(f"  - {p}")
        bad += bool(problems)
    total = sum(p.stat().st_size for f in folders for p in f.iterdir())
    print(f"total {total / 1e6:.2f} MB ({total} bytes) in {len(folders)} package(s)")
    if total > TOTAL_LIMIT:
        print(f"  - total exceeds {TOTAL_LIMIT}")
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or sorted(str(p) for p in (Path(__file__).resolve().parent.parent / "models").iterdir())))
