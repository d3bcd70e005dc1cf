"""The logistic ↔ standard-normal map (flowexport.logistic): against PyTorch's exact ndtri / log_ndtr in
float64, round trips and log-dets in both precisions, every tail NICE's scaled pixels reach, and the
same numbers from onnxruntime after export."""
import math

import numpy as np
import torch
import torch.nn.functional as F

from flowexport.logistic import log_ndtr_lower, logistic_to_normal, normal_to_logistic

HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)
TAILS = torch.tensor([-5000.0, -1000.0, -250.0, -40.0, -9.0, -1.5, -1e-3, 0.0, 2e-4, 0.3, 4.0, 17.0, 88.0, 700.0, 3000.0], dtype=torch.float64)


def log_logistic(l):
    return -F.softplus(l) - F.softplus(-l)


def test_log_ndtr_matches_pytorch_to_float32_precision():
    x = -torch.cat([torch.linspace(0, 10, 201, dtype=torch.float64), torch.tensor([20.0, 50.0, 100.0, 1000.0], dtype=torch.float64)])
    err = (log_ndtr_lower(x) - torch.special.log_ndtr(x)).abs() / (1 + torch.special.log_ndtr(x).abs())
    assert err.max() < 2e-7, err.max()


def test_forward_is_the_normal_quantile_of_the_logistic_cdf():
    # moderate l: against ndtri(σ(l)), taken on the lower tail where σ is exact in float64; every l:
    # the defining equation log Φ(−|z|) = log σ(−|l|)
    l = torch.linspace(-30, 30, 601, dtype=torch.float64)
    z, _ = logistic_to_normal(l)
    reference = -torch.sign(l) * torch.special.ndtri(torch.sigmoid(-l.abs()))
    assert (z - reference).abs().max() < 2e-6
    z, _ = logistic_to_normal(TAILS)
    assert torch.all(torch.isfinite(z))
    nonzero = TAILS != 0
    assert torch.equal(torch.sign(z[nonzero]), torch.sign(TAILS[nonzero]))
    # l = 0 maps to Φ⁻¹(½) = 0 up to erfcc's 1.2e-7 error in log Φ(0)
    assert z[~nonzero].abs().max() < 1e-7
    lhs = torch.special.log_ndtr(-z.abs())
    rhs = -F.softplus(TAILS.abs())
    assert ((lhs - rhs).abs() / (1 + rhs.abs())).max() < 3e-7


def test_density_is_unchanged_and_the_directions_cancel():
    l = torch.cat([TAILS, torch.randn(1000, dtype=torch.float64) * 50])
    z, fwd = logistic_to_normal(l)
    assert (-0.5 * z * z - HALF_LOG_2PI + fwd - log_logistic(l)).abs().max() < 1e-9
    back, inv = normal_to_logistic(z)
    assert ((fwd + inv).abs() / (1 + l.abs())).max() < 1e-9
    assert ((back - l).abs() / (1 + l.abs())).max() < 1e-9


def test_log_det_is_the_derivative():
    l = torch.tensor([-700.0, -60.0, -3.0, -0.2, 0.05, 1.0, 8.0, 90.0, 400.0], dtype=torch.float64, requires_grad=True)
    z, logdet = logistic_to_normal(l)
    (dz,) = torch.autograd.grad(z.sum(), l)
    assert (torch.log(dz.abs()) - logdet.detach()).abs().max() < 1e-5
    zz = z.detach().clone().requires_grad_(True)
    back, inv = normal_to_logistic(zz)
    (dl,) = torch.autograd.grad(back.sum(), zz)
    assert (torch.log(dl.abs()) - inv.detach()).abs().max() < 1e-5


def test_float32_round_trip_over_every_tail():
    l = torch.cat([TAILS, torch.linspace(-2000, 2000, 4001, dtype=torch.float64)]).float()
    z, fwd = logistic_to_normal(l)
    back, inv = normal_to_logistic(z)
    assert torch.all(torch.isfinite(z)) and torch.all(torch.isfinite(fwd))
    assert ((back - l).abs() / (1 + l.abs())).max() < 2e-6
    # each log-det sums terms of size |l| (softplus) and z²/2 ≈ |l|: float32 rounds them to ~|l|·1e-7
    assert ((fwd + inv).abs() / (1 + l.abs())).max() < 1e-6
    # float32 against float64: the latents the service sees
    z64, _ = logistic_to_normal(l.double())
    assert ((z.double() - z64).abs() / (1 + z64.abs())).max() < 1e-6


def test_the_same_numbers_from_onnxruntime(tmp_path):
    from flowexport.ort import run_onnx

    class Forward(torch.nn.Module):
        def forward(self, l):
            return logistic_to_normal(l)

    class Inverse(torch.nn.Module):
        def forward(self, z):
            return normal_to_logistic(z)

    l = torch.cat([TAILS, torch.linspace(-50, 50, 101, dtype=torch.float64)]).float().reshape(1, -1)
    for name, module, arg in (("fwd", Forward(), l), ("inv", Inverse(), logistic_to_normal(l)[0])):
        path = tmp_path / f"{name}.onnx"
        torch.onnx.export(module, (arg,), str(path), input_names=["x"], output_names=["y", "logdet"], opset_version=17,
                          dynamic_axes={"x": {0: "N"}, "y": {0: "N"}, "logdet": {0: "N"}})
        (out,) = run_onnx([(path, {"x": arg.numpy().astype(np.float64)})])
        y, logdet = module(arg)
        np.testing.assert_allclose(out["y"], y.numpy(), rtol=2e-6, atol=1e-6)
        np.testing.assert_allclose(out["logdet"], logdet.numpy(), rtol=2e-6, atol=1e-4)
