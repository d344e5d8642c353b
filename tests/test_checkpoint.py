"""Checkpoints: the safe .npz format, fallback to the previous one, pickle conversion, compatibility checks."""

import json
import pickle

import numpy as np
import pytest

import qernel.run as qrun
from qernel.training.checkpoint import (
    CheckpointError,
    check_compatible,
    convert_pickle_checkpoint,
    load_checkpoint,
    save_checkpoint,
)

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
    path = wide.driver.save(tmp_path / "wide.npz")
    narrow = build_run(config(2))
    with pytest.raises(CheckpointError, match="do not match the model"):
        narrow.driver.restore(path)


# -- the safe format: no pickle, previous checkpoint kept, clear one-line errors --------------------
def _tiny_driver():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_driver import _driver

    return _driver()


def test_checkpoint_is_an_npz_without_pickled_objects(tmp_path):
    driver = _tiny_driver()
    driver.run(1, output_dir=tmp_path, progress=False)
    path = tmp_path / "checkpoint.npz"
    with np.load(path, allow_pickle=False) as archive:  # would raise on any object array
        names = set(archive.files)
        meta = json.loads(archive["__metadata__"].tobytes())
    assert "sampler_state.σ" in names and "sampler_state.rng" in names
    assert meta["step"] == 1 and meta["prng_keys"] == {"sampler_state.rng": "threefry2x32"}
    assert meta["qernel_version"]


def test_pickle_file_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    old = tmp_path / "checkpoint.pkl"
    old.write_bytes(pickle.dumps({"format_version": 1, "x": Payload()}))
    with pytest.raises(CheckpointError, match=r"old pickle checkpoint; it is not loaded .* qernel convert-checkpoint"):
        load_checkpoint(old)
    with pytest.raises(CheckpointError, match=r"refusing to load builtins?\.open|refusing to load io\.open"):
        convert_pickle_checkpoint(old, tmp_path / "new.npz")
    assert not marker.exists()


def test_truncated_newest_checkpoint_falls_back_to_the_previous_one(tmp_path, capsys):
    path = tmp_path / "checkpoint.npz"
    save_checkpoint(path, {"step": 1, "params": {"w": np.ones(3)}})
    save_checkpoint(path, {"step": 2, "params": {"w": np.zeros(3)}})
    assert load_checkpoint(path)["step"] == 2 and (tmp_path / "checkpoint.prev.npz").is_file()
    path.write_bytes(path.read_bytes()[:100])  # truncated, e.g. a full disk
    with pytest.raises(CheckpointError, match=r"checkpoint.npz: truncated or corrupt checkpoint") as info:
        load_checkpoint(path, fallback=False)
    assert "\n" not in str(info.value)
    data = load_checkpoint(path)
    assert data["step"] == 1 and list(data["params"]["w"]) == [1.0, 1.0, 1.0]
    assert "using the previous checkpoint" in capsys.readouterr().err


def test_foreign_npz_is_named(tmp_path):
    np.savez(tmp_path / "other.npz", a=np.ones(2))
    with pytest.raises(CheckpointError, match=r"other.npz: not a qernel checkpoint \(no __metadata__"):
        load_checkpoint(tmp_path / "other.npz")


def test_old_pickle_checkpoint_converts_and_resumes_exactly(tmp_path, monkeypatch, capsys):
    """A format-1 pickle (as qernel 0.1 wrote it) converted with ``qernel convert-checkpoint``
    restores to the very state it was written from: the next step is bit-identical."""
    import jax

    from qernel.cli import main
    from qernel.training import checkpoint as ckpt

    driver = _tiny_driver()
    driver.run(2, progress=False)

    class _KeyData:  # the format-1 host copy of a typed PRNG key
        def __init__(self, key):
            self.data = np.asarray(jax.random.key_data(key))
            self.impl = str(jax.random.key_impl(key))

    def to_host(leaf):
        if isinstance(leaf, jax.Array):
            return _KeyData(leaf) if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) else np.asarray(leaf)
        return leaf

    payload = {"format_version": 1, **jax.tree_util.tree_map(to_host, driver.state_dict()), "config": {"a": 1}}
    _KeyData.__module__, _KeyData.__qualname__ = "qernel.training.checkpoint", "_KeyData"
    monkeypatch.setattr(ckpt, "_KeyData", _KeyData, raising=False)
    old = tmp_path / "checkpoint.pkl"
    old.write_bytes(pickle.dumps(payload))
    monkeypatch.undo()

    new = tmp_path / "checkpoint.npz"
    assert main(["convert-checkpoint", str(old), str(new)]) == 0
    assert "wrote" in capsys.readouterr().out
    expected = driver.step()["energy"]
    resumed = _tiny_driver()
    data = resumed.restore(new)
    assert data["config"] == {"a": 1} and resumed.step_count == 2
    assert resumed.step()["energy"] == expected


def test_spring_and_pretraining_trees_are_stored_as_arrays(tmp_path):
    """SPRING's previous direction and the pretraining's reference sampler state are pytrees of
    arrays (not JSON metadata): both round-trip through the npz checkpoint."""
    direction = {"det": {"w": np.arange(24.0).reshape(8, 3) + 1j}}
    reference = {"rule": np.ones(2), "n_steps": np.array(7)}
    path = save_checkpoint(tmp_path / "c.npz", {"step": 3, "params": MODEL, "previous_direction": direction,
                                                 "reference_sampler_state": reference})
    data = load_checkpoint(path)
    assert data["step"] == 3
    np.testing.assert_array_equal(np.asarray(list(data["previous_direction"].values())[0]), direction["det"]["w"])
    assert sorted(np.ravel(v).tolist() for v in data["reference_sampler_state"].values()) == [[1.0, 1.0], [7]]
