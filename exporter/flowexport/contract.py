"""The flow module contract, checked on every call the exporter makes before anything is traced.

A flow works in model input space y = pre(x) (preprocessing.transform) and provides:

    flow(y, *w)                          -> (*latent_parts, logdet)
        y [N, *data.shape]; latent part i [N, *latent.parts[i].shape], in manifest order;
        logdet [N] = log|det dz/dy| per sample (excluding preprocessing and LU terms)
    flow.inverse(*latent_parts, *w_inv)  -> (y, logdet)
        y [N, *data.shape]; logdet [N] = log|det dy/dz| (the negative of the forward's at the same point)

w / w_inv are the 1x1-convolution matrices built from `lu_layers` (Glow; none otherwise). Every
return value is a tuple of torch tensors, never a bare tensor; the batch axis N is dim 0 and must
stay dynamic. A mistake is reported as ExportError stating this contract and what came back, rather
than as a traceback from deep inside tracing.
"""
from __future__ import annotations

import torch

from .errors import ExportError

FORWARD = "flow(y, *w) must return (*latent_parts, logdet) with latent part i [N, *latent.parts[i].shape] and logdet [N]"
INVERSE = "flow.inverse(*latent_parts, *w_inv) must return (y, logdet) with y [N, *data.shape] and logdet [N]"


def _shape(t: torch.Tensor) -> str:
    return "[" + ", ".join(str(d) for d in t.shape) + "]"


def describe(out) -> str:
    """What a flow call returned, in the contract's words."""
    if isinstance(out, torch.Tensor):
        return f"a single tensor {_shape(out)}"
    if out is None:
        return "None"
    if isinstance(out, (tuple, list)):
        items = ", ".join(f"tensor {_shape(o)}" if isinstance(o, torch.Tensor) else type(o).__name__ for o in out)
        return f"a {type(out).__name__} of {len(out)}: ({items})"
    return f"a {type(out).__name__}"


def _call(fn, args, contract: str, label: str):
    try:
        return fn(*args)
    except ExportError:
        raise
    except Exception as e:  # the user's module failed on the inputs the contract promises
        shapes = ", ".join(_shape(a) for a in args)
        raise ExportError(f"{label} raised {type(e).__name__}: {e} (called with tensors {shapes}). {contract}") from e


def _check_tuple(out, count: int, contract: str, what: str) -> None:
    if not isinstance(out, (tuple, list)) or len(out) != count or not all(isinstance(o, torch.Tensor) for o in out):
        raise ExportError(f"{contract}; {what}; got {describe(out)}")


def _check_shapes(got: list, want: list, contract: str) -> None:
    bad = [f"{name} {_shape(t)} (expected [{', '.join(map(str, shape))}])" for (name, shape), t in zip(want, got)
           if list(t.shape) != list(shape)]
    if bad:
        raise ExportError(f"{contract}; got " + ", ".join(bad))
    non_float = [name for (name, _), t in zip(want, got) if not t.is_floating_point()]
    if non_float:
        raise ExportError(f"{contract}; got non-floating-point {', '.join(non_float)}")


def call_forward(flow, y: torch.Tensor, w: list, parts: list) -> tuple[list, torch.Tensor]:
    """flow(y, *w), checked: returns ([latent part tensors], logdet)."""
    n = y.shape[0]
    names = [p["name"] for p in parts]
    out = _call(flow, [y, *w], FORWARD, "flow(y, *w)")
    _check_tuple(out, len(parts) + 1, FORWARD,
                 f"here {len(parts) + 1} tensors: {', '.join(names)} (latent.parts) and logdet")
    want = [(f"latent part '{p['name']}'", [n, *p["shape"]]) for p in parts] + [("logdet", [n])]
    _check_shapes(list(out), want, FORWARD)
    return list(out[:-1]), out[-1]


def call_inverse(flow, parts_in: list, w_inv: list, data_shape: list) -> tuple[torch.Tensor, torch.Tensor]:
    """flow.inverse(*parts, *w_inv), checked: returns (y, logdet)."""
    inverse = getattr(flow, "inverse", None)
    if not callable(inverse):
        raise ExportError(f"the flow module has no inverse method; {INVERSE}")
    n = parts_in[0].shape[0]
    out = _call(inverse, [*parts_in, *w_inv], INVERSE, "flow.inverse(*latent_parts, *w_inv)")
    _check_tuple(out, 2, INVERSE, "a tuple of 2 tensors")
    _check_shapes(list(out), [("y", [n, *data_shape]), ("logdet", [n])], INVERSE)
    return out[0], out[1]
