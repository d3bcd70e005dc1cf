"""Logistic latents as standard-normal ones: the element-wise map a flow trained with a logistic prior
(NICE's) appends to its forward graph, so that the service's latents stay N(0, 1).

    forward   z = Φ⁻¹(σ(l))                     log|dz/dl| = log σ(l) + log σ(−l) − log φ(z)
    inverse   l = logit Φ(z) = log Φ(z) − log Φ(−z)   log|dl/dz| = −(the same)

so log N(z) + log|dz/dl| = log Logistic(l): the density of the data is unchanged. Everything is
written with element-wise ops ONNX has (opset 17 has no erfinv or erfc), in log space so that no
tail underflows: NICE's scaled pixels reach |l| ≈ 1000, where σ(−|l|) = e^−1000 is below even
float64's range.

    log Φ(x), x ≤ 0:  log ½ + log erfc(−x/√2), with log erfc(y) = log t − y² + P(t), t = 1/(1 + y/2)
                      (Numerical Recipes' erfcc, relative error < 1.2e-7 for every y ≥ 0: float32's)
    Φ⁻¹(p), p ≤ ½:    Acklam's rational start (from log p, so any tail works), then Newton steps on
                      log Φ(x) = log p with the log Φ above; forward and inverse thus agree on one
                      log Φ, and the round trip holds to float32 rounding at every |l|.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

LOG_HALF = math.log(0.5)
HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
SQRT_HALF = math.sqrt(0.5)
NEWTON_STEPS = 3

# Numerical Recipes (2nd ed., 6.2) erfcc: erfc(y) ≈ t·exp(−y² + P(t)), t = 1/(1 + y/2)
_ERFCC = (-1.26551223, 1.00002368, 0.37409196, 0.09678418, -0.18628806,
          0.27886807, -1.13520398, 1.48851587, -0.82215223, 0.17087277)
# Acklam's inverse normal CDF, lower region (p < 0.02425) and central region
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00)
P_LOW = 0.02425


def _horner(coeffs, x):
    acc = torch.full_like(x, coeffs[0])
    for c in coeffs[1:]:
        acc = acc * x + c
    return acc


def log_erfc(y: torch.Tensor) -> torch.Tensor:
    """log erfc(y) for y ≥ 0 (callers pass |·|): never underflows."""
    t = 1.0 / (1.0 + 0.5 * y)
    return torch.log(t) - y * y + _horner(_ERFCC[::-1], t)


def log_ndtr_lower(x: torch.Tensor) -> torch.Tensor:
    """log Φ(x) for x ≤ 0."""
    return LOG_HALF + log_erfc(-x * SQRT_HALF)


def _ndtri_lower_start(log_p: torch.Tensor) -> torch.Tensor:
    """Acklam's Φ⁻¹(p) for p ≤ ½ given log p; both regions computed on safe inputs, then chosen."""
    p = torch.exp(log_p)
    q_tail = torch.sqrt(-2.0 * torch.clamp(log_p, max=math.log(P_LOW)))
    tail = _horner(_C, q_tail) / (_horner(_D + (1.0,), q_tail))
    q = torch.clamp(p, min=P_LOW) - 0.5
    r = q * q
    central = _horner(_A, r) * q / _horner(_B + (1.0,), r)
    return torch.where(p < P_LOW, tail, central)


def ndtri_lower(log_p: torch.Tensor) -> torch.Tensor:
    """Φ⁻¹(p) for log p ≤ log ½, refined by Newton on log Φ(x) = log p (concave: converges from Acklam's start)."""
    x = torch.clamp(_ndtri_lower_start(log_p), max=0.0)
    for _ in range(NEWTON_STEPS):
        log_cdf = log_ndtr_lower(x)
        log_pdf = -0.5 * x * x - HALF_LOG_2PI
        x = torch.clamp(x - (log_cdf - log_p) * torch.exp(log_cdf - log_pdf), max=0.0)
    return x


def logistic_to_normal(l: torch.Tensor):
    """z = Φ⁻¹(σ(l)) element-wise, and log|dz/dl| per element."""
    a = torch.abs(l)
    x = ndtri_lower(-F.softplus(a))  # Φ⁻¹(σ(−|l|)) ≤ 0
    z = torch.where(l > 0, -x, x)
    logdet = -F.softplus(l) - F.softplus(-l) + 0.5 * z * z + HALF_LOG_2PI
    return z, logdet


def normal_to_logistic(z: torch.Tensor):
    """l = logit Φ(z) element-wise, and log|dl/dz| per element."""
    a = torch.abs(z)
    small = log_ndtr_lower(-a)  # log Φ(−|z|)
    big = torch.log(1.0 - torch.exp(small))  # log Φ(|z|) = log(1 − Φ(−|z|)); no expm1 in ONNX, and Φ(−|z|) ≤ ½ loses nothing
    l = torch.where(z > 0, big - small, small - big)
    logdet = -0.5 * z * z - HALF_LOG_2PI + F.softplus(l) + F.softplus(-l)
    return l, logdet


class StandardNormalLatents(torch.nn.Module):
    """A coupling flow trained with a logistic prior on its latent parts, seen with standard-normal
    latents: the map above appended to its forward and prepended to its inverse, log-dets included,
    so that the exported graphs keep the service's contract (flowexport.contract)."""

    def __init__(self, flow: torch.nn.Module, parts: int = 1):
        super().__init__()
        self.flow = flow
        self.parts = parts

    def forward(self, y, *w):
        *latents, logdet = self.flow(y, *w)
        out = []
        for l in latents:
            z, ld = logistic_to_normal(l)
            out.append(z)
            logdet = logdet + ld.flatten(1).sum(1)
        return (*out, logdet)

    def inverse(self, *args):
        latents, w_inv = args[:self.parts], args[self.parts:]
        logdet = 0
        mapped = []
        for z in latents:
            l, ld = normal_to_logistic(z)
            mapped.append(l)
            logdet = logdet + ld.flatten(1).sum(1)
        y, ld_flow = self.flow.inverse(*mapped, *w_inv)
        return y, ld_flow + logdet
