"""Foundation models shipped with qernel: trained checkpoints usable offline at any V in their range.

A pretrained model is a safe checkpoint (:mod:`qernel.training.checkpoint`, no pickle) reduced to
what evaluation needs (configuration, parameters, model state) plus a ``provenance`` record: the
configuration file it was trained from, the qernel version and git commit of the training code,
the number of steps, the training wall time, and the trained parameter range. The files live in
``qernel/pretrained_models/<name>.npz`` and are installed with the package.

Python::

    from qernel.pretrained import list_pretrained, pretrained_checkpoint
    from qernel.run import evaluate_checkpoint

    records = evaluate_checkpoint(pretrained_checkpoint("nu23_3x3"), {"V": [7.0, 21.0]})

Command line: ``qernel evaluate --list-pretrained``, ``qernel evaluate --pretrained NAME --param V=...``;
``qernel export-pretrained CHECKPOINT NAME`` makes one from a finished run.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from .training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint

__all__ = [
    "PRETRAINED_DIR", "list_pretrained", "pretrained_checkpoint", "export_pretrained", "training_wall_seconds", "describe",
]

#: Directory of the shipped models (``QERNEL_PRETRAINED_DIR`` overrides it, e.g. for a private collection).
PRETRAINED_DIR = Path(__file__).parent / "pretrained_models"


def _directory(directory: str | os.PathLike | None) -> Path:
    return Path(directory or os.environ.get("QERNEL_PRETRAINED_DIR") or PRETRAINED_DIR)


def list_pretrained(directory: str | os.PathLike | None = None) -> list[dict[str, Any]]:
    """One record per available model: ``name`` and its ``provenance`` (sorted by name)."""
    records = []
    for path in sorted(_directory(directory).glob("*.npz")):
        data = load_checkpoint(path, fallback=False)
        records.append({"name": path.stem, "provenance": data.get("provenance", {})})
    return records


def pretrained_checkpoint(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Path of the shipped model ``name``.

    Raises:
        CheckpointError: no such model (the available names are listed).
    """
    path = _directory(directory) / f"{name}.npz"
    if not path.is_file():
        names = [p.stem for p in sorted(_directory(directory).glob("*.npz"))]
        raise CheckpointError(f"no pretrained model {name!r}; available: {', '.join(names) or 'none'}")
    return path


def training_wall_seconds(log_path: str | os.PathLike) -> float | None:
    """Wall time of the VMC steps recorded in a run's ``log.jsonl`` (summed over resumed segments:
    each record's ``time`` counts from the start of its segment); None without a log."""
    path = Path(log_path)
    if not path.is_file():
        return None
    total, last = 0.0, 0.0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        t = float(json.loads(line).get("time", 0.0))
        if t < last:  # a new segment (resume) started
            total += last
        last = t
    return total + last


def _git_commit(where: Path) -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def export_pretrained(
    checkpoint: str | os.PathLike, name: str, *, config_file: str | None = None, description: str = "",
    directory: str | os.PathLike | None = None,
) -> Path:
    """Write the trained model of ``checkpoint`` as the pretrained model ``name``.

    Args:
        checkpoint: a run's ``checkpoint.npz``; its ``log.jsonl`` beside it gives the training time.
        name: file stem (letters, digits, ``_``, ``-``).
        config_file: the committed configuration it was trained from (repository-relative path).
        description: one line shown by ``--list-pretrained``.
        directory: target (default :data:`PRETRAINED_DIR`).

    Returns:
        the written path.
    """
    if not name or not all(c.isalnum() or c in "_-" for c in name):
        raise ValueError(f"name must be letters, digits, '_' or '-', got {name!r}")
    if config_file is not None and Path(config_file).is_absolute():
        raise ValueError(f"config_file must be a repository-relative path, got {config_file!r}")
    source = Path(checkpoint)
    data = load_checkpoint(source, fallback=False)
    from . import __version__

    config = data["config"]
    provenance = {
        "description": description,
        "config_file": config_file,
        "qernel_version": data.get("qernel_version", __version__),
        # the checkpoint does not record the commit it was trained with; this is the exporting code's
        "git_commit_at_export": _git_commit(Path(__file__).parent),
        "steps": int(data["step"]),
        "training_wall_seconds": training_wall_seconds(source.parent / "log.jsonl"),
        "pretrain_steps": (config.get("pretrain") or {}).get("steps", 0),
        "parameters": config.get("parameters"),
        "system": config.get("system"),
    }
    if data.get("init_from"):  # started from another model (qernel train --init-from): say which, and its cost
        start = dict(data["init_from"])
        start["checkpoint"] = Path(str(start.get("checkpoint", ""))).name  # never a machine path
        provenance["init_from"] = start
        earlier = start.get("provenance") or {}
        provenance["total_steps"] = int(data["step"]) + int(earlier.get("total_steps", earlier.get("steps", start.get("step", 0))))
    target = _directory(directory) / f"{name}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    payload = {"step": data["step"], "config": config, "params": data["params"], "provenance": provenance}
    if data.get("model_state"):
        payload["model_state"] = data["model_state"]
    return save_checkpoint(target, payload, keep_previous=False)


def describe(record: dict[str, Any]) -> str:
    """One line per model for ``--list-pretrained``."""
    p = record["provenance"]
    system = p.get("system") or {}
    values = (p.get("parameters") or {}).get("values") or {}
    span = ", ".join(f"{k} in [{min(v)}, {max(v)}]" for k, v in values.items())
    minutes = p.get("training_wall_seconds")
    cost = f"{p.get('steps')} steps" + (f", {minutes / 60:.0f} min" if minutes else "")
    if p.get("init_from"):
        cost += f" after {p['init_from'].get('checkpoint')} ({p.get('total_steps')} steps in all)"
    return (f"{record['name']}: {p.get('description', '')} ({system.get('kind')}, N = {system.get('n_electrons')}, "
            f"{system.get('supercell')}x{system.get('supercell')} cells; {span}; {cost}; "
            f"qernel {p.get('qernel_version')}, exported at commit {(p.get('git_commit_at_export') or 'unknown')[:10]})")

