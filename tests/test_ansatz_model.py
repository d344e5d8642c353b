"""The QERNEL model and its baselines: symmetries, conditioning, continuity, NetKet integration.

Independent references: exact symmetry identities (antisymmetry, lattice periodicity), the
exact Hessian trace from ``jax.hessian`` for folx's Laplacian, the plane-wave Slater determinant
(free-electron ground state) and the lead's Bloch-orbital determinant
(:func:`qernel.hamiltonian.bands.slater_log_amplitude`) for the Slater-Jastrow baseline.

The symmetry tests evaluate the model at parameters with every leaf moved off its initial value
(``_perturb.perturbed``): at initialisation the FiLM heads and the smooth Jastrow weights are zero
and a bug in them is invisible. Hand-injected mutants that these tests catch (issue 16): a FiLM
shift scaled by the electron index, ``sin`` for ``cos`` in the Jastrow's periodic basis.
"""

import qernel  # noqa: F401
from functools import lru_cache

import folx
import haiku as hk
import jax
import jax.numpy as jnp
import netket as nk
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.ansatz import (
    QERNELConfig,
    SlaterJastrowConfig,
    bloch_coefficients,
    count_parameters,
    make_plain_transformer,
    make_qernel,
    make_slater_jastrow,
    plane_wave_kpoints,
    router_statistics,
)
from qernel.geometry.hilbert import ElectronHilbert, join_sample
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian.moire import MoireHamiltonian

from _perturb import perturbed

SETTINGS = settings(max_examples=12, deadline=None)
CELL = triangular_lattice(1.0).supercell(2)  # 4 moiré cells, side 2 a_M
CENTER, SCALE = 15.0, 10.0  # V in meV -> p_hat = (V - 15) / 10
SECTORS = [(3, 0), (0, 2), (2, 1)]  # n_down = 0, n_up = 0, mixed S_z != 0
TINY = QERNELConfig(
    n_layers=2, width=16, num_heads=4, num_kv_heads=2, ffn_hidden=16, num_experts=4, top_k=2,
    n_determinants=2, film_hidden=8, cusp_coupling=1.5,
)

SMALL = TINY.replace(n_layers=1, width=8, num_heads=2, num_kv_heads=1, ffn_hidden=8, jastrow_smooth=2)


@lru_cache(maxsize=None)
def build(n_up, n_down, config=TINY, periodic=True, seed=0, at_init=False):
    """(jitted apply, params, hilbert) for a sector; cached so hypothesis examples reuse compilations.

    The parameters have every leaf moved off its initial value (FiLM heads and smooth Jastrow
    non-zero), unless ``at_init``.
    """
    hilbert = ElectronHilbert(n_up, n_down, CELL if periodic else None, ("V",))
    model = make_qernel(config, hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    x = sample(hilbert, 0)
    params = jax.jit(model.init)(jax.random.PRNGKey(seed), x)  # jit: eager init dispatches op by op
    if not at_init:
        params = perturbed(params, seed + 1)
    return jax.jit(model.apply), params, hilbert


def sample(hilbert, seed, V=12.0, batch=()):
    key = jax.random.PRNGKey(seed)
    s = jax.random.uniform(key, (*batch, hilbert.n_electrons, 2))
    positions = CELL.to_cartesian(s) if hilbert.is_periodic else 2 * (s - 0.5)
    return join_sample(positions, jnp.full((*batch, 1), V))


def ratio(apply, params, x, y):
    """psi(y) / psi(x)."""
    return np.exp(complex(apply(params, None, y) - apply(params, None, x)))


sectors = st.sampled_from(SECTORS)
seeds = st.integers(0, 2**31 - 1)


# -- symmetries ---------------------------------------------------------------------------------------
@SETTINGS
@given(sector=sectors, seed=seeds, V=st.floats(0.0, 40.0), data=st.data())
def test_antisymmetry_under_same_spin_exchange(sector, seed, V, data):
    """Swapping two same-spin electrons flips the sign of psi and keeps |psi| (Pauli principle)."""
    apply, params, hilbert = build(*sector)
    same_spin = [(i, j) for i in range(hilbert.n_electrons) for j in range(i)
                 if (i < sector[0]) == (j < sector[0])]
    if not same_spin:
        return
    i, j = data.draw(st.sampled_from(same_spin))
    x = sample(hilbert, seed, V)
    r = x[: 2 * hilbert.n_electrons].reshape(-1, 2)
    y = join_sample(r.at[jnp.array([i, j])].set(r[jnp.array([j, i])]), x[-1:])
    np.testing.assert_allclose(ratio(apply, params, x, y), -1.0, atol=1e-8)


@SETTINGS
@given(sector=sectors, seed=seeds, V=st.floats(0.0, 40.0), n1=st.integers(-2, 2), n2=st.integers(-2, 2), data=st.data())
def test_periodicity_under_supercell_translations(sector, seed, V, n1, n2, data):
    """psi(r_i + n1 L1 + n2 L2) = psi(r_i) for any electron i (periodic boundary conditions)."""
    apply, params, hilbert = build(*sector)
    i = data.draw(st.integers(0, hilbert.n_electrons - 1))
    x = sample(hilbert, seed, V)
    shift = n1 * CELL.vectors[0] + n2 * CELL.vectors[1]
    y = x.at[2 * i : 2 * i + 2].add(jnp.asarray(shift))
    np.testing.assert_allclose(ratio(apply, params, x, y), 1.0, atol=1e-8)


@settings(max_examples=6, deadline=None)
@given(seed=seeds, V=st.floats(0.0, 40.0))
def test_spin_block_determinants_antisymmetric_and_periodic(seed, V):
    """full_determinant=False (det Phi_up det Phi_down): the same exchange and translation identities."""
    apply, params, hilbert = build(3, 2, TINY.replace(full_determinant=False))
    x = sample(hilbert, seed, V)
    r = x[:-1].reshape(-1, 2)
    for i, j in ((0, 2), (3, 4)):
        y = join_sample(r.at[jnp.array([i, j])].set(r[jnp.array([j, i])]), x[-1:])
        np.testing.assert_allclose(ratio(apply, params, x, y), -1.0, atol=1e-8)
    y = x.at[8:10].add(jnp.asarray(CELL.vectors[0] - 2 * CELL.vectors[1]))
    np.testing.assert_allclose(ratio(apply, params, x, y), 1.0, atol=1e-8)
    up_rows = params["qernel/orbitals/orbital_up_real"]["w"]  # spin-block columns: n_up per determinant
    assert up_rows.shape[-1] == 3 * TINY.n_determinants


def test_twisted_boundary_phase():
    """With a twist k_s the envelope gives psi(r_i + L) = exp(i k_s . L) psi(r_i) (Bloch theorem
    for the supercell), all else periodic."""
    twist = (0.25, 0.5)
    apply, params, hilbert = build(2, 1, TINY.replace(twist=twist))
    x = sample(hilbert, 3)
    L = CELL.vectors[1]
    k_s = np.asarray(twist) @ CELL.reciprocal_vectors
    y = x.at[2:4].add(jnp.asarray(L))
    np.testing.assert_allclose(ratio(apply, params, x, y), np.exp(1j * k_s @ L), atol=1e-8)


@SETTINGS
@given(seed=seeds)
def test_open_boundary_model_is_antisymmetric_and_decays(seed):
    """Trap variant (open features, Gaussian envelope): antisymmetric in both spin blocks, and
    |psi| -> 0 far from the trap center."""
    apply, params, hilbert = build(2, 2, periodic=False)
    x = sample(hilbert, seed)
    r = x[:-1].reshape(-1, 2)
    for i, j in ((0, 1), (2, 3)):
        y = join_sample(r.at[jnp.array([i, j])].set(r[jnp.array([j, i])]), x[-1:])
        np.testing.assert_allclose(ratio(apply, params, x, y), -1.0, atol=1e-8)
    far = x.at[0:2].set(jnp.array([8.0, -6.0]))
    assert abs(ratio(apply, params, x, far)) < 1e-6


def test_model_without_carried_parameters():
    """P = 0 (e.g. a trap at fixed omega): FiLM and the router fall back to learned constants."""
    hilbert = ElectronHilbert(2, 1, None, ())
    model = make_qernel(TINY, hilbert)
    x = jax.random.normal(jax.random.PRNGKey(0), (3, 6))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    assert "qernel/block_0/moe" in params and "router_bias" in params["qernel/block_0/moe"]
    assert np.all(np.isfinite(jax.jit(model.apply)(params, None, x)))
    with pytest.raises(ValueError, match="parameter_scale"):
        make_qernel(TINY, ElectronHilbert(2, 1, CELL, ("V",)), parameter_scale=[0.0])


# -- conditioning ---------------------------------------------------------------------------------------
@SETTINGS
@given(seed=seeds, V1=st.floats(0.0, 40.0), V2=st.floats(0.0, 40.0))
def test_film_identity_at_init_then_conditions(seed, V1, V2):
    """At init FiLM is the identity, so a model whose only p-dependence is FiLM (dense FFN) gives the
    same psi for every V; once the FiLM heads are non-zero, different V give different psi."""
    config = TINY.replace(num_experts=1, top_k=1)
    apply, params, hilbert = build(2, 1, config, at_init=True)
    x = sample(hilbert, seed, V1)
    y = x.at[-1].set(V2)
    assert complex(apply(params, None, x)) == complex(apply(params, None, y))
    if abs(V1 - V2) > 1.0:
        keys = iter(jax.random.split(jax.random.PRNGKey(seed), 100))
        perturbed = {
            name: (
                {k: 0.3 * jax.random.normal(next(keys), w.shape) for k, w in leaves.items()}
                if "film_" in name and "head" in name
                else leaves
            )
            for name, leaves in params.items()
        }
        assert abs(complex(apply(perturbed, None, x) - apply(perturbed, None, y))) > 1e-4


def test_plain_transformer_baseline_sees_parameters():
    """Plain transformer: parameters concatenated to the tokens, no FiLM, dense FFN, full MHA."""
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    model = make_plain_transformer(TINY, hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    x = sample(hilbert, 0)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    names = "".join(params)
    assert "film" not in names and "router" not in names
    assert params["qernel/block_0/attention/key"]["w"].shape == params["qernel/block_0/attention/query"]["w"].shape
    apply = jax.jit(model.apply)
    assert abs(complex(apply(params, None, x) - apply(params, None, x.at[-1].set(30.0)))) > 1e-6


# -- numerics -------------------------------------------------------------------------------------------
def test_coincident_electrons():
    """Opposite spins at the same point: finite log psi and gradient (the cusp is finite). Same spins
    at the same point: psi = 0 (Pauli), i.e. log|psi| at round-off level or -inf, without NaN."""
    apply, params, hilbert = build(2, 1)
    x = sample(hilbert, 1)
    opposite = x.at[4:6].set(x[0:2])
    assert np.isfinite(complex(apply(params, None, opposite)))
    grad = jax.grad(lambda p: apply(p, None, opposite).real)(params)
    assert all(np.isfinite(leaf).all() for leaf in jax.tree_util.tree_leaves(grad))
    same = x.at[2:4].set(x[0:2])
    value = complex(apply(params, None, same))
    # psi = 0 up to round-off in the determinant (-inf if the LU pivot is exactly 0), never NaN
    assert not np.isnan(value.real) and value.real < complex(apply(params, None, x)).real - 20


def test_150_electrons_finite():
    """N = 150 (75 up, 75 down) in a 10 x 15 moiré supercell (filling 1): finite log psi and
    finite parameter gradient (tiny width to stay fast)."""
    dtype = "float64"
    cell = triangular_lattice(1.0).supercell([[10, 0], [0, 15]])
    hilbert = ElectronHilbert(75, 75, cell, ("V",))
    config = QERNELConfig(n_layers=1, width=8, num_heads=2, num_kv_heads=1, ffn_hidden=8, num_experts=2,
                          top_k=1, n_determinants=2, film_hidden=4, jastrow_smooth=2, dtype=dtype)
    model = make_qernel(config, hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    positions = cell.to_cartesian(jax.random.uniform(jax.random.PRNGKey(0), (2, 150, 2)))
    x = join_sample(positions, jnp.array([[5.0], [25.0]]))
    params = jax.jit(model.init)(jax.random.PRNGKey(1), x)

    def value_and_grad(p, x):
        log_psi, pullback = jax.vjp(lambda p: model.apply(p, None, x), p)
        return log_psi, pullback(jnp.ones_like(log_psi))[0]

    log_psi, grad = jax.jit(value_and_grad)(params, x)
    assert log_psi.dtype == (jnp.complex64 if dtype == "float32" else jnp.complex128)
    assert np.all(np.isfinite(log_psi))
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grad))


def test_float32_agrees_with_float64():
    """The same weights in float32 and float64 give the same log psi to float32 accuracy."""
    apply64, params, hilbert = build(2, 1)
    model32 = make_qernel(TINY.replace(dtype="float32"), hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    params32 = jax.tree_util.tree_map(lambda w: w.astype(jnp.float32), params)
    x = sample(hilbert, 5, batch=(4,))
    out32 = jax.jit(model32.apply)(params32, None, x)
    assert out32.dtype == jnp.complex64
    out64 = apply64(params, None, x)
    np.testing.assert_allclose(out32.real, out64.real, atol=2e-3)
    np.testing.assert_allclose(np.exp(1j * (out32.imag - out64.imag)), 1.0, atol=2e-3)


@SETTINGS
@given(seed=seeds)
def test_batched_equals_per_sample(seed):
    """A batch, jax.vmap over samples and one-by-one evaluation agree; leading shapes are kept."""
    batch = 4
    apply, params, hilbert = build(2, 1)
    x = sample(hilbert, seed, batch=(batch,)).at[:, -1].set(jnp.linspace(0.0, 40.0, batch))
    batched = apply(params, None, x)
    vmapped = jax.vmap(lambda xi: apply(params, None, xi))(x)
    single = np.array([complex(apply(params, None, xi)) for xi in x])
    np.testing.assert_allclose(batched, single, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(vmapped, single, rtol=1e-10, atol=1e-10)
    assert apply(params, None, x.reshape(batch, 1, -1)).shape == (batch, 1)


# -- smoothness and the local energy --------------------------------------------------------------------
def local_kinetic(apply, params, n_electrons):
    """E_kin(x) = -1/2 [lap log psi + (grad log psi)^2] over the electron coordinates (folx)."""

    def single(x):
        n = 2 * n_electrons
        of_positions = lambda r: apply(params, None, jnp.concatenate([r, x[n:]]))  # noqa: E731
        result = folx.forward_laplacian(of_positions, sparsity_threshold=0)(x[:n])
        g = result.jacobian.dense_array
        return -0.5 * (result.laplacian + jnp.sum(g * g))

    return jax.jit(jax.vmap(single))


def test_folx_laplacian_equals_hessian_trace():
    """folx's forward Laplacian of the model equals the trace of jax.hessian (exact second derivatives)."""
    apply, params, hilbert = build(1, 1, SMALL)
    x = sample(hilbert, 2)
    n = 2 * hilbert.n_electrons

    def parts(r):  # real and imaginary part in one function: one Hessian compilation
        value = apply(params, None, jnp.concatenate([r, x[n:]]))
        return jnp.stack([value.real, value.imag])

    hessian = jax.hessian(parts)(x[:n])  # (2, 2N, 2N)
    exact = jnp.trace(hessian[0]) + 1j * jnp.trace(hessian[1])
    of_positions = lambda r: apply(params, None, jnp.concatenate([r, x[n:]]))  # noqa: E731
    lap = folx.forward_laplacian(of_positions, sparsity_threshold=0)(x[:n]).laplacian
    np.testing.assert_allclose(lap, exact, rtol=1e-8)


def max_jump(values):
    d = np.diff(np.asarray(values))
    if np.iscomplexobj(d):  # compare phases modulo 2 pi
        d = d.real + 1j * np.angle(np.exp(1j * d.imag))
    return float(np.max(np.abs(d)))


def refinement_ratio(fn, n_points):
    """max |f(t_{k+1}) - f(t_k)| with step 1/(2n) over the same with step 1/n on [0, 1]: ~1/2 for a
    continuous (resolved) f, ~1 where f jumps."""
    t = np.linspace(0.0, 1.0, 2 * n_points - 1)
    # chunks of <= 200 samples keep each batched LU below jaxlib's threshold for splitting it over
    # the CPU thread pool (two such split LUs were seen to deadlock jaxlib 0.10.2 on 2 cores)
    padded = np.concatenate([t, np.full(-len(t) % 200, 1.0)]).reshape(-1, 200)  # one shape: one compilation
    values = np.concatenate([np.asarray(fn(chunk)) for chunk in padded])[: len(t)]
    return max_jump(values) / max_jump(values[::2])


@pytest.mark.parametrize("routing", ["parameters", "tokens_soft"])
def test_log_psi_and_local_energy_continuous_along_electron_path(routing):
    """Move one electron across the cell. Parameter routing: gates constant in r. Token routing:
    the per-electron top expert changes along the path, gates are smooth. In both cases log psi
    and the local kinetic energy are continuous (max step shrinks ~linearly with the step)."""
    config = TINY.replace(routing=routing, num_experts=4, top_k=4 if routing == "tokens_soft" else 2)
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    model = make_qernel(config, hilbert, parameter_center=[CENTER], parameter_scale=[SCALE], with_aux=True)
    x0 = sample(hilbert, 7)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x0)
    start, end = x0[2:4], x0[2:4] + jnp.asarray(CELL.vectors[0] + 0.37 * CELL.vectors[1])

    def path(t):
        t = jnp.asarray(t)[:, None]
        return jnp.broadcast_to(x0, (len(t), x0.size)).at[:, 2:4].set(start + t * (end - start))

    # keep away from coalescence points, where the *kinetic* part alone diverges like -kappa / r
    r = np.asarray(path(np.linspace(0, 1, 500)))[:, :6].reshape(-1, 3, 2)
    gaps = CELL.minimum_image(jnp.asarray(r[:, [0, 2]] - r[:, [1]]))
    assert float(jnp.min(jnp.linalg.norm(gaps, axis=-1))) > 0.3

    apply_aux = jax.jit(model.apply)
    _, aux = apply_aux(params, None, path(np.linspace(0, 1, 200)))
    if routing == "parameters":
        assert np.ptp(np.asarray(aux["block_0"]["gates"]), axis=0).max() == 0.0
    else:
        top = np.argmax(np.asarray(aux["block_0"]["gates"])[:, 1], axis=-1)  # moving electron's top expert
        assert len(np.unique(top)) > 1, "the path must cross a routing decision"
    log_psi = lambda t: apply_aux(params, None, path(t))[0]  # noqa: E731
    assert refinement_ratio(log_psi, 1000) < 0.7
    if routing == "tokens_soft":  # (with parameter routing psi is a fixed smooth network of r)
        kinetic = local_kinetic(lambda p, _, x: model.apply(p, None, x)[0], params, hilbert.n_electrons)
        assert refinement_ratio(lambda t: kinetic(path(t)), 1000) < 0.7


def test_log_psi_and_local_energy_continuous_along_parameter_path():
    """Parameter routing crosses routing decisions as V varies (the selected experts change); with
    continuous gating log psi and the local energy are continuous in V, with the standard
    renormalised top-k they jump (so this check can fail)."""
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    x0 = sample(hilbert, 4)

    def path(t):  # V from -35 to 65 meV at fixed electron positions
        return jnp.broadcast_to(x0, (len(t), x0.size)).at[:, -1].set(-35.0 + 100.0 * jnp.asarray(t))

    ratios = {}
    for gating in ("continuous", "renormalized"):
        model = make_qernel(SMALL.replace(gating=gating), hilbert, parameter_center=[CENTER], parameter_scale=[SCALE], with_aux=True)
        params = jax.jit(model.init)(jax.random.PRNGKey(0), x0)
        apply_aux = jax.jit(model.apply)
        _, aux = apply_aux(params, None, path(np.linspace(0, 1, 200)))  # 200: the chunk size, one compilation
        selected = np.asarray(aux["block_0"]["selected"])
        assert len({tuple(s) for s in selected}) > 1, "the path must cross a routing decision"
        ratios[gating] = [refinement_ratio(lambda t: apply_aux(params, None, path(t))[0], 1000)]
        if gating == "continuous":
            kinetic = local_kinetic(lambda p, _, x: model.apply(p, None, x)[0], params, hilbert.n_electrons)
            ratios[gating].append(refinement_ratio(lambda t: kinetic(path(t)), 1000))
    assert max(ratios["continuous"]) < 0.7
    assert ratios["renormalized"][0] > 0.8


# -- the local energy at perturbed parameters (forward-Laplacian path, as in training) ----------------
@lru_cache(maxsize=None)
def moire_local_energy():
    """(jitted E_loc: (B, 2N + 1) -> (B,), hamiltonian, n_up) for a small QERNEL model at perturbed
    parameters: the moiré Hamiltonian's operator kernel that NetKet calls in training (folx forward
    Laplacian with qernel's fused rules, Ewald Coulomb, moiré potential), internal energy units."""
    ham = MoireHamiltonian(V=15.0, supercell=2, n_electrons=4, n_up=3, polarized=False)  # filling 1
    assert np.allclose(ham.supercell.vectors, CELL.vectors)
    config = SMALL.replace(cusp_coupling=ham.interaction * ham.coulomb_strength)
    model = make_qernel(config, ham.hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    params = perturbed(jax.jit(model.init)(jax.random.PRNGKey(0), sample(ham.hilbert, 0)), seed=5)
    operator = ham.operator()

    def local_energy(x):
        return operator._expect_kernel(lambda p, s: model.apply(p, None, s), params, x)

    return jax.jit(local_energy), ham, ham.n_up


def assert_same_local_energy(local_energy, x, y):
    """E_loc(x) = E_loc(y), both finite (one call on the pair: one compilation for all examples)."""
    e = np.asarray(local_energy(jnp.stack([x, y])))
    assert np.all(np.isfinite(e)), e
    np.testing.assert_allclose(e[1], e[0], rtol=1e-8, atol=1e-8)


@settings(max_examples=8, deadline=None)
@given(seed=seeds, V=st.floats(0.0, 40.0), n1=st.integers(-2, 2), n2=st.integers(-2, 2), data=st.data())
def test_local_energy_invariant_under_supercell_translation_of_one_electron(seed, V, n1, n2, data):
    """E_loc(r_i + n1 L1 + n2 L2) = E_loc(r_i): psi, the Ewald energy and the moiré potential are
    all periodic in the supercell, so the local energy is exactly periodic in each electron."""
    local_energy, ham, _ = moire_local_energy()
    i = data.draw(st.integers(0, ham.n_electrons - 1))
    x = sample(ham.hilbert, seed, V)
    shift = n1 * CELL.vectors[0] + n2 * CELL.vectors[1]
    assert_same_local_energy(local_energy, x, x.at[2 * i : 2 * i + 2].add(jnp.asarray(shift)))


@settings(max_examples=8, deadline=None)
@given(seed=seeds, V=st.floats(0.0, 40.0), data=st.data())
def test_local_energy_invariant_under_same_spin_exchange(seed, V, data):
    """Swapping two same-spin electrons flips psi's sign and leaves H psi / psi unchanged."""
    local_energy, ham, n_up = moire_local_energy()
    i, j = data.draw(st.sampled_from([(0, 1), (0, 2), (1, 2)]))  # the 3 spin-up electrons
    assert j < n_up
    x = sample(ham.hilbert, seed, V)
    r = x[:-1].reshape(-1, 2)
    y = join_sample(r.at[jnp.array([i, j])].set(r[jnp.array([j, i])]), x[-1:])
    assert_same_local_energy(local_energy, x, y)


def test_router_statistics_from_model():
    apply, params, hilbert = build(2, 1)
    model = make_qernel(TINY, hilbert, parameter_center=[CENTER], parameter_scale=[SCALE], with_aux=True)
    x = sample(hilbert, 0, batch=(6,)).at[:, -1].set(jnp.linspace(0, 40, 6))
    log_psi, aux = jax.jit(model.apply)(params, None, x)  # same parameters as the plain model
    np.testing.assert_allclose(log_psi, apply(params, None, x), rtol=1e-12)
    stats = router_statistics(aux)
    assert set(stats) == {"block_0", "block_1"}
    for s in stats.values():
        assert s["load"].shape == (TINY.num_experts,)
        np.testing.assert_allclose(jnp.sum(s["load"]), 1.0)


# -- baselines -------------------------------------------------------------------------------------------
@SETTINGS
@given(sector=st.sampled_from([(3, 0), (1, 1), (3, 4), (7, 1)]), seed=seeds)
def test_slater_jastrow_is_plane_wave_determinant_at_init(sector, seed):
    """With kappa = 0, at init the baseline equals det[exp(i k_j . r_i)] per spin over the n_sigma
    shortest supercell reciprocal vectors: the free-electron Slater determinant."""
    hilbert = ElectronHilbert(*sector, CELL, ("V",))
    model = make_slater_jastrow(SlaterJastrowConfig(cusp_coupling=0.0, n_basis=12), hilbert)
    x = sample(hilbert, seed)
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    r = np.asarray(x[:-1]).reshape(-1, 2)
    reference = 0.0
    for start, n in ((0, sector[0]), (sector[0], sector[1])):
        if n:
            k = plane_wave_kpoints(CELL, n)
            reference += np.log(complex(np.linalg.det(np.exp(1j * r[start : start + n] @ k.T))))
    value = complex(jax.jit(model.apply)(params, None, x))
    np.testing.assert_allclose(value.real, reference.real, atol=1e-9)
    np.testing.assert_allclose(np.exp(1j * (value.imag - reference.imag)), 1.0, atol=1e-9)


def test_slater_jastrow_reproduces_bloch_determinant():
    """Initialised from the exact non-interacting moiré ground state (plane-wave bands), the
    baseline equals the Bloch-orbital Slater determinant of qernel.hamiltonian.bands."""
    bands = pytest.importorskip("qernel.hamiltonian.bands")
    hilbert = ElectronHilbert(4, 1, CELL, ("V",))  # closed shells: all 4 k of the lowest band, Gamma
    ground = bands.noninteracting_ground_state(CELL, 4, 1, V=15.0, phi=45.0, m_star=0.35, a_M=8.031)
    coefficients, n_basis = bloch_coefficients({"up": ground.orbitals_up, "down": ground.orbitals_down}, CELL)
    model = make_slater_jastrow(SlaterJastrowConfig(n_basis=n_basis), hilbert, orbital_coefficients=coefficients)
    x = sample(hilbert, 7, batch=(3,))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    reference = bands.slater_log_amplitude(ground.orbitals_up, ground.orbitals_down)(x[:, :-1].reshape(3, 5, 2))
    value = jax.jit(model.apply)(params, None, x)
    np.testing.assert_allclose(value.real, reference.real, atol=1e-8)
    np.testing.assert_allclose(np.exp(1j * (value.imag - reference.imag)), 1.0, atol=1e-8)


def test_slater_jastrow_open_boundaries_real():
    """Trap: oscillator orbitals; psi is real (phase 0 or pi) and antisymmetric."""
    hilbert = ElectronHilbert(3, 1, None, ())
    model = make_slater_jastrow(SlaterJastrowConfig(cusp_coupling=1.0, complex_output=False), hilbert)
    x = jax.random.normal(jax.random.PRNGKey(0), (8,))
    params = jax.jit(model.init)(jax.random.PRNGKey(0), x)
    swapped = x.at[0:2].set(x[2:4]).at[2:4].set(x[0:2])
    apply = jax.jit(model.apply)
    a, b = complex(apply(params, None, x)), complex(apply(params, None, swapped))
    assert a.imag in (0.0, np.pi) and abs(a.real - b.real) < 1e-10 and abs(abs(a.imag - b.imag) - np.pi) < 1e-12


# -- NetKet -----------------------------------------------------------------------------------------------
def test_mcstate_with_haiku_model_evaluates_log_value_and_moire_energy():
    """nk.vqs.MCState accepts hk.transform(f) and evaluates log_value; expect() of the moiré
    Hamiltonian (forward-Laplacian kinetic + Ewald Coulomb + moiré potential) is finite."""
    moire = pytest.importorskip("qernel.hamiltonian.moire")
    sampler_mod = pytest.importorskip("qernel.sampler")
    ham = moire.MoireHamiltonian(V=15.0, supercell=2, n_electrons=3, n_up=2)
    config = SMALL.replace(cusp_coupling=ham.interaction * ham.coulomb_strength)
    model = make_qernel(config, ham.hilbert, parameter_center=[CENTER], parameter_scale=[SCALE])
    space = sampler_mod.ParameterGrid([[10.0, 20.0]], ("V",))
    sampler = sampler_mod.make_sampler(ham.hilbert, space, n_chains=4, sweep_size=2)
    vstate = nk.vqs.MCState(sampler, model=model, n_samples=16, n_discard_per_chain=2, seed=0)
    assert vstate.n_parameters == count_parameters(vstate.parameters)
    samples = vstate.samples.reshape(-1, ham.hilbert.size)
    assert np.all(np.isfinite(vstate.log_value(samples)))
    assert set(np.unique(np.asarray(samples[:, -1])).tolist()) == {10.0, 20.0}  # chains carry V
    energy = vstate.expect(ham.operator())
    assert np.isfinite(energy.mean)
