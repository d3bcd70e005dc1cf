"""Bake a Glow package's LU-built W / W^-1 into its graphs as initializers (for the measurement in
scripts/measure-lu-feed.ts, which compares that against feeding them as graph inputs).

    /usr/bin/python3 scripts/lu_bake.py models/glow-fashion /tmp/glow-baked
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import numpy_helper

# the exporter library of this checkout (exporter/flowexport)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir, "exporter"))
from flowexport.lu import LUFactors  # noqa: E402


def main(pkg: str, out: str) -> None:
    os.makedirs(out, exist_ok=True)
    manifest = json.load(open(os.path.join(pkg, "flow.json")))
    layers = json.load(open(os.path.join(pkg, manifest["lu"]["file"])))["layers"]
    mats = {}
    for layer in layers:
        f = LUFactors(layer["name"], layer["channels"], layer["spatial"], layer["perm"], np.array(layer["lower"]),
                      np.array(layer["upper"]), np.array(layer["signS"]), np.array(layer["logS"]))
        mats[layer["forwardInput"]] = f.w()
        mats[layer["inverseInput"]] = f.w_inv()
    for graph in ("forward", "inverse"):
        model = onnx.load(os.path.join(pkg, manifest["graphs"][graph]))  # resolves weights.bin
        g = model.graph
        keep = [i for i in g.input if i.name not in mats]
        for i in g.input:
            if i.name in mats:
                g.initializer.append(numpy_helper.from_array(mats[i.name].astype(np.float32), i.name))
        del g.input[:]
        g.input.extend(keep)
        onnx.save(model, os.path.join(out, f"{graph}.onnx"))
        print(f"{graph}: baked {len(mats) // 2} matrices -> {out}/{graph}.onnx")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
