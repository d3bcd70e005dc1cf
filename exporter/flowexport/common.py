"""Small helpers shared by the exporters of program families (flowexport.autoregressive, ...).

They do not change the coupling exporter (flowexport.package); they reuse its manifest completion and
add what program families need: a `graphs` record of named graphs plus a `program` block.
"""
from __future__ import annotations

from pathlib import Path

from .errors import ExportError
from .manifest import schema, to_json, validate_manifest
from .package import _sha256, complete_manifest, staging_dir  # noqa: F401 (staging_dir re-exported for the family exporters)

# flow.json fields an exporter of a program family derives; a caller's values for them are replaced
DERIVED = ("formatVersion", "graphs", "program", "lu", "files", "sampling")


def sha256(path) -> str:
    return _sha256(Path(path))


def program_manifest(manifest: dict, graphs: dict, program: dict | None, files: dict, sampling: dict | None = None) -> dict:
    """flow.json in the documented order: the coupling completion (latent.size, lu null, ...) with
    `graphs` replaced and `program` right after it. Tolerates a malformed manifest (validation names it)."""
    full = complete_manifest({k: v for k, v in manifest.items() if k not in DERIVED}, 0, files, sampling)
    out = {}
    for k, v in full.items():
        if k == "graphs":
            out["graphs"] = dict(graphs)
            if program is not None:
                out["program"] = program
        else:
            out[k] = v
    return to_json(out)


def check_program_manifest(manifest: dict, out_dir, graphs: dict, program: dict | None) -> dict:
    """Validate the caller's manifest as the complete flow.json it will become (schema + load-time rules)."""
    if not isinstance(manifest, dict):
        raise ExportError(f"manifest must be a dict of flow.json fields (docs/model-package.md); got {type(manifest).__name__}")
    unknown = sorted(set(manifest) - set(schema()["properties"]))
    if unknown:
        raise ExportError(f"manifest has unknown field(s) {', '.join(repr(k) for k in unknown)}; flow.json's fields are "
                          f"{', '.join(schema()['properties'])} (docs/model-package.md)")
    full = program_manifest(manifest, graphs, program, {})
    validate_manifest(full, Path(out_dir).name if out_dir is not None else None)
    return full


