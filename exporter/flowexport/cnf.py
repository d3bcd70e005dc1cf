"""Continuous flows (family ffjord, program kind "ode"): solver, checks and package export.

Graph contract (flow.json program {kind: "ode", graph: "dynamics", t0, t1, atol, rtol}):

    dynamics(x [N, D], t [N]) -> (dx [N, D], div [N] = tr ∂f/∂x)

one time per row (rows at different solver steps are batched together). Forward (data -> latent)
integrates dx/dt = f(x, t) from t0 (data) to t1 (latent, standard normal):

    log p(x) = log N(x(t1); 0, I) + ∫_{t0}^{t1} div dt      (latent logDet = ∫ div dt = log|det ∂z/∂x|)

and sampling integrates from t1 back to t0 (the integral of div then is log|det ∂x/∂z|).

The reference solver (dopri5): Dormand–Prince 5(4), float64 torch, per-row step control on the
augmented state [x, ∫div] (error norm: RMS over the D + 1 components of err / (atol + rtol·max(|y|,
|y_new|)), the torchdiffeq convention), Hairer's initial step, FSAL, step factor
clamp(0.9·err^(−1/5), 0.2, 10) (≤ 1 after a rejection). NFE counts every dynamics evaluation a row
took part in, the two of the initial-step selection included.

export_ode(dynamics, manifest, out_dir, reference_inputs) writes dynamics.onnx, reference.json and
flow.json, after these checks (ExportError, nothing written on failure):
  * the module's divergence output equals the autograd trace of ∂dx/∂x (float64, random and reference points)
  * ONNX (onnxruntime-node, float32) vs PyTorch float64 (and float32) on random (x, t) and on the
    reference inputs at t0 and their latents at t1; batch 1 == row 0 of batch N
  * float64 solves: reference at tight tolerances (1e-10); round trip data -> latent -> data and
    forward + inverse ∫div ~ 0; the program's tolerances agree with the tight reference
  * the usable temperature range (`sampling`), measured like flowexport.temperature but decoding
    T·ε by a float64 dopri5 solve (t1 -> t0) of the PyTorch dynamics at the program's tolerances
reference.json: inputs, latents, logDet, logProb (float64, tight solve) plus `dynamics`, a set of
(x, t) -> (dx, div) evaluations for checking the graph pointwise.
"""
from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import onnx
import torch

from .common import staging_dir
from . import onnx_io
from .errors import ExportError
from .ort import check_runtime, run_onnx
from .package import CheckLog, _abs1, _rel, _sha256, check_manifest
from .planar import program_manifest
from .preprocessing import log_standard_normal
from .stability import draws as standard_normal_draws
from . import temperature as temperature_range

T0, T1, ATOL, RTOL = 0.0, 1.0, 1e-5, 1e-5
REFERENCE_TOL = 1e-10
MAX_STEPS = 20000

_C = [0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0]
_A = [
    [],
    [1 / 5],
    [3 / 40, 9 / 40],
    [44 / 45, -56 / 15, 32 / 9],
    [19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729],
    [9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656],
    [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84],
]
_B5 = [35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0]
_B4 = [5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40]
_E = [b5 - b4 for b5, b4 in zip(_B5, _B4)]


def _rms(v: torch.Tensor) -> torch.Tensor:
    return v.pow(2).mean(1).sqrt()


def dopri5(dynamics, x0, t0: float = T0, t1: float = T1, atol: float = ATOL, rtol: float = RTOL,
           max_steps: int = MAX_STEPS):
    """Integrate [x, ∫div] from t0 to t1 per row. dynamics(x [M, D], t [M]) -> (dx, div).
    Returns (x(t1) [N, D], ∫_{t0}^{t1} div dt [N], nfe [N]) as float64 torch tensors (nfe int64)."""
    x0 = torch.as_tensor(x0, dtype=torch.float64)
    n, d = x0.shape

    def f(t, y):
        with torch.no_grad():
            dx, div = dynamics(y[:, :d], t)
        return torch.cat([dx.to(torch.float64), div.to(torch.float64)[:, None]], 1)

    sign = 1.0 if t1 >= t0 else -1.0
    span = abs(t1 - t0)
    y = torch.cat([x0, x0.new_zeros(n, 1)], 1)
    t = torch.full((n,), float(t0), dtype=torch.float64)
    nfe = torch.zeros(n, dtype=torch.int64)
    if span == 0:
        return y[:, :d], y[:, d], nfe
    # Hairer's initial step, per row
    k1 = f(t, y)
    scale = atol + rtol * y.abs()
    d0, d1 = _rms(y / scale), _rms(k1 / scale)
    h0 = torch.where((d0 < 1e-5) | (d1 < 1e-5), torch.full_like(d0, 1e-6), 0.01 * d0 / d1)
    h0 = torch.clamp(h0, max=span)
    k_h = f(t + sign * h0, y + sign * h0[:, None] * k1)
    d2 = _rms((k_h - k1) / scale) / h0
    big = torch.maximum(d1, d2)
    h1 = torch.where(big <= 1e-15, torch.maximum(torch.full_like(h0, 1e-6), h0 * 1e-3), (0.01 / big) ** 0.2)
    h = torch.minimum(100 * h0, h1).clamp(max=span)
    nfe += 2
    done = torch.zeros(n, dtype=torch.bool)
    steps = 0
    while not bool(done.all()):
        steps += 1
        if steps > max_steps:
            raise ExportError(f"dopri5: {int((~done).sum())} row(s) not done after {max_steps} steps (atol {atol}, rtol {rtol})")
        idx = (~done).nonzero().squeeze(1)
        yi, ti, hi = y[idx], t[idx], h[idx]
        remaining = (t1 - ti) * sign
        last = hi >= remaining
        hs = torch.where(last, remaining, hi) * sign  # signed step
        ks = [k1[idx]]
        for s in range(1, 7):
            ys = yi + hs[:, None] * sum(a * k for a, k in zip(_A[s], ks) if a != 0.0)
            ks.append(f(ti + _C[s] * hs, ys))
        y5 = yi + hs[:, None] * sum(b * k for b, k in zip(_B5, ks) if b != 0.0)
        err = hs[:, None] * sum(e * k for e, k in zip(_E, ks))
        nfe[idx] += 6
        en = _rms(err / (atol + rtol * torch.maximum(yi.abs(), y5.abs())))
        ok = (en <= 1) & torch.isfinite(en)
        factor = torch.where(en > 0, 0.9 * en.clamp(min=1e-30) ** -0.2, torch.full_like(en, 10.0)).clamp(0.2, 10.0)
        factor = torch.where(ok, factor, factor.clamp(max=1.0))
        factor = torch.where(torch.isfinite(en), factor, torch.full_like(en, 0.2))
        acc = idx[ok]
        y[acc] = y5[ok]
        t[acc] = torch.where(last[ok], torch.full_like(ti[ok], float(t1)), ti[ok] + hs[ok])
        k1[acc] = ks[6][ok]
        done[acc[last[ok]]] = True
        h[idx] = hs.abs() * factor
    return y[:, :d], y[:, d], nfe


def ode_log_prob(dynamics, x, t0: float = T0, t1: float = T1, atol: float = ATOL, rtol: float = RTOL):
    """log p(x) [N] (numpy float64) and NFE [N] by a forward dopri5 solve."""
    z, ld, nfe = dopri5(dynamics, x, t0, t1, atol, rtol)
    return (log_standard_normal(z) + ld).numpy(), nfe.numpy()


def autograd_divergence(dynamics, x, t) -> torch.Tensor:
    """tr ∂dx/∂x by autograd, one input dimension at a time (the check's truth)."""
    x = torch.as_tensor(x).detach().clone().requires_grad_(True)
    with torch.enable_grad():
        dx, _ = dynamics(x, torch.as_tensor(t, dtype=x.dtype))
        div = torch.zeros(x.shape[0], dtype=x.dtype)
        for i in range(x.shape[1]):
            (g,) = torch.autograd.grad(dx[:, i].sum(), x, retain_graph=True)
            div = div + g[:, i]
    return div.detach()


def _call(dynamics, x, t):
    try:
        out = dynamics(x, t)
    except Exception as e:  # noqa: BLE001 - reported with the contract
        raise ExportError(f"dynamics(x [N, D], t [N]) must return (dx [N, D], div [N]); it raised {type(e).__name__}: {e}") from e
    if not (isinstance(out, (tuple, list)) and len(out) == 2 and all(isinstance(o, torch.Tensor) for o in out)
            and list(out[0].shape) == list(x.shape) and list(out[1].shape) == [x.shape[0]]):
        raise ExportError(f"dynamics(x [N, D], t [N]) must return a tuple (dx [N, D], div [N]); got "
                          f"{[list(o.shape) if isinstance(o, torch.Tensor) else type(o).__name__ for o in out] if isinstance(out, (tuple, list)) else type(out).__name__}")
    return out


def sample_measure(dynamics, parts: list, criterion: dict, t0=T0, t1=T1, atol=ATOL, rtol=RTOL) -> dict:
    """flowexport.temperature.measure for a continuous flow: the criterion's draws scaled by each grid
    temperature, decoded by one batched float64 dopri5 solve t1 -> t0 (identity preprocessing), judged
    by temperature._judge; rows stop at the first unusable temperature."""
    count = int(criterion["draws"])
    (eps,) = [np.concatenate([e.reshape(count, -1) for e in standard_normal_draws(parts, count, int(criterion["seed"]))], 1)]
    temps = temperature_range.grid_points(float(criterion["grid"]))
    z = torch.tensor(np.concatenate([t * eps for t in temps], 0))
    try:
        x, ld, _ = dopri5(dynamics, z, t1, t0, atol, rtol)
        x, ld = x.numpy(), ld.numpy()
    except ExportError:  # a draw the solver cannot finish counts as non-finite
        x, ld = np.full(z.shape, np.nan), np.full(z.shape[0], np.nan)
    rows, best = [], None
    lo, hi = (float(v) for v in criterion["bound"])
    for i, t in enumerate(temps):
        out = {"x": x[i * count:(i + 1) * count], "logDet": ld[i * count:(i + 1) * count]}
        row = temperature_range._judge(t, out, count, {"kind": "identity"}, lo, hi, int(criterion["maxOutside"]))
        rows.append(row)
        if not row["ok"]:
            break
        best = t
    return {"maxTemperature": best, "criterion": criterion, "rows": rows}


def export_ode(dynamics: torch.nn.Module, manifest: dict, out_dir, reference_inputs, t0: float = T0, t1: float = T1,
               atol: float = ATOL, rtol: float = RTOL, opset: int = 17, sampling_bound=None, check_count: int = 256,
               seed: int = 0, log=print) -> dict:
    """Write models/<name>/ for a continuous flow: `dynamics(x, t) -> (dx, div)` (the exported graph, with
    the module docstring's convention). `manifest` holds flow.json's fields except formatVersion, graphs,
    program, latent.size, lu, sampling and files. Returns a report of all checks."""
    out_dir = Path(out_dir)
    program = {"kind": "ode", "graph": "dynamics", "t0": float(t0), "t1": float(t1), "atol": float(atol), "rtol": float(rtol)}
    graphs = {"dynamics": "dynamics.onnx"}
    base = check_manifest(manifest, out_dir)
    program_manifest(base, graphs, program, {"dynamics.onnx": "0" * 64, "reference.json": "0" * 64}, None, out_dir.name)
    if base["preprocessing"]["transform"]["kind"] != "identity" or base["data"]["kind"] != "vector":
        raise ExportError("export_ode: continuous flows are exported for vector data with identity preprocessing")
    criterion = temperature_range.criterion_for(base["data"], sampling_bound)
    check_runtime()
    name, parts = base["name"], base["latent"]["parts"]
    dim = int(np.prod(base["data"]["shape"]))
    temperature = float(base["defaultTemperature"])
    checks = CheckLog()
    dyn64 = copy.deepcopy(dynamics).double().eval()
    dyn32 = copy.deepcopy(dynamics).float().eval()

    x_ref = np.asarray(reference_inputs, np.float64)
    if x_ref.ndim != 2 or x_ref.shape[1] != dim or x_ref.shape[0] == 0:
        raise ExportError(f"reference_inputs: expected N rows of {dim} values; got shape {list(x_ref.shape)}")
    n_ref = x_ref.shape[0]
    g = torch.Generator().manual_seed(seed)
    box = np.asarray(criterion["bound"], np.float64)
    x_rand = torch.rand(check_count, dim, generator=g, dtype=torch.float64) * float(box[1] - box[0]) / 2 + float(box[0]) / 2
    t_rand = t0 + (t1 - t0) * torch.rand(check_count, generator=g, dtype=torch.float64)

    # --- exact divergence vs autograd ------------------------------------------------------------
    with torch.no_grad():
        dx_r, div_r = _call(dyn64, x_rand, t_rand)
    checks.check("div vs autograd trace (float64, random)", _rel(div_r.numpy(), autograd_divergence(dyn64, x_rand, t_rand).numpy()), 1e-9)
    xr = torch.tensor(x_ref)
    tr0 = torch.full((n_ref,), float(t0), dtype=torch.float64)
    with torch.no_grad():
        div_ref = _call(dyn64, xr, tr0)[1]
    checks.check("div vs autograd trace (float64, reference, t0)", _rel(div_ref.numpy(), autograd_divergence(dyn64, xr, tr0).numpy()), 1e-9)

    # --- float64 solves ------------------------------------------------------------------------------
    z64, ld64, _ = dopri5(dyn64, xr, t0, t1, REFERENCE_TOL, REFERENCE_TOL)
    x_back, ld_back, _ = dopri5(dyn64, z64, t1, t0, REFERENCE_TOL, REFERENCE_TOL)
    lp64 = log_standard_normal(z64) + ld64
    if not (torch.isfinite(z64).all() and torch.isfinite(lp64).all()):
        raise ExportError("non-finite values in the float64 reference solve")
    checks.check("torch64 solve round trip |x - x'|", float((x_back - xr).abs().max()), 1e-7)
    checks.check("torch64 forward + inverse ∫div (relative)", _rel((ld64 + ld_back).numpy(), np.zeros(n_ref)), 1e-7)
    z_p, ld_p, nfe_p = dopri5(dyn64, xr, t0, t1, atol, rtol)
    checks.check(f"solve at atol/rtol {atol:g}/{rtol:g} vs tight: latents", _abs1(z_p.numpy(), z64.numpy()), 1e-3)
    checks.check(f"solve at atol/rtol {atol:g}/{rtol:g} vs tight: log p (relative)",
                 _rel((log_standard_normal(z_p) + ld_p).numpy(), lp64.numpy()), 1e-3)

    # --- graph -----------------------------------------------------------------------------------
    with staging_dir(out_dir) as tmp:
        shapes = {"x": ["N", dim], "t": ["N"], "dx": ["N", dim], "div": ["N"]}
        model = onnx_io.trace_to_onnx(dyn32, [x_rand[:4].float(), t_rand[:4].float()], ["x", "t"], ["dx", "div"],
                                      ["x", "t", "dx", "div"], inverse=False, opset=opset, shapes=shapes)
        got_in, got_out = onnx_io.graph_io(model)
        if got_in != ["x", "t"] or got_out != ["dx", "div"]:
            raise ExportError(f"dynamics graph io {got_in} -> {got_out}, expected ['x', 't'] -> ['dx', 'div']")
        if onnx_io.opset_of(model) > 17 or onnx_io.non_standard_ops(model):
            raise ExportError(f"dynamics graph uses opset {onnx_io.opset_of(model)} / ops {onnx_io.non_standard_ops(model)}")
        onnx.save(model, str(tmp / "dynamics.onnx"))
        onnx.checker.check_model(str(tmp / "dynamics.onnx"))

        tr1 = torch.full((n_ref,), float(t1), dtype=torch.float64)
        feeds = [(x_rand, t_rand), (xr, tr0), (z64, tr1)]
        outs = run_onnx([(tmp / "dynamics.onnx", {"x": x.numpy(), "t": t.numpy()}) for x, t in feeds]
                        + [(tmp / "dynamics.onnx", {"x": x_rand[:1].numpy(), "t": t_rand[:1].numpy()})])
        if outs[0]["__inputs__"] != ["x", "t"] or outs[0]["__outputs__"] != ["dx", "div"]:
            raise ExportError(f"onnxruntime sees dynamics io {outs[0]['__inputs__']} -> {outs[0]['__outputs__']}")
        with torch.no_grad():
            for (x, t), out, label in zip(feeds, outs, ("random (x, t)", "reference x, t0", "reference latents, t1")):
                dx64, div64 = _call(dyn64, x, t)
                dx32, div32 = _call(dyn32, x.float(), t.float())
                checks.check(f"onnx dx vs torch64 ({label})", _abs1(out["dx"], dx64.numpy()), 1e-4)
                checks.check(f"onnx div vs torch64 ({label}, relative)", _rel(out["div"], div64.numpy()), 1e-4)
                checks.check(f"onnx div vs torch32 ({label}, relative)", _rel(out["div"], div32.double().numpy()), 1e-5)
        checks.check("onnx batch 1 == row 0 of batch N", _abs1(outs[3]["dx"], outs[0]["dx"][:1]) + _rel(outs[3]["div"], outs[0]["div"][:1]), 1e-5)

        log(f"[{name}] export checks:\n{checks.table()}")
        if checks.failed:
            raise ExportError(f"{name}: {len(checks.failed)} check(s) failed: " + "; ".join(r["check"] for r in checks.failed))

        measured = sample_measure(dyn64, parts, criterion, t0, t1, atol, rtol)
        t_max = measured["maxTemperature"]
        if t_max is None:
            raise ExportError(f"{name}: sampling is unusable at every temperature: {temperature_range.explain_failure(measured)}")
        log(f"[{name}] usable temperatures (0, {t_max:g}]" + ("" if measured["rows"][-1]["ok"] else
                                                              f": {temperature_range.explain_failure(measured)}"))
        if temperature > t_max:
            raise ExportError(f"{name}: defaultTemperature {temperature:g} is above the measured maximum temperature {t_max:g}")

        # dynamics evaluations for pointwise graph checks: random points and the reference endpoints
        dyn_x = torch.cat([x_rand[:16], xr, z64])
        dyn_t = torch.cat([t_rand[:16], tr0, tr1])
        with torch.no_grad():
            dyn_dx, dyn_div = _call(dyn64, dyn_x, dyn_t)
        reference = {"dtype": "float64", "inputs": x_ref.tolist(), "latents": z64.numpy().tolist(),
                     "logDet": ld64.numpy().tolist(), "logProb": lp64.numpy().tolist(),
                     "solver": {"method": "dopri5", "atol": REFERENCE_TOL, "rtol": REFERENCE_TOL, "t0": t0, "t1": t1},
                     "dynamics": {"x": dyn_x.numpy().tolist(), "t": dyn_t.numpy().tolist(),
                                  "dx": dyn_dx.numpy().tolist(), "div": dyn_div.numpy().tolist()}}
        (tmp / "reference.json").write_text(json.dumps(reference))
        files = {f: _sha256(tmp / f) for f in ("dynamics.onnx", "reference.json")}
        full = program_manifest(base, graphs, program, files, temperature_range.sampling_block(measured), out_dir.name)
        (tmp / "flow.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        size = sum(p.stat().st_size for p in tmp.iterdir())
    log(f"[{name}] wrote {out_dir} ({size / 1e6:.3f} MB)")
    return {"checks": checks.results, "bytes": size, "files": full["files"], "sampling": full["sampling"],
            "temperatures": measured["rows"], "manifest": full, "referenceNfe": float(nfe_p.float().mean())}
