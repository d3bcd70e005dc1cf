"""flowexport: write normalizing flows as flowserve model packages (docs/model-package.md).

    from flowexport import export_package, calibration_block, LUFactors
    export_package(flow, manifest, "models/my-flow", reference_inputs, lu_layers=[...])

See scripts/example_export.py for a complete, minimal example.
"""
from .calibration import calibration_block
from .lu import LUFactors, lu_decompose
from .package import ExportError, Tolerances, export_package
from .preprocessing import bits_per_dim, log_standard_normal, transform_forward, transform_inverse

__all__ = [
    "ExportError", "LUFactors", "Tolerances", "bits_per_dim", "calibration_block", "export_package",
    "log_standard_normal", "lu_decompose", "transform_forward", "transform_inverse",
]
