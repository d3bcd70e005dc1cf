"""The flowserve zoo: NICE, RealNVP and Glow, written to export cleanly to ONNX.

Every flow maps model-input-space y to standard-normal latents and follows the flowexport interface:

    flow(y, *w)                  -> (*latent_parts, logdet)    log|det dz/dy|, [N]
    flow.inverse(*parts, *w_inv) -> (y, logdet)                log|det dy/dz|, [N]

Export-friendly conventions: the batch axis is always written as -1 in reshapes (so it stays
dynamic), per-sample log-dets start from zeros_like(...) (never a traced constant size), learned
priors are folded in as a final standardizing bijection, and Glow's 1x1 convolutions take their
matrix as an argument (built from LU factors outside the graph; see flowexport.lu).
Imported by scripts/train.py, which puts this checkout's exporter/ on sys.path.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from flowexport import LUFactors, lu_decompose


def zeros_per_sample(x: torch.Tensor) -> torch.Tensor:
    """[N] zeros whose length follows x's batch axis in the exported graph."""
    return torch.zeros_like(x.flatten(1)[:, 0])


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """[N, C, H, W] -> [N, 4C, H/2, W/2]; each 2x2 block becomes 4 channels."""
    _, c, h, w = x.shape
    x = x.reshape(-1, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(-1, c * 4, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    _, c, h, w = x.shape
    x = x.reshape(-1, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(-1, c // 4, h * 2, w * 2)


def mlp(d_in: int, hidden: int, depth: int, d_out: int) -> nn.Sequential:
    """depth hidden ReLU layers; the last layer starts at zero so each coupling starts as identity."""
    layers, d = [], d_in
    for _ in range(depth):
        layers += [nn.Linear(d, hidden), nn.ReLU()]
        d = hidden
    last = nn.Linear(d, d_out)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(*layers, last)


# ================================================================================================
# RealNVP on vectors (two moons)
#   y_b' = y_b * exp(s(y_a)) + t(y_a),  s = tanh-bounded,  log-det = sum s;  roles alternate.
# ================================================================================================
class VectorRealNVP(nn.Module):
    def __init__(self, dim: int = 2, couplings: int = 6, hidden: int = 64, depth: int = 2):
        super().__init__()
        assert dim % 2 == 0
        self.dim = dim
        self.nets = nn.ModuleList(mlp(dim // 2, hidden, depth, dim) for _ in range(couplings))
        self.scale = nn.Parameter(torch.ones(couplings, dim // 2))  # bound of tanh(s)

    def _st(self, i, cond):
        s, t = self.nets[i](cond).chunk(2, dim=1)
        return self.scale[i] * torch.tanh(s), t

    def forward(self, y):
        a, b = y[:, 0::2], y[:, 1::2]  # dims paired (even, odd)
        ld = zeros_per_sample(y)
        for i in range(len(self.nets)):
            if i % 2 == 0:
                s, t = self._st(i, a)
                b = b * torch.exp(s) + t
            else:
                s, t = self._st(i, b)
                a = a * torch.exp(s) + t
            ld = ld + s.sum(1)
        return torch.stack([a, b], 2).reshape(-1, self.dim), ld

    def inverse(self, z):
        a, b = z[:, 0::2], z[:, 1::2]
        ld = zeros_per_sample(z)
        for i in reversed(range(len(self.nets))):
            if i % 2 == 0:
                s, t = self._st(i, a)
                b = (b - t) * torch.exp(-s)
            else:
                s, t = self._st(i, b)
                a = (a - t) * torch.exp(-s)
            ld = ld - s.sum(1)
        return torch.stack([a, b], 2).reshape(-1, self.dim), ld


# ================================================================================================
# NICE (Dinh et al. 2014), MNIST setup
#   even/odd partition, additive couplings  b' = b + m(a)  (roles alternate, log-det 0),
#   diagonal scaling  z = exp(s) * h  (log-det sum s), standard-normal prior.
# ================================================================================================
class NICE(nn.Module):
    def __init__(self, shape=(1, 28, 28), couplings: int = 4, hidden: int = 1000, depth: int = 5, prior: str = "gaussian"):
        super().__init__()
        if prior not in ("gaussian", "logistic"):
            raise ValueError(f"prior must be gaussian or logistic, got {prior}")
        # "logistic": the paper's prior on z, log p(z) = -softplus(z) - softplus(-z) per dimension
        # (train.py's log_prob); exporting it needs the map to a standard-normal latent in the graphs
        self.prior = prior
        self.shape = tuple(shape)
        self.dim = int(np.prod(shape))
        half = self.dim // 2
        self.nets = nn.ModuleList(mlp(half, hidden, depth, half) for _ in range(couplings))
        self.log_scale = nn.Parameter(torch.zeros(self.dim))

    def forward(self, y):
        h = y.reshape(-1, self.dim // 2, 2)
        a, b = h[:, :, 0], h[:, :, 1]  # even pixels, odd pixels
        for i, net in enumerate(self.nets):
            if i % 2 == 0:
                b = b + net(a)
            else:
                a = a + net(b)
        h = torch.stack([a, b], 2).reshape(-1, self.dim)
        z = h * torch.exp(self.log_scale)
        return z.reshape(-1, *self.shape), zeros_per_sample(y) + self.log_scale.sum()

    def inverse(self, z):
        h = (z.reshape(-1, self.dim) * torch.exp(-self.log_scale)).reshape(-1, self.dim // 2, 2)
        a, b = h[:, :, 0], h[:, :, 1]
        for i in reversed(range(len(self.nets))):
            if i % 2 == 0:
                b = b - self.nets[i](a)
            else:
                a = a - self.nets[i](b)
        y = torch.stack([a, b], 2).reshape(-1, *self.shape)
        return y, zeros_per_sample(z) - self.log_scale.sum()


# ================================================================================================
# RealNVP (Dinh et al. 2017), multi-scale
#   affine coupling  y_b = y_b * exp(s) + t,  (s, t) = NN(y_a),  s = scale * tanh(.),  log-det sum s
#   scale block: squeeze, 3 checkerboard couplings, 3 channel-wise couplings, factor out half;
#   final block: 4 checkerboard couplings (masked, at the coarsest resolution).
#   Checkerboard couplings of a scale block run on the space-to-depth view: pixel (2i+dy, 2j+dx)
#   is channel 4c + 2dy + dx of the squeezed tensor, so the checkerboard colour (dy+dx) mod 2 is a
#   channel group ({0,3} vs {1,2}). Same masks and bijection as the paper's, but the coupling nets
#   run at half resolution (4x cheaper on CPU). Factored-out parts have a standard-normal prior.
# ================================================================================================
def conv_net(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    """3x3 -> ReLU -> 1x1 -> ReLU -> 3x3 (zero init, so the coupling starts as identity)."""
    last = nn.Conv2d(hidden, c_out, 3, padding=1)
    nn.init.zeros_(last.weight)
    nn.init.zeros_(last.bias)
    return nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(hidden, hidden, 1), nn.ReLU(), last)


class GroupCoupling(nn.Module):
    """Affine coupling where the channels in `cond` condition the others (given by channel index)."""

    def __init__(self, channels: int, cond: list, hidden: int):
        super().__init__()
        other = [i for i in range(channels) if i not in cond]
        order = list(cond) + other
        self.register_buffer("cond_idx", torch.tensor(cond, dtype=torch.long))
        self.register_buffer("other_idx", torch.tensor(other, dtype=torch.long))
        self.register_buffer("restore_idx", torch.tensor([order.index(i) for i in range(channels)], dtype=torch.long))
        self.net = conv_net(len(cond), hidden, 2 * len(other))
        self.scale = nn.Parameter(torch.ones(1, len(other), 1, 1))

    def _st(self, cond):
        s, t = self.net(cond).chunk(2, dim=1)
        return self.scale * torch.tanh(s), t

    def forward(self, y):
        cond, other = y[:, self.cond_idx], y[:, self.other_idx]
        s, t = self._st(cond)
        return torch.cat([cond, other * torch.exp(s) + t], 1)[:, self.restore_idx], s.flatten(1).sum(1)

    def inverse(self, z):
        cond, other = z[:, self.cond_idx], z[:, self.other_idx]
        s, t = self._st(cond)
        return torch.cat([cond, (other - t) * torch.exp(-s)], 1)[:, self.restore_idx], -s.flatten(1).sum(1)


def checkerboard_groups(c: int, parity: int) -> list:
    """Channels of the squeezed view holding the checkerboard colour `parity` of each input channel."""
    return [4 * k + q for k in range(c) for q in ((0, 3) if parity == 0 else (1, 2))]


class CheckerboardCoupling(nn.Module):
    """Masked checkerboard coupling at the tensor's own resolution (used where it cannot squeeze)."""

    def __init__(self, channels: int, size: int, parity: int, hidden: int):
        super().__init__()
        ij = torch.arange(size)
        mask = ((ij[:, None] + ij[None, :]) % 2 == parity).float()
        self.register_buffer("mask", mask.expand(1, channels, size, size).clone())
        # the mask is an extra input channel: zero padding alone does not tell the net the colour
        self.net = conv_net(channels + 1, hidden, 2 * channels)
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def _st(self, ym):
        m1 = torch.zeros_like(ym[:, :1]) + self.mask[:, :1]
        s, t = self.net(torch.cat([ym, m1], 1)).chunk(2, dim=1)
        inv = 1 - self.mask
        return self.scale * torch.tanh(s) * inv, t * inv

    def forward(self, y):
        ym = y * self.mask
        s, t = self._st(ym)
        return ym + (1 - self.mask) * (y * torch.exp(s) + t), s.flatten(1).sum(1)

    def inverse(self, z):
        zm = z * self.mask
        s, t = self._st(zm)
        return zm + (1 - self.mask) * ((z - t) * torch.exp(-s)), -s.flatten(1).sum(1)


class RealNVP(nn.Module):
    """For [C, S, S] inputs with S divisible by 2**scales; latent parts z0..z{scales}.
    hidden: coupling-net widths, one per group (scale checkerboard, scale channel-wise, ..., final)."""

    def __init__(self, shape=(1, 28, 28), scales: int = 2, hidden=(64, 64, 96, 96, 96), per_block: int = 3, final: int = 4):
        super().__init__()
        c, size = shape[0], shape[1]
        hidden = list(hidden) + [hidden[-1]] * (2 * scales + 1)
        self.blocks = nn.ModuleList()
        self.part_shapes = []
        k = 0
        for _ in range(scales):
            layers = [GroupCoupling(4 * c, checkerboard_groups(c, p % 2), hidden[k]) for p in range(per_block)]
            layers += [GroupCoupling(4 * c, list(range(2 * c)) if p % 2 == 0 else list(range(2 * c, 4 * c)), hidden[k + 1])
                       for p in range(per_block)]
            self.blocks.append(nn.ModuleList(layers))
            k += 2
            c, size = 4 * c, size // 2
            self.part_shapes.append([c // 2, size, size])  # factored out
            c //= 2
        self.final = nn.ModuleList(CheckerboardCoupling(c, size, p % 2, hidden[k]) for p in range(final))
        self.part_shapes.append([c, size, size])

    def forward(self, y):
        ld = zeros_per_sample(y)
        h, parts = y, []
        for block in self.blocks:
            h = squeeze(h)
            for layer in block:
                h, d = layer(h)
                ld = ld + d
            half = h.shape[1] // 2
            parts.append(h[:, :half])
            h = h[:, half:]
        for layer in self.final:
            h, d = layer(h)
            ld = ld + d
        return (*parts, h, ld)

    def inverse(self, *parts):
        h = parts[-1]
        ld = zeros_per_sample(h)
        for layer in reversed(self.final):
            h, d = layer.inverse(h)
            ld = ld + d
        for block, z in zip(reversed(self.blocks), reversed(parts[:-1])):
            h = torch.cat([z, h], 1)
            for layer in reversed(block):
                h, d = layer.inverse(h)
                ld = ld + d
            h = unsqueeze(h)
        return h, ld


# ================================================================================================
# Glow (Kingma & Dhariwal 2018), with bounded log-scales so that sampling (the inverse) stays finite
#   step = actnorm -> invertible 1x1 conv (LU) -> affine coupling
#   actnorm:   y = (x + b) * exp(logs)                 log-det  H*W*sum logs  (data-dependent init)
#   1x1 conv:  y = W x,  W = P L (U + diag(sign*exp(logs)))   log-det H*W*sum logs (added OUTSIDE the graph)
#   coupling:  y_b = (x_b + t) * exp(log s),  log s = B * tanh(r / B),  (t, r) = NN(x_a)   log-det sum log s
#              (Glow's sigmoid(r + 2) scale is unbounded below, so its inverse, which divides by it,
#              turned prior draws into Inf/NaN; here the inverse multiplier is at most e^B per coupling)
#   level:     squeeze -> K steps -> split; split prior N(mu(h), sigma(h)) standardized in-graph:
#              eps = (z - mu) / sigma, log-det -sum log sigma.  Top: learned per-position mu, sigma.
#              log sigma = min(v, P * tanh(v / P)): v itself below 0, softly capped at P above, so the
#              inverse z = mu + sigma * eps never scales a draw by more than e^P (small sigma stays free).
# ================================================================================================
def soft_bound(v: torch.Tensor, bound: float) -> torch.Tensor:
    """bound * tanh(v / bound): slope 1 at 0, |result| < bound."""
    return bound * torch.tanh(v / bound)


def soft_upper_bound(v: torch.Tensor, bound: float) -> torch.Tensor:
    """v for v <= 0, bound * tanh(v / bound) above (C1, < bound): caps a log-scale from above only."""
    return torch.minimum(v, soft_bound(v, bound))


class ActNorm(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.logs = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def data_init(self, x):
        mean = x.mean(dim=(0, 2, 3), keepdim=True)
        std = x.std(dim=(0, 2, 3), keepdim=True)
        self.bias.copy_(-mean)
        self.logs.copy_(-torch.log(std + 1e-6))
        self.initialized.fill_(1)

    def forward(self, x):
        if self.training and not self.initialized:
            self.data_init(x)
        hw = x.shape[2] * x.shape[3]
        return (x + self.bias) * torch.exp(self.logs), hw * self.logs.sum()

    def inverse(self, y):
        hw = y.shape[2] * y.shape[3]
        return y * torch.exp(-self.logs) - self.bias, -hw * self.logs.sum()


class InvConv1x1LU(nn.Module):
    def __init__(self, channels: int, spatial: int, seed: int):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        q, _ = torch.linalg.qr(torch.randn(channels, channels, generator=g, dtype=torch.float64))
        perm, lower, upper, sign_s, log_s = lu_decompose(q.numpy())
        self.channels, self.spatial = channels, spatial
        self.register_buffer("perm", torch.tensor(perm, dtype=torch.long))
        self.register_buffer("sign_s", torch.tensor(sign_s, dtype=torch.float32))
        self.register_buffer("l_mask", torch.tril(torch.ones(channels, channels), -1))
        self.lower = nn.Parameter(torch.tensor(lower, dtype=torch.float32))
        self.upper = nn.Parameter(torch.tensor(upper, dtype=torch.float32))
        self.log_s = nn.Parameter(torch.tensor(log_s, dtype=torch.float32))

    def weight(self):
        eye = torch.eye(self.channels, dtype=self.lower.dtype)
        p = eye[self.perm]  # row i = e_perm[i]
        l = self.lower * self.l_mask + eye
        u = self.upper * self.l_mask.T + torch.diag(self.sign_s * torch.exp(self.log_s))
        return p @ l @ u

    def lu_logdet(self):
        return self.spatial * self.log_s.sum()

    def lu_factors(self, name: str) -> LUFactors:
        d = lambda t: t.detach().double().numpy()
        return LUFactors(name=name, channels=self.channels, spatial=self.spatial, perm=self.perm.tolist(),
                         lower=np.tril(d(self.lower), -1), upper=np.triu(d(self.upper), 1),
                         sign_s=d(self.sign_s), log_s=d(self.log_s))

    def forward(self, x, w=None):
        w = self.weight() if w is None else w
        return F.conv2d(x, w.reshape(self.channels, self.channels, 1, 1))

    def inverse(self, y, w_inv=None):
        w_inv = torch.inverse(self.weight()) if w_inv is None else w_inv
        return F.conv2d(y, w_inv.reshape(self.channels, self.channels, 1, 1))


class ZeroConv(nn.Module):
    """3x3 conv starting at zero, output scaled by exp(3*logs) (Glow's conv2d_zeros)."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)
        self.logs = nn.Parameter(torch.zeros(1, c_out, 1, 1))

    def forward(self, x):
        return self.conv(x) * torch.exp(3 * self.logs)


def glow_net(c_in: int, hidden: int, c_out: int) -> nn.Sequential:
    """Glow's coupling net: 3x3 -> ReLU -> 1x1 -> ReLU -> ZeroConv 3x3 (starts at zero)."""
    return nn.Sequential(nn.Conv2d(c_in, hidden, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(hidden, hidden, 1), nn.ReLU(), ZeroConv(hidden, c_out))


class GlowCoupling(nn.Module):
    def __init__(self, channels: int, hidden: int, bound: float = 2.0):
        super().__init__()
        self.half = channels // 2
        self.bound = float(bound)
        self.net = glow_net(self.half, hidden, 2 * (channels - self.half))

    def _shift_logscale(self, a):
        t, r = self.net(a).chunk(2, dim=1)
        return t, soft_bound(r, self.bound)

    def forward(self, x):
        a, b = x[:, :self.half], x[:, self.half:]
        t, log_s = self._shift_logscale(a)
        return torch.cat([a, (b + t) * torch.exp(log_s)], 1), log_s.flatten(1).sum(1)

    def inverse(self, y):
        a, b = y[:, :self.half], y[:, self.half:]
        t, log_s = self._shift_logscale(a)
        return torch.cat([a, b * torch.exp(-log_s) - t], 1), -log_s.flatten(1).sum(1)


class GlowStep(nn.Module):
    def __init__(self, channels: int, spatial: int, hidden: int, seed: int, bound: float = 2.0):
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1LU(channels, spatial, seed)
        self.coupling = GlowCoupling(channels, hidden, bound)

    def forward(self, x, w=None):
        x, ld1 = self.actnorm(x)
        x = self.invconv(x, w)
        x, ld2 = self.coupling(x)
        return x, ld1 + ld2

    def inverse(self, y, w_inv=None):
        y, ld2 = self.coupling.inverse(y)
        y = self.invconv.inverse(y, w_inv)
        y, ld1 = self.actnorm.inverse(y)
        return y, ld1 + ld2


class Glow(nn.Module):
    """Levels of (squeeze, K steps, split); latent parts: each split's factored-out half, then the top.
    LU layers are ordered level by level, step by step; flow(y, *w) takes one W per layer.

    hidden: coupling-net width, one int or one per level. coupling_bound: B above (|log s| < B).
    prior_bound: P above (log sigma < P, split and top priors). prior_hidden: 0 = Glow's split prior
    (one zero-initialized 3x3 conv on the kept half); > 0 = a coupling-style net of that width."""

    def __init__(self, shape=(1, 28, 28), levels: int = 2, steps: int = 8, hidden=128, seed: int = 0,
                 coupling_bound: float = 2.0, prior_bound: float = 2.0, prior_hidden: int = 0):
        super().__init__()
        c, size = shape[0], shape[1]
        hidden = [hidden] * levels if isinstance(hidden, int) else list(hidden)
        self.prior_bound = float(prior_bound)
        self.levels = nn.ModuleList()
        self.priors = nn.ModuleList()
        self.part_shapes = []
        for lvl in range(levels):
            c, size = c * 4, size // 2
            self.levels.append(nn.ModuleDict({"steps": nn.ModuleList(
                GlowStep(c, size * size, hidden[lvl], seed * 1000 + lvl * 100 + k, coupling_bound) for k in range(steps))}))
            if lvl < levels - 1:
                # mu, log sigma of the split half from the kept half
                self.priors.append(glow_net(c - c // 2, prior_hidden, 2 * (c // 2)) if prior_hidden
                                   else ZeroConv(c - c // 2, 2 * (c // 2)))
                self.part_shapes.append([c // 2, size, size])
                c = c - c // 2
        self.top_mean = nn.Parameter(torch.zeros(1, c, size, size))
        self.top_logs = nn.Parameter(torch.zeros(1, c, size, size))
        self.part_shapes.append([c, size, size])

    def invconvs(self):
        return [step.invconv for level in self.levels for step in level["steps"]]

    def lu_factors(self):
        return [step.invconv.lu_factors(f"levels.{i}.steps.{k}.invconv")
                for i, level in enumerate(self.levels) for k, step in enumerate(level["steps"])]

    def lu_logdet(self):
        return sum(conv.lu_logdet() for conv in self.invconvs())

    def _split_prior(self, lvl, h):
        mean, logs = self.priors[lvl](h).chunk(2, dim=1)
        return mean, soft_upper_bound(logs, self.prior_bound)

    def _top_logs(self):
        return soft_upper_bound(self.top_logs, self.prior_bound)

    def forward(self, y, *w):
        w = list(w) if w else [None] * len(self.invconvs())
        ld = zeros_per_sample(y)
        h, parts, k = y, [], 0
        for lvl, level in enumerate(self.levels):
            h = squeeze(h)
            for step in level["steps"]:
                h, d = step(h, w[k])
                ld, k = ld + d, k + 1
            if lvl < len(self.levels) - 1:
                half = h.shape[1] // 2
                z, h = h[:, :half], h[:, half:]
                mean, logs = self._split_prior(lvl, h)
                parts.append((z - mean) * torch.exp(-logs))
                ld = ld - logs.flatten(1).sum(1)
        top_logs = self._top_logs()
        parts.append((h - self.top_mean) * torch.exp(-top_logs))
        ld = ld - top_logs.sum()
        return (*parts, ld)

    def inverse(self, *args):
        n_parts = len(self.part_shapes)
        eps, w_inv = list(args[:n_parts]), list(args[n_parts:])
        w_inv = w_inv if w_inv else [None] * len(self.invconvs())
        top_logs = self._top_logs()
        h = eps[-1] * torch.exp(top_logs) + self.top_mean
        ld = zeros_per_sample(h) + top_logs.sum()
        k = len(w_inv)
        for lvl in reversed(range(len(self.levels))):
            if lvl < len(self.levels) - 1:
                mean, logs = self._split_prior(lvl, h)
                h = torch.cat([eps[lvl] * torch.exp(logs) + mean, h], 1)
                ld = ld + logs.flatten(1).sum(1)
            for step in reversed(self.levels[lvl]["steps"]):
                k -= 1
                h, d = step.inverse(h, w_inv[k])
                ld = ld + d
            h = unsqueeze(h)
        return h, ld


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
