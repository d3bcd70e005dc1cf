#!/usr/bin/env python3
"""Print the docs/models.md summary table from the shipped manifests (models/*/flow.json)."""
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = {"realnvp-moons": "-", "nice-mnist": ">= 1900 nats", "realnvp-mnist": "<= 1.3 bpd", "glow-fashion": "<= 3.1 bpd"}


def main() -> int:
    print("| model | family | params | epochs | train time | test log-likelihood (nats) | test bits/dim | target | package | reproduce |")
    print("|---|---|---:|---:|---:|---:|---:|---|---:|---|")
    for folder in sorted((ROOT / "models").iterdir()):
        if not (folder / "flow.json").exists():
            continue
        m = json.loads((folder / "flow.json").read_text())
        t = m["training"]
        size = sum(p.stat().st_size for p in folder.iterdir())
        print(f"| `{m['name']}` | {m['family']} | {t['parameters']:,} | {t['epochs']} | {t['seconds'] / 60:.1f} min "
              f"({t['device']}) | {t['test']['meanLogLikelihood']:.2f} | {t['test']['bitsPerDim']:.3f} | "
              f"{TARGETS.get(m['name'], '-')} | {size / 1e6:.2f} MB | `{t['command']}` |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
