#!/usr/bin/env python3
"""Export a zoo model from its saved checkpoint, without retraining (same as train.py --export-only).

    /usr/bin/python3 scripts/export.py glow-fashion [--out DIR] [--quick]
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import train  # noqa: E402

if __name__ == "__main__":
    sys.exit(train.main([*sys.argv[1:], "--export-only"]))
