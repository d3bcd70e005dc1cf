"""flowexport.autoregressive on tiny MAF / IAF flows (scripts/ar_models.py): export, refusals, ONNX loop."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "exporter"))
sys.path.insert(0, str(ROOT / "scripts"))

from ar_models import ARFlow  # noqa: E402
from flowexport import ExportError  # noqa: E402
from flowexport.autoregressive import ar_violation, export_autoregressive, run_program  # noqa: E402
from flowexport.ort import check_runtime  # noqa: E402

try:
    check_runtime()
    HAVE_ORT = True
except Exception:  # noqa: BLE001
    HAVE_ORT = False
needs_ort = pytest.mark.skipif(not HAVE_ORT, reason="node + onnxruntime-node (npm ci) needed for the ONNX checks")


def tiny(kind="maf", dim=2, layers=2, seed=0, order="reverse"):
    torch.manual_seed(seed)
    flow = ARFlow(kind, dim, layers, hidden=8, depth=1, bound=2.0, order=order, seed=seed)
    with torch.no_grad():
        for made in flow.conditioners:  # not the identity: give the outputs something to depend on
            made.out.weight.normal_(0, 0.3)
            made.out.bias.normal_(0, 0.1)
    return flow.eval()


def manifest(name, family="maf", dim=2):
    return {
        "name": name, "family": family, "description": "tiny test flow",
        "data": {"kind": "vector", "shape": [dim], "range": None, "bitDepth": None},
        "preprocessing": {"dequantization": "none", "transform": {"kind": "identity"}},
        "latent": {"parts": [{"name": "z", "shape": [dim]}]},
        "prior": {"kind": "standard-normal"},
        "defaultTemperature": 1.0,
        "training": {"dataset": "none"},
        "calibration": None,
    }


def refs(dim=2, n=4):
    return np.random.default_rng(1).standard_normal((n, dim))


@needs_ort
@pytest.mark.parametrize("kind,dim", [("maf", 2), ("iaf", 3)])
def test_export_writes_a_valid_package(tmp_path, kind, dim):
    flow = tiny(kind, dim, order="random" if dim > 2 else "reverse")
    out = tmp_path / f"tiny-{kind}"
    report = export_autoregressive(flow, manifest(out.name, kind, dim), out, refs(dim), sampling_bound=[-10, 10],
                                   stability_count=64, log=lambda *_: None)
    m = json.loads((out / "flow.json").read_text())
    assert m["family"] == kind
    assert m["program"]["kind"] == "autoregressive"
    assert [l["graph"] for l in m["program"]["layers"]] == ["made0", "made1"]
    assert [l["permutation"] for l in m["program"]["layers"]] == flow.permutations
    assert m["graphs"] == {"made0": "made0.onnx", "made1": "made1.onnx", "weights": "weights.bin"}
    assert set(m["files"]) == {"made0.onnx", "made1.onnx", "weights.bin", "reference.json"}
    assert sorted(p.name for p in out.iterdir()) == sorted([*m["files"], "flow.json"])
    assert m["sampling"]["maxTemperature"] >= 1.0
    assert all(r["ok"] for r in report["checks"])
    ref = json.loads((out / "reference.json").read_text())
    assert set(ref) == {"dtype", "inputs", "latents", "logDet", "logProb"}
    # the reference is the flow's own float64 density
    f64 = flow.double()
    z, ld = f64(torch.tensor(ref["inputs"], dtype=torch.float64))
    lp = -0.5 * (z ** 2).sum(1) - 0.5 * dim * np.log(2 * np.pi) + ld
    np.testing.assert_allclose(lp.detach().numpy(), ref["logProb"], rtol=1e-10, atol=1e-10)


@needs_ort
@pytest.mark.parametrize("kind", ["maf", "iaf"])
def test_onnx_loop_round_trip(tmp_path, kind):
    flow = tiny(kind, 3, layers=3, order="random")
    out = tmp_path / "rt"
    export_autoregressive(flow, manifest("rt", kind, 3), out, refs(3), sampling_bound=[-10, 10], stability_count=16,
                          log=lambda *_: None)
    m = json.loads((out / "flow.json").read_text())
    paths = [out / m["graphs"][l["graph"]] for l in m["program"]["layers"]]
    perms = [l["permutation"] for l in m["program"]["layers"]]
    x = np.random.default_rng(5).standard_normal((32, 3))
    ((z, ld),) = run_program(paths, perms, kind, [("forward", x)])
    ((xb, ldi),) = run_program(paths, perms, kind, [("inverse", z)])
    np.testing.assert_allclose(xb, x, atol=1e-4)
    np.testing.assert_allclose(ld + ldi, 0, atol=1e-4)
    with torch.no_grad():
        zt, ldt = flow.double()(torch.tensor(x))
    np.testing.assert_allclose(z, zt.numpy(), atol=1e-4)
    np.testing.assert_allclose(ld, ldt.numpy(), atol=1e-4)


class NotMADE(torch.nn.Module):
    """Every output sees every input: not autoregressive."""

    def __init__(self, dim):
        super().__init__()
        self.net = torch.nn.Linear(dim, 2 * dim)
        self.dim = dim

    def forward(self, x):
        out = self.net(x)
        return out[:, :self.dim], 0.5 * torch.tanh(out[:, self.dim:])


def test_ar_violation_detects_dense_conditioner():
    torch.manual_seed(0)
    worst, (i, j) = ar_violation(NotMADE(3).double(), 3)
    assert worst > 0 and i <= j
    assert ar_violation(tiny("maf", 3).conditioners[0].double(), 3)[0] == 0.0


def test_refuses_non_autoregressive_conditioner(tmp_path):
    flow = tiny("maf", 2)
    torch.manual_seed(0)
    flow.conditioners[1] = NotMADE(2)
    out = tmp_path / "bad-cond"
    with pytest.raises(ExportError, match="conditioner 1 is not autoregressive"):
        export_autoregressive(flow, manifest(out.name), out, refs(), sampling_bound=[-10, 10], log=lambda *_: None)
    assert not out.exists()
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("edit,message", [
    (lambda m: m.update(family="maff"), "family"),
    (lambda m: m.update(name="Bad_Name"), "name"),
    (lambda m: m.update(defaultTemperature=3), "defaultTemperature"),
    (lambda m: m.pop("training"), "training"),
    (lambda m: m.update(bogus=1), "bogus"),
])
def test_refuses_bad_manifest(tmp_path, edit, message):
    m = manifest("bad")
    edit(m)
    out = tmp_path / "bad"
    with pytest.raises(ExportError, match=message):
        export_autoregressive(tiny(), m, out, refs(), sampling_bound=[-10, 10], log=lambda *_: None)
    assert not out.exists()


def test_refuses_family_mismatch_and_bad_shapes(tmp_path):
    with pytest.raises(ExportError, match="family 'iaf' but the flow is a 'maf'"):
        export_autoregressive(tiny("maf"), manifest("m", "iaf"), tmp_path / "m", refs(), log=lambda *_: None)
    m = manifest("m")
    m["latent"] = {"parts": [{"name": "a", "shape": [1]}, {"name": "b", "shape": [1]}]}
    with pytest.raises(ExportError, match="one latent part"):
        export_autoregressive(tiny("maf"), m, tmp_path / "m", refs(), log=lambda *_: None)
    flow = tiny("maf")
    flow.permutations[0] = [0, 0]
    with pytest.raises(ExportError, match="permutation 0"):
        export_autoregressive(flow, manifest("m"), tmp_path / "m", refs(), log=lambda *_: None)
    assert not (tmp_path / "m").exists()
