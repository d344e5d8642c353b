"""Building blocks of the QERNEL ansatz: features, FiLM, attention, MoE, orbitals, Jastrow.

References are independent implementations or exact identities, named at each test:
Haiku's own ``hk.MultiHeadAttention`` (GQA equivalences), a dense FFN (MoE with E = 1),
``numpy.argsort`` (top-k), exact lattice periodicity, and the 2D Kato cusp conditions.
"""

import qernel  # noqa: F401  (first: selects XLA's classic CPU runtime before JAX starts)
import haiku as hk
import jax
import jax.numpy as jnp
import netket  # noqa: F401  (enables float64 as in production)
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qernel.ansatz import (
    FeedForward,
    FiLM,
    FiLMEmbedding,
    GroupedQueryAttention,
    Jastrow,
    MixtureOfExperts,
    cusp_slopes,
    load_balancing_loss,
    periodic_distance,
    periodic_features,
    plane_wave_kpoints,
    real_plane_wave_basis,
    router_statistics,
    sum_determinants,
    top_k_gates,
)
from qernel.geometry.lattice import square_lattice, triangular_lattice

SETTINGS = settings(max_examples=15, deadline=None)
CELLS = [
    triangular_lattice(1.0).supercell(2),
    triangular_lattice(1.0).supercell([[2, 1], [-1, 1]]),  # sqrt(3) x sqrt(3) R30
    square_lattice(1.3).supercell([[1, 0], [1, 2]]),  # skewed choice of the same lattice
]
integers = st.integers(min_value=-3, max_value=3)


# -- features -----------------------------------------------------------------------------------
@SETTINGS
@given(cell=st.sampled_from(CELLS), seed=st.integers(0, 2**31), n1=integers, n2=integers, harmonics=st.integers(1, 3))
def test_periodic_features_are_periodic(cell, seed, n1, n2, harmonics):
    """Features depend on r only through exp(2 pi i m s): shifting by any supercell vector n1 L1 + n2 L2
    leaves them unchanged (exact lattice identity)."""
    r = jax.random.normal(jax.random.PRNGKey(seed), (5, 2)) * 3
    shift = jnp.asarray(n1 * cell.vectors[0] + n2 * cell.vectors[1])
    a = periodic_features(r, cell, harmonics)
    b = periodic_features(r + shift, cell, harmonics)
    assert a.shape == (5, 4 * harmonics)
    np.testing.assert_allclose(a, b, atol=1e-11)


@SETTINGS
@given(cell=st.sampled_from(CELLS), seed=st.integers(0, 2**31), n1=integers, n2=integers)
def test_periodic_distance_periodic_and_euclidean_at_short_range(cell, seed, n1, n2):
    """f(d) is periodic, and f(d) = |d| (1 + O(d^2)) (Cassella et al. PRL 130, 036401 (2023)),
    which is what makes the Jastrow cusp exact."""
    d = jax.random.normal(jax.random.PRNGKey(seed), (4, 2))
    shift = jnp.asarray(n1 * cell.vectors[0] + n2 * cell.vectors[1])
    np.testing.assert_allclose(periodic_distance(d, cell), periodic_distance(d + shift, cell), atol=1e-10)
    small = 1e-4 * d
    np.testing.assert_allclose(periodic_distance(small, cell), np.linalg.norm(small, axis=-1), rtol=1e-6)
    assert np.all(periodic_distance(d, cell) > 0)


@pytest.mark.parametrize("cell", CELLS)
def test_plane_wave_envelopes_are_supercell_periodic(cell):
    """k on the supercell reciprocal lattice: k . L is a multiple of 2 pi for both supercell vectors."""
    k = plane_wave_kpoints(cell, 13)
    phase = k @ cell.vectors.T / (2 * np.pi)
    np.testing.assert_allclose(phase, np.round(phase), atol=1e-10)
    norms = np.linalg.norm(k, axis=-1)
    assert np.all(np.diff(norms) >= -1e-12) and len(np.unique(np.round(k, 8), axis=0)) == 13
    g, shift = real_plane_wave_basis(cell, 7)
    assert np.allclose(g[0], 0) and shift[0] == 0 and set(np.round(shift[1:], 6)) == {0.0, round(np.pi / 2, 6)}


# -- FiLM -----------------------------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**31), n_params=st.integers(0, 3))
def test_film_is_identity_at_init_and_conditions_once_nonzero(seed, n_params):
    """FiLM(h) = (1 + dgamma) h + dbeta with zero-initialised heads: exactly h at init for any p;
    with non-zero head weights, different p give different outputs (Perez et al. 2018)."""
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    h = jax.random.normal(key1, (3, 4, 8))
    p = jax.random.normal(key2, (3, n_params))

    def f(h, p):
        return FiLM()(h, FiLMEmbedding(hidden=6)(p))

    model = hk.transform(f)
    params = model.init(key3, h, p)
    np.testing.assert_array_equal(model.apply(params, None, h, p), h)
    if n_params:
        params = jax.tree_util.tree_map(lambda w: w + 0.3 * jnp.ones_like(w), params)
        a = model.apply(params, None, h, p)
        b = model.apply(params, None, h, p + 1.0)
        assert float(jnp.max(jnp.abs(a - b))) > 1e-3


# -- attention ------------------------------------------------------------------------------------
def _tile_kv(params, heads, groups, size):
    """MHA parameters equivalent to GQA ones: repeat each key/value head for its query group."""
    out = {k: dict(v) for k, v in params.items()}
    for name in ("key", "value"):
        mod = [m for m in out if m.endswith(name)][0]
        w, b = out[mod]["w"], out[mod]["b"]
        w = jnp.repeat(w.reshape(w.shape[0], groups, size), heads // groups, axis=1).reshape(w.shape[0], -1)
        b = jnp.repeat(b.reshape(groups, size), heads // groups, axis=0).reshape(-1)
        out[mod] = {"w": w, "b": b}
    return out


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 2**31), heads_groups=st.sampled_from([(1, 1), (2, 1), (4, 4), (4, 2), (4, 1), (6, 3)]))
def test_gqa_equals_haiku_mha(seed, heads_groups):
    """GQA with num_kv_heads = num_heads equals haiku.MultiHeadAttention with the same weights;
    with fewer kv heads it equals MHA whose kv weights are repeated over each query group
    (Ainslie et al., arXiv 2305.13245, sec. 2)."""
    heads, groups = heads_groups
    size, width = 3, 12
    key1, key2 = jax.random.split(jax.random.PRNGKey(seed))
    h = jax.random.normal(key1, (2, 5, width))
    gqa = hk.transform(lambda h: GroupedQueryAttention(heads, groups, size, model_size=width, name="att")(h))
    params = gqa.init(key2, h)
    mha = hk.transform(
        lambda h: hk.MultiHeadAttention(heads, size, w_init=hk.initializers.VarianceScaling(), model_size=width, name="att")(h, h, h)
    )
    mha_params = _tile_kv(params, heads, groups, size) if groups != heads else params
    assert jax.tree_util.tree_structure(mha.init(key2, h)) == jax.tree_util.tree_structure(hk.data_structures.to_haiku_dict(mha_params))
    np.testing.assert_allclose(gqa.apply(params, None, h), mha.apply(mha_params, None, h), atol=1e-12)


@SETTINGS
@given(seed=st.integers(0, 2**31), perm_seed=st.integers(0, 2**31))
def test_gqa_is_permutation_equivariant(seed, perm_seed):
    """No positional encoding: permuting tokens permutes the outputs."""
    h = jax.random.normal(jax.random.PRNGKey(seed), (1, 7, 8))
    perm = np.random.default_rng(perm_seed).permutation(7)
    att = hk.transform(lambda h: GroupedQueryAttention(4, 2, 2)(h))
    params = att.init(jax.random.PRNGKey(1), h)
    np.testing.assert_allclose(att.apply(params, None, h)[:, perm], att.apply(params, None, h[:, perm]), atol=1e-12)


# -- mixture of experts ---------------------------------------------------------------------------
@SETTINGS
@given(seed=st.integers(0, 2**31), n_params=st.integers(0, 2))
def test_moe_with_one_expert_equals_dense_ffn(seed, n_params):
    """E = 1: the single expert with gate 1 is exactly a dense FFN with the same weights."""
    key1, key2, key3 = jax.random.split(jax.random.PRNGKey(seed), 3)
    h = jax.random.normal(key1, (3, 4, 6))
    p = jax.random.normal(key2, (3, n_params))
    moe = hk.transform(lambda h, p: MixtureOfExperts(1, 1, 10)(h, p)[0])
    params = moe.init(key3, h, p)
    w = params["mixture_of_experts"]
    ffn = hk.transform(lambda h: FeedForward(10)(h))
    ffn_params = {
        "feed_forward/linear_1": {"w": w["w1"][0], "b": w["b1"][0]},
        "feed_forward/linear_2": {"w": w["w2"][0], "b": w["b2"][0]},
    }
    np.testing.assert_array_equal(moe.apply(params, None, h, p), ffn.apply(ffn_params, None, h))


@SETTINGS
@given(
    logits=st.lists(st.floats(-5, 5, allow_nan=False), min_size=2, max_size=8, unique=True),
    k_fraction=st.floats(0, 1),
    gating=st.sampled_from(["continuous", "renormalized"]),
)
def test_top_k_picks_the_k_largest_logits(logits, k_fraction, gating):
    """Indices = the k largest logits (reference: numpy argsort); gates are >= 0, the
    renormalised ones are softmax over the chosen k and sum to 1, the continuous ones never exceed them."""
    logits = np.asarray(logits)
    k = 1 + int(k_fraction * (len(logits) - 1))
    gates, idx = top_k_gates(jnp.asarray(logits), k, gating)
    assert set(np.asarray(idx).tolist()) == set(np.argsort(-logits)[:k].tolist())
    chosen = logits[np.asarray(idx)]
    reference = np.exp(chosen - chosen.max()) / np.exp(chosen - chosen.max()).sum()
    assert np.all(np.asarray(gates) >= 0)
    if gating == "renormalized" or k == len(logits):
        np.testing.assert_allclose(gates, reference, rtol=1e-12)
    else:
        assert np.all(np.asarray(gates) <= reference + 1e-12)


def test_continuous_gates_are_continuous_where_the_top_k_set_changes():
    """Along a logit path where the 2nd and 3rd experts swap, continuous gates change by O(step)
    (the leaving expert's gate goes to 0) while renormalised gates jump (so the check can fail)."""
    t = jnp.linspace(-1.0, 1.0, 2001)
    logits = jnp.stack([jnp.full_like(t, 2.0), t, -t, jnp.full_like(t, -3.0)], axis=-1)

    def dense(gates, idx):
        return jnp.einsum("tk,tke->te", gates, jax.nn.one_hot(idx, 4))

    jumps = {}
    for gating in ("continuous", "renormalized"):
        g = dense(*top_k_gates(logits, 2, gating))
        jumps[gating] = float(jnp.max(jnp.abs(jnp.diff(g, axis=0))))
    assert jumps["continuous"] < 5e-3
    assert jumps["renormalized"] > 0.1


def test_router_statistics_and_balancing_loss():
    """Load sums to 1 and counts selections; uniform routing gives the minimal Switch loss 1
    (Fedus et al., JMLR 23 (2022) eq. 4)."""
    h = jnp.ones((4, 3, 5))
    p = jnp.linspace(-2, 2, 4)[:, None]
    moe = hk.transform(lambda h, p: MixtureOfExperts(4, 2, 6)(h, p))
    params = moe.init(jax.random.PRNGKey(0), h, p)
    _, aux = moe.apply(params, None, h, p)
    stats = router_statistics(aux)["moe"]
    np.testing.assert_allclose(jnp.sum(stats["load"]), 1.0)
    np.testing.assert_allclose(stats["load"], jnp.sum(aux["selected"], 0) / 8)
    np.testing.assert_allclose(jnp.sum(stats["probability"]), 1.0)
    uniform = {"probs": jnp.full((4, 4), 0.25), "gates": jnp.full((4, 4), 0.25), "selected": jnp.ones((4, 4))}
    np.testing.assert_allclose(load_balancing_loss(uniform), 1.0)


@pytest.mark.parametrize("dispatch", ["gather", "dense"])
def test_moe_parameter_routing_matches_dense_evaluation_of_selected_experts(dispatch):
    """Both dispatch modes equal sum_e gate_e * expert_e(h) written out over all experts."""
    key1, key2 = jax.random.split(jax.random.PRNGKey(3))
    h = jax.random.normal(key1, (5, 3, 4))
    p = jax.random.normal(key2, (5, 1))
    moe = hk.transform(lambda h, p: MixtureOfExperts(6, 2, 7, dispatch=dispatch)(h, p))
    params = moe.init(jax.random.PRNGKey(0), h, p)
    out, aux = moe.apply(params, None, h, p)
    w = params["mixture_of_experts"]
    experts = jax.nn.gelu(jnp.einsum("bnd,edf->benf", h, w["w1"]) + w["b1"][:, None]) @ w["w2"] + w["b2"][:, None]
    np.testing.assert_allclose(out, jnp.einsum("benf,be->bnf", experts, aux["gates"]), atol=1e-12)
    assert np.all(np.asarray(aux["selected"]).sum(-1) == 2)


def test_moe_validates_arguments():
    with pytest.raises(ValueError, match="top_k"):
        hk.transform(lambda h: MixtureOfExperts(2, 3, 4)(h)).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 3)))
    with pytest.raises(ValueError, match="tokens_soft"):
        MixtureOfExperts  # noqa: B018
        hk.transform(lambda h: MixtureOfExperts(4, 2, 4, routing="tokens_soft")(h)).init(
            jax.random.PRNGKey(0), jnp.ones((1, 2, 3))
        )
    with pytest.raises(ValueError, match="num_kv_heads"):
        hk.transform(lambda h: GroupedQueryAttention(4, 3, 2)(h)).init(jax.random.PRNGKey(0), jnp.ones((1, 2, 3)))


# -- determinants -------------------------------------------------------------------------------------
@settings(max_examples=8, deadline=None)
@given(seed=st.integers(0, 2**31), n=st.sampled_from([1, 4]), k=st.sampled_from([1, 3]), use_complex=st.booleans())
def test_sum_determinants_matches_direct_sum(seed, n, k, use_complex):
    """exp(shift) * total = sum_d det(A_d) det(B_d) (reference: numpy.linalg.det)."""
    keys = jax.random.split(jax.random.PRNGKey(seed), 4)
    a = jax.random.normal(keys[0], (2, k, n, n))
    b = jax.random.normal(keys[1], (2, k, n + 1, n + 1))
    if use_complex:
        a = a + 1j * jax.random.normal(keys[2], a.shape)
        b = b + 1j * jax.random.normal(keys[3], b.shape)
    shift, total = sum_determinants([a, b])
    reference = np.sum(np.linalg.det(np.asarray(a)) * np.linalg.det(np.asarray(b)), axis=-1)
    np.testing.assert_allclose(np.exp(shift) * total, reference, rtol=1e-9)


def test_sum_determinants_is_stable_for_150_electrons():
    """75 x 75 determinants whose values over/underflow float64 (|det| ~ 1e+-400) combine without
    inf/NaN; log|psi| agrees with the sum of slogdets."""
    a = jax.random.normal(jax.random.PRNGKey(0), (1, 2, 75, 75)) * 1e5
    b = jax.random.normal(jax.random.PRNGKey(1), (1, 2, 75, 75)) * 1e-5
    shift, total = sum_determinants([a, b])
    assert np.isfinite(shift).all() and np.isfinite(total).all()
    la = np.linalg.slogdet(np.asarray(a))[1] + np.linalg.slogdet(np.asarray(b))[1]
    assert abs(float(shift[0] + jnp.log(jnp.abs(total[0]))) - la.max()) < np.log(2) + 1e-6


def test_sum_determinants_vanishing_gives_minus_inf_without_nan():
    a = jnp.ones((1, 2, 3, 3))  # rank 1: all determinants 0
    shift, total = sum_determinants([a])
    assert float(total[0]) == 0.0 and np.isfinite(shift).all()


# -- Jastrow ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("periodic", [True, False])
@pytest.mark.parametrize("coupling", [1.0, 2.5])
def test_jastrow_has_the_2d_cusps(periodic, coupling):
    """dJ/dr at r -> 0 equals kappa (antiparallel) and kappa / 3 (parallel) in 2D
    (Kato cusp in d dimensions: 1/(d-1) and 1/(d+1); Rajagopal & Kimball PRB 15, 2819 (1977))."""
    cell = triangular_lattice(1.0).supercell(3) if periodic else None
    base = jnp.array([[0.3, 0.4], [1.1, 0.2], [0.5, 1.4]])  # electrons 0, 1 up; 2 down
    jastrow = hk.transform(lambda r: Jastrow(2, 1, cell, cusp_coupling=coupling)(r))
    params = jastrow.init(jax.random.PRNGKey(0), base[None])
    # random non-zero smooth part so the test covers the full Jastrow
    params = jax.tree_util.tree_map(lambda w: w + 0.1, params)
    direction = jnp.array([0.6, 0.8])

    def along(partner, t):
        r = base.at[partner].set(base[0] + t * direction)
        return jastrow.apply(params, None, r[None])[0]

    h = 1e-5
    parallel, antiparallel = cusp_slopes(coupling)
    for partner, expected in ((1, parallel), (2, antiparallel)):
        # u(|t|) = c |t| + O(t^2): the symmetric second difference isolates the kink c; the smooth
        # pair terms with the third electron cancel
        kink = (along(partner, h) + along(partner, -h) - 2 * along(partner, 0.0)) / (2 * h)
        np.testing.assert_allclose(kink, expected, rtol=1e-3)
    assert np.isfinite(float(along(2, 0.0)))


def test_jastrow_symmetric_and_periodic():
    cell = triangular_lattice(1.0).supercell(2)
    r = jax.random.uniform(jax.random.PRNGKey(0), (1, 4, 2)) * 2
    jastrow = hk.transform(lambda r: Jastrow(3, 1, cell, cusp_coupling=1.0)(r))
    params = jax.tree_util.tree_map(lambda w: w + 0.2, jastrow.init(jax.random.PRNGKey(0), r))
    j0 = jastrow.apply(params, None, r)
    np.testing.assert_allclose(jastrow.apply(params, None, r[:, [1, 0, 2, 3]]), j0, rtol=1e-12)
    shifted = r.at[0, 2].add(jnp.asarray(cell.vectors[0] - cell.vectors[1]))
    np.testing.assert_allclose(jastrow.apply(params, None, shifted), j0, rtol=1e-10)
