"""The flow contract: wrong arity, shapes or types are reported as ExportError stating the contract,
and nothing is written."""
import pytest
import torch

from flowexport import ExportError, export_package
from tiny import Scale, reference, vector_manifest

INVERSE = "flow.inverse(*latent_parts, *w_inv) must return (y, logdet) with y [N, *data.shape] and logdet [N]"
FORWARD = "flow(y, *w) must return (*latent_parts, logdet) with latent part i [N, *latent.parts[i].shape] and logdet [N]"


def refused(flow, models, manifest=None):
    out = models / "tiny"
    with pytest.raises(ExportError) as e:
        export_package(flow, manifest or vector_manifest(), out, reference(), log=lambda *_: None)
    assert list(models.iterdir()) == [], "nothing may be written on refusal"
    return str(e.value)


class InverseReturnsX(Scale):
    def inverse(self, z):
        return z * self.a


class ForwardReturnsZ(Scale):
    def forward(self, y):
        return y / self.a


class LogdetPerDimension(Scale):
    def forward(self, y):
        z, ld = super().forward(y)
        return z, ld[:, None]


class NumpyLogdet(Scale):
    def forward(self, y):
        z, ld = super().forward(y)
        return z, ld.numpy()


class NoInverse(torch.nn.Module):
    def forward(self, y):
        return y, torch.zeros_like(y[:, 0])


class InverseWantsMore(Scale):
    def inverse(self, z, context):
        return z, context


class WrongShapeY(Scale):
    def inverse(self, z):
        y, ld = super().inverse(z)
        return y.reshape(-1, 1, 2), ld


def test_inverse_returning_only_y(models):
    assert f"{INVERSE}; a tuple of 2 tensors; got a single tensor [5, 2]" in refused(InverseReturnsX(1.0), models)


def test_forward_returning_only_z(models):
    assert f"{FORWARD}; here 2 tensors: z (latent.parts) and logdet; got a single tensor [5, 2]" in refused(ForwardReturnsZ(1.0), models)


def test_forward_with_more_parts_than_the_manifest(models):
    m = vector_manifest()
    m["latent"]["parts"] = [{"name": "z0", "shape": [1]}, {"name": "z1", "shape": [1]}]
    assert "here 3 tensors: z0, z1 (latent.parts) and logdet; got a tuple of 2: (tensor [5, 2], tensor [5])" in refused(Scale(1.0), models, m)


def test_logdet_shape(models):
    assert f"{FORWARD}; got logdet [5, 1] (expected [5])" in refused(LogdetPerDimension(1.0), models)


def test_non_tensor_output(models):
    assert "got a tuple of 2: (tensor [5, 2], ndarray)" in refused(NumpyLogdet(1.0), models)


def test_missing_inverse(models):
    assert f"the flow module has no inverse method; {INVERSE}" in refused(NoInverse(), models)


def test_inverse_with_another_signature(models):
    msg = refused(InverseWantsMore(1.0), models)
    assert msg.startswith("flow.inverse(*latent_parts, *w_inv) raised TypeError") and INVERSE in msg


def test_inverse_y_shape(models):
    assert f"{INVERSE}; got y [5, 1, 2] (expected [5, 2])" in refused(WrongShapeY(1.0), models)


def test_a_bad_manifest_is_refused_before_the_flow_is_called(models):
    class Exploding(Scale):
        def forward(self, y):
            raise AssertionError("the flow must not be called before the manifest is valid")

    assert "family 'spline'" in refused(Exploding(1.0), models, vector_manifest(family="spline"))
