"""``FoundationVMC``: variational Monte Carlo of one model over a family of Hamiltonians.

Each step: sample all chains (each carries its own Hamiltonian parameters), compute local
energies with the Hamiltonian's NetKet operator, per-group statistics (energy +- error with
NetKet's autocorrelation-aware :func:`netket.stats.statistics`, variance, acceptance), the
per-group centred update direction (:mod:`qernel.training.gradient`: plain gradient, SR or
MinSR), an optax update, and per-group adaptation of the Metropolis step sizes.

Long runs: progress bar, JSON-lines log (one record per step, energies in user units), periodic
atomic checkpoints, exact resume, and a hard stop with a message naming the step when an energy
or a parameter becomes NaN/inf (the last good checkpoint is kept).

Every step is a fixed set of jitted programs (compiled at the first step, never again), and runs
unchanged with the chains sharded over several devices by NetKet; ``chunk_size`` of the
``MCState`` bounds the memory of the local energies and of the per-sample gradients.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax

from ..distributed import is_main_process, to_host
from ..observables.estimates import estimate
from ..sampler import (
    adapt_step_sizes,
    chain_group_ids,
    group_values,
    per_group_acceptance,
    redraw_parameters,
    thermalise,
)
from .checkpoint import CHECKPOINT_NAME, check_compatible, load_checkpoint, restore_like, save_checkpoint
from .gradient import centred_local_energies, foundation_gradient, natural_gradient

__all__ = ["FoundationVMC", "NonFiniteError", "TrainingInterrupted", "GroupStats", "read_log"]


class NonFiniteError(FloatingPointError):
    """Raised when an energy or a parameter becomes NaN or infinite."""


class TrainingInterrupted(KeyboardInterrupt):
    """SIGINT/SIGTERM during :meth:`FoundationVMC.run` (``phase = "training"``) or the orbital
    pretraining (``phase = "pretraining"``): the current step was finished and, with an output
    directory, checkpointed. ``step`` is the number of completed steps of that phase."""

    def __init__(self, step: int, signal_name: str, saved: bool, phase: str = "training") -> None:
        super().__init__(f"{signal_name}: interrupted at {phase} step {step}")
        self.step, self.signal_name, self.saved, self.phase = step, signal_name, saved, phase


def _signalled_anywhere(received: list[str]) -> bool:
    """Whether this or (multi-process runs) any process received a signal: all processes must
    stop after the same step, since saving is collective."""
    if jax.process_count() == 1:
        return bool(received)
    from jax.experimental import multihost_utils

    return bool(np.any(multihost_utils.process_allgather(np.array(bool(received)))))


@contextlib.contextmanager
def _deferred_signals():
    """Within the block, SIGINT/SIGTERM only set a flag (read through the yielded list) so the loop
    can finish the current step and checkpoint it; a second signal interrupts at once. Only the
    main thread can install handlers: elsewhere signals keep their default behaviour."""
    received: list[str] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        if received:  # second signal: stop now
            raise KeyboardInterrupt(signal.Signals(signum).name)
        received.append(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


@dataclass
class GroupStats:
    """Statistics of one parameter group at one step (energies in user units)."""

    parameters: dict[str, float]
    energy: float
    error: float
    variance: float
    tau_corr: float
    acceptance: float
    #: blocking error, autocorrelation time and effective sample count (qernel.observables.blocking)
    error_blocking: float = math.nan
    tau_blocking: float = math.nan
    n_effective: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _tree_all_finite(tree) -> bool:
    leaves = jax.tree_util.tree_leaves(tree)
    return bool(jnp.all(jnp.stack([jnp.all(jnp.isfinite(leaf)) for leaf in leaves])))


@partial(jax.jit, static_argnames=("apply_fun", "n_groups", "clip_width", "preconditioner", "chunk_size"))
def _update_direction(
    apply_fun, params, model_state, samples, local_energies, group_ids, diag_shift, momentum=0.0, previous=None,
    *, n_groups: int, clip_width: float | None, preconditioner: str | None, chunk_size: int | None = None,
):
    def logpsi(p, x):
        return apply_fun({"params": p, **model_state}, x)

    centred, weights = centred_local_energies(local_energies, group_ids, n_groups, clip_width)
    if preconditioner is None:
        return foundation_gradient(logpsi, params, samples, centred, weights, chunk_size)
    # the regularised solve in float64 also for float32 parameters: O(Ns^3), cheap next to the
    # float32 O(Ns^2 Np) Gram matrix (benchmarks/precision.py measures the difference)
    return natural_gradient(
        logpsi, params, samples, centred, weights, group_ids, n_groups, diag_shift, preconditioner, chunk_size,
        momentum, previous, solve_dtype=jax.dtypes.canonicalize_dtype(jnp.float64),
    )


@partial(jax.jit, static_argnums=0)
def _apply_update(update_fn, direction, optimizer_state, params):
    updates, new_optimizer_state = update_fn(direction, optimizer_state, params)
    return new_optimizer_state, optax.apply_updates(params, updates)


class FoundationVMC:
    """Train one variational state over all parameter values its sampler's chains carry.

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`.
        vstate: ``nk.vqs.MCState`` whose sampler comes from :func:`qernel.sampler.make_sampler`.
        optimizer: an optax optimizer; it receives the (natural) gradient.
        preconditioner: ``"minsr"`` (default), ``"sr"``, ``"spring"`` (MinSR with momentum) or
            ``None`` (plain gradient).
        momentum: SPRING momentum mu in [0, 1) (``"spring"`` only).
        diag_shift: SR/MinSR diagonal shift, a float or an optax-style schedule ``step -> float``.
        clip_width: local-energy clipping width in mean absolute deviations (gradient only).
        target_acceptance: per-group Metropolis acceptance the step sizes are adapted to (None: off).
        operator: the energy operator (default ``hamiltonian.operator()``).
        redraw_every: for random parameter spaces, draw new parameter values every this many
            steps (0: never), followed by ``redraw_sweeps`` thermalisation sweeps. The draw key is
            derived from ``seed`` and the step number, so resumed runs redraw identically.
        seed: seed of the driver's own randomness (parameter redraws).
    """

    def __init__(
        self,
        hamiltonian,
        vstate: nk.vqs.MCState,
        optimizer: optax.GradientTransformation,
        *,
        preconditioner: str | None = "minsr",
        momentum: float = 0.8,
        diag_shift: float | Callable[[int], float] = 1e-3,
        clip_width: float | None = 5.0,
        target_acceptance: float | None = 0.5,
        operator=None,
        redraw_every: int = 0,
        redraw_sweeps: int = 20,
        seed: int = 0,
    ) -> None:
        if preconditioner not in ("minsr", "sr", "spring", None):
            raise ValueError(f"preconditioner must be 'minsr', 'sr', 'spring' or None, got {preconditioner!r}")
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        if clip_width is not None and not clip_width > 0:
            raise ValueError(f"clip_width must be > 0 or None, got {clip_width}")
        if target_acceptance is not None and not 0 < target_acceptance < 1:
            raise ValueError(f"target_acceptance must be in (0, 1) or None, got {target_acceptance}")
        self.hamiltonian = hamiltonian
        self.vstate = vstate
        self.optimizer = optimizer
        self.optimizer_state = optimizer.init(vstate.parameters)
        self.preconditioner = preconditioner
        self.momentum = float(momentum)
        # SPRING's previous direction (zeros before the first step)
        self.previous_direction = (
            jax.tree_util.tree_map(jnp.zeros_like, vstate.parameters) if preconditioner == "spring" else None
        )
        self.diag_shift = diag_shift
        self.clip_width = clip_width
        self.target_acceptance = target_acceptance
        self.operator = operator if operator is not None else hamiltonian.operator()
        self.parameter_space = vstate.sampler.rule.parameter_space
        if int(redraw_every) != redraw_every or redraw_every < 0:
            raise ValueError(f"redraw_every must be a non-negative integer, got {redraw_every}")
        self.redraw_every = int(redraw_every)
        self.redraw_sweeps = int(redraw_sweeps)
        self.seed = int(seed)
        self.step_count = 0
        self.history: list[dict[str, Any]] = []
        # (file, step) of the checkpoint last written or read: a run that takes no step rewrites nothing
        self._checkpointed: tuple[Path, int] | None = None

    # -- one step ------------------------------------------------------------------------------
    def _diag_shift(self) -> float:
        value = self.diag_shift(self.step_count) if callable(self.diag_shift) else self.diag_shift
        return float(value)

    def group_statistics(self, local_energies, acceptance) -> list[GroupStats]:
        """Per-group statistics from local energies (n_chains, chain_length), user units."""
        ids = to_host(chain_group_ids(self.vstate))
        values = to_host(group_values(self.vstate))
        local_energies = to_host(local_energies)  # all chains on every process (a collective when sharded)
        unit = self.hamiltonian.energy_unit
        names = self.parameter_space.names
        stats = []
        for g in range(self.parameter_space.n_groups):
            members = ids == g
            if not members.any():
                continue
            # NetKet's statistics, with error 0 (not NaN) for a constant series (an eigenstate)
            # float64 on the host also for a float32 run: free, and exact accumulation of long evaluations
            s = estimate(np.real(np.asarray(local_energies[members])).astype(np.float64) * unit, blocking=True)
            stats.append(
                GroupStats(
                    parameters={n: float(values[g, i]) for i, n in enumerate(names)},
                    energy=float(s.mean),
                    error=float(s.error),
                    variance=float(s.variance),
                    tau_corr=float(s.tau_corr),
                    acceptance=float(acceptance[g]),
                    error_blocking=float(s.error_blocking),
                    tau_blocking=float(s.tau_blocking),
                    n_effective=float(s.n_effective),
                )
            )
        return stats

    def adapt(self) -> None:
        """Adapt each group's Metropolis step size toward ``target_acceptance`` (if enabled)."""
        if self.target_acceptance is not None:
            adapt_step_sizes(self.vstate, self.target_acceptance)

    def thermalise(self, n_sweeps: int, block: int = 10) -> None:
        """Run ``n_sweeps`` discarded sweeps in blocks of ``block``, adapting step sizes after each."""
        for _ in range(max(1, n_sweeps // block)):
            thermalise(self.vstate, block)
            self.adapt()

    def _sample_and_measure(self):
        vstate = self.vstate
        samples = vstate.sample()
        acceptance = to_host(per_group_acceptance(vstate))
        local_energies = jnp.asarray(vstate.local_estimators(self.operator).data)  # (n_chains, chain_length)
        stats = self.group_statistics(local_energies, acceptance)
        bad = [s for s in stats if not (math.isfinite(s.energy) and math.isfinite(s.variance))]
        if bad:
            raise NonFiniteError(
                f"step {self.step_count}: non-finite energy for parameter value(s) "
                f"{[s.parameters for s in bad]}; stopping (last good checkpoint kept)"
            )
        return samples, local_energies, stats

    def update_direction(self, samples, local_energies):
        """The update direction (pytree like the parameters) fed to the optimizer.

        Plain gradient or (Min)SR natural gradient, centred within the parameter groups of the
        current chains; one jitted call, compiled once per shape (and sharding) of the inputs.

        Args:
            samples: (n_chains, chain_length, 2N + P) samples of the current chains (may be
                sharded over devices along the chain axis, as ``MCState.samples`` is).
            local_energies: (n_chains, chain_length) local energies of ``samples`` (internal units).
        """
        vstate = self.vstate
        if samples.shape[:2] != local_energies.shape:
            raise ValueError(
                f"samples {samples.shape} and local_energies {local_energies.shape} must share the "
                "(n_chains, chain_length) leading axes"
            )
        chain_ids = jnp.asarray(chain_group_ids(vstate))
        if chain_ids.shape[0] != samples.shape[0]:
            raise ValueError(f"samples hold {samples.shape[0]} chains, the sampler has {chain_ids.shape[0]}")
        group_ids = jnp.broadcast_to(chain_ids[:, None], local_energies.shape).reshape(-1)
        return _update_direction(
            vstate._apply_fun, vstate.parameters, vstate.model_state,
            samples.reshape(-1, samples.shape[-1]), local_energies.reshape(-1), group_ids,
            self._diag_shift(), self.momentum, self.previous_direction, n_groups=self.parameter_space.n_groups,
            clip_width=self.clip_width, preconditioner=self.preconditioner, chunk_size=vstate.chunk_size,
        )

    def measure(self) -> list[GroupStats]:
        """Sample once and return per-group energy statistics without changing the parameters."""
        return self._sample_and_measure()[2]

    def step(self) -> dict[str, Any]:
        """Advance one optimisation step; returns the step's log record.

        Raises:
            NonFiniteError: if energies or updated parameters are not finite (parameters are
                left at their last finite values).
        """
        vstate = self.vstate
        if self.redraw_every and self.step_count > 0 and self.step_count % self.redraw_every == 0:
            key = jax.random.fold_in(jax.random.PRNGKey(self.seed), self.step_count)
            redraw_parameters(vstate, key, n_sweeps=self.redraw_sweeps)
        samples, local_energies, stats = self._sample_and_measure()
        self.adapt()
        direction = self.update_direction(samples, local_energies)
        new_opt_state, new_params = _apply_update(self.optimizer.update, direction, self.optimizer_state, vstate.parameters)
        if not _tree_all_finite(new_params):
            raise NonFiniteError(
                f"step {self.step_count}: the parameter update produced NaN/inf; stopping "
                "(parameters kept at their last finite values, last good checkpoint kept)"
            )
        vstate.parameters = new_params
        self.optimizer_state = new_opt_state
        if self.previous_direction is not None:
            self.previous_direction = direction
        record = {
            "step": self.step_count,
            "energy": float(np.mean([s.energy for s in stats])),
            "groups": [s.as_dict() for s in stats],
        }
        self.step_count += 1
        self.history.append(record)
        return record

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue the run exactly."""
        return {
            "step": self.step_count,
            "params": self.vstate.parameters,
            "model_state": self.vstate.model_state,
            "optimizer_state": self.optimizer_state,
            "sampler_state": self.vstate.sampler_state,
            **({"previous_direction": self.previous_direction} if self.previous_direction is not None else {}),
        }

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. from :func:`~qernel.training.checkpoint.load_checkpoint`)."""
        vstate = self.vstate
        check_compatible(data["params"], vstate.parameters)  # a clear CheckpointError, not NetKet's mismatch
        vstate.parameters = restore_like(data["params"], vstate.parameters)
        if data.get("model_state"):
            vstate.model_state = restore_like(data["model_state"], vstate.model_state)
        self.optimizer_state = restore_like(data["optimizer_state"], self.optimizer_state)
        vstate.sampler_state = restore_like(data["sampler_state"], vstate.sampler_state)
        if self.previous_direction is not None and data.get("previous_direction") is not None:
            self.previous_direction = restore_like(data["previous_direction"], self.previous_direction)
        vstate.reset()
        self.step_count = int(data["step"])
        if data.get("loaded_from"):
            self._checkpointed = (Path(data["loaded_from"]).resolve(), self.step_count)

    def save(self, path, extra: dict[str, Any] | None = None) -> Path:
        """Atomically write a checkpoint (``extra`` is stored alongside, e.g. the config)."""
        written = save_checkpoint(path, {**self.state_dict(), **(extra or {})})
        self._checkpointed = (Path(path).resolve(), self.step_count)
        return written

    def restore(self, path) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save`; returns the whole payload."""
        data = load_checkpoint(path)
        self.load_state_dict(data)
        return data

    # -- long runs -----------------------------------------------------------------------------
    def run(
        self,
        n_steps: int,
        *,
        output_dir: str | Path | None = None,
        checkpoint_every: int = 50,
        progress: bool = True,
        loggers: Sequence[Callable] = (),
        callback: Callable[[int, dict, "FoundationVMC"], bool] | None = None,
        extra: dict[str, Any] | None = None,
        handle_signals: bool = True,
    ) -> list[dict[str, Any]]:
        """Run until ``step_count == n_steps`` (so a resumed run continues to the same end).

        Args:
            n_steps: total number of steps of the run (not additional steps).
            output_dir: directory for ``log.jsonl`` and ``checkpoint.npz`` (None: neither).
            checkpoint_every: steps between checkpoints (a final one is written unless the checkpoint
                file already holds the last step: a finished run resumed again rewrites nothing).
            progress: show a progress bar with step, energy +- error, acceptance, time.
            loggers: NetKet-style loggers called as ``logger(step, record, vstate)``.
            callback: ``callback(step, record, driver) -> bool``; returning False stops.
            extra: stored in every checkpoint (e.g. the run configuration).
            handle_signals: on SIGINT/SIGTERM finish the current step, checkpoint it and raise
                :class:`TrainingInterrupted` (a ``KeyboardInterrupt``); a second signal stops at once.

        Returns:
            The log records of the steps run by this call.
        """
        if int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
        if int(checkpoint_every) != checkpoint_every or checkpoint_every < 1:
            raise ValueError(f"checkpoint_every must be a positive integer, got {checkpoint_every}")
        log_file = checkpoint = None
        main = is_main_process()  # in a multi-process run only process 0 writes files
        if output_dir is not None:
            output_dir = Path(output_dir)
            checkpoint = output_dir / CHECKPOINT_NAME  # saved collectively, written by process 0
            if main:
                output_dir.mkdir(parents=True, exist_ok=True)
                log_file = _open_log(output_dir / "log.jsonl", self.step_count)
        bar = _progress_bar(n_steps, self.step_count, progress and main, self.hamiltonian.energy_unit_name)
        records = []
        start = time.perf_counter()
        with _deferred_signals() if handle_signals else contextlib.nullcontext([]) as received:
            self._run_loop(n_steps, records, start, log_file, loggers, bar, callback, checkpoint,
                           checkpoint_every, extra, received)
        if checkpoint is not None and self._checkpointed != (checkpoint.resolve(), self.step_count):
            self.save(checkpoint, extra)  # unless that file already holds this step (e.g. nothing to run)
        return records

    def _run_loop(self, n_steps, records, start, log_file, loggers, bar, callback, checkpoint, checkpoint_every,
                  extra, received) -> None:
        try:
            while self.step_count < n_steps:
                record = self.step()
                record["time"] = time.perf_counter() - start
                records.append(record)
                if log_file is not None:
                    log_file.write(json.dumps(record) + "\n")
                    log_file.flush()
                for logger in loggers:
                    logger(record["step"], record, self.vstate)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix_str(_summary(record))
                stop = callback is not None and callback(record["step"], record, self) is False
                interrupted = _signalled_anywhere(received)
                due = self.step_count % checkpoint_every == 0 or stop
                if checkpoint is not None and (due or interrupted):
                    self.save(checkpoint, extra)
                if interrupted:
                    raise TrainingInterrupted(self.step_count, received[0] if received else "signal",
                                              checkpoint is not None)
                if stop:
                    break
        finally:
            if bar is not None:
                bar.close()
            if log_file is not None:
                log_file.close()


def _summary(record: dict) -> str:
    parts = []
    for g in record["groups"][:4]:
        label = ",".join(f"{k}={v:g}" for k, v in g["parameters"].items())
        parts.append(f"{label}: {g['energy']:.4f}±{g['error']:.4f} acc={g['acceptance']:.2f}")
    if len(record["groups"]) > 4:
        parts.append("...")
    return " | ".join(parts)


def _progress_bar(total: int, initial: int, enabled: bool, unit_name: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"VMC [{unit_name}]", dynamic_ncols=True)


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


def read_log(path) -> list[dict[str, Any]]:
    """Read a ``log.jsonl`` written by :meth:`FoundationVMC.run`."""
    with open(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]
