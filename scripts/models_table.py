#!/usr/bin/env python3
"""Print the docs/models.md summary table from the shipped manifests (models/*/flow.json)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# issue 16's targets (uniformly dequantized test figures)
TARGETS = {"realnvp-moons": "-", "nice-mnist": (">=", 1800, "nats"), "realnvp-mnist": ("<=", 1.50, "bpd"), "glow-fashion": ("<=", 3.30, "bpd")}


def target_text(name: str, test: dict) -> str:
    if name not in TARGETS or TARGETS[name] == "-":
        return "-"
    op, bound, unit = TARGETS[name]
    value = test["meanLogLikelihood"] if unit == "nats" else test["bitsPerDim"]
    met = value >= bound if op == ">=" else value <= bound
    return f"{op.replace('>=', '≥').replace('<=', '≤')} {bound:g} {unit}: " + ("met" if met else "**missed**")


def main() -> int:
    print("| model | family | params | epochs | train time | test log-likelihood (nats) | test bits/dim | target | package | reproduce |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---|")
    for folder in sorted((ROOT / "models").iterdir()):
        if not (folder / "flow.json").exists():
            continue
        m = json.loads((folder / "flow.json").read_text())
        t = m["training"]
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"| `{m['name']}` | {m['family']} | {t['parameters']:,} | {t['epochs']:.4g} | {t['seconds'] / 60:.1f} min, "
              f"{t['device']} | {t['test']['meanLogLikelihood']:.2f} | {t['test']['bitsPerDim']:.3f} | "
              f"{target_text(m['name'], t['test'])} | {size / 1e6:.2f} MB | `{t['command']}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
