"""flowexport: write normalizing flows as flowserve model packages (docs/model-package.md).

    from flowexport import export_package, calibration_block, LUFactors
    export_package(flow, manifest, "models/my-flow", reference_inputs, lu_layers=[...])

Coupling flows (nice, realnvp, glow) use export_package; the other families have their own
exporters: export_autoregressive (maf, iaf), export_planar (planar), export_ode (ffjord / CNF).

The coupling flow module's contract (checked on every call; flowexport.contract):

    flow(y, *w)                          -> (*latent_parts, logdet)   y [N, *data.shape], part i [N, *latent.parts[i].shape], logdet [N]
    flow.inverse(*latent_parts, *w_inv)  -> (y, logdet)               y [N, *data.shape], logdet [N]

Install (see docs/model-package.md): `pip install -e exporter` from a flowserve checkout; the ONNX
checks run through that checkout's onnxruntime-node (needs `node` and `npm ci`; flowexport.ort).
docs/tutorial.md walks through a complete example; scripts/example_export.py is a minimal one.
"""
from .calibration import calibration_block, nll_quantiles
from .errors import ExportError, RuntimeUnavailable
from .logistic import StandardNormalLatents, logistic_to_normal, normal_to_logistic
from .lu import LUFactors, lu_decompose
from .manifest import validate_manifest
from .package import Tolerances, check_manifest, export_package
from .preprocessing import bits_per_dim, log_standard_normal, transform_forward, transform_inverse



def export_autoregressive(*args, **kwargs):
    """MAF / IAF packages (flowexport.autoregressive; imported lazily like box_bound)."""
    from .autoregressive import export_autoregressive as export

    return export(*args, **kwargs)


def export_planar(*args, **kwargs):
    """Planar-flow packages (flowexport.planar)."""
    from .planar import export_planar as export

    return export(*args, **kwargs)


def export_ode(*args, **kwargs):
    """Continuous-flow packages: FFJORD or flow matching (flowexport.cnf)."""
    from .cnf import export_ode as export

    return export(*args, **kwargs)


def box_bound(data) -> list:
    """The box of a data set widened by its width on each side: a vector model's sampling bound
    (flowexport.temperature.box_bound; imported lazily so `python3 -m flowexport.temperature` runs clean)."""
    from .temperature import box_bound as bound

    return bound(data)


__all__ = [
    "ExportError", "LUFactors", "RuntimeUnavailable", "Tolerances", "bits_per_dim", "box_bound", "calibration_block",
    "check_manifest", "export_autoregressive", "export_ode", "export_package", "export_planar", "log_standard_normal", "lu_decompose", "nll_quantiles", "transform_forward",
    "transform_inverse", "validate_manifest",
]
