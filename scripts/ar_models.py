"""Autoregressive flows (MAF, IAF) built from MADE conditioners, written for flowexport.autoregressive.

A conditioner (MADE) maps x [N, D] to (shift, logScale), each [N, D], with output i depending on
x[:, :i] only (natural order; masked weights). logScale is soft-bounded, bound·tanh(raw/bound), so every
inverse stays finite. The flow (ARFlow) follows the program the service runs (src/config/manifest-schema.ts,
AutoregressiveProgram), forward = data -> latent, layers 0..K-1, layer k reading v = u[:, perm_k]:

    MAF  forward (1 pass):  z = (v - shift(v))·exp(-logScale(v)),            logDet -= Σ logScale(v)
         inverse (D passes): v_i = z_i·exp(logScale_i(v)) + shift_i(v)
    IAF  inverse (1 pass):  v = z·exp(logScale(z)) + shift(z),               logDet_inv += Σ logScale(z)
         forward (D passes): z_i = (v_i - shift_i(z))·exp(-logScale_i(z)),   logDet -= Σ logScale(z)

The layer's output (in v's order) is the next layer's input as is. The D-pass loops update the whole
vector each pass; after pass i entries 0..i are exact, and the last pass's logScale is exact too.

    flow(y) -> (z, logdet)          flow.inverse(z) -> (y, logdet)
    flow.kind, flow.conditioners, flow.permutations   (what the exporter reads)
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


class MaskedLinear(nn.Linear):
    def __init__(self, d_in: int, d_out: int, mask: torch.Tensor):
        super().__init__(d_in, d_out)
        self.register_buffer("mask", mask.to(torch.float32))

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """x [N, D] -> (shift [N, D], logScale [N, D]); output i depends on x[:, :i] only."""

    def __init__(self, dim: int, hidden: int = 64, depth: int = 2, bound: float = 3.0):
        super().__init__()
        if dim < 2:
            raise ValueError("MADE needs dim >= 2")
        self.dim, self.bound = dim, float(bound)
        in_deg = torch.arange(1, dim + 1)
        layers, prev = [], in_deg
        for _ in range(depth):
            deg = torch.arange(hidden) % (dim - 1) + 1  # 1..D-1, cyclic: deterministic
            layers.append(MaskedLinear(len(prev), hidden, deg[:, None] >= prev[None, :]))
            prev = deg
        self.hidden = nn.ModuleList(layers)
        out_deg = torch.cat([in_deg, in_deg])  # shift rows, then logScale rows
        self.out = MaskedLinear(len(prev), 2 * dim, out_deg[:, None] > prev[None, :])
        nn.init.zeros_(self.out.weight)  # each layer starts as the identity
        nn.init.zeros_(self.out.bias)

    def forward(self, x):
        h = x
        for layer in self.hidden:
            h = torch.relu(layer(h))
        out = self.out(h)
        shift, raw = out[:, :self.dim], out[:, self.dim:]
        return shift, self.bound * torch.tanh(raw / self.bound)


def permutations_for(dim: int, layers: int, order: str = "reverse", seed: int = 0) -> list:
    """'reverse': every layer reverses (alternating orders); 'random': seeded random permutations."""
    if order == "reverse":
        return [list(range(dim - 1, -1, -1)) for _ in range(layers)]
    g = np.random.default_rng(seed)
    return [g.permutation(dim).tolist() for _ in range(layers)]


class ARFlow(nn.Module):
    def __init__(self, kind: str = "maf", dim: int = 2, layers: int = 5, hidden: int = 64, depth: int = 2,
                 bound: float = 3.0, order: str = "reverse", seed: int = 0):
        super().__init__()
        if kind not in ("maf", "iaf"):
            raise ValueError(kind)
        self.kind, self.dim = kind, dim
        self.conditioners = nn.ModuleList(MADE(dim, hidden, depth, bound) for _ in range(layers))
        self.permutations = permutations_for(dim, layers, order, seed)

    @staticmethod
    def _inv_perm(perm):
        inv = [0] * len(perm)
        for i, p in enumerate(perm):
            inv[p] = i
        return inv

    def forward(self, y):
        u = y
        ld = torch.zeros_like(y[:, 0])
        for made, perm in zip(self.conditioners, self.permutations):
            v = u[:, perm]
            if self.kind == "maf":
                shift, s = made(v)
                z = (v - shift) * torch.exp(-s)
            else:
                z = v
                for _ in range(self.dim):
                    shift, s = made(z)
                    z = (v - shift) * torch.exp(-s)
            ld = ld - s.sum(1)
            u = z
        return u, ld

    def inverse(self, z):
        w = z
        ld = torch.zeros_like(z[:, 0])
        for made, perm in zip(reversed(self.conditioners), reversed(self.permutations)):
            if self.kind == "maf":
                v = w
                for _ in range(self.dim):
                    shift, s = made(v)
                    v = w * torch.exp(s) + shift
            else:
                shift, s = made(w)
                v = w * torch.exp(s) + shift
            ld = ld + s.sum(1)
            w = v[:, self._inv_perm(perm)]
        return w, ld


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
