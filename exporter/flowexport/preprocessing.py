"""Data space <-> model input space, exactly as docs/model-package.md defines them.

    identity: y = x                                    log|dy/dx| = 0
    affine:   y = scale*x + shift                      log|dy/dx| = D*log|scale|
    logit:    s = a + (1-2a)*x,  y = log s - log(1-s)  log|dy/dx| = sum[log(1-2a) - log s - log(1-s)]

The service computes these in TypeScript; the exporter uses the same formulas (in float64) for the
reference values and for training, so the numbers agree by construction.
"""
from __future__ import annotations

import math

import torch


def transform_forward(x: torch.Tensor, transform: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """x [N, ...] in data space -> (y [N, ...] in model input space, log|det dy/dx| [N])."""
    kind = transform["kind"]
    n, d = x.shape[0], x[0].numel()
    if kind == "identity":
        return x, x.new_zeros(n)
    if kind == "affine":
        a, b = float(transform["scale"]), float(transform["shift"])
        return a * x + b, x.new_full((n,), d * math.log(abs(a)))
    if kind == "logit":
        alpha = float(transform["alpha"])
        s = alpha + (1 - 2 * alpha) * x
        y = torch.log(s) - torch.log1p(-s)
        ld = (math.log(1 - 2 * alpha) - torch.log(s) - torch.log1p(-s)).reshape(n, -1).sum(1)
        return y, ld
    raise ValueError(f"unknown transform kind {kind!r}")


def transform_inverse(y: torch.Tensor, transform: dict) -> torch.Tensor:
    """Model input space -> data space (the service's decode path)."""
    kind = transform["kind"]
    if kind == "identity":
        return y
    if kind == "affine":
        return (y - float(transform["shift"])) / float(transform["scale"])
    if kind == "logit":
        alpha = float(transform["alpha"])
        return (torch.sigmoid(y) - alpha) / (1 - 2 * alpha)
    raise ValueError(f"unknown transform kind {kind!r}")


def log_standard_normal(z: torch.Tensor) -> torch.Tensor:
    """sum_i log N(z_i; 0, 1) over all but the batch axis."""
    return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).reshape(z.shape[0], -1).sum(1)


def bits_per_dim(log_prob: float, dim: int, bit_depth: int | None) -> float:
    """bpd of a data-space log density (nats): -(log p - D*b*ln2)/(D*ln2); vectors: -log p/(D*ln2)."""
    discretization = 0.0 if bit_depth is None else dim * bit_depth * math.log(2)
    return -(log_prob - discretization) / (dim * math.log(2))
