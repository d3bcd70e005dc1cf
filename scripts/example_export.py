#!/usr/bin/env python3
"""Minimal worked example: train a tiny 2-D flow for a few seconds and export it as a flowserve package.

    /usr/bin/python3 scripts/example_export.py models/my-moons

The flow has two affine couplings on (a, b) = (x0, x1):

    forward:  b' = b * exp(s(a)) + t(a),   then   a' = a * exp(s'(b')) + t'(b')
    log|det| = s(a) + s'(b')                 (inverse: undo in reverse order, negated log-det)

The package serves it like any zoo model: encode/decode, log-likelihood, sampling. docs/tutorial.md
is the longer walk-through (an image flow, served and calibrated).
"""
import math
import sys
from pathlib import Path

import torch
from sklearn.datasets import make_moons

# the exporter library of this checkout; unnecessary once it is installed (pip install -e exporter)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "exporter"))
from flowexport import ExportError, box_bound, calibration_block, export_package  # noqa: E402


class Coupling(torch.nn.Module):
    """Transforms b given a; the flow swaps the arguments to alternate roles."""

    def __init__(self):
        super().__init__()
        self.net = torch.nn.Sequential(torch.nn.Linear(1, 32), torch.nn.ReLU(), torch.nn.Linear(32, 2))

    def forward(self, a, b):  # returns (a, b', log|det|)
        s, t = self.net(a).chunk(2, dim=1)
        s = torch.tanh(s)  # bounded scale: stable training, safe float32 inverse
        return a, b * torch.exp(s) + t, s.sum(1)

    def inverse(self, a, b):
        s, t = self.net(a).chunk(2, dim=1)
        s = torch.tanh(s)
        return a, (b - t) * torch.exp(-s), -s.sum(1)


class TinyFlow(torch.nn.Module):
    """The exporter's contract: flow(y) -> (z, logdet) and flow.inverse(z) -> (y, logdet), tuples of
    tensors with y, z [N, 2] and logdet [N]. Latent part "z" has shape [2]; graphs get a dynamic batch axis."""

    def __init__(self):
        super().__init__()
        self.c1, self.c2 = Coupling(), Coupling()

    def forward(self, y):
        a, b = y[:, :1], y[:, 1:]
        a, b, ld1 = self.c1(a, b)   # b changes given a
        b, a, ld2 = self.c2(b, a)   # a changes given b
        return torch.cat([a, b], 1), ld1 + ld2

    def inverse(self, z):
        a, b = z[:, :1], z[:, 1:]
        b, a, ld2 = self.c2.inverse(b, a)
        a, b, ld1 = self.c1.inverse(a, b)
        return torch.cat([a, b], 1), ld1 + ld2


def log_prob(flow, x):
    z, ld = flow(x)
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1) + ld


def main(out_dir: str) -> int:
    torch.manual_seed(0)
    data, _ = make_moons(n_samples=12000, noise=0.05, random_state=0)
    data = torch.tensor(data, dtype=torch.float32)
    train, calib, test = data[:10000], data[10000:11000], data[11000:]

    flow = TinyFlow()
    opt = torch.optim.Adam(flow.parameters(), lr=3e-3)
    for step in range(1500):  # a few seconds on one CPU core
        batch = train[torch.randint(0, len(train), (256,))]
        loss = -log_prob(flow, batch).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    with torch.no_grad():
        test_lp = log_prob(flow, test).double()
        calib_nll = -log_prob(flow, calib).double().numpy()
    print(f"test log-likelihood {test_lp.mean():.3f} nats")

    # Everything in flow.json except what the exporter derives (graphs, latent size, lu, files).
    manifest = {
        "name": Path(out_dir).name,
        "family": "realnvp",
        "description": "Example: two affine couplings on two moons (scripts/example_export.py).",
        "data": {"kind": "vector", "shape": [2], "range": None, "bitDepth": None},
        "preprocessing": {"dequantization": "none", "transform": {"kind": "identity"}},
        "latent": {"parts": [{"name": "z", "shape": [2]}]},
        "prior": {"kind": "standard-normal"},
        "defaultTemperature": 1.0,
        "training": {
            "dataset": "two-moons", "epochs": 1500 * 256 / len(train), "seed": 0,
            "command": f"/usr/bin/python3 scripts/example_export.py {out_dir}",
            "test": {"split": "test", "count": len(test), "meanLogLikelihood": float(test_lp.mean()),
                     "bitsPerDim": float(-test_lp.mean() / (2 * math.log(2))),
                     "protocol": {"dequantization": "none"}},
        },
        "calibration": calibration_block(calib_nll, split="calibration (1000 points)"),
    }
    try:
        # Traces forward and inverse to ONNX, checks them with onnxruntime against float64 PyTorch,
        # and only then writes the folder.
        # sampling_bound: the temperature criterion's data-space box for vectors (no data.range)
        export_package(flow, manifest, out_dir, reference_inputs=test[:5].double().numpy(),
                       sampling_bound=box_bound(train.numpy()))
    except ExportError as e:
        print(f"refused: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(sys.argv[1]))
