"""calibration_block's nllQuantiles follow tools/calibrate.ts exactly (the service's batch test reads them)."""
import math

import numpy as np

from flowexport import calibration_block, nll_quantiles


def test_block_has_101_quantiles_from_min_to_max():
    rng = np.random.default_rng(0)
    nll = rng.normal(size=1000)
    q = calibration_block(nll, "held out")["nllQuantiles"]
    assert len(q) == 101 and q[0] == nll.min() and q[-1] == nll.max()
    assert all(b >= a for a, b in zip(q, q[1:]))
    assert q[50] == np.sort(nll)[math.floor(0.5 * 999 + 0.5)]


def test_halves_round_up_as_javascript_math_round_does():
    # n = 11: i = 25 gives 25/100·10 = 2.5; JS Math.round -> 3 (Python's round() would give 2)
    nll = np.arange(11, dtype=float)[::-1]
    q = nll_quantiles(nll)
    assert q[25] == 3.0 and q[35] == 4.0 and q[5] == 1.0 and q[100] == 10.0


def test_small_slices_repeat_values():
    q = nll_quantiles([2.0, 1.0])
    assert q[:50] == [1.0] * 50 and q[50:] == [2.0] * 51  # round(0.5) = 1 for i = 50


def test_every_score_carries_its_quantiles_for_the_served_histogram():
    rng = np.random.default_rng(1)
    nll = rng.normal(size=500) * 3 + 10
    block = calibration_block(nll, "held out")
    assert block["scores"]["nll"]["quantiles"] == block["nllQuantiles"]
    typ = np.abs(nll - nll.mean()) / nll.std()
    assert block["scores"]["typicality"]["quantiles"] == nll_quantiles(typ)
    t = block["scores"]["typicality"]
    assert t["quantiles"][0] == t["min"] and t["quantiles"][-1] == t["max"]
