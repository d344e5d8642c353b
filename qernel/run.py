"""Build a whole run (Hamiltonian, parameter space, ansatz, sampler, MCState, driver) from a
:class:`~qernel.config.RunConfig`; train, resume and evaluate.

This is what the ``qernel`` CLI calls; Python users can call the same functions, or compose the
pieces themselves as in ``examples/``.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax

from .config import ConfigError, RunConfig, ansatz_kinds, config_from_dict, system_kinds
from .distributed import is_main_process
from .sampler import ParameterGrid, ParameterSpace, UniformRange, make_sampler, no_parameters
from .training.checkpoint import (
    CHECKPOINT_NAME,
    CheckpointError,
    load_checkpoint,
    previous_path,
)
from .training.lock import RunLock
from .training.driver import FoundationVMC

__all__ = [
    "Run",
    "build_hamiltonian",
    "build_parameter_space",
    "build_model",
    "build_run",
    "train",
    "config_changes",
    "RESUME_MAY_CHANGE",
    "pretrain_orbitals",
    "check_pretrained_state",
    "evaluate_checkpoint",
    "state_at_values",
]


@dataclass
class Run:
    """All the objects of one run."""

    config: RunConfig
    hamiltonian: Any
    parameter_space: ParameterSpace
    model: Any
    vstate: nk.vqs.MCState
    driver: FoundationVMC
    #: the ``[pretrain]`` reference states per parameter group (set by :func:`pretrain_orbitals`), or None
    pretrain_references: list | None = None

    @property
    def output_dir(self) -> Path:
        return Path(self.config.run.output_dir)


def _carried_names(config: RunConfig) -> tuple[str, ...]:
    p = config.parameters
    if p.type == "grid":
        return tuple(p.values)
    if p.type == "uniform":
        return tuple(p.low)
    return ()


def build_hamiltonian(config: RunConfig):
    """The Hamiltonian of ``config.system`` (conditioned on the parameters the chains carry), built
    by the registered builder of its kind (:func:`qernel.config.register_system`)."""
    s = config.system
    kind = config.system_kind
    carried = _carried_names(config)
    given = getattr(s, "conditioned_on", None)
    names = tuple(given) if given is not None else carried
    if set(names) != set(carried):
        raise ConfigError(
            f"system.conditioned_on {list(names)} must name the same parameters as the [parameters] "
            f"section {list(carried)}"
        )
    try:
        hamiltonian = system_kinds()[kind].builder(s, names)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"system: {error}") from error
    if tuple(hamiltonian.conditioned_on) != names:
        raise ConfigError(
            f"system: the builder of kind {kind!r} returned a Hamiltonian conditioned on "
            f"{list(hamiltonian.conditioned_on)}, expected {list(names)} (the carried parameters)"
        )
    return hamiltonian


def build_parameter_space(config: RunConfig, hamiltonian) -> ParameterSpace:
    """The parameter space of ``config.parameters``, validated against the Hamiltonian's ranges."""
    p = config.parameters
    names = hamiltonian.conditioned_on
    center = [p.center[n] for n in names] if p.center else None
    scale = [p.scale[n] for n in names] if p.scale else None
    try:
        if p.type == "none":
            return no_parameters()
        if p.type == "grid":
            space = ParameterGrid([p.values[n] for n in names], names, center=center, scale=scale)
            hamiltonian.check_parameter_values(space.points)
            return space
        low = [p.low[n] for n in names]
        high = [p.high[n] for n in names]
        hamiltonian.check_parameter_values(np.array([low, high]))
        return UniformRange(low, high, names, n_groups=p.n_groups, center=center, scale=scale)
    except ValueError as error:
        raise ConfigError(f"parameters: {error}") from error


def build_model(config: RunConfig, hamiltonian, space: ParameterSpace):
    """The Haiku model (``hk.Transformed``) of ``config.ansatz``, built by the registered builder of
    its kind (:func:`qernel.config.register_ansatz`) from the Hamiltonian and the parameter space:
    the cusp coupling, length scale and parameter normalisation come from them, not from the config.

    Defaults filled for keys the ``[ansatz]`` section leaves out (when the kind's config has them):
    ``dtype`` = ``[run] dtype``; ``n_harmonics`` of a periodic system = the largest entry of the
    supercell matrix (a supercell-periodic feature ``sin(2 pi m s)`` with ``m`` up to ``max|M_ij|``
    resolves the moiré potential's own Fourier components, docs/reproduction.md).
    """
    defaults: dict[str, Any] = {"dtype": config.run.dtype}
    if getattr(hamiltonian, "supercell", None) is not None:
        defaults["n_harmonics"] = int(np.max(np.abs(hamiltonian.supercell.matrix)))
    settings = config.ansatz.settings(**defaults)
    try:
        return ansatz_kinds()[config.ansatz.kind].builder(settings, hamiltonian, space)
    except ValueError as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"ansatz: {error}") from error


def _optimizer(config: RunConfig) -> optax.GradientTransformation:
    o = config.optimizer
    def schedule(step):  # linear warm-up over warmup_steps, then lr / (1 + decay * step)
        warmup = jnp.minimum(1.0, (step + 1.0) / o.warmup_steps) if o.warmup_steps else 1.0
        return warmup * o.learning_rate / (1.0 + o.learning_rate_decay * step)

    base = optax.sgd(schedule) if o.kind == "sgd" else optax.adam(schedule)
    if o.max_update_norm is not None:
        return optax.chain(optax.clip_by_global_norm(o.max_update_norm), base)
    return base


def build_run(config: RunConfig | dict) -> Run:
    """Construct every object of a run (no sampling or training yet beyond model initialisation)."""
    if isinstance(config, dict):
        config = config_from_dict(config)
    hamiltonian = build_hamiltonian(config)
    space = build_parameter_space(config, hamiltonian)
    model = build_model(config, hamiltonian, space)
    s = config.sampler
    n_chains = s.n_chains
    if n_chains % space.n_groups:
        raise ConfigError(
            f"sampler.n_chains={n_chains} must be a multiple of the number of parameter groups ({space.n_groups})"
        )
    if s.n_samples % n_chains:
        raise ConfigError(f"sampler.n_samples={s.n_samples} must be a multiple of sampler.n_chains={n_chains}")
    sweep = s.sweep_size if s.sweep_size is not None else max(1, hamiltonian.n_electrons)
    dtype = np.float32 if config.run.dtype == "float32" else np.float64
    sampler = make_sampler(hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=sweep, rule=s.rule, dtype=dtype)
    seed = config.run.seed
    vstate = nk.vqs.MCState(
        sampler, model, n_samples=s.n_samples, n_discard_per_chain=s.n_discard_per_chain,
        chunk_size=s.chunk_size, seed=seed, sampler_seed=seed + 1,
    )
    o = config.optimizer
    driver = FoundationVMC(
        hamiltonian, vstate, _optimizer(config),
        preconditioner=None if o.preconditioner == "none" else o.preconditioner, momentum=o.momentum,
        diag_shift=o.diag_shift, clip_width=o.clip_width, target_acceptance=s.target_acceptance,
        redraw_every=config.parameters.redraw_every, redraw_sweeps=config.parameters.thermalise_sweeps, seed=seed,
    )
    return Run(config, hamiltonian, space, model, vstate, driver)


#: Configuration keys that may change on ``--resume``: they do not change the trajectory up to the
#: checkpoint (``run.output_dir``: the directory may have been moved or given with --output-dir).
RESUME_MAY_CHANGE = ("optimizer.n_steps", "run.checkpoint_every", "run.output_dir")


def _flat_config(data: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in data.items():
        if isinstance(value, dict) and value:
            flat.update(_flat_config(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_changes(stored: dict, config: RunConfig) -> list[str]:
    """``"key: old -> new"`` for every setting of ``config`` that differs from the ``stored`` one
    (a checkpoint's configuration) and is not in :data:`RESUME_MAY_CHANGE`."""
    try:
        old = _flat_config(config_from_dict(stored, checkpoint=True).to_dict())
    except ConfigError as error:
        return [f"the checkpoint's configuration is not valid any more ({error})"]
    new = _flat_config(config.to_dict())
    return [f"{key}: {old.get(key, '(unset)')!r} -> {new.get(key, '(unset)')!r}"
            for key in sorted(set(old) | set(new))
            if key not in RESUME_MAY_CHANGE and old.get(key) != new.get(key)]


def _check_output_dir(out: Path, resume: bool, create: bool = True) -> Path:
    """Checks of the output directory done before anything is built; returns the checkpoint path.
    ``create``: make the directory (the process that writes files)."""
    checkpoint = out / CHECKPOINT_NAME
    if resume:
        if not (checkpoint.is_file() or previous_path(checkpoint).is_file()):
            raise CheckpointError(f"cannot resume: checkpoint not found: {checkpoint}")
        return checkpoint
    if create:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise ConfigError(f"run.output_dir: cannot create {out}: {error.strerror or error}") from error
        if not os.access(out, os.W_OK | os.X_OK):
            raise ConfigError(f"run.output_dir: {out} is not writable")
    if checkpoint.exists() or previous_path(checkpoint).exists():
        raise ConfigError(f"{checkpoint} exists: pass --resume to continue that run, or choose another run.output_dir")
    return checkpoint


def train(
    config: RunConfig | dict, *, resume: bool = False, progress: bool = True, output_dir=None,
    init_from: str | os.PathLike | None = None,
) -> Run:
    """Train a run to ``optimizer.n_steps``; with ``resume``, continue from ``output_dir/checkpoint.npz``.

    With ``init_from`` (a checkpoint of another run, or a shipped model's file), a *new* run starts
    from that model's parameters and model state instead of a fresh initialisation: pretraining is
    skipped, the chains are new and thermalised, the optimizer (step count, learning-rate schedule,
    SPRING momentum) starts from zero. The source is recorded in every checkpoint as ``init_from``
    (path as given and its step). The architecture must match (a CheckpointError names the mismatch);
    the system may differ (fine-tuning to another eps, say).

    Before anything is built or compiled: the output directory is checked (creatable, writable;
    a checkpoint present exactly when resuming), a resume's configuration is compared with the
    checkpoint's (only :data:`RESUME_MAY_CHANGE` may differ), and the directory's lock
    (:class:`~qernel.training.lock.RunLock`) is taken for the whole run.

    Raises:
        CheckpointError: ``resume`` without a checkpoint in the output directory.
        ConfigError: bad output directory, or a changed configuration on resume (the diff is named).
        LockError: another live process is training into the same directory.
        TrainingInterrupted: SIGINT/SIGTERM; the current step was finished and checkpointed.
    """
    config = config if isinstance(config, RunConfig) else config_from_dict(config)
    if resume and init_from is not None:
        raise ConfigError("--init-from starts a new run and --resume continues one: pass only one of them")
    initial = None
    if init_from is not None:
        if not Path(init_from).is_file():
            raise CheckpointError(f"--init-from: no checkpoint file {str(init_from)!r}")
        initial = load_checkpoint(init_from, fallback=False)
    out = Path(output_dir or config.run.output_dir)
    main = is_main_process()  # multi-process runs: process 0 owns the directory and writes the files
    checkpoint = _check_output_dir(out, resume, create=main)
    data = None
    if resume:
        data = load_checkpoint(checkpoint)
        changes = config_changes(data.get("config") or {}, config)
        if changes:
            raise ConfigError(
                f"--resume: the configuration differs from the checkpoint's ({'; '.join(changes)}); only "
                f"{', '.join(RESUME_MAY_CHANGE)} may change when resuming: start a new run in another "
                "run.output_dir instead"
            )
    with RunLock(out) if main else contextlib.nullcontext():
        run = build_run(config)
        extra: dict[str, Any] = {"config": run.config.to_dict()}
        if data is not None:
            run.driver.load_state_dict(data)
            if data.get("init_from"):
                extra["init_from"] = data["init_from"]
        else:
            if initial is not None:
                initialise_from(run, initial)
                extra["init_from"] = {"checkpoint": _portable_path(init_from), "step": int(initial.get("step", 0)),
                                      **({"provenance": initial["provenance"]} if initial.get("provenance") else {})}
            else:
                pretrain_orbitals(run, out, progress=progress)  # resumes or skips a stored pretraining
            # thermalise all chains, adapting their step sizes per group on the way
            run.driver.thermalise(run.config.sampler.n_thermalise)
            if run.pretrain_references is not None:  # the pretrained state's energy next to its reference
                check_pretrained_state(run, out if main else None, print_fn=print if main else None)
        run.driver.run_to(
            run.config.optimizer.n_steps, output_dir=out, checkpoint_every=run.config.run.checkpoint_every,
            progress=progress, extra=extra,
        )
    return run


def _portable_path(path: str | os.PathLike) -> str:
    """``path`` relative to the working directory when inside it, else its file name: what is
    recorded in checkpoints (which may be committed) never names a machine's directories."""
    resolved = Path(path).resolve()
    cwd = Path.cwd().resolve()
    return str(resolved.relative_to(cwd)) if resolved.is_relative_to(cwd) else resolved.name


def initialise_from(run: Run, data: dict[str, Any]) -> None:
    """Set the parameters and model state of ``run`` to those of a loaded checkpoint ``data`` and
    restart its optimizer state there (the chains and the step count are left alone).

    Raises:
        CheckpointError: the checkpoint's parameters do not fit this run's model.
    """
    run.driver.load_parameters(data)
    run.vstate.reset()
    run.driver.optimizer_state = run.driver.optimizer.init(run.vstate.parameters)


def pretrain_orbitals(run: Run, output_dir=None, *, progress: bool = True) -> list[float]:
    """Fit the orbitals of ``run`` to its ``[pretrain]`` reference, every parameter group at its
    own values (:mod:`qernel.training.pretrain`); no-op for ``pretrain.steps = 0``.

    With ``output_dir``, progress is checkpointed to ``output_dir/pretrain.npz``: a stored
    pretraining is continued (or skipped when complete) instead of redone.

    Returns:
        the loss of every step run now.
    """
    from .sampler import group_values
    from .training.pretrain import OrbitalPretrainer, reference_states

    p = run.config.pretrain
    if p.steps == 0:
        return []
    names = run.hamiltonian.conditioned_on
    try:
        stored = None
        if p.reference_file:  # checked before the first Hartree-Fock run
            from .reference.hartree_fock_store import load_hartree_fock_states

            stored = load_hartree_fock_states(p.reference_file, run.hamiltonian)
        states = reference_states(run.hamiltonian, p.reference, np.asarray(group_values(run.vstate)), names,
                                  stored=stored)
        references = [(state.orbitals_up, state.orbitals_down) for state in states]
        pretrainer = OrbitalPretrainer(run.vstate, references, learning_rate=p.learning_rate,
                                       learning_rate_decay=p.learning_rate_decay,
                                       target_acceptance=run.config.sampler.target_acceptance, seed=run.config.run.seed)
    except ValueError as error:
        raise ConfigError(f"pretrain: {error}") from error
    checkpoint = None if output_dir is None else Path(output_dir) / "pretrain.npz"
    if checkpoint is not None:
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
    losses = pretrainer.run(p.steps, checkpoint=checkpoint, checkpoint_every=run.config.run.checkpoint_every,
                            progress=progress, extra={"config": run.config.to_dict()})
    # the VMC optimizer starts from the pretrained parameters
    run.driver.optimizer_state = run.driver.optimizer.init(run.vstate.parameters)
    run.pretrain_references = states
    return losses


def check_pretrained_state(run: Run, output_dir=None, *, print_fn=print) -> list[dict[str, Any]]:
    """The pretrained state's energy per parameter group next to its pretraining reference's energy.

    One ``sample()`` of the run's (thermalised) chains and its local energies, after which the
    chains are put back as they were (the run's trajectory does not change): a cheap estimate,
    meant to show before VMC whether pretraining gave a usable state (an energy near the
    reference's with a small variance) or not. Printed as a table in meV per electron (with
    ``print_fn``; None: silent) and, with ``output_dir``, appended to its ``log.jsonl`` as one
    record ``{"step": -1, "phase": "pretrained", "reference": kind, "energy", "groups", "time"}``
    whose ``groups`` are :meth:`GroupStats.as_dict <qernel.training.driver.GroupStats.as_dict>`
    plus ``reference_energy`` (meV, total; None when not known).

    Args:
        run: a run after :func:`pretrain_orbitals` (``run.pretrain_references`` set) whose chains
            are thermalised.
        output_dir: the run's directory (None: no log record).
        print_fn: printer of the table.

    Returns:
        the group records.

    Raises:
        NonFiniteError: the energy of some group is not finite (the network cannot be trained from here).
    """
    from .sampler import group_values, per_group_acceptance
    from .training.driver import NonFiniteError
    from .training.pretrain import reference_energy

    if run.pretrain_references is None:
        raise ValueError("check_pretrained_state needs a pretrained run (call pretrain_orbitals first)")
    vstate, driver = run.vstate, run.driver
    chains = vstate.sampler_state
    try:
        vstate.sample()
        acceptance = np.asarray(per_group_acceptance(vstate))
        local_energies = jnp.asarray(vstate.local_estimators(driver.operator).data)
        stats = driver.group_statistics(local_energies, acceptance)
    finally:  # a measurement only: the chains (positions, keys, step sizes) go on as if it had not run
        vstate.sampler_state = chains
        vstate.reset()
    names = run.hamiltonian.conditioned_on
    points = np.asarray(group_values(vstate))
    n = run.hamiltonian.n_electrons
    records = []
    for s in stats:
        g = int(np.argmin([sum((row[i] - s.parameters[name]) ** 2 for i, name in enumerate(names)) for row in points]))
        ref = reference_energy(run.hamiltonian, run.pretrain_references[g], s.parameters)
        records.append({**s.as_dict(), "reference_energy": ref})
    kind = run.config.pretrain.reference
    if print_fn is not None:
        unit = run.hamiltonian.energy_unit_name
        print_fn(f"pretrained state before VMC ({vstate.n_samples // max(1, len(stats))} samples per group), "
                 f"{unit} per electron:")
        print_fn(f"  {'parameters':>16s}  {'energy':>20s}  {'sqrt(var)':>10s}  {kind:>12s}  {'difference':>10s}")
        for r in records:
            label = ",".join(f"{k}={v:g}" for k, v in r["parameters"].items()) or "-"
            ref = r["reference_energy"]
            ref_text = f"{ref / n:12.3f}" if ref is not None else f"{'-':>12s}"
            diff = f"{(r['energy'] - ref) / n:10.3f}" if ref is not None else f"{'-':>10s}"
            print_fn(f"  {label:>16s}  {r['energy'] / n:10.3f} ± {r['error'] / n:7.3f}  "
                     f"{math.sqrt(max(r['variance'], 0.0)) / n:10.3f}  {ref_text}  {diff}")
    if output_dir is not None:
        record = {"step": -1, "phase": "pretrained", "reference": kind,
                  "energy": float(np.mean([r["energy"] for r in records])), "groups": records, "time": 0.0}
        path = Path(output_dir) / "log.jsonl"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as handle:
            handle.write(json.dumps(record) + "\n")
    bad = [r["parameters"] for r in records if not math.isfinite(r["energy"])]
    if bad:
        raise NonFiniteError(f"the pretrained state's energy is not finite at {bad}; stopping before VMC "
                             "(pretrain with more steps or a smaller pretrain.learning_rate)")
    return records


def state_at_values(
    checkpoint: str | Path, values: dict[str, list[float]] | None = None, *, n_samples: int | None = None,
    n_thermalise: int = 100, seed: int = 1234, ansatz: dict[str, Any] | None = None,
):
    """A thermalised ``MCState`` of a trained model whose chains carry the given parameter values.

    Args:
        checkpoint: a ``checkpoint.npz`` written by training.
        values: parameter name -> list of values (a grid over all names), also values never
            trained on; default: the training grid.
        n_samples: samples per ``sample()`` over all values (default: 4x the run's ``n_samples``).
        n_thermalise: thermalisation sweeps (step sizes adapted per value on the way).
        ansatz: ``[ansatz]`` options replacing the checkpoint's, for options that change the
            output but not the parameters, e.g. ``{"spin_flip": 1, "log_abs_only": False}`` (the
            trained parameters in the spin-flip-symmetrised ansatz); a change of the parameters
            is refused when they are loaded (``CheckpointError``).

    Returns:
        ``(run, vstate, evaluator)``: the rebuilt training run (Hamiltonian, config), the
        evaluation state and a parameter-free :class:`FoundationVMC` for measurements.
    """
    data = load_checkpoint(checkpoint)
    stored = data["config"]
    if ansatz:
        stored = {**stored, "ansatz": {**stored.get("ansatz", {}), **ansatz}}
    config = config_from_dict(stored, checkpoint=True)
    reference = build_run(config)
    names = reference.hamiltonian.conditioned_on
    if values is None:
        space = reference.parameter_space
        if isinstance(space, UniformRange):
            raise ConfigError("the run sampled a uniform range: give the values to evaluate, e.g. --param V=5,10")
    else:
        unknown = set(values) - set(names)
        if unknown:
            raise ConfigError(f"unknown parameter(s) {sorted(unknown)}; the model is conditioned on {list(names)}")
        missing = set(names) - set(values)
        if missing:
            raise ConfigError(f"give values for every conditioned parameter; missing {sorted(missing)}")
        grid = np.array(np.meshgrid(*[values[n] for n in names], indexing="ij")).reshape(len(names), -1).T
        try:
            reference.hamiltonian.check_parameter_values(grid)
        except ValueError as error:
            raise ConfigError(str(error)) from error
        space = ParameterGrid([values[n] for n in names], names,
                              center=reference.parameter_space.center, scale=reference.parameter_space.scale)
    per_group = max(1, config.sampler.n_chains // max(1, reference.parameter_space.n_groups))
    n_chains = per_group * space.n_groups
    total = n_samples or 4 * config.sampler.n_samples
    total = int(math.ceil(total / n_chains) * n_chains)
    sweep = config.sampler.sweep_size or max(1, reference.hamiltonian.n_electrons)
    sampler = make_sampler(reference.hamiltonian.hilbert, space, n_chains=n_chains, sweep_size=sweep,
                           rule=config.sampler.rule, dtype=reference.vstate.sampler.dtype)
    vstate = nk.vqs.MCState(sampler, reference.model, n_samples=total, n_discard_per_chain=0, seed=seed,
                            sampler_seed=seed, chunk_size=config.sampler.chunk_size)
    evaluator = FoundationVMC(reference.hamiltonian, vstate, optax.sgd(0.0), preconditioner=None)
    evaluator.load_parameters(data)
    evaluator.thermalise(n_thermalise)
    return reference, vstate, evaluator


def evaluate_checkpoint(
    checkpoint: str | Path, values: dict[str, list[float]] | None = None, *, n_samples: int | None = None,
    n_thermalise: int = 100, seed: int = 1234, block_size: int = 4096,
) -> list[dict[str, Any]]:
    """Energies of a trained model at given parameter values (also ones never trained on).

    Arguments as :func:`state_at_values`; ``n_samples`` (default 4x the run's) are drawn in blocks
    of about ``block_size`` samples (:mod:`qernel.streaming`), so peak memory does not grow with
    ``n_samples``. Returns one record per parameter value: parameters, energy, error, variance,
    tau_corr, acceptance (energies in the Hamiltonian's unit, named in ``unit``: meV for moiré
    systems, Ha for traps and the electron gas), n_samples.

    Raises:
        MemoryError: before any compute, if the kept per-sample series cannot fit.
    """
    from .streaming import check_fits_in_memory, n_blocks_for, stream_local_energies

    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    if n_samples is not None:
        check_fits_in_memory(n_samples, block_size)
    block = min(block_size, n_samples) if n_samples else block_size
    run, vstate, evaluator = state_at_values(checkpoint, values, n_samples=block, n_thermalise=n_thermalise, seed=seed)
    total = n_samples or 4 * run.config.sampler.n_samples
    check_fits_in_memory(total, block_size)
    n_blocks = n_blocks_for(total, vstate.n_samples)
    local_energies, acceptance = stream_local_energies(vstate, evaluator.operator, n_blocks)
    stats = evaluator.group_statistics(local_energies, acceptance)
    per_value = local_energies.size // len(stats)
    unit = run.hamiltonian.energy_unit_name
    return [{**g.as_dict(), "unit": unit, "n_samples": per_value} for g in stats]
