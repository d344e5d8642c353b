"""SIGINT/SIGTERM during training: finish the current step, checkpoint it, then stop.

Shared by the VMC :class:`~qernel.training.callbacks.CheckpointCallback` and the orbital
pretraining (:mod:`qernel.training.pretrain`).
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

import jax
import numpy as np

__all__ = ["TrainingInterrupted", "deferred_signals", "signalled_anywhere"]


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during :meth:`FoundationVMC.run <qernel.training.driver.FoundationVMC.run>`
    (``phase = "training"``) or the orbital pretraining (``phase = "pretraining"``): the current
    step was finished and, with an output directory, checkpointed. ``step`` is the number of
    completed steps of that phase."""

    def __init__(self, step: int, signal_name: str, saved: bool, phase: str = "training") -> None:
        super().__init__(f"{signal_name}: interrupted at {phase} step {step}")
        self.step, self.signal_name, self.saved, self.phase = step, signal_name, saved, phase


def signalled_anywhere(received: list[str]) -> bool:
    """Whether this or (multi-process runs) any process received a signal: all processes must
    stop after the same step, since saving is collective (so every process calls this every step)."""
    if jax.process_count() == 1:
        return bool(received)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array(bool(received)))))


class SignalDeferral:
    """Install handlers with :meth:`install` so that SIGINT/SIGTERM only append their name to
    :attr:`received`; :meth:`restore` puts the previous handlers back. A second signal raises
    ``KeyboardInterrupt`` at once. Only the main thread can install handlers: elsewhere signals
    keep their default behaviour."""

    def __init__(self) -> None:
        self.received: list[str] = []
        self._previous: dict | None = None

    def install(self) -> None:
        self.received.clear()
        if self._previous is not None or threading.current_thread() is not threading.main_thread():
            return

        def handler(signum, frame):
            if self.received:  # second signal: stop now
                raise KeyboardInterrupt(signal.Signals(signum).name)
            self.received.append(signal.Signals(signum).name)

        self._previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}

    def restore(self) -> None:
        if self._previous is None:
            return
        for sig, old in self._previous.items():
            signal.signal(sig, old)
        self._previous = None


@contextlib.contextmanager
def deferred_signals() -> Iterator[list[str]]:
    """Within the block, SIGINT/SIGTERM only set a flag (read through the yielded list) so the loop
    can finish the current step and checkpoint it; a second signal interrupts at once."""
    deferral = SignalDeferral()
    deferral.install()
    try:
        yield deferral.received
    finally:
        deferral.restore()
