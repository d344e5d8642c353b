"""Safe, atomic, exact checkpoints of a training run (no pickle).

A checkpoint holds everything the next step depends on: variational parameters, model state,
optimizer state, the NetKet sampler state (chains, per-chain step sizes, sampler PRNG key), the
step counter, plus the run configuration and the code version. Restoring it and continuing gives
bit-for-bit the trajectory of an uninterrupted run on the same machine.

Format (``checkpoint.npz``): a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, read with
``allow_pickle=False``, so loading a checkpoint someone sent you runs no code). Every array leaf of
every pytree is stored under ``"<tree><key path>"``, e.g. ``params['mlp/~/linear_0']['w']`` or
``sampler_state.rule_state.sigma``; typed JAX PRNG keys are stored as their key data. The entry
``__metadata__`` holds UTF-8 JSON: format version, qernel version, step, the run configuration,
the key paths of each tree and the implementation of every PRNG key.

Writes are atomic: the archive is written to a temporary name in the same directory, flushed to
disk, the current checkpoint is renamed to ``checkpoint.prev.npz`` and the new file renamed into
place (``os.replace``). A kill at any moment leaves at least one complete checkpoint, and a corrupt
newest checkpoint falls back to the previous one with a message.

Old pickle checkpoints (``checkpoint.npz`` of qernel <= 0.1) are never loaded implicitly; convert
a trusted one with ``qernel convert-checkpoint OLD.pkl NEW.npz`` (:func:`convert_pickle_checkpoint`).
"""

from __future__ import annotations

import io
import json
import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import jax
import numpy as np

from ..distributed import is_main_process, to_host

__all__ = [
    "CHECKPOINT_NAME",
    "save_checkpoint",
    "load_checkpoint",
    "previous_path",
    "restore_like",
    "check_compatible",
    "convert_pickle_checkpoint",
    "CheckpointError",
]

#: File name of the newest checkpoint in a run's output directory.
CHECKPOINT_NAME = "checkpoint.npz"
_FORMAT = "qernel-checkpoint"
_FORMAT_VERSION = 2
_META = "__metadata__"
#: Top-level payload entries stored as array trees; every other entry must be JSON.
_TREES = ("params", "model_state", "optimizer_state", "sampler_state", "previous_direction",  # SPRING
          "reference_sampler_state")  # pretraining


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or incompatible."""


class SavedTree(dict):
    """A pytree read from a checkpoint without its Python structure: key path string -> array.

    :func:`restore_like` puts the arrays back into a live tree of the same structure.
    """


def previous_path(path: str | os.PathLike) -> Path:
    """The previous checkpoint kept beside ``path``: ``checkpoint.npz`` -> ``checkpoint.prev.npz``."""
    path = Path(path)
    return path.with_name(path.stem + ".prev" + path.suffix)


def _is_key(leaf) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _flatten(name: str, tree, arrays: dict[str, np.ndarray], keys: dict[str, str]) -> list[str]:
    paths = []
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        entry = name + jax.tree_util.keystr(path)
        if _is_key(leaf):
            keys[entry] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[entry] = to_host(leaf)  # gathered from every process when sharded over several
        paths.append(entry)
    return paths


def _encode(payload: dict[str, Any]) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    keys: dict[str, str] = {}
    trees: dict[str, list[str]] = {}
    meta: dict[str, Any] = {}
    for name, value in payload.items():
        if name in _TREES:
            trees[name] = _flatten(name, value, arrays, keys)
        else:
            meta[name] = value
    from .. import __version__

    header = {"format": _FORMAT, "format_version": _FORMAT_VERSION, "qernel_version": __version__,
              "trees": trees, "prng_keys": keys, **meta}
    arrays[_META] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def save_checkpoint(path: str | os.PathLike, payload: dict[str, Any], *, keep_previous: bool = True) -> Path:
    """Atomically write ``payload`` to ``path`` (an ``.npz`` archive); returns the path.

    ``payload`` holds the trees ``params``, ``model_state``, ``optimizer_state``, ``sampler_state``
    (any pytrees of arrays / PRNG keys) and JSON-serialisable entries (``step``, ``config``, ...).
    With ``keep_previous`` the file being replaced is kept as :func:`previous_path`. In a
    multi-process run every process must call this (arrays are gathered); process 0 writes.
    """
    path = Path(path)
    data = _encode(payload)  # before touching any file: a bad payload leaves the checkpoints as they are
    if not is_main_process():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if keep_previous and path.exists():
            os.replace(path, previous_path(path))
        os.replace(tmp_name, path)
    except BaseException:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)
        raise
    return path


def _nested(saved: SavedTree, name: str):
    """A tree of nested dicts when every key path is made of dict keys (Haiku params), else ``saved``."""
    import ast
    import re

    out: dict = {}
    for entry, leaf in saved.items():
        parts = re.findall(r"\[('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\")\]", entry[len(name):])
        if "".join(f"[{p}]" for p in parts) != entry[len(name):] or not parts:
            return saved
        node = out
        keys = [ast.literal_eval(p) for p in parts]
        for key in keys[:-1]:
            node = node.setdefault(key, {})
        node[keys[-1]] = leaf
    return out


def _decode(path: Path) -> dict[str, Any]:
    with open(path, "rb") as handle:
        head = handle.read(4)
    if head[:1] == b"\x80":
        raise CheckpointError(
            f"{path}: an old pickle checkpoint; it is not loaded (unpickling can run code). If you trust it, "
            f"convert it with: qernel convert-checkpoint {path} {path.with_suffix('.npz')}"
        )
    if head != b"PK\x03\x04":
        raise CheckpointError(f"{path}: not a qernel checkpoint (not an .npz archive)")
    try:
        with np.load(path, allow_pickle=False) as archive:
            if _META not in archive.files:
                raise CheckpointError(f"{path}: not a qernel checkpoint (no {_META} entry)")
            header = json.loads(archive[_META].tobytes().decode())
            if header.get("format") != _FORMAT:
                raise CheckpointError(f"{path}: not a qernel checkpoint (format {header.get('format')!r})")
            if header.get("format_version") != _FORMAT_VERSION:
                raise CheckpointError(f"{path}: checkpoint format version {header.get('format_version')} is not "
                                      f"supported (this qernel reads version {_FORMAT_VERSION})")
            data = {k: v for k, v in header.items() if k not in ("trees", "prng_keys")}
            keys = header["prng_keys"]
            for name, entries in header["trees"].items():
                saved = SavedTree()
                for entry in entries:
                    leaf = archive[entry]
                    saved[entry] = jax.random.wrap_key_data(leaf, impl=keys[entry]) if entry in keys else leaf
                data[name] = _nested(saved, name) if name in ("params", "model_state") else saved
            return data
    except CheckpointError:
        raise
    except (zipfile.BadZipFile, EOFError, OSError, ValueError, KeyError, UnicodeDecodeError) as error:
        raise CheckpointError(f"{path}: truncated or corrupt checkpoint ({type(error).__name__}: {error})") from error


def load_checkpoint(path: str | os.PathLike, *, fallback: bool = True) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`.

    Returns the JSON entries (``step``, ``config``, ``qernel_version``, ...), ``loaded_from`` (the
    file actually read: ``path`` or, after a fallback, the previous checkpoint) and the trees:
    ``params``/``model_state`` as nested dicts, ``optimizer_state``/``sampler_state`` as
    :class:`SavedTree` (restore them with :func:`restore_like`). With ``fallback``, a missing or
    corrupt ``path`` falls back to :func:`previous_path` with a message on stderr.

    Raises:
        CheckpointError: one line naming the file and the problem (missing, truncated, foreign,
            old pickle, unknown format version).
    """
    path = Path(path)
    previous = previous_path(path)
    try:
        if not path.is_file():
            raise CheckpointError(f"checkpoint not found: {path}")
        return {**_decode(path), "loaded_from": str(path)}
    except CheckpointError as error:
        if not (fallback and previous.is_file()):
            raise
        data = _decode(previous)
        print(f"qernel: {error}; using the previous checkpoint {previous} (step {data.get('step')})",
              file=sys.stderr)
        return {**data, "loaded_from": str(previous)}


def restore_like(saved, live):
    """``saved`` (a :class:`SavedTree` or a tree) as a tree shaped like ``live``, every array placed on
    the sharding of the matching live leaf (so jitted functions compiled before are reused)."""
    if isinstance(saved, SavedTree):
        name = next(iter(saved), "")
        flat, treedef = jax.tree_util.tree_flatten_with_path(live)
        prefix = _common_prefix(saved, flat)
        leaves = []
        for path, _ in flat:
            entry = prefix + jax.tree_util.keystr(path)
            if entry not in saved:
                raise CheckpointError(f"checkpoint entry {entry} is missing (a different optimizer or sampler?)"
                                      if name else "checkpoint tree is empty but the run expects arrays")
            leaves.append(saved[entry])
        if len(saved) != len(flat):
            raise CheckpointError(f"checkpoint tree {prefix or '?'} has {len(saved)} arrays, the run has "
                                  f"{len(flat)} (a different optimizer or sampler?)")
        saved = jax.tree_util.tree_unflatten(treedef, leaves)

    def place(leaf, like):
        if isinstance(like, jax.Array):
            if _is_key(like) != _is_key(leaf):
                raise CheckpointError("a checkpoint PRNG key does not match the run's (typed key vs array)")
            if np.shape(leaf) != like.shape:
                raise CheckpointError(f"checkpoint array of shape {np.shape(leaf)} where the run has {like.shape}")
            if not _is_key(like):
                leaf = np.asarray(leaf, dtype=like.dtype)
            if not like.is_fully_addressable:
                return _put_global(leaf, like)
            if jax.process_count() > 1 and not getattr(like, "_committed", True):
                # an uncommitted live leaf (e.g. created by jnp on the default device) stays uncommitted:
                # committed to this process's device it would clash with the global mesh in NetKet's jits
                return jax.numpy.asarray(leaf)
            return jax.device_put(leaf, like.sharding)
        return leaf

    return jax.tree_util.tree_map(place, saved, live)


def _put_global(leaf, like):
    """A host value as a global array spanning several processes, sharded like ``like`` (every
    process holds the whole host value and supplies its own shards)."""
    if _is_key(like):
        data = np.asarray(jax.random.key_data(leaf))
        array = jax.make_array_from_callback(data.shape, like.sharding, lambda index: data[index])
        return jax.random.wrap_key_data(array, impl=str(jax.random.key_impl(like)))
    return jax.make_array_from_callback(leaf.shape, like.sharding, lambda index: leaf[index])


def _common_prefix(saved: SavedTree, flat) -> str:
    """The tree name that prefixes every entry of ``saved`` (e.g. ``sampler_state``)."""
    if not saved:
        return ""
    first = next(iter(saved))
    for path, _ in flat:
        suffix = jax.tree_util.keystr(path)
        if first.endswith(suffix):
            return first[: len(first) - len(suffix)]
    return first.split(".")[0].split("[")[0]


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


# -- explicit conversion of old pickle checkpoints -------------------------------------------------
_ALLOWED_MODULES = ("numpy", "jax", "jaxlib", "optax", "netket", "flax", "haiku", "collections", "qernel")
_ALLOWED_BUILTINS = {"complex", "slice", "tuple", "list", "dict", "set", "frozenset", "int", "float", "bool",
                     "bytes", "bytearray", "str", "object", "getattr"}


class _OldKeyData:
    """Stand-in for the ``_KeyData`` class of format version 1 (host copy of a typed PRNG key)."""

    def restore(self):
        return jax.random.wrap_key_data(self.data, impl=self.impl)


def convert_pickle_checkpoint(old: str | os.PathLike, new: str | os.PathLike) -> Path:
    """Convert a format-1 pickle checkpoint (qernel <= 0.1) into the safe ``.npz`` format.

    Unpickling can run code: convert only files you trust. Classes are restricted to NumPy, JAX,
    optax, NetKet, flax, Haiku and qernel modules, which blocks the common payloads but is no
    guarantee. Returns the path written.
    """
    import pickle

    class _Restricted(pickle.Unpickler):
        def find_class(self, module, name):
            if module == "qernel.training.checkpoint" and name == "_KeyData":
                return _OldKeyData
            if module == "builtins" and name in _ALLOWED_BUILTINS - {"getattr"}:
                return super().find_class(module, name)
            if module.split(".")[0] in _ALLOWED_MODULES:
                return super().find_class(module, name)
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    old = Path(old)
    if not old.is_file():
        raise CheckpointError(f"checkpoint not found: {old}")
    try:
        with open(old, "rb") as handle:
            data = _Restricted(handle).load()
    except Exception as error:  # noqa: BLE001 - any unpickling failure is reported the same way
        raise CheckpointError(f"{old}: not a readable pickle checkpoint ({type(error).__name__}: {error})") from error
    if not isinstance(data, dict) or data.get("format_version") != 1:
        raise CheckpointError(f"{old}: not a qernel pickle checkpoint of format version 1")
    data = jax.tree_util.tree_map(lambda x: x.restore() if isinstance(x, _OldKeyData) else x, data,
                                  is_leaf=lambda x: isinstance(x, _OldKeyData))
    data.pop("format_version")
    return save_checkpoint(new, data, keep_previous=False)
