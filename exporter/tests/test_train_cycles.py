"""scripts/train.py's fixed schedules in cosine cycles (warm restarts) and --resume: the checkpoint at
the end of cycle 1 is the same computation as a one-cycle run of that length, and resuming from it
gives the uninterrupted run's weights bit for bit. The shipped glow-fashion and realnvp-mnist were
trained that way (docs/models.md), so these are the claims their training.command rests on.
A tiny realnvp-moons configuration keeps it to seconds."""
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
import train  # noqa: E402

CYCLES = [dict(epochs=1, lr=3e-3), dict(epochs=1, lr=1e-3)]


def tiny(cycles=None, epochs=1):
    cfg = train.config_for("realnvp-moons", quick=True)
    cfg.update(train_subset=2048, eval_subset=256, epochs=epochs, cycles=cycles)
    return cfg


def same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def quiet(*_):
    pass


def test_resumed_run_equals_uninterrupted_run_and_cycle_one_equals_a_one_cycle_run(tmp_path):
    full = train.train(tiny(CYCLES), tmp_path / "full.pt", log=quiet)
    assert full["epochs"] == 2 and full["cycles"] == CYCLES
    after_one = torch.load(tmp_path / "full.cycle1.pt")
    assert after_one["epochs"] == 1

    one_cycle = train.train(tiny(None, epochs=1), tmp_path / "one.pt", log=quiet)
    assert same(one_cycle["state"], after_one["state"])
    assert not (tmp_path / "one.cycle1.pt").exists()

    resumed = train.train(tiny(CYCLES), tmp_path / "resumed.pt", log=quiet, resume=after_one)
    assert same(resumed["state"], full["state"])
    assert resumed["test"] == full["test"]
    # the second cycle changed the weights: the comparison above is not between untouched copies
    assert not same(full["state"], after_one["state"])


def test_resume_from_a_checkpoint_that_does_not_end_a_cycle_is_refused(tmp_path):
    with pytest.raises(SystemExit, match="cycles end at"):
        train.train(tiny(CYCLES), tmp_path / "x.pt", log=quiet, resume={"state": {}, "epochs": 2})


def test_optimizer_text_names_every_cycle():
    cfg = tiny(CYCLES)
    text = train.optimizer_text(cfg, train.cycles_of(cfg))
    assert "2 cosine cycles" in text and "1 epochs from lr 0.003, then 1 epochs from lr 0.001" in text
    assert train.optimizer_text(cfg, [dict(epochs=3, lr=1e-3)]).startswith("adam lr 0.001 (warmup")
