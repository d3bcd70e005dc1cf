"""flow.json validation with messages a user can act on.

manifest.schema.json is generated from the service's own TypeBox schema (src/config/manifest-schema.ts,
`npm run schema:manifest`; a test fails when the two drift), so a manifest that passes here is one the
service accepts at load. jsonschema's raw messages ("'maf' is not valid under any of the given
schemas") are turned into one line per violation naming the field, the value and the rule:

    name 'My_Ring': must match ^[a-z0-9][a-z0-9-]{0,63}$ (lower-case letters, digits, '-'), e.g. 'my-ring'
    family 'maf': must be one of nice, realnvp, glow
    defaultTemperature 3: must be ≤ 2
    manifest is missing 'training' (required: dataset; see docs/model-package.md)

`semantic_problems` adds the load-time rules the service checks beyond the schema (registry.ts).
"""
from __future__ import annotations

import functools
import json
import math
import re
from pathlib import Path

import jsonschema

from .errors import ExportError

SCHEMA_PATH = Path(__file__).resolve().with_name("manifest.schema.json")
DOC = "docs/model-package.md"

# src/flow/anomaly.ts: SCORE_NAMES and IMAGE_SCORES (the latter need an 8-bit image model)
SCORE_NAMES = ("nll", "typicality", "complexity", "complexityJpegLs")
IMAGE_SCORES = ("complexity", "complexityJpegLs")

# Plain-words gloss of the schema's patterns, and how to turn a bad value into a good one.
_PATTERN_HINTS = {
    "^[a-z0-9][a-z0-9-]{0,63}$": "lower-case letters, digits, '-'",
    "^[A-Za-z0-9][A-Za-z0-9._-]*$": "a plain file name: letters, digits, '.', '_', '-'",
    "^[0-9a-f]{64}$": "64 lower-case hex digits (sha256)",
}


@functools.lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def suggest_name(value: str) -> str:
    """A valid package name close to `value`: 'My_Ring' -> 'my-ring'."""
    s = re.sub(r"[^a-z0-9-]+", "-", str(value).lower())
    s = re.sub(r"-{2,}", "-", s).strip("-")[:64].rstrip("-")
    return s or "my-model"


def fmt(value) -> str:
    """A value as the user would recognise it: strings quoted, numbers as given, JSON otherwise."""
    if isinstance(value, str):
        return repr(value if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, (int, float)):
        return repr(value)
    text = json.dumps(value, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _num(v) -> str:
    return repr(int(v)) if isinstance(v, float) and v.is_integer() else repr(v)


def describe(s: dict) -> str:
    """The rule a schema node states, in words."""
    if "const" in s:
        return f"exactly {fmt(s['const'])}"
    if "anyOf" in s:
        branches = s["anyOf"]
        if all("const" in b for b in branches):
            return "one of " + ", ".join(str(b["const"]) for b in branches)
        return " or ".join(describe(b) for b in branches)
    t = s.get("type")
    bounds = []
    for key, sym in (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<")):
        if key in s:
            bounds.append(f"{sym} {_num(s[key])}")
    if t == "object":
        req = s.get("required", [])
        return f"an object (required: {', '.join(req)})" if req else "an object"
    if t == "array":
        if isinstance(s.get("items"), list):
            return f"a list of {len(s['items'])} {'numbers' if all(i.get('type') == 'number' for i in s['items']) else 'items'}"
        return "a list"
    if t == "null":
        return "null"
    word = {"integer": "an integer", "number": "a number", "string": "a string", "boolean": "true or false"}.get(t, str(t))
    if "pattern" in s:
        word += f" matching {s['pattern']}"
    return word + (" " + " and ".join(bounds) if bounds else "")


def _where(path) -> str:
    out = ""
    for p in path:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


def _subschema(s: dict, prop: str) -> dict:
    return s.get("properties", {}).get(prop, {})


def _messages(err: jsonschema.ValidationError) -> list:
    """One or more plain messages for a jsonschema error (anyOf errors descend into the matching branch)."""
    where = _where(err.absolute_path)
    subject = f"{where} {fmt(err.instance)}" if where else "manifest"
    v, rule = err.validator, err.validator_value
    if v == "required":
        m = re.match(r"^'(.+)' is a required property$", err.message)
        prop = m.group(1) if m else str(err.message)
        sub = _subschema(err.schema, prop)
        return [f"{where or 'manifest'} is missing '{prop}' ({'required: ' + ', '.join(sub['required']) if sub.get('required') else describe(sub)}; see {DOC})"]
    if v == "anyOf":
        if all("const" in b for b in rule):
            return [f"{subject}: must be one of {', '.join(str(b['const']) for b in rule)}"]
        # a value of the right JSON type for one branch (an object where "object or null" is asked):
        # report what is wrong inside that branch rather than "not valid under any of the given schemas"
        for i, branch in enumerate(rule):
            if branch.get("type") and _json_type_matches(err.instance, branch["type"]):
                inner = [e for e in err.context if e.relative_schema_path and e.relative_schema_path[0] == i]
                if inner:
                    return [m for e in sorted(inner, key=_order) for m in _messages(e)]
        return [f"{subject}: must be {describe(err.schema)}"]
    if v == "pattern":
        hint = _PATTERN_HINTS.get(rule)
        text = f"{subject}: must match {rule}" + (f" ({hint})" if hint else "")
        if rule == "^[a-z0-9][a-z0-9-]{0,63}$" and isinstance(err.instance, str):
            text += f", e.g. {fmt(suggest_name(err.instance))}"
        return [text]
    if v in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"):
        sym = {"minimum": "≥", "exclusiveMinimum": ">", "maximum": "≤", "exclusiveMaximum": "<"}[v]
        return [f"{subject}: must be {sym} {_num(rule)}"]
    if v == "type":
        return [f"{subject}: must be {describe(err.schema)}"]
    if v == "const":
        return [f"{subject}: must be {fmt(rule)}"]
    if v in ("minItems", "maxItems"):
        word = "at least" if v == "minItems" else "at most"
        return [f"{subject}: must have {word} {rule} item{'s' if rule != 1 else ''}"]
    if v == "additionalItems":
        return [f"{subject}: must have exactly {len(err.schema.get('items', []))} items"]
    if v == "minLength":
        return [f"{subject}: must not be empty"]
    if v == "maxLength":
        return [f"{subject}: must be at most {rule} characters"]
    if v == "additionalProperties":
        extra = sorted(set(err.instance) - set(err.schema.get("properties", {})))
        allowed = ", ".join(err.schema.get("properties", {}))
        return [f"{where or 'manifest'} has unknown field {fmt(k)} (allowed: {allowed})" for k in extra]
    return [f"{where or 'manifest'}: {err.message}"]


def _json_type_matches(value, t: str) -> bool:
    return {"object": isinstance(value, dict), "array": isinstance(value, list), "string": isinstance(value, str),
            "null": value is None, "boolean": isinstance(value, bool),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "number": isinstance(value, (int, float)) and not isinstance(value, bool)}.get(t, False)


def _order(e: jsonschema.ValidationError):
    return ([str(p) for p in e.absolute_path], str(e.validator), e.message)


def to_json(manifest: dict) -> dict:
    """The manifest as JSON will carry it (tuples -> lists, numpy scalars -> numbers); ExportError on NaN/inf."""
    def plain(o):
        if hasattr(o, "tolist"):  # numpy arrays and scalars
            return o.tolist()
        raise TypeError(f"{type(o).__name__} is not JSON")

    try:
        return json.loads(json.dumps(manifest, default=plain, allow_nan=False))
    except ValueError as e:
        raise ExportError(f"manifest holds NaN or Infinity, which JSON (flow.json) cannot: {_find_nonfinite(manifest)}") from e
    except TypeError as e:
        raise ExportError(f"manifest holds a value JSON cannot represent: {e}") from e


def _find_nonfinite(o, path=()) -> str:
    if isinstance(o, dict):
        for k, v in o.items():
            found = _find_nonfinite(v, (*path, k))
            if found:
                return found
    elif isinstance(o, (list, tuple)):
        for i, v in enumerate(o):
            found = _find_nonfinite(v, (*path, i))
            if found:
                return found
    elif isinstance(o, float) and not math.isfinite(o):
        return f"{_where(path)} {o}"
    return ""


def schema_problems(manifest: dict) -> list:
    """Every schema violation of a complete flow.json as plain messages (empty when valid)."""
    validator = jsonschema.Draft7Validator(schema())
    return [m for e in sorted(validator.iter_errors(manifest), key=_order) for m in _messages(e)]


def semantic_problems(manifest: dict, folder_name: str | None = None) -> list:
    """The service's load-time rules beyond the schema (src/service/registry.ts), for a schema-valid manifest."""
    out = []
    if folder_name is not None and manifest["name"] != folder_name:
        out.append(f"name {fmt(manifest['name'])}: must equal the package folder's name {fmt(folder_name)} "
                   "(the service refuses a flow.json that names another folder)")
    data = manifest["data"]
    if data["kind"] == "image" and (len(data["shape"]) != 3 or data["range"] is None or data["bitDepth"] is None):
        out.append(f"data: image models need shape [C, H, W], a range and a bitDepth; got shape {data['shape']}, "
                   f"range {fmt(data['range'])}, bitDepth {fmt(data['bitDepth'])} (a flat vector model is kind 'vector')")
    r = data["range"]
    if r is not None and not r[0] < r[1]:
        out.append(f"data.range {fmt(r)}: must be [low, high] with low < high")
    dim = math.prod(data["shape"])
    parts = sum(math.prod(p["shape"]) for p in manifest["latent"]["parts"])
    if parts != dim:
        out.append(f"latent.parts {fmt([p['shape'] for p in manifest['latent']['parts']])}: sizes add up to {parts}, "
                   f"the data dimension is {dim} (data.shape {data['shape']}); a flow is a bijection, every latent part counts")
    names = [p["name"] for p in manifest["latent"]["parts"]]
    if len(set(names)) != len(names) or "x" in names or "logDet" in names:
        out.append(f"latent.parts names {names}: must be distinct and not 'x' or 'logDet' (the graphs' io names)")
    cal = manifest.get("calibration")
    if cal:
        image8 = data["kind"] == "image" and data["bitDepth"] == 8
        can = [s for s in SCORE_NAMES if (s != "typicality" or "nll" in cal["scores"]) and (image8 or s not in IMAGE_SCORES)]
        if cal["defaultScore"] not in can:
            out.append(f"calibration.defaultScore {fmt(cal['defaultScore'])}: must be a score this model computes ({', '.join(can)})")
        elif cal["defaultScore"] not in cal["scores"]:
            out.append(f"calibration.defaultScore {fmt(cal['defaultScore'])}: has no statistics in calibration.scores "
                       f"({', '.join(cal['scores'])})")
    return out


def validate_manifest(manifest: dict, folder_name: str | None = None) -> None:
    """ExportError listing every violation, schema first (the semantic rules assume a schema-valid manifest)."""
    problems = schema_problems(manifest)
    if not problems:
        problems = semantic_problems(manifest, folder_name)
    if problems:
        sep = "\n  - " if len(problems) > 1 else " "
        raise ExportError("the manifest would be refused by flowserve:" + sep + sep.join(problems))
