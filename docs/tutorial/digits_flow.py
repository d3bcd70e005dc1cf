"""Tutorial (docs/tutorial.md): train an 8x8 digits flow from scratch and export it as a flowserve package.

    .venv/bin/python docs/tutorial/digits_flow.py --out my-models/digits-8x8 --data-out my-data

Writes the package to --out and, to --data-out, a few test digits as PNG files (to send to the
server) and the held-out calibration images as an IDX file (for `npm run calibrate -- --data`).
"""
import argparse
import math
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits

from flowexport import ExportError, calibration_block, export_package, transform_forward

# --- data ----------------------------------------------------------------------------------------
# load_digits: 1797 images of 8x8 pixels with 17 grey levels, k = 0..16. flowserve's images are
# b-bit integers k that it maps to (k + 0.5) / 2^b; 17 levels fit no bit depth exactly (bitDepth 4
# has 16 levels and would clip k = 16), so the levels are spread over 8 bits, k8 = round(k * 255 / 16):
# distinct, black stays 0, white becomes 255, and the images are ordinary 8-bit PNGs.
def digits_8bit() -> np.ndarray:
    k = load_digits().images.astype(np.float64)                           # [1797, 8, 8], 0..16
    return np.rint(k * 255 / 16).astype(np.uint8).reshape(-1, 1, 8, 8)    # [N, C, H, W] uint8


def to_data_space(k8: np.ndarray, noise: torch.Generator | None, dtype=torch.float32) -> torch.Tensor:
    """uint8 pixels -> [0, 1]: (k + u) / 256 with u ~ U[0, 1) to train, pixel centres (k + 0.5) / 256 to score."""
    k = torch.tensor(k8, dtype=dtype)
    u = torch.rand(k.shape, generator=noise, dtype=dtype) if noise is not None else 0.5
    return (k + u) / 256


# The model sees y = logit(0.05 + 0.9 x) (preprocessing.transform below): unbounded inputs for
# the couplings, and every decoded sample lands back inside (-0.06, 1.06) whatever the latent.
TRANSFORM = {"kind": "logit", "alpha": 0.05}


# --- the flow ------------------------------------------------------------------------------------
# The exporter's contract, in model input space y = pre(x):
#   flow(y)         -> (z, logdet)   z: the latent part [N, 1, 8, 8]; logdet = log|det dz/dy|, [N]
#   flow.inverse(z) -> (y, logdet)   y [N, 1, 8, 8];                  logdet = log|det dy/dz|, [N]
# Both return tuples of tensors; the batch axis stays dynamic (reshape with -1, zeros_like).
class Coupling(torch.nn.Module):
    """Affine coupling: the pixels where mask = 1 condition a scale and shift of the others."""

    def __init__(self, mask: torch.Tensor, hidden: int):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = torch.nn.Sequential(torch.nn.Linear(64, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, hidden), torch.nn.ReLU(),
                                       torch.nn.Linear(hidden, 128))
        torch.nn.init.zeros_(self.net[-1].weight)  # starts as the identity
        torch.nn.init.zeros_(self.net[-1].bias)

    def scale_shift(self, h):
        s, t = self.net(h * self.mask).chunk(2, dim=1)
        # tanh bounds |log scale| < 1: stable training and a float32 inverse that cannot blow up
        return torch.tanh(s) * (1 - self.mask), t * (1 - self.mask)

    def forward(self, h):
        s, t = self.scale_shift(h)
        return h * torch.exp(s) + t, s.sum(1)

    def inverse(self, h):
        s, t = self.scale_shift(h)  # the conditioning pixels are unchanged, so s and t are the same
        return (h - t) * torch.exp(-s), -s.sum(1)


class DigitsFlow(torch.nn.Module):
    """RealNVP on 8x8 images: couplings with alternating checkerboard masks."""

    def __init__(self, couplings: int = 6, hidden: int = 128):
        super().__init__()
        board = ((torch.arange(8)[:, None] + torch.arange(8)[None, :]) % 2).flatten().float()
        self.couplings = torch.nn.ModuleList(Coupling(board if i % 2 == 0 else 1 - board, hidden) for i in range(couplings))

    def forward(self, y):
        h, logdet = y.reshape(-1, 64), torch.zeros_like(y.reshape(-1, 64)[:, 0])
        for c in self.couplings:
            h, ld = c(h)
            logdet = logdet + ld
        return h.reshape(-1, 1, 8, 8), logdet

    def inverse(self, z):
        h, logdet = z.reshape(-1, 64), torch.zeros_like(z.reshape(-1, 64)[:, 0])
        for c in reversed(self.couplings):
            h, ld = c.inverse(h)
            logdet = logdet + ld
        return h.reshape(-1, 1, 8, 8), logdet


def log_prob(flow, x: torch.Tensor) -> torch.Tensor:
    """log p(x) in nats in data space: log N(z; 0, I) + log|det dz/dy| + log|det dy/dx| (what the service computes)."""
    y, logdet_pre = transform_forward(x, TRANSFORM)
    z, logdet = flow(y)
    log_normal = (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).flatten(1).sum(1)
    return log_normal + logdet + logdet_pre


# --- train ---------------------------------------------------------------------------------------
def train(flow, images: np.ndarray, steps: int, seed: int) -> None:
    noise = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(flow.parameters(), lr=1e-3)
    for step in range(steps):  # a fixed number of steps, never a time budget: reproducible
        batch = images[torch.randint(len(images), (128,), generator=noise).numpy()]
        loss = -log_prob(flow, to_data_space(batch, noise)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % 500 == 0 or step + 1 == steps:
            print(f"step {step + 1}/{steps}: train nll {loss.item():.1f} nats")


# --- files for the server and for calibration ----------------------------------------------------
def write_png(path: Path, pixels: np.ndarray) -> None:
    """An 8-bit greyscale PNG (no imaging library needed)."""
    h, w = pixels.shape
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))
    rows = b"".join(b"\x00" + pixels[i].tobytes() for i in range(h))
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def write_idx(path: Path, images: np.ndarray) -> None:
    """IDX3 (the MNIST file format): magic 2051, count, rows, cols, then uint8 pixels."""
    n, _, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


# --- export --------------------------------------------------------------------------------------
def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, required=True, help="package folder; its name is the model name")
    p.add_argument("--data-out", type=Path, required=True, help="folder for the example PNGs and the held-out IDX file")
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)

    torch.manual_seed(args.seed)
    images = digits_8bit()
    order = np.random.default_rng(args.seed).permutation(len(images))
    train_set, held_out, test_set = images[order[:1400]], images[order[1400:1600]], images[order[1600:]]

    flow = DigitsFlow()
    train(flow, train_set, args.steps, args.seed)
    flow.eval()
    with torch.no_grad():
        test_lp = log_prob(flow, to_data_space(test_set, torch.Generator().manual_seed(1234)))  # one seeded draw
        held_out_nll = -log_prob(flow, to_data_space(held_out, None)).double().numpy()          # pixel centres
    dim = 64
    bpd = -(test_lp.mean().item() - dim * math.log(256)) / (dim * math.log(2))
    print(f"test log-likelihood {test_lp.mean():.2f} nats, {bpd:.3f} bits/dim")

    # Every flow.json field except those the exporter derives (graphs, latent.size, lu, sampling, files).
    manifest = {
        "name": args.out.name,
        "family": "realnvp",
        "description": "Tutorial: RealNVP on sklearn's 8x8 digits (docs/tutorial.md).",
        "data": {"kind": "image", "shape": [1, 8, 8], "range": [0, 1], "bitDepth": 8},
        "preprocessing": {"dequantization": "uniform", "transform": TRANSFORM},
        "latent": {"parts": [{"name": "z", "shape": [1, 8, 8]}]},
        "prior": {"kind": "standard-normal"},
        "defaultTemperature": 0.7,
        "training": {
            "dataset": "sklearn load_digits, 17 levels spread over 8 bits (round(k * 255 / 16))",
            "trainSplit": "permutation(seed)[0:1400]", "steps": args.steps, "seed": args.seed,
            "command": "docs/tutorial/digits_flow.py",
            "test": {"split": "permutation(seed)[1600:1797]", "count": len(test_set),
                     "meanLogLikelihood": test_lp.mean().item(), "bitsPerDim": bpd,
                     "protocol": {"dequantization": "uniform", "draws": 1, "seed": 1234}},
        },
        # nll and typicality statistics plus 101 nll quantiles (/likelihood batchTest) on held-out
        # images the flow never saw; `npm run calibrate` can redo this with every score.
        "calibration": calibration_block(held_out_nll, "permutation(seed)[1400:1600]", target_fpr=0.05),
    }
    reference = to_data_space(test_set[:4], None, torch.float64).reshape(4, -1).numpy()  # checked in float64, stored
    try:
        export_package(flow, manifest, args.out, reference)
    except ExportError as e:
        print(f"export refused: {e}", file=sys.stderr)
        return 1

    args.data_out.mkdir(parents=True, exist_ok=True)
    for i in range(4):
        write_png(args.data_out / f"digit-{i}.png", test_set[i, 0])
    write_idx(args.data_out / "heldout-images-idx3-ubyte", held_out)
    print(f"wrote {args.out} and {args.data_out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
