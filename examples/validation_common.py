"""Shared helpers of the validation scripts (``validate_trap.py``, ``validate_moire.py``).

Each validation trains a model with :func:`qernel.run.train` (resuming if a checkpoint of the
same run exists, so an interrupted validation continues where it stopped), then measures the
energies with :func:`qernel.run.state_at_values` on fresh, longer Markov chains, and writes
``results.json`` next to the checkpoint.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import sys
import time
from pathlib import Path
from typing import Any

import qernel
from qernel.config import config_from_dict, load_config
from qernel.run import state_at_values, train

EXAMPLES = Path(__file__).resolve().parent
CONFIGS = EXAMPLES / "configs"

__all__ = ["EXAMPLES", "CONFIGS", "config_dict", "evaluate", "train_and_evaluate", "write_results", "code_fingerprint"]


def config_dict(source: str | Path | dict, **overrides: dict[str, Any]) -> dict[str, Any]:
    """A config as nested dicts: from a TOML file in ``examples/configs`` (name or path) or a
    dict, with per-section overrides, e.g. ``config_dict("quantum_dot.toml", optimizer={"n_steps": 10})``."""
    if isinstance(source, dict):
        data = copy.deepcopy(source)
    else:
        path = Path(source)
        if not path.is_file():
            path = CONFIGS / path
        data = load_config(path).to_dict()
    for section, values in overrides.items():
        data.setdefault(section, {}).update(values)
    config_from_dict(data)  # validate now, before any compute
    return data


def _combine(batches: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Merge equally sized evaluation blocks (one list of per-value records per block)."""
    merged = []
    for records in zip(*batches):
        n = len(records)
        merged.append({
            **records[0],
            "energy": sum(r["energy"] for r in records) / n,
            "error": math.sqrt(sum(r["error"] ** 2 for r in records)) / n,
            "error_blocking": math.sqrt(sum(r["error_blocking"] ** 2 for r in records)) / n,
            "n_effective": sum(r["n_effective"] for r in records),
            "variance": sum(r["variance"] for r in records) / n,
            "tau_corr": max(r["tau_corr"] for r in records),
            "acceptance": sum(r["acceptance"] for r in records) / n,
            "n_blocks": n,
        })
    return merged


def code_fingerprint() -> str:
    """SHA-256 (first 12 hex digits) of the qernel package sources: which code produced a number."""
    root = Path(qernel.__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


#: fingerprint of the code this process imported (computed once, at import)
_FINGERPRINT = code_fingerprint()


def evaluate(checkpoint: str | Path, values: dict[str, list[float]] | None = None, *, n_samples: int = 16384,
             block: int = 4096, seed: int = 1234) -> list[dict[str, Any]]:
    """Energies at ``values`` from ``n_samples`` samples, measured in blocks of ``block`` samples
    on the same thermalised chains (:func:`qernel.run.state_at_values`), which bounds memory.

    The blocks are consecutive stretches of the same Markov chains, each much longer than the
    autocorrelation time, so their errors are combined as independent.
    """
    n_blocks = max(1, math.ceil(n_samples / block))
    _, _, evaluator = state_at_values(checkpoint, values, n_samples=n_samples // n_blocks, seed=seed)
    return _combine([[g.as_dict() for g in evaluator.measure()] for _ in range(n_blocks)])


def train_and_evaluate(
    data: dict[str, Any], values: dict[str, list[float]] | None = None, *, n_eval_samples: int = 16384,
    eval_block: int = 4096, progress: bool = False,
) -> dict[str, Any]:
    """Train (or resume) the run of ``data`` to its ``optimizer.n_steps``, then evaluate.

    Args:
        data: the run configuration (nested dicts); ``run.output_dir`` holds checkpoint and log.
        values: parameter values to evaluate at (None: the training grid).
        n_eval_samples: samples of the final energy estimate (over all parameter values).
        eval_block: samples per measurement block (see :func:`evaluate`).

    Returns:
        ``{"config", "steps", "train_seconds", "evaluate_seconds", "records", ...}`` where each
        record has ``parameters, energy, error, variance, tau_corr, acceptance`` (user units);
        ``train_seconds`` sums the wall-clock time of all training segments in ``log.jsonl``.
    """
    out = Path(data["run"]["output_dir"])
    checkpoint = out / "checkpoint.npz"
    run = train(data, resume=checkpoint.exists(), progress=progress)
    start = time.perf_counter()
    records = evaluate(checkpoint, values, n_samples=n_eval_samples, block=eval_block)
    return {
        "config": data,
        "code": _FINGERPRINT,
        "steps": run.driver.step_count,
        "train_seconds": training_seconds(out / "log.jsonl"),
        "evaluate_seconds": time.perf_counter() - start,
        "n_eval_samples": n_eval_samples,
        "records": records,
    }


def training_seconds(log: str | Path) -> float:
    """Wall-clock training time from a ``log.jsonl`` (its ``time`` restarts at each resumed segment)."""
    total, last = 0.0, 0.0
    for line in Path(log).read_text().splitlines():
        if not line.strip():
            continue
        t = json.loads(line)["time"]
        if t < last:  # a new segment began
            total += last
        last = t
    return total + last


_REPO = Path(__file__).resolve().parents[1]


def portable(value: Any) -> Any:
    """``value`` with every absolute path in its strings made machine-independent: paths inside the
    repository relative to its root, other absolute paths reduced to ``<outside>/<last two parts>``
    (committed results must not name directories of the machine that produced them)."""
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    if not isinstance(value, str):
        return value

    def relative(match: re.Match) -> str:
        path = Path(match.group(2))
        try:
            text = str(path.resolve().relative_to(_REPO)) or "."
        except ValueError:
            text = "<outside>/" + "/".join(path.parts[-2:])
        return match.group(1) + text

    return re.sub(r"(^|[\s=:'\"])(/[^\s'\",]+)", relative, value)


def write_results(path: str | Path, results: dict[str, Any]) -> Path:
    """Write ``results`` (plus the command line that produced them) as JSON, paths made portable."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    results = portable({"command": " ".join([Path(sys.executable).name, *sys.argv]), **results})
    path.write_text(json.dumps(results, indent=2, default=float))
    return path
