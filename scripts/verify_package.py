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
Autoregressive packages (maf, iaf: program.kind 'autoregressive') are checked by verify_autoregressive:
the same figures through the program loop over their conditioner graphs (flowexport.autoregressive).
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


def run_coupling_package(folder: Path, m: dict, x: torch.Tensor) -> tuple:
    """The service's arithmetic on a coupling package's files: data x [N, *shape] (float64) through
    preprocessing, the forward graph (W from lu.json) and the inverse graph. Returns the graph outputs,
    the flat latents, log|det J| (preprocessing + graph + LU), log p and the data-space round trip [N, D]."""
    names = [p["name"] for p in m["latent"]["parts"]]
    lu = json.loads((folder / m["lu"]["file"]).read_text())["layers"] if m["lu"] else []
    factors = [LUFactors.from_json(l) for l in lu]
    n = x.shape[0]
    y, ld_pre = transform_forward(x, m["preprocessing"]["transform"])
    w = {l["forwardInput"]: f.w() for l, f in zip(lu, factors)}
    w_inv = {l["inverseInput"]: f.w_inv() for l, f in zip(lu, factors)}
    (fwd,) = run_onnx([(folder / m["graphs"]["forward"], {"x": y.numpy(), **w})])
    (inv,) = run_onnx([(folder / m["graphs"]["inverse"], {**{k: fwd[k] for k in names}, **w_inv})])
    z = np.concatenate([fwd[k].reshape(n, -1) for k in names], 1)
    log_det = ld_pre.numpy() + fwd["logDet"] + sum(f.logdet() for f in factors)
    log_prob = log_standard_normal(torch.tensor(z)).numpy() + log_det
    x_back = transform_inverse(torch.tensor(inv["x"]), m["preprocessing"]["transform"]).numpy().reshape(n, -1)
    return fwd, inv, z, log_det, log_prob, x_back


def verify(folder: Path) -> list:
    problems = []
    m = json.loads((folder / "flow.json").read_text())
    problems += schema_problems(m)
    if problems:  # the rest assumes a schema-valid manifest
        return problems
    problems += semantic_problems(m, folder.name)
    if (m.get("program") or {}).get("kind") == "autoregressive":
        return problems + verify_autoregressive(folder, m)
    for f, digest in m["files"].items():
        if hashlib.sha256((folder / f).read_bytes()).hexdigest() != digest:
            problems.append(f"sha256 mismatch: {f}")
    listed = set(m["files"]) | {"flow.json"}
    extra = {p.name for p in folder.iterdir()} - listed
    if extra:
        problems.append(f"unlisted files {sorted(extra)}")
    kind = (m.get("program") or {}).get("kind")
    if kind in ("planar", "ode"):  # program families (verify_planar, verify_ode below)
        return problems + (verify_planar if kind == "planar" else verify_ode)(folder, m)
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
    x = x.reshape(x.shape[0], *m["data"]["shape"])
    fwd, inv, z, log_det, log_prob, x_back = run_coupling_package(folder, m, x)
    err_z = np.max(np.abs(z - np.array(ref["latents"])) / (1 + np.abs(np.array(ref["latents"]))))
    err_lp = np.max(np.abs(log_prob - np.array(ref["logProb"])) / np.maximum(1, np.abs(np.array(ref["logProb"]))))
    err_ld = np.max(np.abs(log_det - np.array(ref["logDet"])) / np.maximum(1, np.abs(np.array(ref["logDet"]))))
    err_rt = np.max(np.abs(x_back - np.array(ref["inputs"])))
    err_ldsum = np.max(np.abs(fwd["logDet"] + inv["logDet"]) / np.maximum(1, np.abs(fwd["logDet"])))
    # latents: float32 rounding amplified through deep flows (Glow ~1.1e-4); the rest: 1e-4
    for label, err, limit in (("latents", err_z, LATENT_TOL), ("logProb", err_lp, 1e-4), ("logDet", err_ld, 1e-4),
                              ("round trip", err_rt, 1e-4), ("fwd+inv logDet", err_ldsum, 1e-4)):
        if not err <= limit:
            problems.append(f"{label}: error {err:.2e}")
    # W^-1 from the factors checked above, not a second read of lu.json
    w_inv = {l["inverseInput"]: f.w_inv() for l, f in zip(lu, factors)}
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


def verify_autoregressive(folder: Path, m: dict) -> list:
    """MAF / IAF packages (program.kind autoregressive): files, each conditioner graph (io, opset, external
    data, autoregressive property), the program loop over the ONNX graphs in onnxruntime-node
    (flowexport.autoregressive.run_program) on reference.json, sampling stability and `sampling`."""
    from flowexport.autoregressive import AR_PROBE_ROWS, _probe_batch, _probe_violation, measure_sampling, run_program, stability_rows

    problems = []
    for f, digest in m["files"].items():
        if hashlib.sha256((folder / f).read_bytes()).hexdigest() != digest:
            problems.append(f"sha256 mismatch: {f}")
    extra = {p.name for p in folder.iterdir()} - set(m["files"]) - {"flow.json"}
    if extra:
        problems.append(f"unlisted files {sorted(extra)}")
    layers = m["program"]["layers"]
    dim = int(np.prod(m["data"]["shape"]))
    kind = m["family"]
    if kind not in ("maf", "iaf"):
        problems.append(f"family {kind!r} with an autoregressive program (maf or iaf)")
    missing = [l["graph"] for l in layers if l["graph"] not in m["graphs"]]
    bad_perm = [i for i, l in enumerate(layers) if sorted(l["permutation"]) != list(range(dim))]
    if missing or bad_perm:
        return problems + [f"program names graphs {missing} missing from `graphs`" if missing else
                           f"program layers {bad_perm}: permutation is not a permutation of 0..{dim - 1}"]
    weights = folder / m["graphs"]["weights"] if "weights" in m["graphs"] else None
    paths = [folder / m["graphs"][l["graph"]] for l in layers]
    perms = [l["permutation"] for l in layers]
    probe = _probe_batch(dim, AR_PROBE_ROWS, 0)
    for g in paths:
        model = onnx.load(str(g), load_external_data=False)
        inits = {t.name for t in model.graph.initializer}
        got_in = [i.name for i in model.graph.input if i.name not in inits]
        got_out = [o.name for o in model.graph.output]
        if got_in != ["x"] or got_out != ["shift", "logScale"]:
            problems.append(f"{g.name}: io {got_in} -> {got_out}")
        opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
        if opset > 17:
            problems.append(f"{g.name}: opset {opset}")
        for t in model.graph.initializer:
            if t.data_location == onnx.TensorProto.EXTERNAL:
                ext = {e.key: e.value for e in t.external_data}
                if weights is None or ext["location"] != weights.name or int(ext["offset"]) % 64 or \
                        int(ext["offset"]) + int(ext["length"]) > weights.stat().st_size:
                    problems.append(f"{g.name}: bad external data for {t.name}: {ext}")
    if problems:
        return problems
    for g, r in zip(paths, run_onnx([(g, {"x": probe}) for g in paths])):
        worst = _probe_violation(r["shift"], r["logScale"], dim, AR_PROBE_ROWS)
        if worst > 0:
            problems.append(f"{g.name}: not autoregressive (an output i changes by {worst:.2e} with an input >= i)")
    ref = json.loads((folder / "reference.json").read_text())
    transform = m["preprocessing"]["transform"]
    x = torch.tensor(ref["inputs"], dtype=torch.float64).reshape(-1, dim)
    n = x.shape[0]
    y, ld_pre = transform_forward(x, transform)
    ((z, ld_f),) = run_program(paths, perms, kind, [("forward", y.numpy())])
    ((y_back, ld_i),) = run_program(paths, perms, kind, [("inverse", z)])
    log_det = ld_pre.numpy() + ld_f
    log_prob = log_standard_normal(torch.tensor(z)).numpy() + log_det
    zr, lpr, ldr = (np.array(ref[k]) for k in ("latents", "logProb", "logDet"))
    err_z = np.max(np.abs(z - zr) / (1 + np.abs(zr)))
    err_lp = np.max(np.abs(log_prob - lpr) / np.maximum(1, np.abs(lpr)))
    err_ld = np.max(np.abs(log_det - ldr) / np.maximum(1, np.abs(ldr)))
    err_rt = np.max(np.abs(transform_inverse(torch.tensor(y_back), transform).numpy().reshape(n, -1) - x.numpy()))
    err_ldsum = np.max(np.abs(ld_f + ld_i) / np.maximum(1, np.abs(ld_f)))
    for label, err, limit in (("latents", err_z, LATENT_TOL), ("logProb", err_lp, 1e-4), ("logDet", err_ld, 1e-4),
                              ("round trip", err_rt, 1e-4), ("fwd+inv logDet", err_ldsum, 1e-4)):
        if not err <= limit:
            problems.append(f"{label}: error {err:.2e}")
    parts = m["latent"]["parts"]
    for r in stability_rows(paths, perms, kind, parts, transform, (1.0, 2.0), 512, 1e4):
        if not r["ok"]:
            problems.append(f"sampling stability at T={r['temperature']:g}: {r['nonFinite']} non-finite, max |x| {r['maxAbsX']:.3g}")
    t_max = None
    if not m.get("sampling"):
        problems.append("no `sampling` block")
    else:
        result = measure_sampling(paths, perms, kind, parts, transform, m["sampling"]["criterion"])
        t_max = result["maxTemperature"]
        if t_max != m["sampling"]["maxTemperature"]:
            problems.append(f"sampling.maxTemperature {m['sampling']['maxTemperature']} but re-measuring its criterion gives {t_max}"
                            + (f" ({explain_failure(result)})" if not result["rows"][-1]["ok"] else ""))
        if t_max is not None and m["defaultTemperature"] > t_max:
            problems.append(f"defaultTemperature {m['defaultTemperature']} exceeds the measured maximum {t_max}")
    q = (m.get("calibration") or {}).get("nllQuantiles")
    if m.get("calibration") and (q is None or len(q) != 101 or any(b < a for a, b in zip(q, q[1:]))):
        problems.append("calibration.nllQuantiles: want 101 ascending values")
    size = sum(p.stat().st_size for p in folder.iterdir())
    if size > PACKAGE_LIMIT:
        problems.append(f"size {size} > {PACKAGE_LIMIT}")
    test = m["training"].get("test", {})
    print(f"{folder.name:<16} {size / 1e6:6.2f} MB  latents {err_z:.1e}  logProb {err_lp:.1e}  round trip {err_rt:.1e}  "
          f"test {test.get('meanLogLikelihood', float('nan')):.2f} nats / {test.get('bitsPerDim', float('nan')):.4f} bpd  "
          f"max T {t_max}  {kind} x{len(layers)}  {'OK' if not problems else 'PROBLEMS'}")
    return problems

# --- program families: planar and continuous (ode) flows -----------------------------------------
# Planar: generate.onnx (z -> x, logDet) on the reference latents, planar.json inverted in float64 by
# the service's algorithm (flowexport.planar.planar_inverse) on the reference inputs, uᵀw > −1 per
# layer, sampling stability and the `sampling` block re-measured through generate.onnx.
# ODE: dynamics.onnx on the reference's recorded (x, t) -> (dx, div) points, then the reference inputs
# solved data -> latent -> data by dopri5 (flowexport.cnf, the program's atol/rtol) with every
# evaluation of f run by onnxruntime-node (one persistent node process), against the float64 reference.

_ODE_SERVER = r"""
import { createRequire } from 'node:module';
import path from 'node:path';
import readline from 'node:readline';
const require = createRequire(path.join(path.resolve(process.env.FLOWSERVE_ROOT), 'package.json'));
const ort = require('onnxruntime-node');
const session = await ort.InferenceSession.create(process.argv[2]);
const f32 = (s) => { const b = Buffer.from(s, 'base64'); const a = new Float32Array(b.byteLength / 4); new Uint8Array(a.buffer).set(b); return a; };
const b64 = (a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64');
const rl = readline.createInterface({ input: process.stdin, crlfDelay: Infinity });
for await (const line of rl) {
  const q = JSON.parse(line);
  const out = await session.run({ x: new ort.Tensor('float32', f32(q.x), [q.n, q.d]), t: new ort.Tensor('float32', f32(q.t), [q.n]) });
  process.stdout.write(JSON.stringify({ dx: b64(out.dx.data), div: b64(out.div.data), inputs: session.inputNames, outputs: session.outputNames }) + '\n');
}
"""


class OnnxDynamics:
    """f(x, t) -> (dx, div) by a dynamics.onnx in a persistent node process (float32, onnxruntime-node)."""

    def __init__(self, model_path: Path):
        import base64
        import os
        import subprocess
        import tempfile

        from flowexport.ort import flowserve_root, node_executable

        self._b64 = base64
        self._dir = tempfile.TemporaryDirectory(prefix="ode-server-")
        script = Path(self._dir.name) / "ode-server.mjs"
        script.write_text(_ODE_SERVER)
        self.proc = subprocess.Popen([node_executable(), str(script), str(Path(model_path).resolve())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env={**os.environ, "FLOWSERVE_ROOT": str(flowserve_root())})
        self.io = None

    def __call__(self, x, t):
        x32 = np.ascontiguousarray(np.asarray(x, np.float32))
        t32 = np.ascontiguousarray(np.asarray(t, np.float32).reshape(-1))
        enc = lambda a: self._b64.b64encode(a.astype("<f4").tobytes()).decode()  # noqa: E731
        self.proc.stdin.write(json.dumps({"n": x32.shape[0], "d": x32.shape[1], "x": enc(x32), "t": enc(t32)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError("ode server exited")
        r = json.loads(line)
        self.io = (r["inputs"], r["outputs"])
        dec = lambda s: np.frombuffer(self._b64.b64decode(s), "<f4").astype(np.float64)  # noqa: E731
        return torch.tensor(dec(r["dx"]).reshape(x32.shape)), torch.tensor(dec(r["div"]))

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self._dir.cleanup()


def _graph_io(path: Path) -> tuple:
    model = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in model.graph.initializer}
    opset = max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    return [i.name for i in model.graph.input if i.name not in inits], [o.name for o in model.graph.output], opset


def _summary(folder: Path, m: dict, problems: list, errs: dict, t_max, extra: str = "") -> None:
    size = sum(p.stat().st_size for p in folder.iterdir())
    if size > PACKAGE_LIMIT:
        problems.append(f"size {size} > {PACKAGE_LIMIT}")
    test = {k: (v if v is not None else float("nan")) for k, v in m["training"].get("test", {}).items()}
    print(f"{folder.name:<16} {size / 1e6:6.2f} MB  " + "  ".join(f"{k} {v:.1e}" for k, v in errs.items())
          + f"  test {test.get('meanLogLikelihood', float('nan')):.2f} nats / {test.get('bitsPerDim', float('nan')):.4f} bpd"
          + f"  max T {t_max}{extra}  {'OK' if not problems else 'PROBLEMS'}")


def _check_sampling(m: dict, result: dict, problems: list):
    from flowexport.temperature import explain_failure

    t_max = result["maxTemperature"]
    if t_max != m["sampling"]["maxTemperature"]:
        problems.append(f"sampling.maxTemperature {m['sampling']['maxTemperature']} but re-measuring its criterion gives {t_max}"
                        + (f" ({explain_failure(result)})" if not result["rows"][-1]["ok"] else ""))
    if t_max is not None and m["defaultTemperature"] > t_max:
        problems.append(f"defaultTemperature {m['defaultTemperature']} exceeds the measured maximum {t_max}")
    return t_max


def verify_planar(folder: Path, m: dict) -> list:
    from flowexport.planar import check_layers, planar_inverse
    from flowexport.errors import ExportError

    problems = []
    prog, parts = m["program"], m["latent"]["parts"]
    dim = int(np.prod(m["data"]["shape"]))
    if set(m["graphs"]) != {"generate"}:
        problems.append(f"graphs {sorted(m['graphs'])}: a planar package has exactly 'generate'")
        return problems
    for f in (m["graphs"]["generate"], prog["file"], "reference.json"):
        if f not in m["files"]:
            problems.append(f"{f} is not in files (sha256)")
    try:
        layers = check_layers(json.loads((folder / prog["file"]).read_text()), dim)
    except ExportError as e:
        return problems + [str(e)]
    if len(layers) != prog["layers"]:
        problems.append(f"program.layers {prog['layers']} but {prog['file']} has {len(layers)}")
    gen = folder / m["graphs"]["generate"]
    got_in, got_out, opset = _graph_io(gen)
    if got_in != [parts[0]["name"]] or got_out != ["x", "logDet"] or opset > 17:
        problems.append(f"{gen.name}: io {got_in} -> {got_out}, opset {opset}")
    ref = json.loads((folder / "reference.json").read_text())
    x_ref, z_ref = np.array(ref["inputs"]), np.array(ref["latents"])
    z, ld = planar_inverse(layers, x_ref)
    lp = log_standard_normal(torch.tensor(z)).numpy() + ld
    (out,) = run_onnx([(gen, {parts[0]["name"]: z_ref})])
    errs = {
        "latents": float(np.max(np.abs(z - z_ref) / (1 + np.abs(z_ref)))),
        "logProb": float(np.max(np.abs(lp - np.array(ref["logProb"])) / np.maximum(1, np.abs(np.array(ref["logProb"]))))),
        "generate": float(np.max(np.abs(out["x"] - x_ref))),
        "genLogDet": float(np.max(np.abs(out["logDet"] + np.array(ref["logDet"])) / np.maximum(1, np.abs(np.array(ref["logDet"]))))),
    }
    for label, limit in (("latents", 1e-8), ("logProb", 1e-8), ("generate", 1e-4), ("genLogDet", 1e-4)):
        if not errs[label] <= limit:
            problems.append(f"{label}: error {errs[label]:.2e} > {limit:g}")
    for r in sample_stability(gen, parts, m["preprocessing"]["transform"]):
        if not r["ok"]:
            problems.append("sampling stability: " + format_row(folder.name, r))
    t_max = None
    if not m.get("sampling"):
        problems.append("no `sampling` block")
    else:
        t_max = _check_sampling(m, measure(gen, parts, m["preprocessing"]["transform"], m["sampling"]["criterion"]), problems)
    _summary(folder, m, problems, errs, t_max, f"  layers {len(layers)}")
    return problems


def verify_ode(folder: Path, m: dict) -> list:
    from flowexport.cnf import dopri5

    problems = []
    prog = m["program"]
    if set(m["graphs"]) != {prog["graph"]}:
        problems.append(f"graphs {sorted(m['graphs'])}: an ode package has exactly program.graph {prog['graph']!r}")
        return problems
    for f in (m["graphs"][prog["graph"]], "reference.json"):
        if f not in m["files"]:
            problems.append(f"{f} is not in files (sha256)")
    path = folder / m["graphs"][prog["graph"]]
    got_in, got_out, opset = _graph_io(path)
    if got_in != ["x", "t"] or got_out != ["dx", "div"] or opset > 17:
        problems.append(f"{path.name}: io {got_in} -> {got_out}, opset {opset}")
        return problems
    ref = json.loads((folder / "reference.json").read_text())
    dyn = OnnxDynamics(path)
    try:
        pts = ref["dynamics"]
        dx, div = dyn(np.array(pts["x"]), np.array(pts["t"]))
        want_dx, want_div = np.array(pts["dx"]), np.array(pts["div"])
        errs = {"dx": float(np.max(np.abs(dx.numpy() - want_dx) / (1 + np.abs(want_dx)))),
                "div": float(np.max(np.abs(div.numpy() - want_div) / np.maximum(1, np.abs(want_div))))}
        x_ref = torch.tensor(ref["inputs"], dtype=torch.float64)
        z, ld, nfe = dopri5(dyn, x_ref, prog["t0"], prog["t1"], prog["atol"], prog["rtol"])
        x_back, ld_back, _ = dopri5(dyn, z, prog["t1"], prog["t0"], prog["atol"], prog["rtol"])
        lp = log_standard_normal(z) + ld
        z_ref, lp_ref = np.array(ref["latents"]), np.array(ref["logProb"])
        errs["latents"] = float(np.max(np.abs(z.numpy() - z_ref) / (1 + np.abs(z_ref))))
        errs["logProb"] = float(np.max(np.abs(lp.numpy() - lp_ref) / np.maximum(1, np.abs(lp_ref))))
        errs["round trip"] = float((x_back - x_ref).abs().max())
        errs["fwd+inv logDet"] = float((ld + ld_back).abs().max() / max(1.0, float(ld.abs().max())))
        # graph values: float32 rounding; solves: the program's tolerances with float32 dynamics
        for label, limit in (("dx", 1e-4), ("div", 1e-4), ("latents", 1e-3), ("logProb", 1e-3), ("round trip", 1e-3),
                             ("fwd+inv logDet", 1e-3)):
            if not errs[label] <= limit:
                problems.append(f"{label}: error {errs[label]:.2e} > {limit:g}")
    finally:
        dyn.close()
    _summary(folder, m, problems, errs, m.get("sampling", {}).get("maxTemperature"),
             f"  mean NFE {float(nfe.double().mean()):.0f} (reference rows, atol {prog['atol']:g})")
    if not m.get("sampling"):
        problems.append("no `sampling` block")
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
