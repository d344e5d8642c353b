"""``FoundationVMC``: variational Monte Carlo of one model over a family of Hamiltonians, as a NetKet driver.

Each step: sample all chains (each carries its own Hamiltonian parameters), compute local
energies with the Hamiltonian's NetKet operator, per-group statistics (energy +- error with
NetKet's autocorrelation-aware :func:`netket.stats.statistics`, variance, acceptance), the
per-group centered update direction (:mod:`qernel.training.gradient`: plain gradient, SR or
MinSR), an optax update, and per-group adaptation of the Metropolis step sizes.

:class:`FoundationVMC` subclasses NetKet's :class:`~netket.driver.AbstractOptimizationDriver`
and implements :meth:`~FoundationVMC.compute_loss_and_update`, so ``driver.run(n_iter,
out=nk.logging.JsonLog("run"), callback=..., timeit=True)`` works with NetKet's loggers,
callbacks and timers. Long runs add the callbacks of :mod:`qernel.training.callbacks`: atomic
checkpoints with exact resume and a clean stop on SIGINT/SIGTERM
(:class:`~qernel.training.callbacks.CheckpointCallback`), qernel's JSON-lines log
(:class:`~qernel.training.callbacks.JsonLinesLog`); a hard stop with a message naming the step
when an energy or a parameter becomes NaN/inf (the last good checkpoint is kept).

Every step is a fixed set of jitted programs (compiled at the first step, never again), and runs
unchanged with the chains sharded over several devices by NetKet; ``chunk_size`` of the
``MCState`` bounds the memory of the local energies and of the per-sample gradients.
"""

from __future__ import annotations

import math
import time
import warnings
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
from jax.flatten_util import ravel_pytree
from netket.callbacks import AbstractCallback, StopRun
from netket.utils import struct
from netket.utils.iterators import to_iterable

from ..distributed import to_host
from ..observables.estimates import estimate
from ..sampler import (
    adapt_step_sizes,
    chain_group_ids,
    group_values,
    per_group_acceptance,
    redraw_parameters,
    thermalise,
)
from .callbacks import CheckpointCallback, GroupProgressBar, JsonLinesLog, read_log
from .checkpoint import check_compatible, load_checkpoint, restore_like, save_checkpoint
from .gradient import centered_local_energies, foundation_gradient, natural_gradient
from .signals import TrainingInterrupted, deferred_signals, signalled_anywhere

__all__ = ["FoundationVMC", "NonFiniteError", "TrainingInterrupted", "GroupStats", "read_log"]

# old private names, imported by qernel.training.pretrain
_deferred_signals = deferred_signals
_signalled_anywhere = signalled_anywhere

#: keyword arguments of qernel's former ``run(n_steps, ...)`` (n_steps = total, not additional, steps)
_LEGACY_RUN_ARGUMENTS = ("output_dir", "checkpoint_every", "progress", "loggers", "extra", "handle_signals")


class NonFiniteError(FloatingPointError):
    """Raised when an energy or a parameter becomes NaN or infinite."""


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


@jax.jit
def _all_finite(tree) -> jax.Array:
    # one small program on the flattened tree: op by op, JAX compiled isfinite and all once per leaf
    # shape (19 programs, ~2 s of one core for a 74-leaf model), and per-leaf reductions in one
    # program still took ~1.2 s to compile against 0.4 s for this
    return jnp.all(jnp.isfinite(ravel_pytree(tree)[0]))


def _tree_all_finite(tree) -> bool:
    """Whether every entry of every leaf of ``tree`` is finite."""
    return bool(_all_finite(tree))


@partial(jax.jit, static_argnames=("apply_fun", "n_groups", "clip_width", "preconditioner", "chunk_size"))
def _update_direction(
    apply_fun, params, model_state, samples, local_energies, group_ids, diag_shift, momentum=0.0, previous=None,
    *, n_groups: int, clip_width: float | None, preconditioner: str | None, chunk_size: int | None = None,
):
    def logpsi(p, x):
        return apply_fun({"params": p, **model_state}, x)

    centered, weights = centered_local_energies(local_energies, group_ids, n_groups, clip_width)
    if preconditioner is None:
        return foundation_gradient(logpsi, params, samples, centered, weights, chunk_size)
    # the regularised solve in float64 also for float32 parameters: O(Ns^3), cheap next to the
    # float32 O(Ns^2 Np) Gram matrix (benchmarks/precision.py measures the difference)
    return natural_gradient(
        logpsi, params, samples, centered, weights, group_ids, n_groups, diag_shift, preconditioner, chunk_size,
        momentum, previous, solve_dtype=jax.dtypes.canonicalize_dtype(jnp.float64),
    )


@partial(jax.jit, static_argnums=0)
def _apply_update(update_fn, direction, optimizer_state, params):
    updates, new_optimizer_state = update_fn(direction, optimizer_state, params)
    return new_optimizer_state, optax.apply_updates(params, updates)


class _QernelCallback(AbstractCallback, mutable=True):
    """A function ``callback(step, record, driver) -> bool`` of qernel's former ``run``: called
    after each step with its log record; returning ``False`` (not ``None``) stops the run after
    that step."""

    function: Any = struct.field(pytree_node=False, serialize=False)
    _stop: bool = struct.field(pytree_node=False, serialize=False)

    def __init__(self, function: Callable) -> None:
        self.function, self._stop = function, False

    @property
    def callback_order(self) -> int:
        return 15  # as the former loop: after the step's log line (10), before its checkpoint (20)

    def on_step_start(self, step, log_data, driver) -> None:
        if self._stop:  # raised here, after NetKet counted the finished step
            raise StopRun(f"callback {self.function} requested to stop the run")

    def on_step_end(self, step, log_data, driver) -> None:
        self._stop = self.function(step, driver.last_record, driver) is False


def _loss_statistics(stats: Sequence[GroupStats]) -> nk.stats.Stats:
    """The loss NetKet logs as ``Energy``: the mean over groups of the group energies (user
    units), its error from the groups' independent errors, the mean variance, the largest tau."""
    energies = np.array([s.energy for s in stats])
    return nk.stats.Stats(
        mean=float(energies.mean()),
        error_of_mean=float(math.sqrt(sum(s.error**2 for s in stats)) / len(stats)),
        variance=float(np.mean([s.variance for s in stats])),
        tau_corr=float(max(s.tau_corr for s in stats)),
    )


class FoundationVMC(nk.driver.AbstractOptimizationDriver):
    """Train one variational state over all parameter values its sampler's chains carry.

    A NetKet optimization driver: ``driver.run(n_iter, out=..., callback=..., timeit=...)`` runs
    ``n_iter`` more steps with NetKet's loggers (the loss is logged as ``Energy``, the mean over
    groups in user units; ``groups`` holds each group's ``Energy``), callbacks and progress bar.
    Add :class:`~qernel.training.callbacks.CheckpointCallback` and
    :class:`~qernel.training.callbacks.JsonLinesLog` for a long run. The former qernel form
    ``run(n_steps, output_dir=..., checkpoint_every=..., progress=...)`` (``n_steps`` the *total*
    number of steps) still works and builds those callbacks; it is deprecated.

    Unlike NetKet's ``VMC``/``VMC_SR``, which center the local energies and log-derivatives over
    the whole batch, it centers them within each parameter group (:mod:`qernel.training.gradient`),
    so the direction is the gradient of the mean over groups of each group's own energy.

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

    #: marks a driver that centers within parameter groups (qernel's operators warn for others)
    centers_within_groups = True
    #: deprecated British spelling of :attr:`centers_within_groups` (still read by the operators)
    centres_within_groups = True

    hamiltonian: Any = struct.field(pytree_node=False, serialize=False)
    operator: Any = struct.field(pytree_node=False, serialize=False)
    parameter_space: Any = struct.field(pytree_node=False, serialize=False)
    preconditioner: str | None = struct.field(pytree_node=False, serialize=False)
    momentum: float = struct.field(pytree_node=False, serialize=False)
    previous_direction: Any = struct.field(pytree_node=False, serialize=False)
    diag_shift: Any = struct.field(pytree_node=False, serialize=False)
    clip_width: float | None = struct.field(pytree_node=False, serialize=False)
    target_acceptance: float | None = struct.field(pytree_node=False, serialize=False)
    redraw_every: int = struct.field(pytree_node=False, serialize=False)
    redraw_sweeps: int = struct.field(pytree_node=False, serialize=False)
    seed: int = struct.field(pytree_node=False, serialize=False)
    history: list = struct.field(pytree_node=False, serialize=False)
    last_record: Any = struct.field(pytree_node=False, serialize=False)
    _checkpointed: Any = struct.field(pytree_node=False, serialize=False)
    _run_start: float = struct.field(pytree_node=False, serialize=False)

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
        if int(redraw_every) != redraw_every or redraw_every < 0:
            raise ValueError(f"redraw_every must be a non-negative integer, got {redraw_every}")
        super().__init__(vstate, optimizer, minimized_quantity_name="Energy")
        self.hamiltonian = hamiltonian
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
        self.redraw_every = int(redraw_every)
        self.redraw_sweeps = int(redraw_sweeps)
        self.seed = int(seed)
        self.history: list[dict[str, Any]] = []
        self.last_record = None
        # (file, step) of the checkpoint last written or read: a run that takes no step rewrites nothing
        self._checkpointed = None
        self._run_start = time.perf_counter()

    # -- NetKet names ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        return (f"FoundationVMC(step_count={self.step_count}, preconditioner={self.preconditioner!r}, "
                f"groups={self.parameter_space.n_groups}, state={self.state})")

    @property
    def vstate(self) -> nk.vqs.MCState:
        """The variational state (NetKet's :attr:`state`)."""
        return self.state

    @property
    def optimizer_state(self):
        """The optax state of :attr:`optimizer`."""
        return self._optimizer_state

    @optimizer_state.setter
    def optimizer_state(self, value) -> None:
        self._optimizer_state = value

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

        Plain gradient or (Min)SR natural gradient, centered within the parameter groups of the
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

    def compute_loss_and_update(self):
        """NetKet's hook, one step before the update: redraw the parameter values (if due), sample,
        per-group statistics, per-group step-size adaptation and the per-group centered direction.

        Returns:
            ``(loss, direction)``: NetKet ``Stats`` of the mean over groups of the group energies
            (user units) and the update direction (pytree like the parameters). The step's
            qernel record is :attr:`last_record`.

        Raises:
            NonFiniteError: if an energy is not finite.
        """
        if self.redraw_every and self.step_count > 0 and self.step_count % self.redraw_every == 0:
            key = jax.random.fold_in(jax.random.PRNGKey(self.seed), self.step_count)
            redraw_parameters(self.vstate, key, n_sweeps=self.redraw_sweeps)
        samples, local_energies, stats = self._sample_and_measure()
        self.adapt()
        direction = self.update_direction(samples, local_energies)
        self.last_record = {
            "step": self.step_count,
            "energy": float(np.mean([s.energy for s in stats])),
            "groups": [s.as_dict() for s in stats],
        }
        return _loss_statistics(stats), direction

    def update_parameters(self, dp) -> None:
        """Apply the optax update of the direction ``dp`` (NetKet's hook).

        Raises:
            NonFiniteError: if the updated parameters are not finite (they are left at their last
                finite values).
        """
        vstate = self.vstate
        new_opt_state, new_params = _apply_update(self.optimizer.update, dp, self._optimizer_state, vstate.parameters)
        if not _tree_all_finite(new_params):
            raise NonFiniteError(
                f"step {self.step_count}: the parameter update produced NaN/inf; stopping "
                "(parameters kept at their last finite values, last good checkpoint kept)"
            )
        vstate.parameters = new_params
        self._optimizer_state = new_opt_state
        if self.previous_direction is not None:
            self.previous_direction = dp
        self.history.append(self.last_record)

    def _log_additional_data(self, log_dict: dict) -> None:
        """Per-group statistics for NetKet's loggers (``groups/<label>/Energy``, acceptance)."""
        log_dict["wallclock"] = time.perf_counter()
        self.last_record["time"] = time.perf_counter() - self._run_start
        log_dict["groups"] = {
            ",".join(f"{k}={v:g}" for k, v in g["parameters"].items()): {
                "Energy": nk.stats.Stats(mean=g["energy"], error_of_mean=g["error"], variance=g["variance"],
                                         tau_corr=g["tau_corr"]),
                "acceptance": g["acceptance"],
            }
            for g in self.last_record["groups"]
        }

    def step(self) -> dict[str, Any]:
        """Advance one optimisation step outside :meth:`run` (no callbacks); returns its log record.

        Raises:
            NonFiniteError: if energies or updated parameters are not finite (parameters are
                left at their last finite values).
        """
        self.reset_step()
        self._loss_stats, self._dp = self.compute_loss_and_update()
        self.update_parameters(self._dp)
        self._step_count += 1
        return self.last_record

    # -- checkpoints ---------------------------------------------------------------------------
    def state_dict(self, step: int | None = None) -> dict[str, Any]:
        """Everything needed to continue the run exactly (``step``: the step count to record,
        default :attr:`step_count`)."""
        return {
            "step": self.step_count if step is None else int(step),
            "params": self.vstate.parameters,
            "model_state": self.vstate.model_state,
            "optimizer_state": self._optimizer_state,
            "sampler_state": self.vstate.sampler_state,
            **({"previous_direction": self.previous_direction} if self.previous_direction is not None else {}),
        }

    def load_parameters(self, data: dict[str, Any]) -> None:
        """Set the variational parameters and model state from a loaded checkpoint ``data`` (the
        optimizer, chains and step count are left alone; call ``vstate.reset()`` afterwards).

        Raises:
            CheckpointError: the checkpoint's parameters do not fit this model.
        """
        vstate = self.vstate
        check_compatible(data["params"], vstate.parameters)  # a clear CheckpointError, not NetKet's mismatch
        vstate.parameters = restore_like(data["params"], vstate.parameters)
        if data.get("model_state"):
            vstate.model_state = restore_like(data["model_state"], vstate.model_state)

    def load_state_dict(self, data: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict` (e.g. from :func:`~qernel.training.checkpoint.load_checkpoint`)."""
        vstate = self.vstate
        self.load_parameters(data)
        self._optimizer_state = restore_like(data["optimizer_state"], self._optimizer_state)
        vstate.sampler_state = restore_like(data["sampler_state"], vstate.sampler_state)
        if self.previous_direction is not None and data.get("previous_direction") is not None:
            self.previous_direction = restore_like(data["previous_direction"], self.previous_direction)
        vstate.reset()
        self._step_count = int(data["step"])
        if data.get("loaded_from"):
            self._checkpointed = (Path(data["loaded_from"]).resolve(), self.step_count)

    def save(self, path, extra: dict[str, Any] | None = None, *, step: int | None = None) -> Path:
        """Atomically write a checkpoint (``extra`` is stored alongside, e.g. the config; ``step``
        as in :meth:`state_dict`)."""
        state = self.state_dict(step)
        written = save_checkpoint(path, {**state, **(extra or {})})
        self._checkpointed = (Path(path).resolve(), state["step"])
        return written

    def holds_checkpoint(self, path) -> bool:
        """Whether ``path`` was last written or read by this driver at the current step."""
        return self._checkpointed == (Path(path).resolve(), self.step_count)

    def restore(self, path) -> dict[str, Any]:
        """Load a checkpoint written by :meth:`save`; returns the whole payload."""
        data = load_checkpoint(path)
        self.load_state_dict(data)
        return data

    # -- runs ----------------------------------------------------------------------------------
    def _default_callbacks(self, callbacks, *, n_iter, obs, step_size, loggers, show_progress, **kwargs):
        """NetKet's default callbacks, with :class:`~qernel.training.callbacks.GroupProgressBar`
        (energy +- error and acceptance per group) instead of NetKet's progress bar."""
        callback_list = super()._default_callbacks(callbacks, n_iter=n_iter, obs=obs, step_size=step_size,
                                                   loggers=loggers, show_progress=False, **kwargs)
        if show_progress:
            bar = GroupProgressBar(n_iter, self.hamiltonian.energy_unit_name)
            callback_list = type(callback_list)([*callback_list.callbacks, bar])
        return callback_list

    def run(
        self,
        n_iter: int,
        out=(),
        obs=None,
        step_size: int = 1,
        show_progress: bool = True,
        save_params_every: int = 50,
        write_every: int = 50,
        callback=None,
        timeit: bool = False,
        _graceful_keyboard_interrupt: bool = True,
        **legacy: Any,
    ):
        """Run ``n_iter`` more steps: NetKet's :meth:`~netket.driver.AbstractDriver.run`.

        Args:
            n_iter: number of steps to run now.
            out, obs, step_size, show_progress, save_params_every, write_every, callback, timeit:
                as NetKet's (``callback``: a function ``(step, log_data, driver) -> bool`` or
                :class:`netket.callbacks.AbstractCallback` objects, e.g.
                :class:`~qernel.training.callbacks.CheckpointCallback`).
            **legacy: deprecated: qernel's former form ``run(n_steps, *, output_dir=None,
                checkpoint_every=50, progress=True, loggers=(), callback=None, extra=None,
                handle_signals=True)``, in which ``n_steps`` is the *total* number of steps (a
                resumed run continues to the same end), ``callback(step, record, driver)`` stops
                the run by returning ``False`` and the log records of the steps run are returned.

        Returns:
            NetKet's loggers (the log records in the deprecated form).
        """
        if legacy:
            unknown = set(legacy) - set(_LEGACY_RUN_ARGUMENTS)
            if unknown:
                raise TypeError(f"FoundationVMC.run got unexpected keyword argument(s) {sorted(unknown)}")
            warnings.warn(
                "FoundationVMC.run(n_steps, output_dir=..., checkpoint_every=..., progress=...) is deprecated: "
                "use run(n_iter, callback=[CheckpointCallback(dir, every), JsonLinesLog(dir / 'log.jsonl')], "
                "show_progress=...) from qernel.training.callbacks (n_iter counts the steps still to run)",
                DeprecationWarning, stacklevel=2,
            )
            return self._run_to(n_iter, callback=callback, **legacy)
        if not isinstance(n_iter, (int, np.integer)) or n_iter < 0:
            raise ValueError(f"n_iter must be a non-negative integer, got {n_iter!r}")
        self._run_start = time.perf_counter()
        return super().run(
            n_iter, out=out, obs=obs, step_size=step_size, show_progress=show_progress,
            save_params_every=save_params_every, write_every=write_every, callback=callback, timeit=timeit,
            _graceful_keyboard_interrupt=_graceful_keyboard_interrupt,
        )

    def run_to(
        self,
        n_steps: int,
        *,
        output_dir: str | Path | None = None,
        checkpoint_every: int = 50,
        progress: bool = True,
        extra: dict[str, Any] | None = None,
        handle_signals: bool = True,
        callback=None,
        out=(),
    ) -> list[dict[str, Any]]:
        """Run until ``step_count == n_steps`` with qernel's long-run callbacks (a resumed run
        continues to the same end; the form used by :func:`qernel.run.train`).

        Args:
            n_steps: total number of steps of the run (not additional steps).
            output_dir: directory for ``log.jsonl`` and ``checkpoint.npz`` (None: neither).
            checkpoint_every: steps between checkpoints (a final one is written unless the checkpoint
                file already holds the last step: a finished run resumed again rewrites nothing).
            progress: show a progress bar with step, energy +- error, acceptance, time.
            extra: stored in every checkpoint (e.g. the run configuration).
            handle_signals: on SIGINT/SIGTERM finish the current step, checkpoint it and raise
                :class:`TrainingInterrupted` (a ``KeyboardInterrupt``); a second signal stops at once.
            callback: NetKet callbacks (:class:`netket.callbacks.AbstractCallback`) or functions as
                NetKet's ``run`` takes them.
            out: NetKet loggers.

        Returns:
            The log records of the steps run by this call.
        """
        return self._run_to(n_steps, output_dir=output_dir, checkpoint_every=checkpoint_every, progress=progress,
                            extra=extra, handle_signals=handle_signals, loggers=to_iterable(out), callback=callback,
                            _wrap_functions=False)

    def _run_to(self, n_steps, *, output_dir=None, checkpoint_every=50, progress=True, loggers=(), callback=None,
                extra=None, handle_signals=True, _wrap_functions=True) -> list[dict[str, Any]]:
        if isinstance(n_steps, bool) or int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"n_steps must be a non-negative integer, got {n_steps}")
        callbacks = [CheckpointCallback(output_dir, checkpoint_every, extra=extra, handle_signals=handle_signals)]
        if output_dir is not None:
            callbacks.append(JsonLinesLog(Path(output_dir) / "log.jsonl"))
        for c in to_iterable(callback, none_is_empty=True):
            # qernel's former callbacks stop on False only (NetKet's also on None)
            callbacks.append(_QernelCallback(c) if _wrap_functions and not isinstance(c, AbstractCallback) else c)
        first = len(self.history)
        self.run(max(0, int(n_steps) - self.step_count), out=tuple(loggers), show_progress=progress,
                 callback=callbacks, _graceful_keyboard_interrupt=False)
        return self.history[first:]


