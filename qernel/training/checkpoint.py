"""Atomic, exact checkpoints of a training run.

A checkpoint holds everything the next step depends on: variational parameters, model state,
optimizer state, the NetKet sampler state (chains, per-chain step sizes, sampler PRNG key), the
driver's own PRNG key and the step counter, plus the run configuration. Restoring it and
continuing gives bit-for-bit the trajectory of an uninterrupted run on the same machine.

Writes are atomic: the file is written to a temporary name in the same directory, flushed to
disk and renamed over the old checkpoint (``os.replace``), so a kill during a write leaves the
last good checkpoint intact.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

__all__ = ["save_checkpoint", "load_checkpoint", "to_device", "check_compatible", "CheckpointError"]

_FORMAT_VERSION = 1


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or incompatible."""


class _KeyData:
    """Host copy of a typed JAX PRNG key array (typed keys cannot become NumPy arrays)."""

    def __init__(self, key) -> None:
        self.data = np.asarray(jax.random.key_data(key))
        self.impl = str(jax.random.key_impl(key))

    def restore(self):
        return jax.random.wrap_key_data(self.data, impl=self.impl)


def _leaf_to_host(leaf):
    if isinstance(leaf, jax.Array):
        if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
            return _KeyData(leaf)
        return np.asarray(jax.device_get(leaf))
    return leaf


def _leaf_from_host(leaf):
    if isinstance(leaf, _KeyData):
        return leaf.restore()
    if isinstance(leaf, np.ndarray):
        return jax.numpy.asarray(leaf)
    return leaf


def _to_host(tree):
    return jax.tree_util.tree_map(_leaf_to_host, tree)


def to_device(tree):
    """Inverse of the host conversion done when saving: NumPy arrays -> JAX arrays, keys rewrapped."""
    return jax.tree_util.tree_map(_leaf_from_host, tree, is_leaf=lambda x: isinstance(x, _KeyData))


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any]) -> Path:
    """Atomically write ``payload`` (a dict of pytrees) to ``path``; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"format_version": _FORMAT_VERSION, **_to_host(payload)}
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            pickle.dump(data, handle, protocol=pickle.HIGHEST_PROTOCOL)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def load_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Raises:
        CheckpointError: if the file does not exist, is not a qernel checkpoint, or has an
            unknown format version.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        with open(path, "rb") as handle:
            data = pickle.load(handle)
    except Exception as error:  # noqa: BLE001 - report any unpickling failure the same way
        raise CheckpointError(f"checkpoint {path} is unreadable: {error}") from error
    if not isinstance(data, dict) or data.get("format_version") != _FORMAT_VERSION:
        raise CheckpointError(f"{path} is not a qernel checkpoint of format version {_FORMAT_VERSION}")
    return data


def check_compatible(saved, current, what: str = "params") -> None:
    """Raise :class:`CheckpointError` unless ``saved`` has the tree structure and leaf shapes of
    ``current`` (e.g. a checkpoint of a different ansatz size or of renamed modules).

    The message names the first differing entry, so a user sees which part of the model changed
    instead of a generic NetKet parameter-mismatch error.
    """
    saved_paths = dict(jax.tree_util.tree_flatten_with_path(saved)[0])
    current_paths = dict(jax.tree_util.tree_flatten_with_path(current)[0])
    for path in current_paths:
        if path not in saved_paths:
            raise CheckpointError(
                f"checkpoint {what} do not match the model: {jax.tree_util.keystr(path)} is missing from the "
                "checkpoint (was it written by a different ansatz or qernel version?)"
            )
        saved_shape, shape = np.shape(saved_paths[path]), np.shape(current_paths[path])
        if saved_shape != shape:
            raise CheckpointError(
                f"checkpoint {what} do not match the model: {jax.tree_util.keystr(path)} has shape {saved_shape} "
                f"in the checkpoint but {shape} in the model (different ansatz size?)"
            )
    extra = set(saved_paths) - set(current_paths)
    if extra:
        first = jax.tree_util.keystr(sorted(extra, key=str)[0])
        raise CheckpointError(f"checkpoint {what} do not match the model: {first} is not a parameter of the model")
