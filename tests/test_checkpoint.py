"""Checkpoint compatibility checks and fast failure of a resume without a checkpoint."""

import numpy as np
import pytest

import qernel.run as qrun
from qernel.training.checkpoint import CheckpointError, check_compatible

MODEL = {"block_0/linear": {"w": np.zeros((4, 8)), "b": np.zeros(8)}, "det": {"w": np.zeros((8, 3))}}


def test_identical_structure_is_compatible():
    check_compatible({k: dict(v) for k, v in MODEL.items()}, MODEL)


def test_different_width_is_named():
    saved = {"block_0/linear": {"w": np.zeros((4, 16)), "b": np.zeros(16)}, "det": {"w": np.zeros((8, 3))}}
    with pytest.raises(CheckpointError, match=r"\['block_0/linear'\]\['b'\] has shape \(16,\) in the checkpoint"):
        check_compatible(saved, MODEL)


def test_missing_and_extra_modules_are_named():
    with pytest.raises(CheckpointError, match=r"\['det'\]\['w'\] is missing from the checkpoint"):
        check_compatible({"block_0/linear": MODEL["block_0/linear"]}, MODEL)
    with pytest.raises(CheckpointError, match=r"\['jastrow'\]\['a'\] is not a parameter of the model"):
        check_compatible({**MODEL, "jastrow": {"a": np.zeros(2)}}, MODEL)


def test_resume_without_checkpoint_fails_before_building_the_run(tmp_path, monkeypatch):
    def no_build(config):  # building compiles the model: must not happen before the check
        raise AssertionError("build_run called before the checkpoint check")

    monkeypatch.setattr(qrun, "build_run", no_build)
    config = {"system": {"kind": "trap", "n_electrons": 2}, "parameters": {"type": "none"},
              "run": {"output_dir": str(tmp_path / "run")}}
    with pytest.raises(CheckpointError, match="cannot resume: checkpoint not found"):
        qrun.train(config, resume=True)


def test_driver_restore_of_a_different_model_raises_checkpoint_error(tmp_path):
    """A checkpoint of a wider model restored into a narrower one: CheckpointError naming the entry."""
    from qernel.run import build_run

    def config(width):
        return {"system": {"kind": "trap", "n_electrons": 2}, "parameters": {"type": "none"},
                "ansatz": {"kind": "slater_jastrow", "jastrow_smooth": width, "complex_output": False,
                           "log_abs_only": True},
                "sampler": {"n_chains": 4, "n_samples": 8, "n_thermalise": 0},
                "run": {"output_dir": str(tmp_path / f"w{width}")}}

    wide = build_run(config(4))
    path = wide.driver.save(tmp_path / "wide.pkl")
    narrow = build_run(config(2))
    with pytest.raises(CheckpointError, match="do not match the model"):
        narrow.driver.restore(path)
