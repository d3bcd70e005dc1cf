"""Continuous flow export (flowexport.cnf): exact divergence, the solver, a written package."""
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from flowexport import ExportError
from flowexport.cnf import autograd_divergence, dopri5, export_ode
from tiny import reference, vector_manifest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
from cnf_models import Dynamics, VelocityMLP  # noqa: E402


def quiet(*_):
    pass


class Linear(torch.nn.Module):
    """f(x, t) = A·x: div = tr A, x(1) = expm(A)·x(0), ∫div = tr A."""

    def __init__(self, a):
        super().__init__()
        self.register_buffer("a", torch.tensor(a, dtype=torch.float64))

    def forward(self, x, t):
        dx = x @ self.a.T + 0 * t[:, None]
        return dx, (self.a.diagonal().sum() + 0 * t).to(x.dtype)


class WrongDiv(Linear):
    def forward(self, x, t):
        dx, div = super().forward(x, t)
        return dx, div + 0.1


A = [[-0.3, 0.2], [-0.1, 0.25]]


def manifest(name="tiny-ode"):
    return vector_manifest(name, family="ffjord", defaultTemperature=0.5)


def test_exact_divergence_equals_autograd_trace():
    torch.manual_seed(0)
    dyn = Dynamics(VelocityMLP(2, hidden=16, depth=3)).double()
    x = torch.randn(32, 2, dtype=torch.float64) * 2
    t = torch.rand(32, dtype=torch.float64)
    _, div = dyn(x, t)
    assert torch.allclose(div, autograd_divergence(dyn, x, t), rtol=1e-10, atol=1e-12)
    # and the explicit Jacobian is the full Jacobian, not only its trace
    v, jac = dyn.velocity.with_jacobian(x, t)
    auto = torch.autograd.functional.jacobian(lambda xx: dyn.velocity(xx, t).sum(0), x).permute(1, 0, 2)
    assert torch.allclose(jac, auto, atol=1e-12)


def test_dopri5_linear_closed_form():
    a = np.array(A)
    x0 = np.random.default_rng(0).normal(size=(20, 2))
    z, ld, nfe = dopri5(Linear(A), x0, 0.0, 1.0, 1e-10, 1e-10)
    from scipy.linalg import expm
    assert np.abs(z.numpy() - x0 @ expm(a).T).max() < 1e-8
    assert np.abs(ld.numpy() - np.trace(a)).max() < 1e-8
    back, ld_b, _ = dopri5(Linear(A), z, 1.0, 0.0, 1e-10, 1e-10)
    assert np.abs(back.numpy() - x0).max() < 1e-8 and np.abs(ld_b.numpy() + np.trace(a)).max() < 1e-8
    _, _, nfe5 = dopri5(Linear(A), x0, 0.0, 1.0, 1e-5, 1e-5)
    assert nfe5.float().mean() < nfe.float().mean()


def test_linear_dynamics_exports_and_checks(models):
    report = export_ode(Linear(A), manifest(), models / "tiny-ode", reference(), sampling_bound=[-8, 8], log=quiet)
    d = models / "tiny-ode"
    assert sorted(p.name for p in d.iterdir()) == ["dynamics.onnx", "flow.json", "reference.json"]
    m = json.loads((d / "flow.json").read_text())
    assert m["graphs"] == {"dynamics": "dynamics.onnx"}
    assert m["program"] == {"kind": "ode", "graph": "dynamics", "t0": 0.0, "t1": 1.0, "atol": 1e-5, "rtol": 1e-5}
    ref = json.loads((d / "reference.json").read_text())
    assert np.allclose(ref["logDet"], np.trace(np.array(A)), atol=1e-8)
    assert np.allclose(ref["dynamics"]["div"], np.trace(np.array(A)))
    assert all(r["ok"] for r in report["checks"])
    # expm(A) scales draws by at most its largest singular value: sampling is usable well past T = 1
    assert m["sampling"]["maxTemperature"] >= 1.0


def test_wrong_divergence_is_refused_and_nothing_written(models):
    with pytest.raises(ExportError, match="div vs autograd trace"):
        export_ode(WrongDiv(A), manifest(), models / "tiny-ode", reference(), sampling_bound=[-8, 8], log=quiet)
    assert list(models.iterdir()) == []
