"""Planar flows (Rezende & Mohamed 2015) for the flowserve zoo.

Generative direction (latent -> data), layer 0 first:
    z_{k+1} = z_k + û_k·tanh(w_kᵀz_k + b_k),   log|det| = log|1 + (1 − tanh²(w_kᵀz_k + b_k))·û_kᵀw_k|
with û = u + (m(wᵀu) − wᵀu)·w/‖w‖², m(a) = −1 + softplus(a + log(e − 1)), so ûᵀw = m(wᵀu) > −1
(invertible). The shift log(e − 1) (not in Rezende & Mohamed's m) makes m(0) = 0: a layer with small u
starts near the identity instead of contracting along w by 1 − log 2.

Density (data -> latent), layers from last to first: with y = wᵀx and c = ûᵀw, solve
    g(α) = α + c·tanh(α + b) − y = 0          (g' = 1 + c·(1 − tanh²) > 0: one root, in [y − |c|, y + |c|])
by bracketed Newton, then z = x − û·tanh(α + b).

Training by maximum likelihood: α is solved under torch.no_grad() (safeguarded Newton, float64),
then ONE Newton step is taken with gradients enabled from the detached root α*:
    α = α* − g(α*; θ, x)/g'(α*; θ, x).
At the root g = 0, so dα/dθ = −(∂g/∂θ)/g' exactly: the implicit-function gradient, at the cost of
one extra step, with nothing differentiated through the iterations.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

NEWTON_ITERS = 60
SHIFT = math.log(math.e - 1)  # m(0) = 0


def solve_alpha(y: torch.Tensor, c: torch.Tensor, b: torch.Tensor, iters: int = NEWTON_ITERS) -> torch.Tensor:
    """Root α of α + c·tanh(α + b) = y per row (c > −1), bracketed Newton; no gradients."""
    with torch.no_grad():
        r = c.abs() + 1e-12
        lo, hi = y - r, y + r
        a = y.clone()
        for _ in range(iters):
            th = torch.tanh(a + b)
            g = a + c * th - y
            hi = torch.where(g > 0, a, hi)
            lo = torch.where(g <= 0, a, lo)
            dg = 1 + c * (1 - th * th)
            nxt = a - g / dg
            bad = (nxt <= lo) | (nxt >= hi) | ~torch.isfinite(nxt)
            a = torch.where(bad, 0.5 * (lo + hi), nxt)
        return a


class PlanarFlow(torch.nn.Module):
    def __init__(self, dim: int = 2, layers: int = 32, init_scale: float = 0.01, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.dim, self.layers = dim, layers
        self.u = torch.nn.Parameter(init_scale * torch.randn(layers, dim, generator=g))
        self.w = torch.nn.Parameter(torch.randn(layers, dim, generator=g) / math.sqrt(dim))
        self.b = torch.nn.Parameter(torch.zeros(layers))

    def u_hat(self) -> torch.Tensor:
        """[K, D] reparametrized u with ûᵀw > −1."""
        wu = (self.w * self.u).sum(1, keepdim=True)
        m = -1 + F.softplus(wu + SHIFT)
        return self.u + (m - wu) * self.w / (self.w * self.w).sum(1, keepdim=True)

    def generate(self, z: torch.Tensor):
        """latent -> data: (x [N, D], logDet [N] = log|det ∂x/∂z|)."""
        u = self.u_hat()
        ld = z.new_zeros(z.shape[0])
        for k in range(self.layers):
            a = z @ self.w[k] + self.b[k]
            th = torch.tanh(a)
            z = z + th[:, None] * u[k]
            ld = ld + torch.log(torch.abs(1 + (1 - th * th) * (u[k] @ self.w[k])))
        return z, ld

    def encode(self, x: torch.Tensor):
        """data -> latent: (z [N, D], logDet [N] = log|det ∂z/∂x| = −Σ layer log-dets); differentiable
        through the implicit-function step (module docstring)."""
        u = self.u_hat()
        ld = x.new_zeros(x.shape[0])
        for k in reversed(range(self.layers)):
            w, b, uk = self.w[k], self.b[k], u[k]
            c = uk @ w
            y = x @ w
            a0 = solve_alpha(y.detach(), c.detach(), b.detach())
            th0 = torch.tanh(a0 + b)
            alpha = a0 - (a0 + c * th0 - y) / (1 + c * (1 - th0 * th0))
            th = torch.tanh(alpha + b)
            x = x - th[:, None] * uk
            ld = ld - torch.log(torch.abs(1 + (1 - th * th) * c))
        return x, ld

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z, ld = self.encode(x)
        return (-0.5 * z.pow(2) - 0.5 * math.log(2 * math.pi)).sum(1) + ld

    def to_json(self) -> dict:
        """planar.json: layers in generation order, û (ûᵀw > −1), float64 values."""
        with torch.no_grad():
            u = self.u_hat().double()
            return {"layers": [{"u": u[k].tolist(), "w": self.w[k].double().tolist(), "b": float(self.b[k])}
                               for k in range(self.layers)]}


class PlanarGenerate(torch.nn.Module):
    """The exported graph `generate`: z [N, D] -> (x [N, D], logDet [N]), from fixed layers (û, w, b)."""

    def __init__(self, layers: list):
        super().__init__()
        self.register_buffer("u", torch.tensor([l["u"] for l in layers], dtype=torch.float64))
        self.register_buffer("w", torch.tensor([l["w"] for l in layers], dtype=torch.float64))
        self.register_buffer("b", torch.tensor([float(l["b"]) for l in layers], dtype=torch.float64))

    def forward(self, z):
        ld = z.new_zeros(z.shape[0])
        uw = (self.u * self.w).sum(1)
        for k in range(self.u.shape[0]):
            th = torch.tanh(z @ self.w[k] + self.b[k])
            z = z + th[:, None] * self.u[k]
            ld = ld + torch.log(torch.abs(1 + (1 - th * th) * uw[k]))
        return z, ld


def count_parameters(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
