"""Kinetic and potential operators on analytic wavefunctions with exactly known local energies."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netket as nk  # noqa: F401  (enables float64)
from qernel.geometry.hilbert import ElectronHilbert, join_sample
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian.operators import KineticEnergy, LocalEnergy, local_kinetic_energy
from qernel.hamiltonian.trap import HarmonicTrap

from _perturb import perturbed

SUPERCELL = triangular_lattice(1.0).supercell([[2, 1], [-1, 1]])  # sqrt3 x sqrt3, non-rectangular


def _plane_wave_logpsi(k_vectors):
    """log psi = i sum_j k_j . r_j, a product of plane waves; k_j (N, 2)."""
    k = jnp.asarray(k_vectors)
    n = k.shape[0]

    def logpsi(params, x):
        positions = x[..., : 2 * n].reshape(*x.shape[:-1], n, 2)
        return 1j * jnp.sum(positions * k, axis=(-1, -2)) * params["scale"]

    return logpsi


@settings(max_examples=15, deadline=None)
@given(
    st.lists(st.tuples(st.integers(-3, 3), st.integers(-3, 3)), min_size=1, max_size=4),
    st.floats(-20.0, 20.0),
    st.integers(0, 2**31 - 1),
)
def test_plane_wave_kinetic_energy_is_exact(integers, carried_value, seed):
    """exp(i k.r) with k on the supercell reciprocal lattice: E_kin = sum_j |k_j|^2 / 2 exactly."""
    k = np.asarray(integers, dtype=float) @ SUPERCELL.reciprocal_vectors
    n = len(integers)
    hilbert = ElectronHilbert(n, 0, SUPERCELL, ("V",))
    positions = jax.random.uniform(jax.random.PRNGKey(seed), (3, n, 2)) * 2.0
    x = join_sample(positions, jnp.full((3, 1), carried_value))
    values = KineticEnergy(hilbert)._expect_kernel(_plane_wave_logpsi(k), {"scale": 1.0}, x)
    np.testing.assert_allclose(values, 0.5 * np.sum(k**2), rtol=1e-10, atol=1e-10)


@settings(max_examples=15, deadline=None)
@given(st.floats(0.2, 3.0), st.integers(1, 5), st.integers(0, 2**31 - 1))
def test_gaussian_kinetic_energy_is_exact(a, n, seed):
    """psi = exp(-a sum r^2 / 2) in 2D: E_kin = sum_i (a - a^2 r_i^2 / 2) (analytic)."""
    hilbert = ElectronHilbert(n, 0, None, ("omega",))

    def logpsi(params, x):
        r = x[..., : 2 * n]
        # the carried parameter enters log psi but must not be differentiated by the operator
        return -0.5 * params * jnp.sum(r**2, axis=-1) + x[..., -1] ** 3

    positions = jax.random.normal(jax.random.PRNGKey(seed), (4, n, 2))
    x = join_sample(positions, jnp.full((4, 1), 0.7))
    values = KineticEnergy(hilbert)._expect_kernel(logpsi, a, x)
    expected = np.sum(a - 0.5 * a**2 * np.sum(np.asarray(positions) ** 2, axis=-1), axis=-1)
    np.testing.assert_allclose(values, expected, rtol=1e-10)
    # single-sample call (as NetKet's chunked expect does)
    np.testing.assert_allclose(KineticEnergy(hilbert)._expect_kernel(logpsi, a, x[0]), expected[0], rtol=1e-10)


def test_kinetic_matches_hessian_trace_for_complex_generic_function():
    """Forward Laplacian equals -1/2 (tr Hess + grad^2) by jax.hessian for a generic complex log psi."""
    n = 3

    def logpsi(params, x):
        r = x[..., : 2 * n]
        return jnp.sum(jnp.sin(r * params) ** 2, axis=-1) + 1j * jnp.cos(jnp.sum(r, -1)) * x[..., -1]

    x = jnp.array([0.1, 0.5, -0.3, 1.2, 0.7, -0.9, 2.0])

    def f(r):
        return logpsi(1.3, jnp.concatenate([r, x[6:]]))

    r = x[:6]
    lap = jnp.trace(jax.hessian(lambda r: f(r).real)(r)) + 1j * jnp.trace(jax.hessian(lambda r: f(r).imag)(r))
    grad = jax.grad(lambda r: f(r).real)(r) + 1j * jax.grad(lambda r: f(r).imag)(r)
    expected = -0.5 * (lap + jnp.sum(grad**2))
    np.testing.assert_allclose(local_kinetic_energy(logpsi, 1.3, x, n), expected, rtol=1e-12)


def _taut_logpsi(params, x):
    """Exact 2-electron singlet at omega = 1 in 2D: psi = (1 + r12) exp(-(r1^2 + r2^2)/2), E = 3 Ha."""
    r1, r2 = x[..., 0:2], x[..., 2:4]
    r12 = jnp.linalg.norm(r1 - r2, axis=-1)
    return jnp.log1p(r12) - 0.5 * (jnp.sum(r1**2, -1) + jnp.sum(r2**2, -1))


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_taut_two_electron_trap_state_has_constant_local_energy(seed):
    """Taut, J. Phys. A 27, 1045 (1994): at omega = 1 the 2D two-electron singlet is
    (1 + r12) exp(-(r1^2 + r2^2)/2) with E = omega + 2 = 3 Ha exactly."""
    ham = HarmonicTrap(2, omega=1.0)
    positions = jax.random.normal(jax.random.PRNGKey(seed), (8, 2, 2)) * 1.5
    x = join_sample(positions, jnp.zeros((8, 0)))
    values = LocalEnergy(ham)._expect_kernel(_taut_logpsi, None, x)
    np.testing.assert_allclose(values, 3.0, rtol=1e-9)


def test_taut_state_is_not_an_eigenstate_at_other_omega():
    """The same function at omega = 0.8 has a non-constant local energy (guards the test above)."""
    ham = HarmonicTrap(2, omega=0.8)
    positions = jax.random.normal(jax.random.PRNGKey(0), (8, 2, 2))
    values = LocalEnergy(ham)._expect_kernel(_taut_logpsi, None, join_sample(positions, jnp.zeros((8, 0))))
    assert np.std(np.asarray(values)) > 1e-2


def test_kinetic_rejects_foreign_hilbert():
    with pytest.raises(TypeError, match="ElectronHilbert"):
        KineticEnergy(object())


# -- fused forward-Laplacian rules (qernel/ansatz/fused.py) ----------------------------------------


def _hessian_kinetic(f, r):
    """Reference -1/2 (tr Hess + grad^2) of a real or complex scalar f(r) by jax.hessian."""
    parts = [lambda r: jnp.real(f(r)), lambda r: jnp.imag(f(r))]
    lap = sum(w * jnp.trace(jax.hessian(p)(r)) for w, p in zip((1.0, 1j), parts))
    grad = sum(w * jax.grad(p)(r) for w, p in zip((1.0, 1j), parts))
    return -0.5 * (lap + jnp.sum(grad**2))


@pytest.mark.parametrize(
    "system", [pytest.param("moire_complex", marks=pytest.mark.slow), "trap_real"]  # moiré: ~3 min of Hessian
)
def test_fused_qernel_local_kinetic_energy_matches_hessian_trace(system):
    """The forward Laplacian of the whole QERNEL model (fused GELU, attention and Jastrow-pair
    rules, the fused orbital-matrix slogdet) equals -1/2 (tr Hess + grad^2) by jax.hessian. Both spin
    channels of the Jastrow, periodic and open boundaries, complex and real orbitals."""
    from qernel.ansatz import QERNELConfig, make_qernel
    from qernel.hamiltonian import MoireHamiltonian

    config = QERNELConfig(
        n_layers=2, width=8, num_heads=2, num_kv_heads=1, num_experts=2, top_k=1, n_determinants=2,
        jastrow_smooth=2, film_hidden=4,
    )
    if system == "moire_complex":
        ham = MoireHamiltonian(supercell=[[2, 1], [-1, 1]], polarized=False)  # N = 3: 2 up, 1 down
        positions = ham.supercell.to_cartesian(jax.random.uniform(jax.random.PRNGKey(1), (2, 3, 2)))
        carried = jnp.full((2, 1), 12.0)
    else:
        ham = HarmonicTrap(3, omega=1.0)  # open boundaries: Gaussian envelopes and Jastrow basis
        config = config.replace(complex_output=False, log_abs_only=True)
        positions = jax.random.normal(jax.random.PRNGKey(1), (2, 3, 2))
        carried = jnp.zeros((2, 0))
    model = make_qernel(config, ham.hilbert)
    x = join_sample(positions, carried)
    params = perturbed(model.init(jax.random.PRNGKey(0), x[:1]), seed=2)

    def logpsi(p, s):
        return model.apply(p, None, s)

    values = KineticEnergy(ham.hilbert)._expect_kernel(logpsi, params, x)
    for xi, value in zip(x, values):
        expected = _hessian_kinetic(lambda r: logpsi(params, jnp.concatenate([r, xi[6:]])), xi[:6])
        np.testing.assert_allclose(value, expected, rtol=1e-10)


def _rule_inputs(seed, n=4):
    """Per-electron nonlinear maps r (2n,) -> q, k, v of an attention layer, plus random r."""
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    w = [jax.random.normal(k, (2, 2, 2, 3)) for k in keys[:3]]  # (coord, group, head, feature)

    def qkv(r):
        r = r.reshape(n, 2)
        q = jnp.tanh(jnp.einsum("na,agjk->ngjk", r, w[0]))  # (n, G=2, H/G=2, K=3)
        k = jnp.sin(jnp.einsum("na,agk->ngk", r, w[1][:, :, 0]))
        v = jnp.cos(jnp.einsum("na,agk->ngk", r, w[2][:, :, 0]))
        return q, k, v

    return qkv, jax.random.normal(keys[3], (2 * n,))


@pytest.mark.parametrize("dependent", ["qkv", "q", "k", "v"])
@pytest.mark.parametrize("sparsity_threshold, chunk_entries", [(0, 2**21), (6, 2**21), (0, 200)])
def test_fused_attention_rule_matches_hessian_trace(dependent, sparsity_threshold, chunk_entries, monkeypatch):
    """attention_core's closed-form rule (softmax and both contractions) equals the jax.hessian
    reference whichever of q, k, v depend on the input, for dense and sparse folx Jacobians,
    with all Jacobian rows at once and in chunks of 3 of the 8 rows (with padding)."""
    import folx

    from qernel.ansatz import fused
    from qernel.ansatz.fused import attention_core

    monkeypatch.setattr(fused, "ATTENTION_CHUNK_ENTRIES", chunk_entries)  # logits: 64 entries per row

    qkv, r0 = _rule_inputs(0)
    c = jax.random.normal(jax.random.PRNGKey(5), (4, 2, 2, 3))

    def f(r):
        q, k, v = qkv(r)
        q0, k0, v0 = qkv(r0)  # the input-independent operands at a fixed point
        q, k, v = (a if name in dependent else b for name, a, b in zip("qkv", (q, k, v), (q0, k0, v0)))
        return jnp.sum(jnp.sin(attention_core(q, k, v)) * c)

    result = folx.forward_laplacian(f, sparsity_threshold=sparsity_threshold)(r0)
    gradient = result.jacobian.dense_array
    value = -0.5 * (result.laplacian + jnp.sum(gradient * gradient))
    np.testing.assert_allclose(value, _hessian_kinetic(f, r0), rtol=1e-11)


@pytest.mark.parametrize("sparsity_threshold", [0, 6])
def test_fused_pair_sum_and_gelu_rules_match_hessian_trace(sparsity_threshold):
    """PairSum (per-pair gradient and Hessian chained with a non-trivial input Jacobian) and the
    fused GELU equal the jax.hessian reference."""
    import folx

    from qernel.ansatz.fused import PairSum, gelu

    n = 4
    i, j = np.triu_indices(n, k=1)
    scale = jnp.asarray(np.linspace(0.5, 1.5, len(i)))  # pair-dependent term

    def u(d, a):
        return scale * jnp.sin(a * d[..., 0]) * jnp.exp(-jnp.sum(d**2, axis=-1)) + d[..., 0] * d[..., 1] ** 2

    pairs = PairSum(u, n, name="test_operators_pair_sum")
    a = jnp.asarray(0.8)

    def f(r):
        positions = jnp.tanh(r).reshape(n, 2) + 0.1 * jnp.roll(r, 1).reshape(n, 2)  # mixes electrons
        return pairs(positions[None], a)[0] + jnp.sum(gelu(r * r - 0.5))

    r0 = jax.random.normal(jax.random.PRNGKey(3), (2 * n,))
    result = folx.forward_laplacian(f, sparsity_threshold=sparsity_threshold)(r0)
    gradient = result.jacobian.dense_array
    value = -0.5 * (result.laplacian + jnp.sum(gradient * gradient))
    np.testing.assert_allclose(value, _hessian_kinetic(f, r0), rtol=1e-11)
    # the plain function is the pair sum itself
    positions = r0.reshape(n, 2)
    expected = jnp.sum(u(positions[i] - positions[j], a))
    np.testing.assert_allclose(pairs(positions[None], a)[0], expected, rtol=1e-14)


@pytest.mark.parametrize("envelope", ["plane_wave_complex", "gaussian_real", "none_real"])
@pytest.mark.parametrize("sparsity_threshold, chunk_entries", [(0, 2**20), (6, 2**20), (0, 40)])
def test_fused_orbital_slogdet_rule_matches_hessian_trace(envelope, sparsity_threshold, chunk_entries, monkeypatch):
    """The closed-form rule of the fused orbital matrix + slogdet (two row groups, as a full
    determinant of 2 up + 2 down electrons; K = 2) gives log|det| and the phase with the
    gradient and Laplacian of the jax.hessian reference, whole or chunked over Jacobian rows,
    for dense and sparse folx Jacobians."""
    import folx

    from qernel.ansatz import fused_determinant

    monkeypatch.setattr(fused_determinant, "CHUNK_ENTRIES", chunk_entries)
    n, d, k = 4, 3, 2
    keys = jax.random.split(jax.random.PRNGKey(7), 6)
    mix = jax.random.normal(keys[0], (2, d))
    r0 = jax.random.normal(keys[1], (2 * n,))
    complex_output = envelope.endswith("complex")
    dtype = jnp.complex128 if complex_output else jnp.float64
    w = jax.random.normal(keys[2], (2, d, k * n)) + (1j * jax.random.normal(keys[3], (2, d, k * n)) if complex_output else 0)
    b = jax.random.normal(keys[4], (2, k * n)).astype(dtype)
    kind = envelope.rsplit("_", 1)[0]
    params = []
    if kind == "plane_wave":
        kpts = np.array([[0.0, 0.0], [1.0, 0.3], [-0.4, 0.9], [0.7, -0.8]])
        extra = (tuple(kpts.ravel().tolist()), (0.0,) * n, True)
    elif kind == "gaussian":
        extra = 1.3
        params = [jax.nn.softplus(jax.random.normal(keys[5], (k, n, n)))]
    else:
        extra = None
    op = fused_determinant.orbital_slogdet(kind, (2, 2), k, extra)
    calls = []
    monkeypatch.setattr(op, "_rule", lambda *args, rule=op._rule: calls.append(1) or rule(*args))

    def features(r):  # (1, n, D): every h_i depends on all electrons
        r = r.reshape(1, n, 2)
        return jnp.tanh(r @ mix + jnp.sum(jnp.sin(r), axis=1, keepdims=True) @ mix)

    def log_det(r):  # complex log det (K,)
        sign, logabs = op(features(r), r.reshape(1, n, 2), w, b, *params)
        return (logabs + jnp.log(sign.astype(jnp.result_type(sign, 1j))))[0]

    def plain(r):  # the same with folx's own slogdet of the explicit matrix
        sign, logabs = op._plain(features(r), r.reshape(1, n, 2), w, b, *params)
        return logabs[0], sign[0]

    sign, logabs = folx.forward_laplacian(lambda r: op(features(r), r.reshape(1, n, 2), w, b, *params),
                                          sparsity_threshold=sparsity_threshold)(r0)
    assert calls, "folx did not call the fused rule"
    np.testing.assert_allclose(logabs.x[0], plain(r0)[0], rtol=1e-12)
    parts = [lambda r: jnp.real(log_det(r)), lambda r: jnp.imag(log_det(r))]
    for i in range(k):
        lap = [jnp.trace(jax.hessian(lambda r: p(r)[i])(r0)) for p in parts]
        grad = [jax.grad(lambda r: p(r)[i])(r0) for p in parts]
        np.testing.assert_allclose(logabs.jacobian.dense_array[:, 0, i], grad[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(logabs.laplacian[0, i], lap[0], rtol=1e-10)
        if complex_output:  # d sign = i sign d phase; lap sign = sign (i lap phase - |d phase|^2)
            s = sign.x[0, i]
            np.testing.assert_allclose(sign.jacobian.dense_array[:, 0, i], 1j * s * grad[1], rtol=1e-10, atol=1e-12)
            expected = s * (1j * lap[1] - jnp.sum(grad[1] ** 2))
            np.testing.assert_allclose(sign.laplacian[0, i], expected, rtol=1e-10)
