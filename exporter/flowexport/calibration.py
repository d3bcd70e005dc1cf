"""Calibration block of flow.json: score statistics on a held-out slice the model never saw.

    nll          = -log p(x)                        (nats)
    typicality   = |nll - mean(nll)| / std(nll)     (mean/std from the same slice)
    threshold    = (1 - targetFalsePositiveRate) quantile of the score on the slice
    nllQuantiles = 101 evenly spaced quantiles of the slice's nll, min … max: sorted[round(i/100·(n−1))],
                   i = 0…100 (the definition of tools/calibrate.ts); the service's batch typicality
                   test (/likelihood with batchTest) bootstraps from them and refuses without them
    quantiles    = the same 101 quantiles of each score (scores.<name>.quantiles): the in-distribution
                   histogram GET /models/{name} serves (calibration.distribution) and the web page draws
"""
from __future__ import annotations

import math

import numpy as np

QUANTILES = 101


def _stats(score: np.ndarray, fpr: float) -> dict:
    return {
        "mean": float(score.mean()),
        "std": float(score.std()),
        "min": float(score.min()),
        "max": float(score.max()),
        "threshold": float(np.quantile(score, 1.0 - fpr)),
        "quantiles": nll_quantiles(score),
    }


def nll_quantiles(nll, count: int = QUANTILES) -> list:
    """sorted[round(i/(count-1)·(n−1))] for i = 0…count-1, rounding halves up as JavaScript's Math.round does."""
    s = np.sort(np.asarray(nll, dtype=np.float64))
    n = s.size
    return [float(s[min(n - 1, math.floor((i / (count - 1)) * (n - 1) + 0.5))]) for i in range(count)]


def calibration_block(nll, split: str, target_fpr: float = 0.01, default_score: str = "nll") -> dict:
    nll = np.asarray(nll, dtype=np.float64)
    if nll.ndim != 1 or nll.size < 2 or not np.all(np.isfinite(nll)):
        raise ValueError("calibration needs a vector of at least 2 finite nll values")
    typicality = np.abs(nll - nll.mean()) / nll.std()
    return {
        "split": split,
        "count": int(nll.size),
        "defaultScore": default_score,
        "targetFalsePositiveRate": target_fpr,
        "scores": {"nll": _stats(nll, target_fpr), "typicality": _stats(typicality, target_fpr)},
        "nllQuantiles": nll_quantiles(nll),
    }
