"""NetKet callbacks of a long foundation run: exact-resume checkpoints, the JSON-lines log, progress.

Used with :meth:`FoundationVMC.run <qernel.training.driver.FoundationVMC.run>` (a NetKet driver)::

    driver.run(n_iter, out=nk.logging.JsonLog("run/netket"),
               callback=[CheckpointCallback("run", every=50), JsonLinesLog("run/log.jsonl")])

NetKet calls ``on_step_end`` after the parameter update but before it increments
``driver.step_count``: there, ``step + 1`` steps are complete, and that is what a checkpoint
written there holds.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from netket.callbacks import AbstractCallback
from netket.utils import struct

from ..distributed import is_main_process
from .checkpoint import CHECKPOINT_NAME
from .signals import SignalDeferral, TrainingInterrupted, signalled_anywhere

__all__ = ["CheckpointCallback", "JsonLinesLog", "GroupProgressBar", "read_log"]


class CheckpointCallback(AbstractCallback, mutable=True):
    """Periodic atomic checkpoints for exact resume, and a clean stop on SIGINT/SIGTERM.

    Writes ``directory/checkpoint.npz`` (:meth:`FoundationVMC.save
    <qernel.training.driver.FoundationVMC.save>`: parameters, optimizer, sampler and SPRING state)
    every ``every`` completed steps and at the end of the run (unless the file already holds that
    step). With ``handle_signals``, a SIGINT/SIGTERM lets the current step finish, checkpoints it
    and raises :class:`~qernel.training.signals.TrainingInterrupted` (a ``KeyboardInterrupt``; the
    CLI exits with 130); a second signal interrupts at once. A step that fails (e.g.
    :class:`~qernel.training.driver.NonFiniteError`) writes nothing: the last good checkpoint is kept.

    In a multi-process run every process must use the callback (saving and the signal check are
    collective); process 0 writes the file.

    Args:
        directory: output directory (created by process 0); None: only the signal handling.
        every: steps between checkpoints (a positive integer).
        extra: stored in every checkpoint (e.g. the run configuration).
        handle_signals: defer SIGINT/SIGTERM to the end of the step (main thread only).
        resume: at the start of the run, restore ``directory/checkpoint.npz`` if it exists. NetKet
            fixes the end of the run before that, so ``FoundationVMC(...).run(n, callback=
            CheckpointCallback(d, resume=True))`` of a fresh driver continues a stopped run to step n.
    """

    directory: Path | None = struct.field(pytree_node=False, serialize=False)
    every: int = struct.field(pytree_node=False, serialize=False)
    extra: dict | None = struct.field(pytree_node=False, serialize=False)
    handle_signals: bool = struct.field(pytree_node=False, serialize=False)
    resume: bool = struct.field(pytree_node=False, serialize=False)
    _signals: Any = struct.field(pytree_node=False, serialize=False)
    _pending: Any = struct.field(pytree_node=False, serialize=False)

    def __init__(self, directory: str | Path | None, every: int = 50, *, extra: dict[str, Any] | None = None,
                 handle_signals: bool = True, resume: bool = False) -> None:
        if int(every) != every or every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {every}")
        self.directory = None if directory is None else Path(directory)
        self.every = int(every)
        self.extra = extra
        self.handle_signals = bool(handle_signals)
        self.resume = bool(resume)
        self._signals = SignalDeferral()
        self._pending = None

    @property
    def path(self) -> Path | None:
        """The checkpoint file (None without a directory)."""
        return None if self.directory is None else self.directory / CHECKPOINT_NAME

    @property
    def callback_order(self) -> int:
        return 20  # after the loggers (10): a step's log line is written before its checkpoint

    def on_run_start(self, step, driver) -> None:
        self._pending = None
        if self.directory is not None:
            if is_main_process():
                self.directory.mkdir(parents=True, exist_ok=True)
            if self.resume and self.path.is_file():
                driver.restore(self.path)
        if self.handle_signals:
            self._signals.install()

    def on_step_start(self, step, log_data, driver) -> None:
        if self._pending is not None:  # raised here, after NetKet counted the finished step
            raise self._pending

    def on_step_end(self, step, log_data, driver) -> None:
        done = step + 1  # NetKet increments step_count after this hook
        interrupted = self.handle_signals and signalled_anywhere(self._signals.received)
        if self.directory is not None and (done % self.every == 0 or interrupted):
            driver.save(self.path, self.extra, step=done)
        if interrupted:
            received = self._signals.received
            self._pending = TrainingInterrupted(done, received[0] if received else "signal", self.directory is not None)

    def on_run_end(self, step, driver) -> None:
        try:
            if self.directory is not None and not driver.holds_checkpoint(self.path):
                driver.save(self.path, self.extra)  # unless that file already holds this step
        finally:
            self._signals.restore()
        if self._pending is not None:
            pending, self._pending = self._pending, None
            raise pending

    def on_run_error(self, step, error, driver) -> None:
        self._signals.restore()
        self._pending = None


class JsonLinesLog(AbstractCallback, mutable=True):
    """qernel's ``log.jsonl``: one JSON record per step, ``{"step", "energy", "groups", "time"}``
    (energies in user units; ``groups`` is a list of
    :meth:`GroupStats.as_dict <qernel.training.driver.GroupStats.as_dict>`), read by
    :func:`read_log`, :func:`qernel.pretrained.training_wall_seconds` and the scan tools.

    On the first write, records of steps at or after the driver's current step are dropped (work
    after the checkpoint being resumed, redone now) and a torn last line from a kill is removed.
    Only process 0 writes. Works with :class:`~qernel.training.driver.FoundationVMC` only.

    Args:
        path: the file (its directory is created).
    """

    path: Path = struct.field(pytree_node=False, serialize=False)
    _handle: Any = struct.field(pytree_node=False, serialize=False)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle = None

    @property
    def callback_order(self) -> int:
        return 10  # as NetKet's loggers

    def _open(self, step: int) -> None:
        if self._handle is None and is_main_process():
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = _open_log(self.path, step)

    def on_step_end(self, step, log_data, driver) -> None:
        self._open(step)
        if self._handle is not None:
            self._handle.write(json.dumps(driver.last_record) + "\n")
            self._handle.flush()

    def on_run_end(self, step, driver) -> None:
        self._open(driver.step_count)  # a run without steps still drops records after its step
        self._close()

    def on_run_error(self, step, error, driver) -> None:
        self._close()

    def _close(self) -> None:
        if self._handle is not None:
            self._handle.close()
            self._handle = None


class GroupProgressBar(AbstractCallback, mutable=True):
    """Progress bar with energy +- error and acceptance of (up to four) parameter groups
    (replaces NetKet's bar, which shows only the mean over groups)."""

    n_steps: int = struct.field(pytree_node=False, serialize=False)
    unit_name: str = struct.field(pytree_node=False, serialize=False)
    _bar: Any = struct.field(pytree_node=False, serialize=False)
    _start: int = struct.field(pytree_node=False, serialize=False)

    def __init__(self, n_steps: int, unit_name: str = "") -> None:
        self.n_steps, self.unit_name = int(n_steps), unit_name
        self._bar, self._start = None, 0

    def on_run_start(self, step, driver) -> None:
        from tqdm.auto import tqdm

        start = getattr(driver, "_start_step", None)
        self._start = driver.step_count if start is None else start
        self._bar = tqdm(total=self.n_steps, disable=not is_main_process(), dynamic_ncols=True,
                         desc=f"VMC [{self.unit_name}]" if self.unit_name else "VMC")
        self._bar.update(driver.step_count - self._start)

    def on_step_end(self, step, log_data, driver) -> None:
        self._bar.update(step + 1 - self._start - self._bar.n)
        self._bar.set_postfix_str(_summary(driver.last_record))

    def on_run_end(self, step, driver) -> None:
        self._close()

    def on_run_error(self, step, error, driver) -> None:
        self._close()

    def _close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def _summary(record: dict) -> str:
    parts = []
    for g in record["groups"][:4]:
        label = ",".join(f"{k}={v:g}" for k, v in g["parameters"].items())
        parts.append(f"{label}: {g['energy']:.4f}±{g['error']:.4f} acc={g['acceptance']:.2f}")
    if len(record["groups"]) > 4:
        parts.append("...")
    return " | ".join(parts)


def _open_log(path: Path, resume_step: int):
    """Open the JSON-lines log for appending, dropping records of steps >= ``resume_step``
    (they belong to work after the checkpoint that is being resumed and will be redone)."""
    kept = []
    original = path.read_text() if path.exists() else None
    for line in io.StringIO(original or ""):  # the lines a file iteration gives
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            break  # a torn last line from a kill
        if record.get("step", -1) < resume_step:
            kept.append(line if line.endswith("\n") else line + "\n")
    if "".join(kept) != original:  # untouched when nothing is dropped (a finished run resumed again)
        with open(path, "w") as handle:
            handle.writelines(kept)
    return open(path, "a")


def read_log(path: str | Path) -> list[dict[str, Any]]:
    """Read a ``log.jsonl`` written by :class:`JsonLinesLog` (one dict per step)."""
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]
