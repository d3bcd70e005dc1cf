"""Continuous normalizing flows for the flowserve zoo, trained by flow matching.

Velocity net v(x, s): an MLP on [x, s] with tanh hidden layers. Flow matching (Lipman et al. 2023,
conditional OT paths, σ_min = 0): x0 ~ N(0, I), x1 ~ data, s ~ U[0, 1], x_s = (1 − s)·x0 + s·x1,
regress v(x_s, s) on x1 − x0. The learned field carries noise (s = 0) to data (s = 1).

Exported convention (flow.json program kind "ode"): forward (data -> latent) integrates
dx/dt = f(x, t) from t = 0 (data) to t = 1 (latent), so f(x, t) = −v(x, 1 − t), and
div f = −tr ∂v/∂x, computed exactly: ∂v/∂x = W_L·diag(σ'(h_{L−1}))·W_{L−1}···diag(σ'(h_1))·W_1[:, :D],
a product of explicit per-row matrices (no autograd), traced to plain MatMul/Mul ONNX ops.
"""
from __future__ import annotations

import torch


class VelocityMLP(torch.nn.Module):
    def __init__(self, dim: int = 2, hidden: int = 128, depth: int = 3):
        super().__init__()
        sizes = [dim + 1] + [hidden] * depth + [dim]
        self.dim = dim
        self.linears = torch.nn.ModuleList(torch.nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:]))

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        h = torch.cat([x, s[:, None]], 1)
        for lin in self.linears[:-1]:
            h = torch.tanh(lin(h))
        return self.linears[-1](h)

    def with_jacobian(self, x: torch.Tensor, s: torch.Tensor):
        """(v [N, D], J = ∂v/∂x [N, D, D]) by explicit products of layer Jacobians. The running product is
        kept transposed, m[n, i, j] = ∂h_j/∂x_i [N, D, H], so each layer is one [N·D, H] x [H, H] matmul."""
        h = torch.cat([x, s[:, None]], 1)
        first = self.linears[0]
        m = None
        for i, lin in enumerate(self.linears[:-1]):
            h = torch.tanh(lin(h))
            d = (1 - h * h)[:, None, :]  # tanh', [N, 1, H]
            if i == 0:
                m = first.weight[:, : self.dim].t() * d                  # [D, H] * [N, 1, H]
            else:
                m = torch.matmul(m, lin.weight.t()) * d                  # [N, D, H] @ [H, H]
        last = self.linears[-1]
        return last(h), torch.matmul(m, last.weight.t()).transpose(1, 2)  # [N, D_out, D_in]


class Dynamics(torch.nn.Module):
    """The exported graph `dynamics`: (x [N, D], t [N]) -> (dx [N, D], div [N]) with
    f(x, t) = −v(x, 1 − t) and div = tr ∂f/∂x (exact)."""

    def __init__(self, velocity: VelocityMLP):
        super().__init__()
        self.velocity = velocity

    def forward(self, x: torch.Tensor, t: torch.Tensor):
        v, jac = self.velocity.with_jacobian(x, 1 - t)
        eye = torch.eye(x.shape[1], dtype=x.dtype)
        div = -(jac * eye).sum((1, 2))
        return -v, div


def flow_matching_loss(net: VelocityMLP, x1: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x0 = torch.randn(x1.shape, generator=gen, dtype=x1.dtype)
    s = torch.rand(x1.shape[0], generator=gen, dtype=x1.dtype)
    xs = (1 - s[:, None]) * x0 + s[:, None] * x1
    return (net(xs, s) - (x1 - x0)).pow(2).sum(1).mean()


def count_parameters(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())
