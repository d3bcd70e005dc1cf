"""Export autoregressive flows (MAF, IAF) as flowserve packages driven by an `autoregressive` program.

The service runs (src/config/manifest-schema.ts, AutoregressiveProgram) K conditioner graphs,
`made0.onnx` … `made{K-1}.onnx` (sharing `weights.bin`), each x [N, D] -> shift [N, D], logScale [N, D]
with output i depending on inputs < i only. Forward = data -> latent, layers 0..K-1; layer k reads its
input u as v = u[:, permutation_k] and

    MAF  z = (v - shift(v))·exp(-logScale(v))                   logDet += -Σ logScale(v)      (1 pass)
         inverse: D passes, pass i sets v_i = z_i·exp(logScale_i(v)) + shift_i(v)
    IAF  inverse: v = z·exp(logScale(z)) + shift(z)             logDet_inv += Σ logScale(z)   (1 pass)
         forward: D passes, z_i = (v_i - shift_i(z))·exp(-logScale_i(z)), logDet += -Σ logScale(z)

The layer's output w (in v's order) is the next layer's input; the last is the standard-normal latent.

The flow passed in provides `kind` ('maf' | 'iaf'), `conditioners` (K modules x -> (shift, logScale))
and `permutations` (K lists); if it is callable as flow(y) -> (z, logdet) and has
flow.inverse(z) -> (y, logdet) (scripts/ar_models.py ARFlow), those must agree with the program.

Checks (ExportError on failure, nothing written):
  * the manifest (schema + load-time rules, with `graphs` and `program`) before anything is traced
  * program sanity: family == flow.kind, data a vector [D], one latent part [D], permutations of 0..D-1
  * autoregressive property of every conditioner, PyTorch float64 and ONNX: perturbing input j changes
    no output i <= j
  * PyTorch float64: the program loop vs the flow's own forward/inverse, round trip, fwd + inv logDet ~ 0
  * every conditioner graph (onnxruntime-node) vs PyTorch float32 and float64 on random inputs and on
    the inputs it sees for the reference rows
  * the whole program run with the ONNX graphs in one onnxruntime-node process (the loop above, as the
    service runs it, src/service/programs/autoregressive.ts: float64 state, float32 graph feeds): latents / logDet / log p vs PyTorch float64,
    round trip, fwd + inv logDet, batch 1 == row 0, inverse of prior samples
  * sampling stability (512 draws at T = 1 and 2) and the usable temperature range (`sampling`,
    flowexport.temperature's criterion) through that loop
"""
from __future__ import annotations

import base64
import copy
import json
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

from . import onnx_io
from .common import check_program_manifest, program_manifest, sha256, staging_dir
from .errors import ExportError
from .manifest import validate_manifest
from .ort import check_runtime, flowserve_root, node_executable, run_onnx
from .package import CheckLog, Tolerances, _abs1, _rel
from .preprocessing import log_standard_normal, transform_forward, transform_inverse
from .stability import ABS_LIMIT, GATE_TEMPERATURES, SAMPLE_COUNT
from .stability import draws as standard_normal_draws

KINDS = ("maf", "iaf")
AR_PROBE_ROWS = 4        # rows per input index in the autoregressive-property probe
RANDOM_ROWS = 64         # random conditioner inputs compared with PyTorch

# The program loop as the service runs it, in one node process (sessions cached per graph).
_LOOP_JS = r"""
// mirrors src/service/programs/autoregressive.ts: Float64 state, float32 graph feeds, pass i fixes position i
import { readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
const root = process.env.FLOWSERVE_ROOT;
const require = createRequire(path.join(path.resolve(root), 'package.json'));
const ort = require('onnxruntime-node');
const [reqPath, outPath] = process.argv.slice(2);
const req = JSON.parse(await readFile(reqPath, 'utf8'));
const d = req.dim, K = req.graphs.length;
const sessions = [];
for (const g of req.graphs) sessions.push(await ort.InferenceSession.create(g, { intraOpNumThreads: 1 }));
function f64(b64) { const b = Buffer.from(b64, 'base64'); const a = new Float64Array(b.byteLength / 8); new Uint8Array(a.buffer).set(b); return a; }
function b64(a) { return Buffer.from(a.buffer, a.byteOffset, a.byteLength).toString('base64'); }
async function condition(k, x, n) {
  const r = await sessions[k].run({ x: new ort.Tensor('float32', Float32Array.from(x), [n, d]) });
  return { shift: r.shift.data, logScale: r.logScale.data };
}
const permute = (u, n, perm) => { const v = new Float64Array(n * d); for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) v[r * d + i] = u[r * d + perm[i]]; return v; };
const unpermute = (v, n, perm) => { const u = new Float64Array(n * d); for (let r = 0; r < n; r++) for (let i = 0; i < d; i++) u[r * d + perm[i]] = v[r * d + i]; return u; };
async function sequential(k, given, n, step, sign, logDet) {
  const known = new Float64Array(n * d);
  for (let i = 0; i < d; i++) {
    const { shift, logScale } = await condition(k, known, n);
    for (let r = 0; r < n; r++) { const j = r * d + i; known[j] = step(given[j], shift[j], logScale[j]); logDet[r] += sign * logScale[j]; }
  }
  return known;
}
async function parallel(k, input, n, step, sign, logDet) {
  const { shift, logScale } = await condition(k, input, n);
  const out = new Float64Array(n * d);
  for (let j = 0; j < n * d; j++) { out[j] = step(input[j], shift[j], logScale[j]); logDet[Math.floor(j / d)] += sign * logScale[j]; }
  return out;
}
const toLatent = (v, shift, logScale) => (v - shift) * Math.exp(-logScale);
const toData = (z, shift, logScale) => z * Math.exp(logScale) + shift;
async function forward(u, n) {
  const logDet = new Float64Array(n);
  for (let k = 0; k < K; k++) {
    const v = permute(u, n, req.perms[k]);
    u = req.kind === 'maf' ? await parallel(k, v, n, toLatent, -1, logDet) : await sequential(k, v, n, toLatent, -1, logDet);
  }
  return [u, logDet];
}
async function inverse(w, n) {
  const logDet = new Float64Array(n);
  for (let k = K - 1; k >= 0; k--) {
    const v = req.kind === 'maf' ? await sequential(k, w, n, toData, 1, logDet) : await parallel(k, w, n, toData, 1, logDet);
    w = unpermute(v, n, req.perms[k]);
  }
  return [w, logDet];
}
const out = { runs: [] };
for (const run of req.runs) {
  const [y, ld] = await (run.direction === 'forward' ? forward : inverse)(f64(run.b64), run.n);
  out.runs.push({ out: b64(y), logDet: b64(ld) });
}
await writeFile(outPath, JSON.stringify(out));
"""


# ---- the program in PyTorch (float64 reference) -------------------------------------------------
def _inv_perm(perm) -> list:
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return inv


def _cond(made, x):
    out = made(x)
    if not (isinstance(out, (tuple, list)) and len(out) == 2):
        raise ExportError(f"a conditioner must return (shift, logScale); got {type(out).__name__}"
                          + (f" of {len(out)}" if isinstance(out, (tuple, list)) else ""))
    shift, s = out
    if tuple(shift.shape) != tuple(x.shape) or tuple(s.shape) != tuple(x.shape):
        raise ExportError(f"a conditioner must map x {list(x.shape)} to shift and logScale of the same shape; got "
                          f"{list(shift.shape)} and {list(s.shape)}")
    return shift, s


def program_forward(kind, conds, perms, y, trace=None):
    """data -> latent (model input space); trace collects each layer's conditioner inputs (last pass)."""
    u, dim = y, y.shape[1]
    ld = torch.zeros(y.shape[0], dtype=y.dtype)
    for made, perm in zip(conds, perms):
        v = u[:, perm]
        if kind == "maf":
            shift, s = _cond(made, v)
            z = (v - shift) * torch.exp(-s)
            seen = v
        else:
            z = v
            for _ in range(dim):
                seen = z
                shift, s = _cond(made, z)
                z = (v - shift) * torch.exp(-s)
        if trace is not None:
            trace.append(seen)
        ld = ld - s.sum(1)
        u = z
    return u, ld


def program_inverse(kind, conds, perms, z, trace=None):
    """latent -> model input space."""
    w, dim = z, z.shape[1]
    ld = torch.zeros(z.shape[0], dtype=z.dtype)
    seen_layers = []
    for made, perm in zip(reversed(list(conds)), reversed(list(perms))):
        if kind == "maf":
            v = w
            for _ in range(dim):
                seen = v
                shift, s = _cond(made, v)
                v = w * torch.exp(s) + shift
        else:
            seen = w
            shift, s = _cond(made, w)
            v = w * torch.exp(s) + shift
        seen_layers.append(seen)
        ld = ld + s.sum(1)
        w = v[:, _inv_perm(perm)]
    if trace is not None:
        trace.extend(reversed(seen_layers))
    return w, ld


def ar_violation(made, dim: int, dtype=torch.float64, rows: int = AR_PROBE_ROWS, seed: int = 0) -> tuple:
    """(largest change of an output i <= j when input j is perturbed, (i, j) where it happens) in PyTorch."""
    g = torch.Generator().manual_seed(seed)
    base = torch.randn(rows, dim, generator=g, dtype=torch.float64).to(dtype)
    with torch.no_grad():
        b_shift, b_s = _cond(made, base)
        worst, where = 0.0, None
        for j in range(dim):
            x = base.clone()
            x[:, j] = x[:, j] + 1.0 + torch.rand(rows, generator=g, dtype=torch.float64).to(dtype)
            shift, s = _cond(made, x)
            d = torch.maximum((shift - b_shift).abs(), (s - b_s).abs())[:, :j + 1].max(0).values
            i = int(d.argmax())
            if float(d[i]) > worst:
                worst, where = float(d[i]), (i, j)
    return worst, where


def _probe_batch(dim: int, rows: int, seed: int) -> np.ndarray:
    """[(dim + 1)·rows, dim]: base rows, then for each j the base rows with input j perturbed."""
    g = np.random.default_rng(seed)
    base = g.standard_normal((rows, dim))
    out = [base]
    for j in range(dim):
        x = base.copy()
        x[:, j] += 1.0 + g.uniform(size=rows)
        out.append(x)
    return np.concatenate(out)


def _probe_violation(shift: np.ndarray, s: np.ndarray, dim: int, rows: int) -> float:
    both = np.concatenate([shift, s], 1).reshape(dim + 1, rows, 2, dim)
    base = both[0]
    worst = 0.0
    for j in range(dim):
        worst = max(worst, float(np.max(np.abs(both[j + 1][..., :j + 1] - base[..., :j + 1]))))
    return worst


# ---- the program with the ONNX graphs (one node process) ----------------------------------------
def run_program(graph_paths, perms, kind: str, runs: list) -> list:
    """runs: [(direction 'forward' | 'inverse', array [N, D])] -> [(out [N, D] float64, logDet [N] float64)],
    the service's loop (src/service/programs/autoregressive.ts) over the ONNX conditioner graphs in
    onnxruntime-node: float64 state between passes, float32 graph feeds, pass i fixes position i."""
    node, root = node_executable(), flowserve_root()
    dim = len(perms[0])
    request = {"graphs": [str(Path(p).resolve()) for p in graph_paths], "perms": [list(map(int, p)) for p in perms],
               "kind": kind, "dim": dim, "runs": []}
    for direction, a in runs:
        a = np.ascontiguousarray(np.asarray(a, np.float64).reshape(-1, dim))
        request["runs"].append({"direction": direction, "n": int(a.shape[0]), "b64": base64.b64encode(a.astype("<f8").tobytes()).decode()})
    with tempfile.TemporaryDirectory(prefix="ar-loop-") as d:
        script, req, out = Path(d) / "ar-loop.mjs", Path(d) / "req.json", Path(d) / "out.json"
        script.write_text(_LOOP_JS)
        req.write_text(json.dumps(request))
        proc = subprocess.run([node, str(script), str(req), str(out)], capture_output=True, text=True, timeout=1800,
                              env={**os.environ, "FLOWSERVE_ROOT": str(root)})
        if proc.returncode != 0:
            raise RuntimeError(f"autoregressive loop failed in node ({proc.returncode}): {proc.stderr.strip()[-2000:]}")
        result = json.loads(out.read_text())
    outs = []
    for r in result["runs"]:
        y = np.frombuffer(base64.b64decode(r["out"]), dtype="<f8").astype(np.float64).reshape(-1, dim)
        ld = np.frombuffer(base64.b64decode(r["logDet"]), dtype="<f8").astype(np.float64)
        outs.append((y, ld))
    return outs


def measure_sampling(graph_paths, perms, kind, parts, transform, criterion) -> dict:
    """flowexport.temperature.measure with the decode done by the program loop (same draws, grid, judge)."""
    from . import temperature

    count = int(criterion["draws"])
    lo, hi = float(criterion["bound"][0]), float(criterion["bound"][1])
    eps = np.concatenate([e.reshape(count, -1) for e in standard_normal_draws(parts, count, int(criterion["seed"]))], 1)
    temps = temperature.grid_points(float(criterion["grid"]))
    # a few temperatures per node call: the decode costs D passes per MAF layer, and it stops at the first failure
    chunk = max(1, min(8, temperature._CHUNK_VALUES // eps.size))
    rows, best = [], None
    for start in range(0, len(temps), chunk):
        ts = temps[start:start + chunk]
        outs = run_program(graph_paths, perms, kind, [("inverse", t * eps) for t in ts])
        for t, (y, ld) in zip(ts, outs):
            row = temperature._judge(t, {"x": y, "logDet": ld}, count, transform, lo, hi, int(criterion["maxOutside"]))
            rows.append(row)
            if not row["ok"]:
                return {"maxTemperature": best, "criterion": criterion, "rows": rows}
            best = t
    return {"maxTemperature": best, "criterion": criterion, "rows": rows}


def stability_rows(graph_paths, perms, kind, parts, transform, temperatures, count, limit) -> list:
    """flowexport.stability.sample_stability through the program loop."""
    eps = np.concatenate([e.reshape(count, -1) for e in standard_normal_draws(parts, count)], 1)
    outs = run_program(graph_paths, perms, kind, [("inverse", t * eps) for t in temperatures])
    rows = []
    for t, (y, ld) in zip(temperatures, outs):
        with np.errstate(all="ignore"):
            x = transform_inverse(torch.tensor(y), transform).numpy()
        finite = np.isfinite(y).all(1) & np.isfinite(x).all(1) & np.isfinite(ld)
        max_abs = float(np.max(np.abs(x[finite]))) if finite.any() else float("inf")
        rows.append({"temperature": float(t), "count": count, "nonFinite": int((~finite).sum()), "maxAbsX": max_abs,
                     "ok": bool(finite.all() and (t > 1 or max_abs <= limit))})
    return rows


# ---- export --------------------------------------------------------------------------------------
def graph_names(k: int) -> list:
    return [f"made{i}" for i in range(k)]


def _program_of(flow, dim: int) -> tuple:
    kind = getattr(flow, "kind", None)
    conds = list(getattr(flow, "conditioners", []) or [])
    perms = [[int(i) for i in p] for p in (getattr(flow, "permutations", []) or [])]
    if kind not in KINDS:
        raise ExportError(f"flow.kind must be one of {', '.join(KINDS)}; got {kind!r}")
    if not conds or len(conds) != len(perms):
        raise ExportError(f"flow needs K >= 1 conditioners and K permutations; got {len(conds)} and {len(perms)}")
    for k, p in enumerate(perms):
        if sorted(p) != list(range(dim)):
            raise ExportError(f"permutation {k} must be a permutation of 0..{dim - 1}; got {p[:12]}{'...' if len(p) > 12 else ''}")
    return kind, conds, perms


def export_autoregressive(flow: torch.nn.Module, manifest: dict, out_dir, reference_inputs, opset: int = 17,
                          tolerances: Tolerances | None = None, sample_count: int = 8, sample_seed: int = 0,
                          max_package_bytes: int | None = None, stability_temperatures=GATE_TEMPERATURES,
                          stability_count: int = SAMPLE_COUNT, sampling_bound=None, log=print) -> dict:
    """Write models/<name>/ for a MAF or IAF. `manifest` holds every flow.json field except formatVersion,
    graphs, program, latent.size, lu, sampling and files (derived here). `sampling_bound` ([low, high],
    data space) is the temperature criterion's bound for vectors (flowexport.temperature.box_bound of the
    training data). Returns a report of all checks."""
    from . import temperature as temperature_range

    tol = tolerances or Tolerances()
    out_dir = Path(out_dir)
    if not isinstance(manifest, dict):
        raise ExportError(f"manifest must be a dict of flow.json fields; got {type(manifest).__name__}")
    k_layers = len(getattr(flow, "conditioners", []) or [])
    names = graph_names(k_layers)
    graphs = {**{n: f"{n}.onnx" for n in names}, "weights": "weights.bin"}
    perms_raw = [list(map(int, p)) for p in (getattr(flow, "permutations", []) or [])]
    program = {"kind": "autoregressive", "layers": [{"graph": n, "permutation": p} for n, p in zip(names, perms_raw)] or
               [{"graph": "made0", "permutation": []}]}
    base = check_program_manifest(manifest, out_dir, graphs, program)
    data = base["data"]
    if data["kind"] != "vector" or len(data["shape"]) != 1:
        raise ExportError(f"autoregressive packages take vectors: data.kind 'vector', shape [D]; got {data['kind']} {data['shape']}")
    dim = int(data["shape"][0])
    parts = base["latent"]["parts"]
    if len(parts) != 1 or list(parts[0]["shape"]) != [dim]:
        raise ExportError(f"autoregressive packages have one latent part of shape [{dim}]; got {[p['shape'] for p in parts]}")
    kind, conds, perms = _program_of(flow, dim)
    if base["family"] != kind:
        raise ExportError(f"family {base['family']!r} but the flow is a {kind!r} (flow.kind); they must agree")
    criterion = temperature_range.criterion_for(data, sampling_bound)
    check_runtime()
    name = base["name"]
    transform = base["preprocessing"]["transform"]
    temperature = float(base["defaultTemperature"])
    checks = CheckLog()

    conds64 = [copy.deepcopy(c).double().eval() for c in conds]
    conds32 = [copy.deepcopy(c).float().eval() for c in conds]

    # --- autoregressive property (PyTorch float64) ------------------------------------------------
    for k, c in enumerate(conds64):
        worst, where = ar_violation(c, dim)
        if worst > 0:
            i, j = where
            raise ExportError(f"conditioner {k} is not autoregressive: output {i} changes by {worst:.3g} when input {j} "
                              f"(>= {i}) is perturbed; output i may depend on inputs < i only (mask its weights, MADE)")

    # --- reference values, PyTorch float64 ----------------------------------------------------------
    x_ref = np.asarray(reference_inputs, np.float64)
    if x_ref.ndim == 0 or x_ref.size == 0 or x_ref.size % dim:
        raise ExportError(f"reference_inputs: expected N rows of {dim} values; got an array of shape {list(x_ref.shape)}")
    x_ref = x_ref.reshape(-1, dim)
    n_ref = x_ref.shape[0]
    with torch.no_grad():
        x64 = torch.tensor(x_ref)
        y64, ld_pre = transform_forward(x64, transform)
        seen_fwd = []
        z64, ld_graph = program_forward(kind, conds64, perms, y64, seen_fwd)
        logdet = ld_pre + ld_graph
        logprob = log_standard_normal(z64) + logdet
        y_back, ld_inv = program_inverse(kind, conds64, perms, z64)
        checks.check("torch64 round trip |x - x'| (data space)", (transform_inverse(y_back, transform) - x64).abs().max().item(), tol.float64)
        checks.check("torch64 fwd + inv logdet (relative)", (ld_graph + ld_inv).abs().max().item() / max(1.0, ld_graph.abs().max().item()), tol.float64)
        if callable(getattr(flow, "forward", None)) and callable(getattr(flow, "inverse", None)):
            flow64 = copy.deepcopy(flow).double().eval()
            try:
                zf, ldf = flow64(y64)
                yf, ldfi = flow64.inverse(z64)
            except Exception as e:  # noqa: BLE001 - report any failure of the flow's own directions
                raise ExportError(f"flow(y) -> (z, logdet) / flow.inverse(z) -> (y, logdet) failed: {e}") from e
            checks.check("flow's own forward vs program (torch64)", _abs1(zf, z64) + _rel(ldf, ld_graph), tol.float64 * 100)
            checks.check("flow's own inverse vs program (torch64)", _abs1(yf, y64) + _rel(ldfi, -ld_graph), tol.float64 * 100)
        g = torch.Generator().manual_seed(sample_seed)
        eps = temperature * torch.randn(sample_count, dim, generator=g, dtype=torch.float64)
        seen_inv = []
        y_s, ld_s = program_inverse(kind, conds64, perms, eps, seen_inv)
        x_s = transform_inverse(y_s, transform)
        z_s, _ = program_forward(kind, conds64, perms, y_s)
        checks.check("torch64 sample latent round trip", _abs1(z_s, eps), tol.float64 * 100)
    if not (torch.isfinite(z64).all() and torch.isfinite(logprob).all() and torch.isfinite(x_s).all()):
        raise ExportError("non-finite values in the float64 reference (latents, log p or decoded prior samples)")

    with staging_dir(out_dir) as tmp:
        # --- graphs --------------------------------------------------------------------------------
        models = []
        io_shapes = {"x": ["N", dim], "shift": ["N", dim], "logScale": ["N", dim]}
        example = y64[:1].float()
        for k, c in enumerate(conds32):
            model = onnx_io.trace_to_onnx(c, [example], ["x"], ["shift", "logScale"], ["x", "shift", "logScale"],
                                          inverse=False, opset=opset, shapes=io_shapes)
            got_in, got_out = onnx_io.graph_io(model)
            if got_in != ["x"] or got_out != ["shift", "logScale"]:
                raise ExportError(f"conditioner {k} graph io {got_in} -> {got_out}, expected ['x'] -> ['shift', 'logScale']")
            if onnx_io.opset_of(model) > 17 or onnx_io.non_standard_ops(model):
                raise ExportError(f"conditioner {k} graph uses opset {onnx_io.opset_of(model)} / ops {onnx_io.non_standard_ops(model)}")
            models.append(model)
        blob = onnx_io.externalize_shared(models, "weights.bin")
        (tmp / "weights.bin").write_bytes(blob)
        paths = []
        for n, model in zip(names, models):
            onnx.save(model, str(tmp / f"{n}.onnx"))
            onnx.checker.check_model(str(tmp / f"{n}.onnx"))
            paths.append(tmp / f"{n}.onnx")

        # --- each conditioner graph vs PyTorch ------------------------------------------------------
        g_np = np.random.default_rng(sample_seed)
        scale = float(max(1.0, np.abs(y64.numpy()).max()))
        probe = _probe_batch(dim, AR_PROBE_ROWS, sample_seed)
        runs, feeds = [], []
        for k, p in enumerate(paths):
            rand = g_np.standard_normal((RANDOM_ROWS, dim)) * scale
            seen = np.concatenate([seen_fwd[k].numpy(), seen_inv[k].numpy()])
            x_all = np.concatenate([rand, seen]).astype(np.float32).astype(np.float64)  # what float32 graphs see
            feeds.append(x_all)
            runs += [(p, {"x": x_all}), (p, {"x": probe})]
        results = run_onnx(runs)
        worst32 = worst64 = worst_ar = 0.0
        for k in range(len(paths)):
            r_all, r_probe = results[2 * k], results[2 * k + 1]
            if r_all["__inputs__"] != ["x"] or r_all["__outputs__"] != ["shift", "logScale"]:
                raise ExportError(f"onnxruntime sees conditioner {k} io {r_all['__inputs__']} -> {r_all['__outputs__']}")
            with torch.no_grad():
                t32 = conds32[k](torch.tensor(feeds[k], dtype=torch.float32))
                t64 = conds64[k](torch.tensor(feeds[k]))
            for got, want32, want64 in ((r_all["shift"], t32[0], t64[0]), (r_all["logScale"], t32[1], t64[1])):
                worst32 = max(worst32, _abs1(got, want32.double().numpy()))
                worst64 = max(worst64, _abs1(got, want64.numpy()))
            worst_ar = max(worst_ar, _probe_violation(r_probe["shift"], r_probe["logScale"], dim, AR_PROBE_ROWS))
        checks.check(f"onnx conditioners vs torch32 ({len(paths)} graphs)", worst32, tol.same_precision)
        checks.check(f"onnx conditioners vs torch64 ({len(paths)} graphs)", worst64, tol.latent)
        checks.check("onnx conditioners autoregressive (output i vs inputs >= i)", worst_ar, 0.0)

        # --- the whole program with the ONNX graphs -------------------------------------------------
        (f_all, ld_f), (f_one, ld_one), (i_eps, ld_eps) = run_program(
            paths, perms, kind, [("forward", y64.numpy()), ("forward", y64[:1].numpy()), ("inverse", eps.numpy())])
        ((i_rt, ld_rt),) = run_program(paths, perms, kind, [("inverse", f_all)])
        lp_onnx = log_standard_normal(torch.tensor(f_all)).numpy() + ld_pre.numpy() + ld_f
        checks.check("onnx program latents vs torch64", _abs1(f_all, z64.numpy()), tol.latent)
        checks.check("onnx program log p vs torch64 (relative)", _rel(lp_onnx, logprob.numpy()), tol.log_prob)
        checks.check("onnx program logDet vs torch64 (relative)", _rel(ld_f, ld_graph.numpy()), tol.log_prob)
        checks.check("onnx program batch 1 == row 0 of batch N", _abs1(f_one, f_all[:1]) + _rel(ld_one, ld_f[:1]), 1e-5)
        x_rt = transform_inverse(torch.tensor(i_rt), transform).numpy()
        checks.check("onnx program round trip |x - x'| (data space)", float(np.max(np.abs(x_rt - x_ref))), tol.roundtrip)
        checks.check("onnx program fwd + inv logDet (relative)", float(np.max(np.abs(ld_f + ld_rt) / np.maximum(1, np.abs(ld_f)))), tol.logdet_sum)
        x_eps = transform_inverse(torch.tensor(i_eps), transform).numpy()
        checks.check(f"onnx program inverse of {sample_count} samples (T={temperature}) vs torch64", _abs1(x_eps, x_s.numpy()), tol.sample)
        checks.check("onnx program inverse logDet of samples (relative)", _rel(ld_eps, ld_s.numpy()), tol.log_prob)
        stability = stability_rows(paths, perms, kind, parts, transform, stability_temperatures, stability_count, tol.sample_abs)
        for r in stability:
            t = f"{r['count']} draws T={r['temperature']:g}"
            checks.check(f"onnx {t}: non-finite samples", r["nonFinite"], 0)
            if r["temperature"] <= 1:
                checks.check(f"onnx {t}: max |x| (data space)", r["maxAbsX"], tol.sample_abs)
        log(f"[{name}] export checks:\n{checks.table()}")
        if checks.failed:
            raise ExportError(f"{name}: {len(checks.failed)} check(s) failed: " + "; ".join(r["check"] for r in checks.failed))

        # --- usable temperature range ----------------------------------------------------------------
        measured = measure_sampling(paths, perms, kind, parts, transform, criterion)
        t_max = measured["maxTemperature"]
        if t_max is None:
            raise ExportError(f"{name}: sampling is unusable at every temperature: {temperature_range.explain_failure(measured)}")
        log(f"[{name}] usable temperatures (0, {t_max:g}]: " + (temperature_range.explain_failure(measured)
            if not measured["rows"][-1]["ok"] else "every grid point up to 2"))
        if temperature > t_max:
            raise ExportError(f"{name}: defaultTemperature {temperature:g} is above the measured maximum temperature "
                              f"{t_max:g} ({temperature_range.explain_failure(measured)}); choose defaultTemperature <= {t_max:g}")

        # --- reference and manifest ------------------------------------------------------------------
        reference = {"dtype": "float64", "inputs": x_ref.tolist(), "latents": z64.numpy().tolist(),
                     "logDet": logdet.numpy().tolist(), "logProb": logprob.numpy().tolist()}
        (tmp / "reference.json").write_text(json.dumps(reference))
        files = [f"{n}.onnx" for n in names] + ["weights.bin", "reference.json"]
        program = {"kind": "autoregressive", "layers": [{"graph": n, "permutation": p} for n, p in zip(names, perms)]}
        full = program_manifest(manifest, graphs, program, {f: sha256(tmp / f) for f in files},
                                temperature_range.sampling_block(measured))
        validate_manifest(full, out_dir.name)
        (tmp / "flow.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        size = sum(p.stat().st_size for p in tmp.iterdir())
        if max_package_bytes is not None and size > max_package_bytes:
            raise ExportError(f"{name}: package is {size} bytes, limit {max_package_bytes}")
    log(f"[{name}] wrote {out_dir} ({size / 1e6:.2f} MB)")
    return {"checks": checks.results, "bytes": size, "files": full["files"], "stability": stability,
            "sampling": full["sampling"], "temperatures": measured["rows"], "manifest": full}
