"""Planar flows (family planar, program kind "planar"): reference maths, checks and package export.

Graph contract (flow.json program {kind: "planar", file: "planar.json", layers: K}, graphs {generate}):

    generate(z [N, D]) -> (x [N, D], logDet [N])      latent -> data, layer 0 first:
        z_{k+1} = z_k + u_k·tanh(w_kᵀz_k + b_k)
        logDet  = Σ_k log|1 + (1 − tanh²(w_kᵀz_k + b_k))·u_kᵀw_k|

planar.json = {"layers": [{"u": [...], "w": [...], "b": b}, ...]} in that order, u already
reparametrized so that uᵀw > −1 (each layer then is a bijection). The service inverts in TypeScript
(data -> latent), per layer from last to first: solve α + uᵀw·tanh(α + b) = wᵀx for α (the left side
is strictly increasing; the root lies in [wᵀx − |uᵀw|, wᵀx + |uᵀw|]) by bracketed Newton, then
z = x − u·tanh(α + b). planar_inverse below is that algorithm in float64 numpy.

export_planar(layers, manifest, out_dir, reference_inputs) writes generate.onnx, planar.json,
reference.json and flow.json after these checks (ExportError, nothing written on failure):
  * every layer: u and w of length D, finite values, uᵀw > −1
  * float64: the traced module equals the numpy reference; data -> latent -> data round trip and
    forward + inverse logDet ~ 0 on the reference inputs and on prior samples
  * ONNX (onnxruntime-node, float32) vs float64 on the reference latents (x = the reference inputs)
    and on prior samples; logDet also vs PyTorch float32; batch 1 == row 0 of batch N
  * sampling stability (flowexport.stability) and the usable temperature range (flowexport.temperature)
    through the generate graph, which has the inverse graph's io (z -> x, logDet)
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import onnx
import torch

from .common import staging_dir
from . import onnx_io
from .errors import ExportError
from .manifest import to_json, validate_manifest
from .ort import check_runtime, run_onnx
from .package import DERIVED, CheckLog, _abs1, _rel, _sha256, check_manifest
from .preprocessing import log_standard_normal
from .stability import GATE_TEMPERATURES, SAMPLE_COUNT, sample_stability

NEWTON_ITERS = 100


def program_manifest(base: dict, graphs: dict, program: dict, files: dict, sampling, folder_name=None) -> dict:
    """flow.json of a program family: `base` (check_manifest's completion) with its graphs replaced, the
    program after them, `sampling` after defaultTemperature and `files`; validated (ExportError)."""
    out = {}
    for k, v in base.items():
        if k in ("sampling", "program", "files"):
            continue
        out[k] = graphs if k == "graphs" else v
        if k == "graphs":
            out["program"] = program
        if k == "defaultTemperature" and sampling is not None:
            out["sampling"] = sampling
    out["files"] = files
    out = to_json(out)
    validate_manifest(out, folder_name)
    return out


def check_layers(layers, dim: int | None = None) -> list:
    """Normalized layers [{u, w, b}] (float lists), or ExportError naming the layer and the rule."""
    if hasattr(layers, "to_json"):
        layers = layers.to_json()["layers"]
    if isinstance(layers, dict):
        layers = layers.get("layers")
    if not isinstance(layers, (list, tuple)) or not layers:
        raise ExportError("planar layers: expected a non-empty list of {u, w, b} (planar.json's layers)")
    out = []
    for k, l in enumerate(layers):
        try:
            u = np.asarray(l["u"], np.float64).reshape(-1)
            w = np.asarray(l["w"], np.float64).reshape(-1)
            b = float(l["b"])
        except (KeyError, TypeError, ValueError) as e:
            raise ExportError(f"planar layer {k}: expected {{u: [D numbers], w: [D numbers], b: number}} ({e})") from e
        d = dim if dim is not None else u.size
        if u.size != d or w.size != d:
            raise ExportError(f"planar layer {k}: u has {u.size} and w {w.size} values, the data dimension is {d}")
        if not (np.isfinite(u).all() and np.isfinite(w).all() and math.isfinite(b)):
            raise ExportError(f"planar layer {k}: non-finite u, w or b")
        uw = float(u @ w)
        if not uw > -1:
            raise ExportError(f"planar layer {k}: uᵀw = {uw:.6g} ≤ −1, so the layer is not invertible; reparametrize u "
                              "(Rezende & Mohamed's û = u + (m(wᵀu) − wᵀu)·w/‖w‖², m(a) = −1 + softplus(a))")
        out.append({"u": u.tolist(), "w": w.tolist(), "b": b})
    return out


def _arrays(layers):
    return (np.array([l["u"] for l in layers], np.float64), np.array([l["w"] for l in layers], np.float64),
            np.array([l["b"] for l in layers], np.float64))


def planar_generate(layers, z):
    """latent -> data in float64: (x [N, D], logDet [N] = log|det ∂x/∂z|)."""
    u, w, b = _arrays(layers)
    z = np.array(z, np.float64)
    ld = np.zeros(z.shape[0])
    for k in range(len(b)):
        th = np.tanh(z @ w[k] + b[k])
        z = z + th[:, None] * u[k]
        ld += np.log(np.abs(1 + (1 - th * th) * (u[k] @ w[k])))
    return z, ld


def solve_alpha(y, c: float, b: float, iters: int = NEWTON_ITERS):
    """α with α + c·tanh(α + b) = y per row (c > −1): Newton, bisecting whenever a step leaves the bracket."""
    r = abs(c) + 1e-12
    lo, hi = y - r, y + r
    a = y.copy()
    for _ in range(iters):
        th = np.tanh(a + b)
        g = a + c * th - y
        hi = np.where(g > 0, a, hi)
        lo = np.where(g <= 0, a, lo)
        with np.errstate(all="ignore"):
            nxt = a - g / (1 + c * (1 - th * th))
        bad = (nxt <= lo) | (nxt >= hi) | ~np.isfinite(nxt)
        a = np.where(bad, 0.5 * (lo + hi), nxt)
    return a


def planar_inverse(layers, x):
    """data -> latent in float64: (z [N, D], logDet [N] = log|det ∂z/∂x|), the service's algorithm."""
    u, w, b = _arrays(layers)
    x = np.array(x, np.float64)
    ld = np.zeros(x.shape[0])
    for k in reversed(range(len(b))):
        c = float(u[k] @ w[k])
        alpha = solve_alpha(x @ w[k], c, float(b[k]))
        th = np.tanh(alpha + b[k])
        x = x - th[:, None] * u[k]
        ld -= np.log(np.abs(1 + (1 - th * th) * c))
    return x, ld


def planar_log_prob(layers, x):
    z, ld = planar_inverse(layers, x)
    return log_standard_normal(torch.tensor(z)).numpy() + ld


class Generate(torch.nn.Module):
    """The traced graph: z [N, D] -> (x [N, D], logDet [N]) from fixed layers."""

    def __init__(self, layers: list):
        super().__init__()
        u, w, b = _arrays(layers)
        self.register_buffer("u", torch.tensor(u))
        self.register_buffer("w", torch.tensor(w))
        self.register_buffer("b", torch.tensor(b))
        self.register_buffer("uw", torch.tensor((u * w).sum(1)))

    def forward(self, z):
        ld = torch.zeros_like(z[:, 0])
        for k in range(self.u.shape[0]):
            th = torch.tanh(z @ self.w[k] + self.b[k])
            z = z + th[:, None] * self.u[k]
            ld = ld + torch.log(torch.abs(1 + (1 - th * th) * self.uw[k]))
        return z, ld


def export_planar(layers, manifest: dict, out_dir, reference_inputs, opset: int = 17, sampling_bound=None,
                  sample_count: int = 512, sample_seed: int = 0, log=print) -> dict:
    """Write models/<name>/ for a planar flow. `layers`: planar.json's layers (generation order, uᵀw > −1),
    a {"layers": [...]} dict, or a module with to_json(). `manifest` holds flow.json's fields except
    formatVersion, graphs, program, latent.size, lu, sampling and files. Returns a report of all checks."""
    from . import temperature as temperature_range

    out_dir = Path(out_dir)
    base = check_manifest(manifest, out_dir)
    dim = int(np.prod(base["data"]["shape"]))
    layers = check_layers(layers, dim)
    program = {"kind": "planar", "file": "planar.json", "layers": len(layers)}
    graphs = {"generate": "generate.onnx"}
    program_manifest(base, graphs, program, {f: "0" * 64 for f in ("generate.onnx", "planar.json", "reference.json")},
                     None, out_dir.name)
    if base["preprocessing"]["transform"]["kind"] != "identity" or base["data"]["kind"] != "vector":
        raise ExportError("export_planar: planar flows are exported for vector data with identity preprocessing")
    parts = base["latent"]["parts"]
    if len(parts) != 1:
        raise ExportError("export_planar: one latent part (the generate graph's input z)")
    zname = parts[0]["name"]
    criterion = temperature_range.criterion_for(base["data"], sampling_bound)
    check_runtime()
    name = base["name"]
    temperature = float(base["defaultTemperature"])
    checks = CheckLog()

    x_ref = np.asarray(reference_inputs, np.float64)
    if x_ref.ndim != 2 or x_ref.shape[1] != dim or x_ref.shape[0] == 0:
        raise ExportError(f"reference_inputs: expected N rows of {dim} values; got shape {list(x_ref.shape)}")
    n_ref = x_ref.shape[0]
    z_ref, ld_ref = planar_inverse(layers, x_ref)
    lp_ref = log_standard_normal(torch.tensor(z_ref)).numpy() + ld_ref
    x_rt, ld_gen = planar_generate(layers, z_ref)
    checks.check("float64 round trip |x - generate(inverse(x))|", float(np.max(np.abs(x_rt - x_ref))), 1e-9)
    checks.check("float64 inverse + generate logDet (relative)", _rel(ld_ref + ld_gen, np.zeros(n_ref)), 1e-9)
    g = torch.Generator().manual_seed(sample_seed)
    eps = (temperature * torch.randn(sample_count, dim, generator=g, dtype=torch.float64)).numpy()
    x_s, ld_s = planar_generate(layers, eps)
    z_s, ld_s_inv = planar_inverse(layers, x_s)
    checks.check("float64 sample round trip |ε - inverse(generate(ε))|", _abs1(z_s, eps), 1e-8)
    checks.check("float64 sample logDet sum (relative)", _rel(ld_s + ld_s_inv, np.zeros(sample_count)), 1e-8)
    gen64 = Generate(layers).double()
    gen32 = Generate(layers).float()
    with torch.no_grad():
        x_t, ld_t = gen64(torch.tensor(eps))
        x_t32, ld_t32 = gen32(torch.tensor(z_ref).float())
    checks.check("torch64 generate module vs float64 reference", _abs1(x_t.numpy(), x_s) + _rel(ld_t.numpy(), ld_s), 1e-12)
    if not (np.isfinite(z_ref).all() and np.isfinite(lp_ref).all() and np.isfinite(x_s).all()):
        raise ExportError("non-finite values in the float64 reference (latents, log p or decoded prior samples)")

    with staging_dir(out_dir) as tmp:
        model = onnx_io.trace_to_onnx(gen32, [torch.tensor(eps[:4]).float()], [zname], ["x", "logDet"], [zname, "x", "logDet"],
                                      inverse=False, opset=opset, shapes={zname: ["N", dim], "x": ["N", dim], "logDet": ["N"]})
        got_in, got_out = onnx_io.graph_io(model)
        if got_in != [zname] or got_out != ["x", "logDet"]:
            raise ExportError(f"generate graph io {got_in} -> {got_out}, expected [{zname!r}] -> ['x', 'logDet']")
        if onnx_io.opset_of(model) > 17 or onnx_io.non_standard_ops(model):
            raise ExportError(f"generate graph uses opset {onnx_io.opset_of(model)} / ops {onnx_io.non_standard_ops(model)}")
        onnx.save(model, str(tmp / "generate.onnx"))
        onnx.checker.check_model(str(tmp / "generate.onnx"))
        o_ref, o_s, o_one = run_onnx([(tmp / "generate.onnx", {zname: z_ref}), (tmp / "generate.onnx", {zname: eps}),
                                      (tmp / "generate.onnx", {zname: z_ref[:1]})])
        if o_ref["__inputs__"] != [zname] or o_ref["__outputs__"] != ["x", "logDet"]:
            raise ExportError(f"onnxruntime sees generate io {o_ref['__inputs__']} -> {o_ref['__outputs__']}")
        checks.check("onnx generate(reference latents) vs reference inputs", float(np.max(np.abs(o_ref["x"] - x_ref))), 1e-4)
        checks.check("onnx logDet vs float64 (reference, relative)", _rel(o_ref["logDet"], -ld_ref), 1e-4)
        checks.check("onnx logDet vs torch32 (reference, relative)", _rel(o_ref["logDet"], ld_t32.double().numpy()), 1e-5)
        checks.check("onnx log p vs float64 (relative)",
                     _rel(log_standard_normal(torch.tensor(z_ref)).numpy() - o_ref["logDet"], lp_ref), 1e-4)
        checks.check(f"onnx generate of {sample_count} samples (T={temperature:g}) vs float64", _abs1(o_s["x"], x_s), 1e-4)
        checks.check("onnx sample logDet vs float64 (relative)", _rel(o_s["logDet"], ld_s), 1e-4)
        checks.check("onnx batch 1 == row 0 of batch N", _abs1(o_one["x"], o_ref["x"][:1]) + _rel(o_one["logDet"], o_ref["logDet"][:1]), 1e-5)
        transform = base["preprocessing"]["transform"]
        stability = sample_stability(tmp / "generate.onnx", parts, transform, None, GATE_TEMPERATURES, SAMPLE_COUNT)
        for r in stability:
            t = f"{r['count']} draws T={r['temperature']:g}"
            checks.check(f"onnx {t}: non-finite samples", r["nonFinite"], 0)
            if r["temperature"] <= 1:
                checks.check(f"onnx {t}: max |x|", r["maxAbsX"], r["limit"])
        log(f"[{name}] export checks:\n{checks.table()}")
        if checks.failed:
            raise ExportError(f"{name}: {len(checks.failed)} check(s) failed: " + "; ".join(r["check"] for r in checks.failed))

        measured = temperature_range.measure(tmp / "generate.onnx", parts, transform, criterion)
        t_max = measured["maxTemperature"]
        if t_max is None:
            raise ExportError(f"{name}: sampling is unusable at every temperature: {temperature_range.explain_failure(measured)}")
        log(f"[{name}] usable temperatures (0, {t_max:g}]" + ("" if measured["rows"][-1]["ok"] else
                                                              f": {temperature_range.explain_failure(measured)}"))
        if temperature > t_max:
            raise ExportError(f"{name}: defaultTemperature {temperature:g} is above the measured maximum temperature {t_max:g}")

        (tmp / "planar.json").write_text(json.dumps({"layers": layers}))
        reference = {"dtype": "float64", "inputs": x_ref.tolist(), "latents": z_ref.tolist(),
                     "logDet": ld_ref.tolist(), "logProb": lp_ref.tolist()}
        (tmp / "reference.json").write_text(json.dumps(reference))
        files = {f: _sha256(tmp / f) for f in ("generate.onnx", "planar.json", "reference.json")}
        full = program_manifest(base, graphs, program, files, temperature_range.sampling_block(measured), out_dir.name)
        (tmp / "flow.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        size = sum(p.stat().st_size for p in tmp.iterdir())
    log(f"[{name}] wrote {out_dir} ({size / 1e6:.3f} MB)")
    return {"checks": checks.results, "bytes": size, "files": full["files"], "stability": stability,
            "sampling": full["sampling"], "temperatures": measured["rows"], "manifest": full}
