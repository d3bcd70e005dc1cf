"""Small helpers shared by the exporters of program families (flowexport.autoregressive, ...).

They do not change the coupling exporter (flowexport.package); they reuse its manifest completion and
add what program families need: a `graphs` record of named graphs plus a `program` block.
"""
from __future__ import annotations

import hashlib
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import ExportError
from .manifest import schema, to_json, validate_manifest
from .package import complete_manifest

# flow.json fields an exporter of a program family derives; a caller's values for them are replaced
DERIVED = ("formatVersion", "graphs", "program", "lu", "files", "sampling")


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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


@contextmanager
def staging_dir(out_dir: Path):
    """A temporary sibling folder, renamed onto out_dir when the block completes, removed when it raises:
    a refused export leaves out_dir untouched."""
    out_dir = Path(out_dir)
    tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp.mkdir()
    try:
        yield tmp
        old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
        if out_dir.exists():
            out_dir.rename(old)
        tmp.rename(out_dir)
        if old.exists():
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
