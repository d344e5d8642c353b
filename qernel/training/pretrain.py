"""Supervised orbital pretraining: fit the network's orbital matrices to reference orbitals.

Before VMC, FermiNet-family codes fit the network's orbitals to Hartree-Fock orbitals
(Pfau et al., PRR 2, 033429 (2020), section "Pretraining"; von Glehn et al. 2023). For a
foundation model every parameter group g carries its own reference orbital set (the reference
at that group's Hamiltonian parameters). The loss is

    L = mean_{groups g, determinants d} min_U sum_{s in g} ||Phi_ref,g[s] W_g - Phi_d[s] U||^2 / n,

with ``Phi_d`` the network's (generalized) orbital matrix of determinant d and ``Phi_ref`` the
reference orbital matrix of the sample's group whitened over the group's samples by W_g, U a
free complex n x n matrix per group,
determinant and block (least squares in closed form: the determinant depends only on the span of
its orbitals, and solvers fix a degenerate multiplet only up to a rotation, see
:func:`pretraining_loss`): block diagonal (up orbitals on up rows, down orbitals on down rows) for
a full N x N determinant, one block per spin otherwise. The samples are
a mixture: half from the network's own chains (|psi_net|^2; these chains are then thermalised for
VMC) and half from the reference determinant (|psi_ref,g|^2), as FermiNet does, so that the fit
covers where both states live.

The reference is an *orbital set* per spin: any callable ``positions (..., n, 2) -> (..., n, n_orb)``
that is a JAX pytree, e.g. :class:`qernel.hamiltonian.bands.BlochOrbitals`.
:func:`reference_orbitals` builds them; its ``kind`` switch is the one place to add new references
(Hartree-Fock orbitals, exported as ``BlochOrbitals``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import optax

from ..ansatz.orbitals import Orbitals
from ..geometry.hilbert import split_sample
from ..sampler import adapt_step_sizes, group_values, make_sampler, thermalise
from .checkpoint import load_checkpoint, save_checkpoint

__all__ = [
    "REFERENCE_KINDS",
    "reference_states",
    "reference_orbitals",
    "reference_energy",
    "orbital_matrices",
    "reference_matrices",
    "pretraining_loss",
    "OrbitalPretrainer",
]

#: Reference kinds accepted by :func:`reference_orbitals` (``"hartree_fock"`` once it exists).
REFERENCE_KINDS = ("bloch", "hartree_fock")

_BAND_PARAMETERS = ("V", "phi", "m_star", "a_M")  # the parameters that change the Bloch orbitals


def reference_states(hamiltonian, kind: str, values: np.ndarray, names: Sequence[str],
                     stored: Mapping[float, Any] | None = None) -> list[Any]:
    """Reference states of every parameter group (what :func:`reference_orbitals` takes the orbitals of).

    Arguments as :func:`reference_orbitals`.

    Returns:
        one state per group: a :class:`~qernel.hamiltonian.bands.NonInteractingGroundState` (``"bloch"``) or a
        :class:`~qernel.reference.hartree_fock.HartreeFockResult` (``"hartree_fock"``); each has
        ``orbitals_up`` / ``orbitals_down``.
    """
    from ..hamiltonian import MoireHamiltonian

    if kind not in REFERENCE_KINDS:
        raise ValueError(f"pretrain.reference must be one of {REFERENCE_KINDS}, got {kind!r}")
    if not isinstance(hamiltonian, MoireHamiltonian):
        raise ValueError(
            f"pretraining needs reference orbitals, available for moiré systems only; got {type(hamiltonian).__name__}"
        )
    values = np.asarray(values, dtype=float)
    # no carried parameter: one group, the Hamiltonian's own values
    values = np.zeros((1, 0)) if not names else values.reshape(-1, len(names))
    if kind == "hartree_fock" and set(names) - {"V"}:
        raise ValueError(
            f"pretrain.reference = 'hartree_fock' supports runs that carry V only, got carried parameters {list(names)}; "
            "use 'bloch'"
        )
    if stored and kind != "hartree_fock":
        raise ValueError(f"stored reference states are Hartree-Fock states; pretrain.reference is {kind!r}")
    result = []
    for row in values:
        overrides = {n: float(v) for n, v in zip(names, row) if n in _BAND_PARAMETERS}
        if kind == "bloch":
            state = hamiltonian.noninteracting_ground_state(**overrides)
        else:
            state = _stored_at(stored or {}, overrides.get("V", hamiltonian.parameters["V"]))
            if state is None:  # lowest of several self-consistent starts; may break the moiré translations (a crystal)
                from ..reference.hartree_fock import hartree_fock

                state = hartree_fock(hamiltonian, V=overrides.get("V"))
        result.append(state)
    return result


def reference_orbitals(hamiltonian, kind: str, values: np.ndarray, names: Sequence[str],
                       stored: Mapping[float, Any] | None = None) -> list[tuple[Any, Any]]:
    """Reference orbital sets ``(up, down)`` of every parameter group.

    Args:
        hamiltonian: a :class:`~qernel.hamiltonian.MoireHamiltonian`.
        kind: ``"bloch"``: the exact non-interacting Bloch orbitals at the group's parameters
            (:meth:`~qernel.hamiltonian.MoireHamiltonian.noninteracting_ground_state`);
            ``"hartree_fock"``: the unrestricted Hartree-Fock orbitals at the group's V
            (:func:`~qernel.reference.hartree_fock.hartree_fock`, lowest of its starts, default cutoff;
            about 10 s per group at N = 6 on a 3x3 cell), for runs that carry V only.
        values: (G, P) parameter values of the groups (user units).
        names: the P parameter names.
        stored: ``{V: HartreeFockResult}`` already computed (``"hartree_fock"`` only; e.g. from
            :func:`~qernel.reference.hartree_fock_store.load_hartree_fock_states`): a group whose V is
            stored uses it, the others are computed.

    Returns:
        one ``(orbitals_up, orbitals_down)`` per group; each a callable orbital set
        ``positions (..., n_sigma, 2) -> (..., n_sigma, n_sigma)`` in internal units.
    """
    return [(s.orbitals_up, s.orbitals_down) for s in reference_states(hamiltonian, kind, values, names, stored)]


def reference_energy(hamiltonian, state, parameters: Mapping[str, float]) -> float | None:
    """Energy (meV, total, Coulomb included) of a reference determinant of :func:`reference_states`, or None.

    A Hartree-Fock state carries its self-consistent energy. For a non-interacting (Bloch) state the energy of
    the determinant of the lowest one-body levels in the plane-wave basis at the group's V
    (as ``qernel reference --method bloch``: one Fock build, seconds at N = 24); None when the group
    carries a band parameter other than V (that determinant is not evaluated).

    Args:
        hamiltonian: the run's :class:`~qernel.hamiltonian.MoireHamiltonian`.
        state: one entry of :func:`reference_states`.
        parameters: the group's carried parameter values (user units).
    """
    from ..reference.hartree_fock import HartreeFockResult

    if isinstance(state, HartreeFockResult):  # its energy is the interacting one
        return float(state.energy_meV)
    if set(parameters) - {"V"}:
        return None
    from ..reference.bloch import bloch_determinant

    return float(bloch_determinant(hamiltonian, float(parameters.get("V", hamiltonian.parameters["V"])))["energy_meV"])


def _stored_at(stored: Mapping[float, Any], V: float):
    """The stored state at V (meV; matched to 1e-9 meV), or None."""
    for key, state in stored.items():
        if abs(float(key) - float(V)) < 1e-9:
            return state
    return None


def orbital_matrices(model: hk.Transformed, params, x) -> list[jax.Array]:
    """The orbital matrices of a model built from :class:`~qernel.ansatz.orbitals.Orbitals`.

    Intercepts the ``Orbitals`` module's output while applying ``model`` (no change to the model
    and the same parameters).

    Args:
        model: ``hk.Transformed`` (e.g. :func:`~qernel.ansatz.make_qernel`).
        params: its Haiku parameters.
        x: (B, 2N + P) samples.

    Returns:
        list of (B, K, n, n) orbital matrices (see :class:`~qernel.ansatz.orbitals.Orbitals`).
    """
    captured: list = []

    def interceptor(next_fun, args, kwargs, context):
        if isinstance(context.module, Orbitals) and context.method_name == "slogdets":
            context.module(*args, **kwargs)  # fused determinant: build the same matrices (same parameters) to capture them
        out = next_fun(*args, **kwargs)
        if isinstance(context.module, Orbitals) and context.method_name == "__call__":
            captured.append(out)
        return out

    with hk.intercept_methods(interceptor):
        model.apply(params, None, x)
    if len(captured) != 1:
        raise ValueError(f"pretraining needs a model with one Orbitals module, found {len(captured)}")
    return captured[0]


def _group_of(p, group_points):
    """(B,) index of the nearest group parameter row for parameter rows ``p`` (B, P)."""
    if group_points.shape[1] == 0:
        return jnp.zeros(p.shape[0], dtype=jnp.int32)
    distance = jnp.sum((p[:, None, :] - group_points[None, :, :]) ** 2, axis=-1)
    return jnp.argmin(distance, axis=-1)


def reference_matrices(references, group_points, x, n_up: int, n_down: int, full: bool) -> list[jax.Array]:
    """Reference orbital matrices of samples ``x`` (B, 2N + P), each at its own group's reference.

    Args:
        references: list over groups of ``(orbitals_up, orbitals_down)``.
        group_points: (G, P) parameter values of the groups.
        full: one N x N block-diagonal matrix (full determinant) instead of one block per spin.

    Returns:
        list of (B, n, n) complex matrices, matching the network's blocks without the K axis.
    """
    n = n_up + n_down
    positions, p = split_sample(x, n)
    groups = _group_of(p, jnp.asarray(group_points, p.dtype))  # (B,)
    blocks = []
    for spin, start, count in (("up", 0, n_up), ("down", n_up, n_down)):
        if not count:
            continue
        r = positions[:, start : start + count]
        per_group = jnp.stack([ref[0 if spin == "up" else 1](r) for ref in references])  # (G, B, n, n)
        blocks.append(jnp.take_along_axis(per_group, groups[None, :, None, None], axis=0)[0])
    if not full or len(blocks) == 1:
        return blocks
    up, down = blocks
    batch = up.shape[0]
    top = jnp.concatenate([up, jnp.zeros((batch, n_up, n_down), up.dtype)], axis=-1)
    bottom = jnp.concatenate([jnp.zeros((batch, n_down, n_up), down.dtype), down], axis=-1)
    return [jnp.concatenate([top, bottom], axis=-2)]


def pretraining_loss(network_blocks: list[jax.Array], reference_blocks: list[jax.Array], groups=None,
                     n_groups: int = 1, jitter: float = 1e-10) -> jax.Array:
    """``mean_{g, d} min_U sum_{s in g} ||Phi_ref[s] W_g - Phi_net,d[s] U||^2 / n``, the reference
    whitened over the group's samples (``W_g = (sum_{s in g} Phi_ref^H Phi_ref)^{-1/2}``).

    A Slater determinant depends only on the span of its orbitals, and an eigensolver fixes the
    orbitals of a degenerate multiplet (e.g. the three M points of a 2x2 cell) only up to an
    arbitrary rotation that differs from one V to the next. Minimising over one complex n x n
    matrix U per group g, determinant d and block (closed-form least squares on the group's
    samples), with the reference whitened, makes the loss invariant to any invertible linear
    recombination of the reference orbitals (and of the network's), so the network can keep one
    smooth set of orbitals across V. The reference is regressed onto the network (not the
    reverse), so a collapsing network is penalised, not rewarded: with ``G_net = sum_s
    Phi_net^H Phi_net``, ``G_ref = sum_s Phi_ref^H Phi_ref`` and ``C = sum_s Phi_net^H Phi_ref``
    (n x n, summed over the group's samples) the loss is ``1 - tr(G_ref^{-1} C^H G_net^{-1} C) / n``
    = the mean squared sine of the principal angles between the two column spans (over the
    samples): 0 when the network spans the reference exactly, >= (n - rank) / n for a network of
    lower rank, at most 1.

    Args:
        network_blocks: list of (B, K, n, n) network orbital matrices (rows: electrons, columns: orbitals).
        reference_blocks: list of (B, n, n) reference matrices (same order and sizes).
        groups: (B,) group index of every sample (None: one group).
        n_groups: number of groups.
        jitter: relative Tikhonov regularisation of both Gram matrices (keeps the solves finite
            for a rank-deficient network or an empty group).
    """
    if len(network_blocks) != len(reference_blocks):
        raise ValueError(
            f"the network has {len(network_blocks)} orbital block(s), the reference {len(reference_blocks)}"
        )

    def regularised(gram):
        scale = jnp.real(jnp.trace(gram, axis1=-2, axis2=-1))[..., None, None] / gram.shape[-1]
        return gram + (jitter * scale + 1e-300) * jnp.eye(gram.shape[-1], dtype=gram.dtype)

    total = 0.0
    terms = 0
    for net, ref in zip(network_blocks, reference_blocks):
        if net.shape[-2:] != ref.shape[-2:]:
            raise ValueError(f"network orbital block {net.shape[-2:]} does not match the reference {ref.shape[-2:]}")
        batch, k, _, n = net.shape
        ids = jnp.zeros(batch, dtype=jnp.int32) if groups is None else groups
        sums = partial(jax.ops.segment_sum, segment_ids=ids, num_segments=n_groups)
        gram_net = regularised(sums(jnp.einsum("bkia,bkic->bkac", jnp.conj(net), net)))  # (G, K, n, n)
        cross = sums(jnp.einsum("bkia,bic->bkac", jnp.conj(net), ref))  # (G, K, n, n)
        gram_ref = regularised(sums(jnp.einsum("bia,bic->bac", jnp.conj(ref), ref)))  # (G, n, n)
        fit = jnp.linalg.solve(gram_net, cross)  # the least-squares U of the unwhitened reference
        explained = jnp.real(jnp.trace(jnp.linalg.solve(gram_ref[:, None], jnp.conj(jnp.swapaxes(cross, -1, -2)) @ fit),
                                       axis1=-2, axis2=-1))  # (G, K)
        present = sums(jnp.ones(batch)) > 0  # groups without samples in this batch do not count
        residual = 1.0 - explained / n
        total = total + jnp.sum(jnp.where(present[:, None], residual, 0.0)) / jnp.maximum(jnp.sum(present), 1)
        terms += k
    return total / terms


class OrbitalPretrainer:
    """Fit a variational state's orbital matrices to reference orbitals, group by group.

    Args:
        vstate: the network's ``nk.vqs.MCState`` (a qernel sampler whose chains carry parameters).
        references: list over the sampler's parameter groups of ``(orbitals_up, orbitals_down)``
            (:func:`reference_orbitals`); each a JAX pytree callable on positions (..., n, 2).
        learning_rate: Adam learning rate at the first step.
        learning_rate_decay: the rate at step ``t`` is ``learning_rate / (1 + learning_rate_decay * t)``
            (the VMC optimizer's schedule): the loss is a Monte Carlo estimate, and a constant rate
            leaves the fit at a noise floor.
        target_acceptance: Metropolis acceptance the step sizes of both samplers adapt to.
        seed: seed of the reference sampler.
    """

    def __init__(self, vstate: nk.vqs.MCState, references, *, learning_rate: float = 3e-3,
                 learning_rate_decay: float = 0.0, target_acceptance: float = 0.5, seed: int = 0) -> None:
        if not learning_rate > 0:
            raise ValueError(f"pretrain.learning_rate must be > 0, got {learning_rate}")
        if not learning_rate_decay >= 0:
            raise ValueError(f"pretrain.learning_rate_decay must be >= 0, got {learning_rate_decay}")
        hilbert = vstate.hilbert
        self.vstate = vstate
        self.n_up, self.n_down = hilbert.n_up, hilbert.n_down
        self.group_points = np.asarray(group_values(vstate))
        if len(references) != self.group_points.shape[0]:
            raise ValueError(f"need one reference per parameter group ({self.group_points.shape[0]}), got {len(references)}")
        self.references = list(references)
        self.target_acceptance = target_acceptance
        # a constant rate keeps the optimizer state of checkpoints written before the decay existed
        schedule = learning_rate if learning_rate_decay == 0 else (
            lambda step: learning_rate / (1.0 + learning_rate_decay * step))
        self.optimizer = optax.adam(schedule)
        self.optimizer_state = self.optimizer.init(vstate.parameters)
        self.step_count = 0
        x0 = vstate.samples.reshape(-1, vstate.samples.shape[-1])[:1]
        blocks = self._network_blocks(vstate.parameters, x0)
        if not all(jnp.iscomplexobj(b) for b in blocks):
            raise ValueError("orbital pretraining needs complex orbitals (ansatz complex_output = true)")
        self.full = len(blocks) == 1 and self.n_up > 0 and self.n_down > 0
        self.reference_state = self._reference_state(seed)

    # -- pieces ------------------------------------------------------------------------------
    def _network_blocks(self, params, x):
        vstate = self.vstate
        model = hk.Transformed(init=None, apply=lambda p, rng, x: vstate._apply_fun({"params": p, **vstate.model_state}, x))
        return orbital_matrices(model, params, x)

    def _reference_state(self, seed: int) -> nk.vqs.MCState:
        """An MCState sampling ``|det Phi_ref,g|^2`` with the network sampler's groups and settings."""
        vstate = self.vstate
        references, points = self.references, self.group_points
        n_up, n_down = self.n_up, self.n_down

        def log_det(matrix):
            sign, logabs = jnp.linalg.slogdet(matrix)
            return logabs + 1j * jnp.angle(sign)

        def model(x):
            blocks = reference_matrices(references, points, x.reshape(-1, x.shape[-1]), n_up, n_down, False)
            value = sum(log_det(b) for b in blocks).reshape(x.shape[:-1])
            return value + hk.get_parameter("zero", (), init=jnp.zeros)  # MCState needs a parameter

        sampler = vstate.sampler
        state = nk.vqs.MCState(sampler, hk.transform(model), n_samples=sampler.n_chains,
                               n_discard_per_chain=0, seed=seed, sampler_seed=seed + 7)
        thermalise(state, 10)
        return state

    @partial(jax.jit, static_argnums=0)
    def _update(self, params, optimizer_state, x):
        def loss_fn(p):
            net = self._network_blocks(p, x)
            ref = reference_matrices(self.references, self.group_points, x, self.n_up, self.n_down, self.full)
            return pretraining_loss(net, ref, self._groups(x), len(self.references))

        loss, grad = jax.value_and_grad(loss_fn)(params)
        updates, optimizer_state = self.optimizer.update(grad, optimizer_state, params)
        return optax.apply_updates(params, updates), optimizer_state, loss

    def loss(self, x=None) -> float:
        """The pretraining loss of the current parameters on samples ``x`` (default: fresh mixed samples)."""
        x = self._mixed_samples() if x is None else x
        net = self._network_blocks(self.vstate.parameters, x)
        ref = reference_matrices(self.references, self.group_points, x, self.n_up, self.n_down, self.full)
        return float(pretraining_loss(net, ref, self._groups(x), len(self.references)))

    def _groups(self, x):
        _, p = split_sample(x, self.n_up + self.n_down)
        return _group_of(p, jnp.asarray(self.group_points, p.dtype))

    def _mixed_samples(self):
        """One sweep of every network chain and every reference chain, concatenated (2 n_chains, D)."""
        parts = []
        for state in (self.vstate, self.reference_state):
            samples = state.sample(chain_length=1, n_discard_per_chain=0)
            adapt_step_sizes(state, self.target_acceptance)
            parts.append(samples.reshape(-1, samples.shape[-1]))
        return jnp.concatenate(parts, axis=0)

    def step(self) -> float:
        """One Adam step on fresh mixed samples; returns the loss before the step."""
        x = self._mixed_samples()
        params, self.optimizer_state, loss = self._update(self.vstate.parameters, self.optimizer_state, x)
        self.vstate.parameters = params
        self.step_count += 1
        return float(loss)

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"pretrain_step": self.step_count, "params": self.vstate.parameters,
                "optimizer_state": self.optimizer_state, "sampler_state": self.vstate.sampler_state,
                "reference_sampler_state": self.reference_state.sampler_state}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.vstate.parameters = _restore(data["params"], self.vstate.parameters)
        self.optimizer_state = _restore(data["optimizer_state"], self.optimizer_state)
        self.vstate.sampler_state = _restore(data["sampler_state"], self.vstate.sampler_state)
        self.reference_state.sampler_state = _restore(data["reference_sampler_state"], self.reference_state.sampler_state)
        self.vstate.reset()
        self.reference_state.reset()
        self.step_count = int(data["pretrain_step"])

    def run(self, n_steps: int, *, checkpoint: str | Path | None = None, checkpoint_every: int = 50,
            progress: bool = True, extra: dict[str, Any] | None = None) -> list[float]:
        """Pretrain until ``step_count == n_steps``; resumes from ``checkpoint`` if it exists.

        Returns the loss of every step run now.
        """
        if int(n_steps) != n_steps or n_steps < 0:
            raise ValueError(f"pretrain.steps must be an integer >= 0, got {n_steps}")
        if checkpoint is not None and Path(checkpoint).is_file():
            self.load_state_dict(load_checkpoint(checkpoint))
        bar = None
        if progress and self.step_count < n_steps:
            from tqdm.auto import tqdm

            bar = tqdm(total=n_steps, initial=self.step_count, desc="pretrain orbitals", dynamic_ncols=True)
        from .driver import TrainingInterrupted, _deferred_signals, _signalled_anywhere

        losses = []
        try:
            with _deferred_signals() as received:  # SIGINT/SIGTERM: finish the step, save, stop
                while self.step_count < n_steps:
                    loss = self.step()
                    if not math.isfinite(loss):
                        raise FloatingPointError(f"pretraining step {self.step_count}: the loss is {loss}; stopping")
                    losses.append(loss)
                    if bar is not None:
                        bar.update(1)
                        bar.set_postfix_str(f"loss={loss:.4g}")
                    interrupted = _signalled_anywhere(received)
                    if checkpoint is not None and (self.step_count % checkpoint_every == 0 or interrupted):
                        save_checkpoint(checkpoint, {**self.state_dict(), **(extra or {})})
                    if interrupted:
                        raise TrainingInterrupted(self.step_count, received[0] if received else "signal",
                                                  checkpoint is not None, phase="pretraining")
        finally:
            if bar is not None:
                bar.close()
        if checkpoint is not None:
            save_checkpoint(checkpoint, {**self.state_dict(), **(extra or {})})
        return losses


def _restore(host_tree, live_tree):
    from .checkpoint import restore_like

    return restore_like(host_tree, live_tree)
