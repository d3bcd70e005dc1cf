"""LU factors of invertible 1x1 convolutions (Glow), in the lu.json layout of docs/model-package.md.

    W    = P . L . (U + diag(signS * exp(logS)))      P[i][perm[i]] = 1, L unit lower, U strictly upper
    W^-1 = (U + diag)^-1 . L^-1 . P^T                  (triangular solves, as the service does)
    log|det| of the conv over `spatial` positions = spatial * sum(logS)   (added by the service)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg


@dataclass
class LUFactors:
    name: str
    channels: int
    spatial: int
    perm: list          # c ints
    lower: np.ndarray   # c x c float64, strictly-lower part used
    upper: np.ndarray   # c x c float64, strictly-upper part used
    sign_s: np.ndarray  # c, +-1
    log_s: np.ndarray   # c

    def parts(self):
        c = self.channels
        p = np.zeros((c, c))
        p[np.arange(c), np.asarray(self.perm)] = 1.0
        l = np.tril(np.asarray(self.lower, np.float64), -1) + np.eye(c)
        u = np.triu(np.asarray(self.upper, np.float64), 1) + np.diag(self.sign_s * np.exp(self.log_s))
        return p, l, u

    def w(self) -> np.ndarray:
        p, l, u = self.parts()
        return p @ l @ u

    def w_inv(self) -> np.ndarray:
        p, l, u = self.parts()
        l_inv_pt = scipy.linalg.solve_triangular(l, p.T, lower=True, unit_diagonal=True)
        return scipy.linalg.solve_triangular(u, l_inv_pt, lower=False)

    def logdet(self) -> float:
        return float(self.spatial * np.sum(self.log_s))

    @classmethod
    def from_json(cls, layer: dict) -> "LUFactors":
        """One entry of lu.json's `layers`, as to_json wrote it."""
        return cls(layer["name"], layer["channels"], layer["spatial"], layer["perm"], np.array(layer["lower"]),
                   np.array(layer["upper"]), np.array(layer["signS"]), np.array(layer["logS"]))

    def to_json(self, index: int) -> dict:
        return {
            "name": self.name,
            "channels": self.channels,
            "spatial": self.spatial,
            "forwardInput": f"w_{index}",
            "inverseInput": f"wInv_{index}",
            "perm": [int(i) for i in self.perm],
            "lower": np.asarray(self.lower, np.float64).tolist(),
            "upper": np.asarray(self.upper, np.float64).tolist(),
            "signS": [float(s) for s in self.sign_s],
            "logS": [float(s) for s in self.log_s],
        }


def lu_decompose(w: np.ndarray):
    """W -> (perm, strictly-lower L, strictly-upper U, signS, logS) with W = P L (U + diag)."""
    p, l, u = scipy.linalg.lu(np.asarray(w, np.float64))  # scipy: W = p @ l @ u
    perm = np.argmax(p, axis=1)                              # row i of p is e_perm[i]
    s = np.diag(u)
    return perm, np.tril(l, -1), np.triu(u, 1), np.sign(s), np.log(np.abs(s))
