"""pytest setup: import flowexport from this checkout (exporter/), installed or not, and shared tiny flows."""
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture
def models(tmp_path):
    """A fresh parent folder for packages; tests assert what is (not) left in it."""
    d = tmp_path / "models"
    d.mkdir()
    return d
