"""The foundation models shipped in qernel/pretrained_models load, say where they come from, and
evaluate offline at a V they were never trained on."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from qernel.pretrained import PRETRAINED_DIR, list_pretrained, pretrained_checkpoint
from qernel.training.checkpoint import CheckpointError

ROOT = Path(__file__).resolve().parent.parent


def test_shipped_models_carry_provenance_with_repository_relative_paths():
    records = list_pretrained()
    assert {r["name"] for r in records} >= {"nu23_3x3"}
    for record in records:
        p = record["provenance"]
        assert p["config_file"] and not Path(p["config_file"]).is_absolute()
        assert (ROOT / p["config_file"]).is_file(), p["config_file"]
        assert p["steps"] > 0 and p["qernel_version"] and p["training_wall_seconds"] > 0
        assert not [v for v in p.values() if isinstance(v, str) and Path(v).is_absolute()], p  # no machine path


def test_unknown_model_is_refused_with_the_available_names():
    with pytest.raises(CheckpointError, match="available: .*nu23_3x3"):
        pretrained_checkpoint("nu23_9x9")


def test_shipped_model_evaluates_at_an_untrained_value():
    """The N = 6 filling-2/3 model at V = 21 meV (trained on 20 and 22.5): a finite energy per
    electron between the Bloch-determinant bound's neighbourhood and far below no reference
    (loose bounds from the committed references at the neighbouring trained values)."""
    from qernel.run import evaluate_checkpoint

    (record,) = evaluate_checkpoint(pretrained_checkpoint("nu23_3x3"), {"V": [21.0]}, n_samples=256,
                                    n_thermalise=20)
    per_electron = record["energy"] / 6
    assert math.isfinite(per_electron)
    # references per electron at V = 20 / 22.5 meV: Bloch -66.80 / -72.15, ED (3 bands) -69.22 / -74.70
    assert -78.0 < per_electron < -66.0, per_electron
    assert PRETRAINED_DIR.is_dir()
