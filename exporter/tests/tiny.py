"""Tiny flows and manifests for the exporter's tests: exact, instant, exportable."""
from __future__ import annotations

import copy
import math

import torch


class Scale(torch.nn.Module):
    """z = y / a elementwise (forward), y = a·z (inverse): log|det dz/dy| = −D·log a. With a fixed, the
    decoded sample of draw ε at temperature T is exactly a·T·ε, so the usable range is computable."""

    def __init__(self, a: float, dim: int = 2):
        super().__init__()
        self.register_buffer("a", torch.tensor(float(a)))
        self.dim = dim

    def forward(self, y):
        return y / self.a, torch.zeros_like(y[:, 0]) - self.dim * torch.log(self.a)

    def inverse(self, z):
        return z * self.a, torch.zeros_like(z[:, 0]) + self.dim * torch.log(self.a)


def vector_manifest(name: str = "tiny", dim: int = 2, **over) -> dict:
    m = {
        "name": name,
        "family": "realnvp",
        "description": "test flow",
        "data": {"kind": "vector", "shape": [dim], "range": None, "bitDepth": None},
        "preprocessing": {"dequantization": "none", "transform": {"kind": "identity"}},
        "latent": {"parts": [{"name": "z", "shape": [dim]}]},
        "prior": {"kind": "standard-normal"},
        "defaultTemperature": 0.5,
        "training": {"dataset": "synthetic", "test": {"meanLogLikelihood": -1.0, "bitsPerDim": None,
                                                      "protocol": {"dequantization": "none"}}},
        "calibration": None,
    }
    m.update(over)
    return m


def image_manifest(name: str = "tiny-image", **over) -> dict:
    m = vector_manifest(name, 4)
    m["data"] = {"kind": "image", "shape": [1, 2, 2], "range": [0, 1], "bitDepth": 8}
    m["latent"] = {"parts": [{"name": "z", "shape": [1, 2, 2]}]}
    m["preprocessing"] = {"dequantization": "uniform", "transform": {"kind": "affine", "scale": 1, "shift": -0.5}}
    m.update(over)
    return copy.deepcopy(m)


def reference(dim: int = 2, n: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, dim, generator=g, dtype=torch.float64).numpy() - 0.5


def log_normal(z):
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1)
