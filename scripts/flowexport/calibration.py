"""Calibration block of flow.json: score statistics on a held-out slice the model never saw.

    nll        = -log p(x)                        (nats)
    typicality = |nll - mean(nll)| / std(nll)     (mean/std from the same slice)
    threshold  = (1 - targetFalsePositiveRate) quantile of the score on the slice
"""
from __future__ import annotations

import numpy as np


def _stats(score: np.ndarray, fpr: float) -> dict:
    return {
        "mean": float(score.mean()),
        "std": float(score.std()),
        "min": float(score.min()),
        "max": float(score.max()),
        "threshold": float(np.quantile(score, 1.0 - fpr)),
    }


def calibration_block(nll, split: str, target_fpr: float = 0.01, default_score: str = "nll") -> dict:
    nll = np.asarray(nll, dtype=np.float64)
    if nll.ndim != 1 or nll.size == 0 or not np.all(np.isfinite(nll)):
        raise ValueError("calibration needs a non-empty vector of finite nll values")
    typicality = np.abs(nll - nll.mean()) / nll.std()
    return {
        "split": split,
        "count": int(nll.size),
        "defaultScore": default_score,
        "targetFalsePositiveRate": target_fpr,
        "scores": {"nll": _stats(nll, target_fpr), "typicality": _stats(typicality, target_fpr)},
    }
