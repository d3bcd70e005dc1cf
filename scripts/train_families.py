#!/usr/bin/env python3
"""Train, evaluate, calibrate and export the zoo's 2-D/vector models beyond the coupling scripts:
autoregressive flows (MAF, IAF; scripts/ar_models.py, flowexport.autoregressive) and the RealNVP
baseline on the checkerboard.

    /usr/bin/python3 scripts/train_families.py maf-checker                 # train + export to models/maf-checker
    /usr/bin/python3 scripts/train_families.py maf-digits --export-only    # re-export from scripts/.cache/maf-digits.pt
    /usr/bin/python3 scripts/train_families.py iaf-checker --train-only

Reproducible: fixed seeds, fixed epochs (never wall-clock budgets), CPU, one thread. Data
(scripts/flow_data.py): checkerboard_splits(0) (55000 train / 5000 calibration / 10000 test; best
possible test mean log-likelihood log(1/8) = -2.0794 nats) and digits_splits(0) (sklearn 8x8 digits as
64-D continuous vectors (k+u)/17, 1257 / 180 / 360). Test figure: mean log p(x) in nats on the full
test split (continuous data, protocol {dequantization: none}); calibration: nll on the calibration
split (never trained on). Sampling bound: the training data's box widened by its width.
"""
from __future__ import annotations

import argparse
import math
import os
import sys

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exporter"))
import flow_data  # noqa: E402
from ar_models import ARFlow, count_parameters  # noqa: E402
from flow_models import VectorRealNVP  # noqa: E402
from flowexport import (ExportError, box_bound, calibration_block, export_package,  # noqa: E402
                        log_standard_normal, transform_forward)

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / "scripts" / ".cache"
MAX_PACKAGE_BYTES = 2 * 1024 * 1024

DATASETS = {
    "checkerboard": dict(splits=flow_data.checkerboard_splits, calibration="calibration (checkerboard pool[55000:60000])",
                         train_split="checkerboard pool[0:55000]", dim=2),
    "digits": dict(splits=flow_data.digits_splits, calibration="calibration (digits shuffled[1257:1437])",
                   train_split="digits shuffled[0:1257]", dim=64),
}

MODELS = {
    "realnvp-checker": dict(
        family="realnvp", dataset="checkerboard", transform={"kind": "identity"}, temperature=1.0,
        arch=dict(dim=2, couplings=8, hidden=128, depth=2),
        epochs=40, batch=256, lr=3e-3, warmup=100, clip=50.0, seed=0,
        description="RealNVP on the 2-D checkerboard (8 squares of [-2, 2]^2, best possible -2.079 nats): 8 affine "
                    "couplings with alternating roles, tanh-bounded scales, 2x128 ReLU MLPs; the baseline against "
                    "maf-checker / iaf-checker. Standard-normal latent.",
    ),
    "maf-checker": dict(
        family="maf", dataset="checkerboard", transform={"kind": "identity"}, temperature=1.0,
        arch=dict(kind="maf", dim=2, layers=8, hidden=128, depth=2, bound=3.0, order="reverse"),
        epochs=40, batch=256, lr=3e-3, warmup=100, clip=50.0, seed=0,
        description="MAF on the 2-D checkerboard: 8 MADE layers (2x128 ReLU, masked), reversed order between layers, "
                    "logScale bounded by 3 tanh(raw/3). Density in one pass per layer; sampling in 2 passes per layer.",
    ),
    "iaf-checker": dict(
        family="iaf", dataset="checkerboard", transform={"kind": "identity"}, temperature=1.0,
        arch=dict(kind="iaf", dim=2, layers=8, hidden=128, depth=2, bound=3.0, order="reverse"),
        epochs=40, batch=256, lr=3e-3, warmup=100, clip=50.0, seed=0,
        description="IAF on the 2-D checkerboard, trained by maximum likelihood: 8 MADE layers (2x128 ReLU, masked) "
                    "conditioned on the latent side, reversed order between layers, logScale bounded by 3 tanh(raw/3). "
                    "Sampling in one pass per layer; density in 2 passes per layer.",
    ),
    # maf-digits: depth and epochs chosen on a split of the training set alone (train[0:1057] fit,
    # train[1057:1257] scored; cosine schedule as below): 5x128 layers 40/60/100 epochs 44.1/49.2/53.6 nats,
    # 5x64 (weight decay 1e-4) 39.9/46.5/52.5, 8x128 48.6/54.2/57.2, 8x128 150 epochs 42.8 (overfits)
    "maf-digits": dict(
        family="maf", dataset="digits", transform={"kind": "identity"}, temperature=0.6,
        arch=dict(kind="maf", dim=64, layers=8, hidden=128, depth=2, bound=3.0, order="reverse"),
        epochs=100, batch=128, lr=1e-3, warmup=100, clip=50.0, seed=0, weight_decay=1e-5,
        description="MAF on scikit-learn's 8x8 digits as 64-D continuous vectors (k+u)/17: 8 MADE layers (2x128 ReLU, "
                    "masked), reversed order between layers, logScale bounded by 3 tanh(raw/3). Density in one pass per "
                    "layer; sampling in 64 passes per layer.",
    ),
}


def build(cfg: dict) -> torch.nn.Module:
    return VectorRealNVP(**cfg["arch"]) if cfg["family"] == "realnvp" else ARFlow(**cfg["arch"])


def load_splits(cfg: dict) -> dict:
    return DATASETS[cfg["dataset"]]["splits"](cfg["seed"])


def log_prob(model, x: torch.Tensor, cfg: dict) -> torch.Tensor:
    y, ld_pre = transform_forward(x, cfg["transform"])
    z, ld = model(y)
    return log_standard_normal(z) + ld + ld_pre


@torch.no_grad()
def evaluate(model, data, cfg: dict, batch: int = 1000) -> np.ndarray:
    """float64 log p(x) (the exported reference's precision)."""
    m = build(cfg)
    m.load_state_dict(model.state_dict())
    m = m.double().eval()
    x = torch.tensor(np.asarray(data), dtype=torch.float64)
    return torch.cat([log_prob(m, x[i:i + batch], cfg) for i in range(0, len(x), batch)]).numpy()


def train(cfg: dict, ckpt_path: Path, log=print) -> dict:
    torch.manual_seed(cfg["seed"])
    np.random.seed(cfg["seed"])
    torch.set_num_threads(1)
    splits = load_splits(cfg)
    train_data = torch.tensor(splits["train"], dtype=torch.float32)
    dim = train_data.shape[1]
    model = build(cfg)
    params = count_parameters(model)
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg.get("weight_decay", 0.0))
    steps_per_epoch = len(train_data) // cfg["batch"]
    total = steps_per_epoch * cfg["epochs"]
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg["warmup"]) * 0.5 * (1 + math.cos(math.pi * min(s, total) / total)))
    gen = torch.Generator().manual_seed(cfg["seed"])
    log(f"[{cfg['name']}] {params} parameters, {cfg['epochs']} epochs x {steps_per_epoch} steps, batch {cfg['batch']}, 1 thread")
    start = time.time()
    step = 0
    for epoch in range(cfg["epochs"]):
        model.train()
        perm = torch.randperm(len(train_data), generator=gen)
        running, seen = 0.0, 0
        for i in range(steps_per_epoch):
            x = train_data[perm[i * cfg["batch"]:(i + 1) * cfg["batch"]]]
            nll = -log_prob(model, x, cfg).mean()
            opt.zero_grad(set_to_none=True)
            (nll / dim).backward()
            gnorm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg["clip"])
            if not torch.isfinite(nll) or not torch.isfinite(gnorm):
                raise RuntimeError(f"non-finite loss/gradient at step {step}")
            opt.step()
            sched.step()
            step += 1
            running, seen = running + nll.item(), seen + 1
        if (epoch + 1) % max(1, cfg["epochs"] // 20) == 0 or epoch == cfg["epochs"] - 1:
            log(f"  epoch {epoch + 1} step {step}/{total} train nll {running / seen:.4f} nats "
                f"lr {sched.get_last_lr()[0]:.2e} |g| {gnorm:.1f} {time.time() - start:.0f}s", flush=True)
    seconds = time.time() - start
    lp_test = evaluate(model, splits["test"], cfg)
    lp_calib = evaluate(model, splits["calibration"], cfg)
    test_fig = {"split": "test", "count": int(len(lp_test)), "meanLogLikelihood": float(lp_test.mean()),
                "bitsPerDim": float(-lp_test.mean() / (dim * math.log(2))), "protocol": {"dequantization": "none"}}
    calibration = calibration_block(-lp_calib, DATASETS[cfg["dataset"]]["calibration"])
    log(f"[{cfg['name']}] trained in {seconds:.1f}s; test {test_fig['meanLogLikelihood']:.4f} nats "
        f"({len(lp_test)} points); calibration nll threshold {calibration['scores']['nll']['threshold']:.3f}", flush=True)
    ckpt = {"name": cfg["name"], "state": model.state_dict(), "arch": cfg["arch"], "parameters": params,
            "seconds": seconds, "epochs": cfg["epochs"], "steps": total, "test": test_fig, "calibration": calibration,
            "torch": torch.__version__}
    torch.save(ckpt, ckpt_path)
    return ckpt


def effective_parameters(model) -> int | None:
    """Trainable values minus the weights MADE masks hold at zero (None for flows without masks)."""
    masks = [m.mask for m in model.modules() if hasattr(m, "mask")]
    if not masks:
        return None
    return int(count_parameters(model) - sum(int((1 - m).sum()) for m in masks))


def manifest_for(cfg: dict, ckpt: dict, model=None) -> dict:
    dim = DATASETS[cfg["dataset"]]["dim"]
    effective = effective_parameters(model) if model is not None else None
    out = {
        "name": cfg["name"], "family": cfg["family"], "description": cfg["description"],
        "data": {"kind": "vector", "shape": [dim], "range": None, "bitDepth": None},
        "preprocessing": {"dequantization": "none", "transform": cfg["transform"]},
        "latent": {"parts": [{"name": "z", "shape": [dim]}]},
        "prior": {"kind": "standard-normal"},
        "defaultTemperature": cfg["temperature"],
        "training": {
            "dataset": cfg["dataset"], "trainSplit": DATASETS[cfg["dataset"]]["train_split"],
            "epochs": ckpt["epochs"], "steps": ckpt["steps"], "batchSize": cfg["batch"], "seed": cfg["seed"],
            "optimizer": f"adam lr {cfg['lr']} (warmup {cfg['warmup']} steps, cosine decay), grad-norm clip {cfg['clip']}"
                         + (f", weight decay {cfg['weight_decay']}" if cfg.get("weight_decay") else ""),
            "architecture": dict(cfg["arch"]), "parameters": ckpt["parameters"], "device": "cpu (1 thread)",
            "seconds": round(ckpt["seconds"], 1), "command": f"/usr/bin/python3 scripts/train_families.py {cfg['name']}",
            "framework": f"pytorch {ckpt['torch']}", "test": ckpt["test"],
        },
        "calibration": ckpt["calibration"],
    }
    if effective is not None:
        out["training"]["effectiveParameters"] = effective  # parameters counts the masked-out weights too
    return out


def export(cfg: dict, ckpt: dict, out_dir: Path, log=print) -> dict:
    model = build(cfg)
    model.load_state_dict(ckpt["state"])
    model.eval()
    splits = load_splits(cfg)
    ref = np.asarray(splits["test"][:5], np.float64)
    bound = box_bound(splits["train"])
    manifest = manifest_for(cfg, ckpt, model)
    if cfg["family"] == "realnvp":
        return export_package(model, manifest, out_dir, ref, opset=17, max_package_bytes=MAX_PACKAGE_BYTES,
                              sampling_bound=bound, log=log)
    from flowexport.autoregressive import export_autoregressive

    return export_autoregressive(model, manifest, out_dir, ref, opset=17, max_package_bytes=MAX_PACKAGE_BYTES,
                                 sampling_bound=bound, log=log)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("model", choices=sorted(MODELS))
    p.add_argument("--export-only", action="store_true", help="export from the saved checkpoint, no training")
    p.add_argument("--train-only", action="store_true", help="train and save the checkpoint, no export")
    p.add_argument("--out", type=Path, help="package folder (default models/<model>)")
    args = p.parse_args(argv)
    cfg = {**MODELS[args.model], "name": args.model}
    CACHE.mkdir(parents=True, exist_ok=True)
    ckpt_path = CACHE / f"{args.model}.pt"
    if args.export_only:
        if not ckpt_path.exists():
            print(f"no checkpoint at {ckpt_path}; train first", file=sys.stderr)
            return 1
        ckpt = torch.load(ckpt_path)
    else:
        ckpt = train(cfg, ckpt_path)
    if args.train_only:
        return 0
    torch.set_num_threads(1)
    try:
        export(cfg, ckpt, (args.out or ROOT / "models" / args.model).resolve())
    except ExportError as e:
        print(f"export refused: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
