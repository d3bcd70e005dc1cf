#!/usr/bin/env python3
"""What float16 weight storage (flowexport.half) does to a shipped package: size, log p, round trip.

    /usr/bin/python3 scripts/measure_half.py models/nice-mnist --out /tmp/half --count 500 --json /tmp/half/nice-mnist.json

Writes OUT/<name>/ (OUT: --out, default a new temporary folder; never the source package): every graph
of the package converted by weights_to_float16 (float32 initializers of >= --min-elements elements stored
as float16, cast to float32 inside the graph), the shared weights.bin rebuilt from them
(flowexport.onnx_io.externalize_shared, as the exporter writes it), the other files copied, and
flow.json's `files` sha256 updated; nothing else in flow.json changes (reference.json, `sampling` and
`calibration` stay those of the float32 package, so verify_package measures the float16 package against
them). Then, for coupling packages (nice, realnvp, glow) of MNIST / Fashion-MNIST, on the first --count
test images at pixel centres x = (k + 0.5)/256, both packages through onnxruntime-node: log p exactly as
scripts/verify_package.py computes it (graph logDet + preprocessing log-det + LU log-det + standard-
normal prior of the latents), its change, and max |x - inverse(forward(x))| in data space. Last, runs
scripts/verify_package.py on the float16 copy and reports its result.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "exporter"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from flow_data import image_splits  # noqa: E402
from flowexport import LUFactors, bits_per_dim, log_standard_normal, transform_forward, transform_inverse  # noqa: E402
from flowexport.half import weights_to_float16  # noqa: E402
from flowexport.onnx_io import externalize_shared  # noqa: E402
from verify_package import run_coupling_package  # noqa: E402


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_bytes(folder: Path) -> int:
    """As verify_package counts a package: every file in the folder, flow.json included."""
    return sum(p.stat().st_size for p in folder.iterdir())


def snapshot(src: Path, dst: Path) -> dict:
    """Copy the package and check every file against flow.json's sha256 (a consistent snapshot even if
    something rewrites the source meanwhile)."""
    shutil.copytree(src, dst)
    m = json.loads((dst / "flow.json").read_text())
    bad = [f for f, digest in m["files"].items() if sha256(dst / f) != digest]
    if bad:
        raise SystemExit(f"{src}: files do not match flow.json's sha256: {bad} (is it being rewritten?)")
    return m


def convert_package(src: Path, dst: Path, min_elements: int) -> dict:
    """dst: src with every graph's weights stored as float16. Returns per-graph conversion counts."""
    m = json.loads((src / "flow.json").read_text())
    graphs = {k: v for k, v in m["graphs"].items() if k != "weights"}
    weights = m["graphs"].get("weights")
    dst.mkdir(parents=True)
    models, stats = {}, {}
    for key, file in graphs.items():
        model = onnx.load(str(src / file))  # external data loaded from weights.bin
        before = {t.name: t.data_type for t in model.graph.initializer}
        half = weights_to_float16(model, min_elements)
        after = {t.name: t.data_type for t in half.graph.initializer}
        stats[file] = {"converted": sum(1 for n in before if n not in after), "initializers": len(before)}
        models[file] = half
    if weights is not None:  # one shared blob, deduplicated, 64-byte aligned, as the exporter writes it
        (dst / weights).write_bytes(externalize_shared(list(models.values()), weights))
    for file, model in models.items():
        onnx.save(model, str(dst / file))
        onnx.checker.check_model(str(dst / file))
    written = set(models) | ({weights} if weights else set())
    for f in m["files"]:
        if f not in written:
            shutil.copy2(src / f, dst / f)
    m["files"] = {f: sha256(dst / f) for f in m["files"]}
    (dst / "flow.json").write_text(json.dumps(m, indent=2, ensure_ascii=False) + "\n")
    return stats


def evaluate(folder: Path, m: dict, x: torch.Tensor) -> dict:
    """log p [N] and the data-space round trip, computed by scripts/verify_package.py's own code."""
    _, _, z, _, log_prob, x_back = run_coupling_package(folder, m, x)
    return {"logProb": log_prob, "latents": z, "roundTrip": float(np.max(np.abs(x_back - x.numpy().reshape(len(x), -1))))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("package", type=Path)
    ap.add_argument("--out", type=Path, default=None, help="parent folder of the float16 copy (default: a new temporary folder)")
    ap.add_argument("--count", type=int, default=500, help="first N test images (default 500)")
    ap.add_argument("--min-elements", type=int, default=1024)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--force", action="store_true", help="replace OUT/<name> if it exists")
    args = ap.parse_args()

    src = args.package.resolve()
    out = (args.out or Path(tempfile.mkdtemp(prefix="half-"))).resolve()
    dst = out / src.name
    if dst == src or src in dst.parents:
        raise SystemExit(f"--out {out}: the copy would land on or inside the source package")
    if dst.exists():
        if not args.force:
            raise SystemExit(f"{dst} exists: remove it or pass --force")
        shutil.rmtree(dst)

    with tempfile.TemporaryDirectory(prefix="half-src-") as tmp:
        orig = Path(tmp) / src.name
        m = snapshot(src, orig)
        stats = convert_package(orig, dst, args.min_elements)
        size32, size16 = package_bytes(orig), package_bytes(dst)
        files32 = {f: (orig / f).stat().st_size for f in sorted(p.name for p in orig.iterdir())}
        files16 = {f: (dst / f).stat().st_size for f in sorted(p.name for p in dst.iterdir())}
        report = {"package": m["name"], "source": str(src), "copy": str(dst), "minElements": args.min_elements,
                  "graphs": stats, "bytes": {"float32": size32, "float16": size16, "filesFloat32": files32, "filesFloat16": files16}}
        print(f"{m['name']}: float16 copy in {dst}")
        for f, s in stats.items():
            print(f"  {f}: {s['converted']} of {s['initializers']} initializers stored as float16")

        dataset = m["training"].get("dataset")
        coupling = m["family"] in ("nice", "realnvp", "glow") and not m.get("program")
        if not coupling or dataset not in ("mnist", "fashion-mnist"):
            print(f"  no log p measurement: family {m['family']!r}, dataset {dataset!r} (coupling flows on mnist / fashion-mnist only)")
        else:
            k = image_splits(dataset)["test"][:args.count]
            x = torch.tensor((k.astype(np.float64) + 0.5) / 256.0).reshape(len(k), *m["data"]["shape"])
            dim = int(np.prod(m["data"]["shape"]))
            bit_depth = m["data"]["bitDepth"]
            r32, r16 = evaluate(orig, m, x), evaluate(dst, m, x)
            d = np.abs(r16["logProb"] - r32["logProb"])
            mean32, mean16 = float(r32["logProb"].mean()), float(r16["logProb"].mean())
            bpd32, bpd16 = bits_per_dim(mean32, dim, bit_depth), bits_per_dim(mean16, dim, bit_depth)
            report["measure"] = {
                "dataset": dataset, "split": "test", "count": int(len(k)), "pixels": "centres (k + 0.5)/256",
                "maxAbsDeltaLogProb": float(d.max()), "meanAbsDeltaLogProb": float(d.mean()),
                "meanLogProb": {"float32": mean32, "float16": mean16, "delta": mean16 - mean32},
                "bitsPerDim": {"float32": bpd32, "float16": bpd16, "delta": bpd16 - bpd32},
                "maxAbsDeltaLatent": float(np.max(np.abs(r16["latents"] - r32["latents"]))),
                "roundTrip": {"float32": r32["roundTrip"], "float16": r16["roundTrip"]},
            }
            mm = report["measure"]
            print(f"\n  {len(k)} {dataset} test images at pixel centres (onnxruntime-node, float32 compute)")
            print(f"  {'':<32} {'float32':>14} {'float16 weights':>16} {'change':>14}")
            print(f"  {'package bytes':<32} {size32:>14d} {size16:>16d} {size16 - size32:>+14d} ({size16 / size32:.3f}x)")
            print(f"  {'mean log p (nats)':<32} {mean32:>14.4f} {mean16:>16.4f} {mean16 - mean32:>+14.4f}")
            print(f"  {'bits/dim (of mean log p)':<32} {bpd32:>14.6f} {bpd16:>16.6f} {bpd16 - bpd32:>+14.2e}")
            print(f"  {'max |x - inv(fwd(x))|':<32} {r32['roundTrip']:>14.2e} {r16['roundTrip']:>16.2e}")
            print(f"  {'|Δ log p| per image (nats)':<32} {'max':>14} {mm['maxAbsDeltaLogProb']:>16.4f}")
            print(f"  {'':<32} {'mean':>14} {mm['meanAbsDeltaLogProb']:>16.4f}")
            print(f"  {'max |Δ latent|':<32} {'':>14} {mm['maxAbsDeltaLatent']:>16.2e}")

    print(f"\n  /usr/bin/python3 scripts/verify_package.py {dst}")
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "verify_package.py"), str(dst)], capture_output=True, text=True)
    print("\n".join("    " + line for line in (proc.stdout + proc.stderr).rstrip().splitlines()))
    report["verifyPackage"] = {"exitCode": proc.returncode, "output": proc.stdout + proc.stderr}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"  wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
