"""Build a flowserve model package (docs/model-package.md) from a PyTorch flow, or refuse to.

The contract (flowexport.contract checks it on every call and says what came back when it is broken).
The flow module works in *model input space* y = pre(x) and provides:

    flow(y, *w)                  -> (*latent_parts, logdet)   forward, logdet = log|det dz/dy| [N]
    flow.inverse(*parts, *w_inv) -> (y, logdet)               inverse, logdet = log|det dy/dz| [N]

with y [N, *data.shape] and latent part i [N, *latent.parts[i].shape], always a tuple of tensors,
where w / w_inv are the 1x1-conv matrices built from `lu_layers` (Glow; empty otherwise). The
graph log-dets exclude the preprocessing and LU terms; the reference values include them:

    logDet  = logdet_pre(x) + logdet_graph(y) + sum_k spatial_k * sum(logS_k)
    logProb = sum log N(latents; 0, 1) + logDet

Before anything is traced, the complete manifest is validated against flow.json's JSON Schema
(generated from the service's own schema) and the service's load-time rules (flowexport.manifest).

Checks (any failure -> ExportError, the target folder is left untouched):
  * PyTorch float64: data-space round trip and forward+inverse log-det ~ 0
  * ONNX (onnxruntime-node, float32) vs PyTorch float64 on the reference inputs: latents, log p
    (PyTorch float32 must also be within the latent tolerance: how much float32 rounding the flow
    amplifies), and the ONNX graph log-det vs PyTorch float32
  * ONNX data-space round trip, ONNX forward+inverse log-det ~ 0, batch-1 == batch-N rows
  * ONNX inverse vs PyTorch float64 inverse on prior samples at the default temperature
  * sampling stability (flowexport.stability): 512 standard-normal draws at T = 1 and T = 2 through
    the ONNX inverse; every output finite, and max |x| <= 1e4 in data space at T = 1
  * the usable temperature range (flowexport.temperature), written as `sampling`: refused when not
    even T = 0.05 is usable, or when defaultTemperature exceeds the measured maximum
Everything is written to a temporary sibling folder and renamed into place only when all pass.
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
import torch

from . import onnx_io
from .contract import call_forward, call_inverse
from .errors import ExportError
from .manifest import schema, to_json, validate_manifest
from .ort import check_runtime, run_onnx
from .preprocessing import log_standard_normal, transform_forward, transform_inverse
from .stability import ABS_LIMIT, GATE_TEMPERATURES, SAMPLE_COUNT, sample_stability

FORMAT_VERSION = 1
# flow.json fields the exporter derives; a caller's values for them are replaced
DERIVED = ("formatVersion", "graphs", "lu", "files", "sampling")


@dataclass
class Tolerances:
    roundtrip: float = 1e-4     # max |x - decode(encode(x))|, data space, ONNX float32
    latent: float = 1e-4        # |z_onnx - z_ref| <= latent * (1 + |z_ref|)  (includes float32 conditioning)
    same_precision: float = 1e-5  # ONNX vs PyTorch float32 log-det (relative): isolates export bugs
    log_prob: float = 1e-4      # |lp_onnx - lp_ref| <= log_prob * max(1, |lp_ref|)
    logdet_sum: float = 1e-4    # |ld_fwd + ld_inv| <= logdet_sum * max(1, |ld_fwd|)  (ONNX)
    sample: float = 1e-4        # ONNX vs float64 inverse of prior samples, data space, * (1 + |x|)
    float64: float = 1e-8       # PyTorch float64 self-consistency (same forms)
    sample_abs: float = ABS_LIMIT  # max |x| (data space) of the stability draws; any non-finite fails


@dataclass
class CheckLog:
    results: list = field(default_factory=list)

    def check(self, name: str, value: float, limit: float) -> None:
        ok = bool(np.isfinite(value) and value <= limit)
        self.results.append({"check": name, "value": float(value), "limit": float(limit), "ok": ok})

    @property
    def failed(self) -> list:
        return [r for r in self.results if not r["ok"]]

    def table(self) -> str:
        return "\n".join(f"  {'ok  ' if r['ok'] else 'FAIL'} {r['check']:<46} {r['value']:.3e} <= {r['limit']:.1e}" for r in self.results)


def _rel(a, b, floor=1.0):
    """max |a-b| / max(floor, |b|): an absolute error for small values, relative for large ones."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(floor, np.abs(b))))


def _abs1(a, b):
    """max |a-b| / (1 + |b|)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / (1.0 + np.abs(b))))


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _split_parts(flat: np.ndarray, parts: list) -> list:
    out, o = [], 0
    for p in parts:
        size = int(np.prod(p["shape"]))
        out.append(flat[:, o:o + size].reshape(flat.shape[0], *p["shape"]))
        o += size
    return out


def complete_manifest(manifest: dict, lu_count: int, files: dict, sampling: dict | None = None) -> dict:
    """flow.json from the caller's fields plus the derived ones, in the documented order. Tolerates a
    malformed manifest (missing or wrong fields stay missing or wrong) so that validation can name them."""
    m = manifest
    latent = m.get("latent")
    if isinstance(latent, dict):
        latent = dict(latent)
        try:
            latent["size"] = int(sum(int(np.prod(p["shape"])) for p in latent["parts"])) or 1
        except (KeyError, TypeError, ValueError):
            latent["size"] = 1  # the malformed parts are reported by validation
    full = {"formatVersion": FORMAT_VERSION}
    for key in ("name", "family"):
        if key in m:
            full[key] = m[key]
    full["description"] = m.get("description", "")
    for key in ("data", "preprocessing"):
        if key in m:
            full[key] = m[key]
    full["graphs"] = {"forward": "forward.onnx", "inverse": "inverse.onnx", "weights": "weights.bin"}
    if latent is not None:
        full["latent"] = latent
    full["lu"] = {"file": "lu.json", "layers": lu_count} if lu_count else None
    for key in ("prior", "defaultTemperature"):
        if key in m:
            full[key] = m[key]
    if sampling is not None:
        full["sampling"] = sampling
    if "training" in m:
        full["training"] = m["training"]
    full["calibration"] = m.get("calibration")
    full["files"] = files
    return to_json(full)


def check_manifest(manifest: dict, out_dir=None, lu_count: int = 0) -> dict:
    """Validate the caller's manifest as the complete flow.json it will become (ExportError naming every
    violated rule); returns that flow.json without files and sampling. Runs before anything is traced."""
    if not isinstance(manifest, dict):
        raise ExportError(f"manifest must be a dict of flow.json fields (docs/model-package.md); got {type(manifest).__name__}")
    unknown = sorted(set(manifest) - set(schema()["properties"]))
    if unknown:
        raise ExportError(f"manifest has unknown field(s) {', '.join(repr(k) for k in unknown)}; flow.json's fields are "
                          f"{', '.join(schema()['properties'])} (docs/model-package.md)")
    full = complete_manifest(manifest, lu_count, {})
    validate_manifest(full, Path(out_dir).name if out_dir is not None else None)
    return full


@contextmanager
def staging_dir(out_dir: Path):
    """A temporary sibling folder, renamed onto out_dir when the block completes, removed when it raises:
    a refused export leaves out_dir untouched."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def export_package(flow: torch.nn.Module, manifest: dict, out_dir, reference_inputs, lu_layers=(),
                   opset: int = 17, tolerances: Tolerances | None = None, sample_count: int = 8,
                   sample_seed: int = 0, max_package_bytes: int | None = None,
                   stability_temperatures=GATE_TEMPERATURES, stability_count: int = SAMPLE_COUNT,
                   sampling_bound=None, log=print) -> dict:
    """Write models/<name>/ from `flow`. `manifest` holds every flow.json field except formatVersion,
    graphs, latent.size, lu, sampling and files, which are derived here (values given for them are
    replaced); its `name` must be out_dir's folder name. `sampling_bound` ([low, high], data space) is
    the temperature criterion's bound for data without a range (vectors), e.g. the training data's box
    widened by its width (flowexport.temperature.box_bound); default ±1e4. Returns a report of all checks."""
    from . import temperature as temperature_range  # here: keeps `python3 -m flowexport.temperature` free of a double import

    tol = tolerances or Tolerances()
    out_dir = Path(out_dir)
    lu_layers = list(lu_layers)
    base = check_manifest(manifest, out_dir, len(lu_layers))
    criterion = temperature_range.criterion_for(base["data"], sampling_bound)
    check_runtime()  # node + onnxruntime-node, before minutes of tracing
    name = base["name"]
    data_shape = list(base["data"]["shape"])
    dim = int(np.prod(data_shape))
    parts = base["latent"]["parts"]
    part_names = [p["name"] for p in parts]
    transform = base["preprocessing"]["transform"]
    temperature = float(base["defaultTemperature"])
    w_names = [f"w_{i}" for i in range(len(lu_layers))]
    w_inv_names = [f"wInv_{i}" for i in range(len(lu_layers))]
    lu_logdet = sum(f.logdet() for f in lu_layers)
    w64 = [torch.tensor(f.w(), dtype=torch.float64) for f in lu_layers]
    w_inv64 = [torch.tensor(f.w_inv(), dtype=torch.float64) for f in lu_layers]
    checks = CheckLog()

    flow64 = copy.deepcopy(flow).double().eval()
    flow32 = copy.deepcopy(flow).float().eval()

    # --- reference values, PyTorch float64 through the modules that get exported -----------------
    x_ref = np.asarray(reference_inputs, np.float64)
    if x_ref.ndim == 0 or x_ref.size == 0 or x_ref.size % dim:
        raise ExportError(f"reference_inputs: expected N rows of {dim} data-space values (data.shape {data_shape}); "
                          f"got an array of shape {list(x_ref.shape)}")
    x_ref = x_ref.reshape(-1, dim)
    n_ref = x_ref.shape[0]
    with torch.no_grad():
        x64 = torch.tensor(x_ref).reshape(n_ref, *data_shape)
        y64, ld_pre = transform_forward(x64, transform)
        z64, ld_graph = call_forward(flow64, y64, w64, parts)
        latents = torch.cat([z.reshape(n_ref, -1) for z in z64], 1)
        logdet = ld_pre + ld_graph + lu_logdet
        logprob = log_standard_normal(latents) + logdet
        # float64 self-consistency
        y_back, ld_inv = call_inverse(flow64, z64, w_inv64, data_shape)
        checks.check("torch64 round trip |x - x'| (data space)", (transform_inverse(y_back, transform) - x64).abs().max().item(), tol.float64)
        checks.check("torch64 fwd + inv logdet (relative)", (ld_graph + ld_inv).abs().max().item() / max(1.0, ld_graph.abs().max().item()), tol.float64)
        # prior samples at the default temperature (truth for the ONNX inverse)
        g = torch.Generator().manual_seed(sample_seed)
        eps = temperature * torch.randn(sample_count, dim, generator=g, dtype=torch.float64)
        eps_parts = [torch.tensor(p) for p in _split_parts(eps.numpy(), parts)]
        y_s, ld_s = call_inverse(flow64, eps_parts, w_inv64, data_shape)
        x_s = transform_inverse(y_s, transform)
        z_s, ld_s_fwd = call_forward(flow64, y_s, w64, parts)
        checks.check("torch64 sample latent round trip", _abs1(torch.cat([z.reshape(sample_count, -1) for z in z_s], 1), eps), tol.float64 * 100)
    if not (torch.isfinite(latents).all() and torch.isfinite(logprob).all() and torch.isfinite(x_s).all()):
        raise ExportError("non-finite values in the float64 reference (latents, log p or decoded prior samples)")

    # --- graphs ------------------------------------------------------------------------------------
    with staging_dir(out_dir) as tmp:
        y32 = y64.float()
        w32 = [w.float() for w in w64]
        w_inv32 = [w.float() for w in w_inv64]
        z32 = [z.float() for z in z64]
        with torch.no_grad():
            z_t32, ld_t32 = call_forward(flow32, y32, w32, parts)
        z_t32 = torch.cat([z.reshape(n_ref, -1) for z in z_t32], 1).double().numpy()
        c_shapes = {k: [f.channels, f.channels] for k, f in zip(w_names + w_inv_names, lu_layers + lu_layers)}
        io_shapes = {"x": ["N", *data_shape], "logDet": ["N"], **{p["name"]: ["N", *p["shape"]] for p in parts}, **c_shapes}
        batch_axes = ["x", *part_names, "logDet"]
        fwd = onnx_io.trace_to_onnx(flow32, [y32, *w32], ["x", *w_names], [*part_names, "logDet"],
                                    batch_axes, inverse=False, opset=opset, shapes=io_shapes)
        inv = onnx_io.trace_to_onnx(flow32, [*z32, *w_inv32], [*part_names, *w_inv_names], ["x", "logDet"],
                                    batch_axes, inverse=True, opset=opset, shapes=io_shapes)
        for label, model, want_in, want_out in (("forward", fwd, ["x", *w_names], [*part_names, "logDet"]),
                                                ("inverse", inv, [*part_names, *w_inv_names], ["x", "logDet"])):
            got_in, got_out = onnx_io.graph_io(model)
            if got_in != want_in or got_out != want_out:
                raise ExportError(f"{label} graph io {got_in} -> {got_out}, expected {want_in} -> {want_out}")
            if onnx_io.opset_of(model) > 17 or onnx_io.non_standard_ops(model):
                raise ExportError(f"{label} graph uses opset {onnx_io.opset_of(model)} / ops {onnx_io.non_standard_ops(model)}")
        blob = onnx_io.externalize_shared([fwd, inv], "weights.bin")
        (tmp / "weights.bin").write_bytes(blob)
        onnx.save(fwd, str(tmp / "forward.onnx"))
        onnx.save(inv, str(tmp / "inverse.onnx"))
        for g_name in ("forward.onnx", "inverse.onnx"):
            onnx.checker.check_model(str(tmp / g_name))

        # --- ONNX (float32, onnxruntime-node) vs PyTorch float64 ----------------------------------
        w_feeds = {k: v.numpy() for k, v in zip(w_names, w64)}
        w_inv_feeds = {k: v.numpy() for k, v in zip(w_inv_names, w_inv64)}
        f_all, f_one = run_onnx([
            (tmp / "forward.onnx", {"x": y64.numpy(), **w_feeds}),
            (tmp / "forward.onnx", {"x": y64[:1].numpy(), **w_feeds}),
        ])
        for r, want_in, want_out in ((f_all, ["x", *w_names], [*part_names, "logDet"]),):
            if r["__inputs__"] != want_in or r["__outputs__"] != want_out:
                raise ExportError(f"onnxruntime sees forward io {r['__inputs__']} -> {r['__outputs__']}")
        z_onnx = np.concatenate([f_all[p].reshape(n_ref, -1) for p in part_names], 1)
        ld_onnx = f_all["logDet"]
        lp_onnx = log_standard_normal(torch.tensor(z_onnx)).numpy() + ld_pre.numpy() + ld_onnx + lu_logdet
        # float32 latents of a deep flow differ from float64 by rounding amplified through the layers;
        # PyTorch float32 shows how much of the ONNX difference is that (both must pass tol.latent)
        checks.check("torch32 latents vs torch64 (float32 conditioning)", _abs1(z_t32, latents.numpy()), tol.latent)
        checks.check("onnx graph logDet vs torch32 (relative)", _rel(ld_onnx, ld_t32.double().numpy()), tol.same_precision)
        checks.check("onnx latents vs torch64", _abs1(z_onnx, latents.numpy()), tol.latent)
        checks.check("onnx log p vs torch64 (relative)", _rel(lp_onnx, logprob.numpy()), tol.log_prob)
        checks.check("onnx graph logDet vs torch64 (relative)", _rel(ld_onnx, ld_graph.numpy()), tol.log_prob)
        one = np.concatenate([f_one[p].reshape(1, -1) for p in part_names], 1)
        checks.check("onnx batch 1 == row 0 of batch N", _abs1(one, z_onnx[:1]) + _rel(f_one["logDet"], ld_onnx[:1]), 1e-5)

        i_rt, i_s = run_onnx([
            (tmp / "inverse.onnx", {**{p: f_all[p] for p in part_names}, **w_inv_feeds}),
            (tmp / "inverse.onnx", {**{p: v.numpy() for p, v in zip(part_names, eps_parts)}, **w_inv_feeds}),
        ])
        if i_rt["__inputs__"] != [*part_names, *w_inv_names] or i_rt["__outputs__"] != ["x", "logDet"]:
            raise ExportError(f"onnxruntime sees inverse io {i_rt['__inputs__']} -> {i_rt['__outputs__']}")
        x_rt = transform_inverse(torch.tensor(i_rt["x"]), transform).numpy().reshape(n_ref, -1)
        checks.check("onnx round trip |x - x'| (data space)", float(np.max(np.abs(x_rt - x_ref))), tol.roundtrip)
        checks.check("onnx fwd + inv logDet (relative)", float(np.max(np.abs(ld_onnx + i_rt["logDet"]) / np.maximum(1, np.abs(ld_onnx)))), tol.logdet_sum)
        x_s_onnx = transform_inverse(torch.tensor(i_s["x"]), transform).numpy()
        checks.check(f"onnx inverse of {sample_count} samples (T={temperature}) vs torch64", _abs1(x_s_onnx, x_s.numpy()), tol.sample)
        checks.check("onnx inverse logDet of samples (relative)", _rel(i_s["logDet"], ld_s.numpy()), tol.log_prob)
        # sampling stability: the service decodes N(0, T^2) draws for any 0 < T <= 2
        stability = sample_stability(tmp / "inverse.onnx", parts, transform, w_inv_feeds, stability_temperatures,
                                     stability_count, tol.sample_abs)
        for r in stability:
            t = f"{r['count']} draws T={r['temperature']:g}"
            checks.check(f"onnx {t}: non-finite samples", r["nonFinite"], 0)
            if r["temperature"] <= 1:  # above T = 1 only finiteness is required (stability.py)
                checks.check(f"onnx {t}: max |x| (data space)", r["maxAbsX"], tol.sample_abs)

        log(f"[{name}] export checks:\n{checks.table()}")
        if checks.failed:
            raise ExportError(f"{name}: {len(checks.failed)} check(s) failed: " + "; ".join(r["check"] for r in checks.failed))

        # --- usable temperature range (`sampling`) ----------------------------------------------------
        measured = temperature_range.measure(tmp / "inverse.onnx", parts, transform, criterion, w_inv_feeds)
        t_max = measured["maxTemperature"]
        if t_max is None:
            raise ExportError(f"{name}: sampling is unusable at every temperature: "
                              f"{temperature_range.explain_failure(measured)}. The inverse blows up or lands far from the "
                              f"data even for T = {criterion['grid']}; bound its scales (docs/model-package.md, Sampling)")
        log(f"[{name}] usable temperatures (0, {t_max:g}]: " + (temperature_range.explain_failure(measured)
            if not measured["rows"][-1]["ok"] else "every grid point up to 2"))
        if temperature > t_max:
            raise ExportError(f"{name}: defaultTemperature {temperature:g} is above the measured maximum temperature "
                              f"{t_max:g} ({temperature_range.explain_failure(measured)}); choose defaultTemperature <= {t_max:g}")

        # --- side files and manifest ----------------------------------------------------------------
        if lu_layers:
            (tmp / "lu.json").write_text(json.dumps({"layers": [f.to_json(i) for i, f in enumerate(lu_layers)]}))
        reference = {"dtype": "float64", "inputs": x_ref.tolist(), "latents": latents.numpy().tolist(),
                     "logDet": logdet.numpy().tolist(), "logProb": logprob.numpy().tolist()}
        (tmp / "reference.json").write_text(json.dumps(reference))
        files = ["forward.onnx", "inverse.onnx", "weights.bin"] + (["lu.json"] if lu_layers else []) + ["reference.json"]
        full = complete_manifest(manifest, len(lu_layers), {f: _sha256(tmp / f) for f in files},
                                 temperature_range.sampling_block(measured))
        validate_manifest(full, out_dir.name)
        (tmp / "flow.json").write_text(json.dumps(full, indent=2, ensure_ascii=False) + "\n")
        size = sum(p.stat().st_size for p in tmp.iterdir())
        if max_package_bytes is not None and size > max_package_bytes:
            raise ExportError(f"{name}: package is {size} bytes, limit {max_package_bytes}")
    log(f"[{name}] wrote {out_dir} ({size / 1e6:.2f} MB)")
    return {"checks": checks.results, "bytes": size, "files": full["files"], "stability": stability,
            "sampling": full["sampling"], "temperatures": measured["rows"], "manifest": full}
