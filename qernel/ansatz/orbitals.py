"""Generalized orbitals, envelopes and the stable multi-determinant combination.

For determinant ``d`` and spin ``sigma`` the orbital matrix is

    Phi^sigma_d[i, j] = f^sigma_{d j}(h_i) * e^sigma_{d j}(r_i),   i, j = 1..n_sigma,

with ``h_i`` the final transformer feature of electron ``i`` (so the orbital of electron i
depends on all electrons: generalized/backflow orbitals), ``f`` a linear map (complex: real and
imaginary part) and ``e`` an envelope respecting the boundary conditions:

* periodic cell, complex output: plane waves ``exp(i k_j . r)`` at the ``n_sigma`` shortest
  supercell reciprocal-lattice vectors (the free-electron Fermi sea; every such k makes the
  envelope supercell-periodic), optionally shifted by a twist ``k_s`` (then psi picks up
  ``exp(i k_s . L)`` under a supercell translation L);
* periodic cell, real output: the real plane waves ``1, cos(G.r), sin(G.r)`` in order of |G|;
* open boundaries (trap): Gaussians ``exp(-alpha_dj |r|^2 / l^2)`` with learnable
  ``alpha > 0`` (``alpha = 1/2`` at init: the oscillator ground state for ``l = 1/sqrt(omega)``).

Initialisation (``init``): ``"random"`` (default) starts ``f`` as a plain ``hk.Linear`` (weights
~ 1/sqrt(D), bias 0), far from any physical state; ``"plane_waves"`` (periodic cells) starts the
real part's bias at 1 on each spin's own columns (0 on the other spin's columns of a full
determinant) and the weights at a tenth of that scale, so every determinant starts within ~10 %
of the free-electron Fermi-sea determinant of the envelope's plane waves: the exact
non-interacting ground state at V = 0 and a reference-close start (whose energy is that of the
uniform Hartree-Fock-like plane-wave state) at V > 0.

``psi = sum_d prod_sigma det Phi^sigma_d`` is evaluated with ``slogdet`` and a log-sum-exp
over determinants that carries signs (real) or phases (complex), so it is stable for 150
electrons. A spin with ``n_sigma = 0`` contributes the factor 1.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from qernel._deprecation import positional_deprecated
from qernel.geometry.lattice import Supercell

from .fused_determinant import orbital_slogdet

__all__ = [
    "reciprocal_lattice_vectors",
    "plane_wave_kpoints",
    "real_plane_wave_basis",
    "plane_wave_columns",
    "PlaneWaveEnvelope",
    "GaussianEnvelope",
    "Orbitals",
    "sum_determinants",
    "combine_slogdets",
    "log_psi_from_orbitals",
    "log_psi_from_slogdets",
]


def reciprocal_lattice_vectors(supercell: Supercell, n: int) -> np.ndarray:
    """At least the ``n`` shortest supercell reciprocal-lattice vectors, all complete shells
    up to the ``n``-th one, sorted by (|G|, polar angle in [0, 2 pi)); shape (M >= n, 2)."""
    if n < 1:
        raise ValueError(f"number of reciprocal vectors n must be >= 1, got {n}")
    basis = supercell.reciprocal_vectors
    area = abs(np.linalg.det(basis))
    # distance between opposite sides of the reciprocal cell: box |n_i| <= m covers radius m * h
    height = area / np.max(np.linalg.norm(basis, axis=1))
    m = int(np.ceil(np.sqrt(n))) + 1
    while True:
        ns = np.arange(-m, m + 1)
        grid = np.stack(np.meshgrid(ns, ns, indexing="ij"), -1).reshape(-1, 2) @ basis
        norms = np.linalg.norm(grid, axis=1)
        radius = np.sort(norms)[n - 1]
        if radius < m * height * (1 - 1e-9):
            break
        m *= 2
    angles = np.mod(np.arctan2(grid[:, 1], grid[:, 0]), 2 * np.pi)
    scale = np.max(norms)
    keep = norms <= radius * (1 + 1e-9) + 1e-12 * scale
    grid, norms, angles = grid[keep], norms[keep], angles[keep]
    order = np.lexsort((np.round(angles, 9), np.round(norms / scale, 9)))
    return grid[order]


def plane_wave_kpoints(supercell: Supercell, n: int, twist=None) -> np.ndarray:
    """The ``n`` plane-wave wavevectors of the complex envelope, shape (n, 2).

    ``k_j = G_j + k_s``: ``G_j`` the n shortest supercell reciprocal-lattice vectors (ties broken
    by polar angle), ``k_s = twist @ reciprocal_vectors`` (twist in fractional supercell
    reciprocal units; ``None`` = periodic boundary conditions).
    """
    k = reciprocal_lattice_vectors(supercell, n)[:n].copy()
    if twist is not None:
        k = k + np.asarray(twist, dtype=float) @ supercell.reciprocal_vectors
    return k


def real_plane_wave_basis(supercell: Supercell, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Real plane waves ``cos(G_j . r - phase_j)`` (1, then cos/sin pairs by |G|); returns
    ``(G (n, 2), phase (n,))`` with phase 0 (cos) or pi/2 (sin)."""
    vectors, phases = [], []
    g = reciprocal_lattice_vectors(supercell, 2 * n + 1)
    for vector in g:
        angle = np.mod(np.arctan2(vector[1], vector[0]), 2 * np.pi)
        if np.allclose(vector, 0):
            vectors.append(vector)
            phases.append(0.0)
        elif angle < np.pi - 1e-9:  # one representative of each +-G pair
            vectors += [vector, vector]
            phases += [0.0, np.pi / 2]
    return np.array(vectors[:n]), np.array(phases[:n])


def plane_wave_columns(supercell: Supercell, n: int, complex_output: bool, twist=None):
    """Wavevectors (n, 2) and phase offsets (n,) of the plane-wave envelope columns.

    Complex: ``exp(i k_j . r)`` with :func:`plane_wave_kpoints` (phases 0); real:
    ``cos(G_j . r - phase_j)`` with :func:`real_plane_wave_basis`.
    """
    if twist is not None and not complex_output:
        raise ValueError("a twist (non-periodic boundary phase) needs complex_output=True")
    if complex_output:
        return plane_wave_kpoints(supercell, n, twist), np.zeros(n)
    return real_plane_wave_basis(supercell, n)


class PlaneWaveEnvelope(hk.Module):
    """Fixed plane-wave envelopes, positions (B, n_elec, 2) -> (B, 1, n_elec, n_col). No parameters.

    Args:
        k, phase: (n_col, 2) wavevectors and (n_col,) phase offsets (:func:`plane_wave_columns`).
        complex_output: ``exp(i (k . r))`` if True, else ``cos(k . r - phase)``.
    """

    def __init__(self, k: np.ndarray, phase: np.ndarray, complex_output: bool, name=None):
        super().__init__(name=name)
        self.k, self.phase, self.complex_output = np.asarray(k), np.asarray(phase), complex_output

    def __call__(self, positions: jnp.ndarray) -> jnp.ndarray:
        dtype = positions.dtype
        arg = positions @ jnp.asarray(self.k.T, dtype=dtype) - jnp.asarray(self.phase, dtype=dtype)
        env = jnp.exp(1j * arg) if self.complex_output else jnp.cos(arg)
        return env[:, None]


class GaussianEnvelope(hk.Module):
    """Learnable Gaussians ``exp(-alpha_dj |r_i|^2 / l^2)``, (B, n_elec, 2) -> (B, n_det, n_elec, n_col)."""

    def __init__(self, n_determinants: int, n_columns: int, length_scale: float = 1.0, name=None):
        super().__init__(name=name)
        if not length_scale > 0:
            raise ValueError(f"envelope length_scale must be > 0, got {length_scale}")
        self.shape = (n_determinants, n_columns)
        self.length_scale = float(length_scale)

    def alpha(self, dtype) -> jnp.ndarray:
        """(n_det, n_col) envelope exponents (softplus of the parameter ``alpha_raw``; 1/2 at init)."""
        raw = hk.get_parameter("alpha_raw", self.shape, dtype, init=hk.initializers.Constant(np.log(np.expm1(0.5))))
        return jax.nn.softplus(raw)

    def __call__(self, positions: jnp.ndarray) -> jnp.ndarray:
        dtype = positions.dtype
        alpha = self.alpha(dtype)
        r2 = jnp.sum(positions**2, axis=-1) / self.length_scale**2  # (B, n)
        return jnp.exp(-alpha[None, :, None, :] * r2[:, None, :, None])


class Orbitals(hk.Module):
    """Generalized orbitals: spin-block or full determinants.

    ``Orbitals(n_up, n_down, *, n_determinants, complex_output, supercell, ...)``: the arguments
    after the spin sector are keyword-only (by position: deprecated, with a warning).

    Args:
        n_up, n_down: spin sector (spin-up electrons first); either may be 0.
        n_determinants: number of determinants K >= 1.
        complex_output: complex orbitals (real and imaginary linear maps).
        supercell: periodic cell for plane-wave envelopes, or None for open boundaries.
        envelope: ``"plane_wave"`` / ``"none"`` (periodic) or ``"gaussian"`` / ``"none"`` (open).
        length_scale: Gaussian envelope length (open boundaries).
        twist: boundary twist for complex plane-wave envelopes (see :func:`plane_wave_kpoints`).
        init: ``"random"`` or ``"plane_waves"`` (see the module docstring; periodic cells with
            plane-wave envelopes only).
        full_determinant: one N x N determinant per k whose columns are the up orbitals followed
            by the down orbitals (envelope columns: the n_up then the n_down lowest plane waves),
            with separate linear maps for up and down rows (FermiNet/PeriodicWave "full det").
            It contains the spin-block product as the special case of vanishing off-diagonal
            blocks. False: ``det Phi_up * det Phi_down``.

    Call with ``h`` (B, N, D) and ``positions`` (B, N, 2); returns a list of (B, K, n, n)
    matrices (rows: electrons, columns: orbitals) whose determinants multiply: one per non-empty
    spin block, or a single N x N one for ``full_determinant``.
    """

    @positional_deprecated("n_determinants", "complex_output", "supercell", "envelope", "length_scale", "twist",
                           "full_determinant", "name")  # ``init`` is keyword-only and new: not listed
    def __init__(
        self,
        n_up: int,
        n_down: int,
        *,
        n_determinants: int,
        complex_output: bool,
        supercell: Supercell | None,
        envelope: str = "plane_wave",
        length_scale: float = 1.0,
        twist=None,
        full_determinant: bool = False,
        name=None,
        init: str = "random",
    ) -> None:
        super().__init__(name=name)
        if n_determinants < 1:
            raise ValueError(f"n_determinants must be >= 1, got {n_determinants}")
        allowed = ("plane_wave", "none") if supercell is not None else ("gaussian", "none")
        if envelope not in allowed:
            raise ValueError(
                f"envelope must be one of {allowed} for {'periodic' if supercell else 'open'} boundaries, got {envelope!r}"
            )
        if init not in ORBITAL_INITS:
            raise ValueError(f"orbital init must be one of {ORBITAL_INITS}, got {init!r}")
        if init == "plane_waves" and envelope != "plane_wave":
            raise ValueError(
                f"orbital init 'plane_waves' needs plane-wave envelopes (a periodic cell), got envelope {envelope!r}"
            )
        self.init = init
        self.n_up, self.n_down = int(n_up), int(n_down)
        self.n_determinants = int(n_determinants)
        self.complex_output = complex_output
        self.supercell = supercell
        self.envelope = envelope
        self.length_scale = length_scale
        self.twist = twist
        self.full_determinant = full_determinant

    def __call__(self, h: jnp.ndarray, positions: jnp.ndarray) -> list[jnp.ndarray]:
        spins = [(spin, start, n) for spin, start, n in (("up", 0, self.n_up), ("down", self.n_up, self.n_down)) if n]
        if not self.full_determinant:
            return [
                _orbital_matrix(self, h[:, start : start + n], positions[:, start : start + n], spin, [(spin, n)])
                for spin, start, n in spins
            ]
        columns = [(spin, n) for spin, _, n in spins]
        rows = [
            _orbital_matrix(self, h[:, start : start + n], positions[:, start : start + n], spin, columns)
            for spin, start, n in spins
        ]
        return [jnp.concatenate(rows, axis=-2)]

    @hk.name_like("__call__")  # submodules and parameters named as in __call__
    def slogdets(self, h: jnp.ndarray, positions: jnp.ndarray) -> list[tuple[jnp.ndarray, jnp.ndarray]]:
        """``(sign, log|det|)`` (B, K) of every matrix of ``__call__`` (same parameters), each from
        one fused op (:mod:`qernel.ansatz.fused_determinant`) whose folx rule never forms the
        matrix's Jacobian."""
        spins = [(spin, start, n) for spin, start, n in (("up", 0, self.n_up), ("down", self.n_up, self.n_down)) if n]
        if self.full_determinant:
            groups = [(spins, [(spin, n) for spin, _, n in spins])]
        else:
            groups = [([(spin, start, n)], [(spin, n)]) for spin, start, n in spins]
        out = []
        for rows, columns in groups:
            out.append(_fused_slogdet(self, h, positions, rows, columns))
        return out


def _fused_slogdet(module: Orbitals, h, positions, rows, columns):
    """``(sign, log|det|)`` of the orbital matrix with row groups ``rows`` and column groups ``columns``."""
    dtype = h.dtype
    k, n_cols, width = module.n_determinants, sum(n for _, n in columns), h.shape[-1]
    ws, bs, alphas = [], [], []
    for spin, _, count in rows:
        w, b = _linear_parameters(f"orbital_{spin}_real", width, k * n_cols, dtype,
                                  *_initialisers(module, spin, columns, width, "real"))
        if module.complex_output:
            w_imag, b_imag = _linear_parameters(f"orbital_{spin}_imag", width, k * n_cols, dtype,
                                                *_initialisers(module, spin, columns, width, "imag"))
            w, b = w + 1j * w_imag, b + 1j * b_imag
        ws.append(w)
        bs.append(b)
        if module.envelope == "gaussian":
            name = "envelope_" + "_".join(group for group, _ in columns)
            alpha = GaussianEnvelope(k, n_cols, module.length_scale, name=name).alpha(dtype)
            alphas.append(jnp.broadcast_to(alpha[:, None, :], (k, count, n_cols)))
    start, stop = rows[0][1], rows[-1][1] + rows[-1][2]
    row_counts = tuple(count for _, _, count in rows)
    params = []
    if module.envelope == "plane_wave":
        ks, phases = zip(*(plane_wave_columns(module.supercell, n, module.complex_output, module.twist) for _, n in columns))
        k_all, phase_all = np.concatenate(ks), np.concatenate(phases)
        extra = (tuple(k_all.ravel().tolist()), tuple(phase_all.tolist()), module.complex_output)
    elif module.envelope == "gaussian":
        extra = float(module.length_scale)
        params = [jnp.concatenate(alphas, axis=-2)]
    else:
        extra = None
    op = orbital_slogdet(module.envelope, row_counts, k, extra)
    return op(h[:, start:stop], positions[:, start:stop], jnp.stack(ws), jnp.stack(bs), *params)


class _LinearParameters(hk.Module):
    """The parameters ``w`` (D_in, D_out) and ``b`` (D_out,) of an ``hk.Linear`` of the same name
    (same initialisers, same creation order), without applying it."""

    def __call__(self, input_size: int, output_size: int, dtype, w_init=None, b_init=None):
        w_init = w_init or hk.initializers.TruncatedNormal(stddev=1.0 / np.sqrt(input_size))
        w = hk.get_parameter("w", [input_size, output_size], dtype, init=w_init)
        b = hk.get_parameter("b", [output_size], dtype, init=b_init or jnp.zeros)
        return w, b


def _linear_parameters(name: str, input_size: int, output_size: int, dtype, w_init=None, b_init=None):
    return _LinearParameters(name=name)(input_size, output_size, dtype, w_init, b_init)


#: weight scale of ``init = "plane_waves"`` relative to ``hk.Linear``'s 1/sqrt(D): small enough that
#: the start is the plane-wave determinant to ~10 %, large enough that the trunk gets gradients
PLANE_WAVE_INIT_WEIGHT_SCALE = 0.1
ORBITAL_INITS = ("random", "plane_waves")


def _initialisers(module: Orbitals, spin: str, columns: list[tuple[str, int]], input_size: int, part: str):
    """``(w_init, b_init)`` of the linear map ``orbital_<spin>_<part>`` (None: ``hk.Linear``'s own).

    ``"plane_waves"``: the real bias is 1 on the columns of the row's own spin, tiled over the K
    determinants (column index ``d * n_cols + j``), 0 elsewhere; the imaginary bias 0.
    """
    if module.init == "random":
        return None, None
    w_init = hk.initializers.TruncatedNormal(stddev=PLANE_WAVE_INIT_WEIGHT_SCALE / np.sqrt(input_size))
    if part == "imag":
        return w_init, None
    own = np.concatenate([np.full(n, 1.0 if group == spin else 0.0) for group, n in columns])
    bias = np.tile(own, module.n_determinants)

    def b_init(shape, dtype):
        return jnp.asarray(bias, dtype=dtype).reshape(shape)

    return w_init, b_init


def _orbital_matrix(module: Orbitals, h_rows, r_rows, spin: str, columns: list[tuple[str, int]]) -> jnp.ndarray:
    """(B, K, n_rows, n_cols) orbitals of the rows ``h_rows`` for the column groups ``columns``.

    A function, not a method, so that parameter names stay ``orbitals/orbital_<spin>_<part>``.
    """
    batch, n_rows = h_rows.shape[:2]
    k = module.n_determinants
    n_cols = sum(n for _, n in columns)

    def linear(part):
        w_init, b_init = _initialisers(module, spin, columns, h_rows.shape[-1], part)
        y = hk.Linear(k * n_cols, w_init=w_init, b_init=b_init, name=f"orbital_{spin}_{part}")(h_rows)  # (B, n_rows, K * n_cols)
        return jnp.moveaxis(y.reshape(batch, n_rows, k, n_cols), 2, 1)

    phi = linear("real")
    if module.complex_output:
        phi = phi + 1j * linear("imag")
    if module.envelope == "plane_wave":
        ks, phases = zip(*(plane_wave_columns(module.supercell, n, module.complex_output, module.twist) for _, n in columns))
        phi = phi * PlaneWaveEnvelope(np.concatenate(ks), np.concatenate(phases), module.complex_output)(r_rows)
    elif module.envelope == "gaussian":
        name = "envelope_" + "_".join(group for group, _ in columns)
        phi = phi * GaussianEnvelope(k, n_cols, module.length_scale, name=name)(r_rows)
    return phi


def sum_determinants(blocks: list[jnp.ndarray]):
    """``psi = exp(shift) * total`` with ``psi = sum_d prod_sigma det(blocks[sigma][:, d])``.

    Each determinant is evaluated with ``slogdet``; ``shift`` is the largest ``log|det|`` over
    determinants (held constant under differentiation, it cancels exactly), so ``total`` is O(1)
    and no overflow occurs for 150 electrons.

    Args:
        blocks: list of (B, K, n, n) real or complex orbital matrices (one per spin block).

    Returns:
        ``(shift (B,) real, total (B,) real or complex)``. Where every determinant vanishes
        exactly (two coincident same-spin electrons) ``shift = 0`` and ``total = 0``, so
        ``log|psi| = -inf`` without NaN.
    """
    return combine_slogdets([jnp.linalg.slogdet(block) for block in blocks])


def combine_slogdets(slogdets: list[tuple[jnp.ndarray, jnp.ndarray]]):
    """:func:`sum_determinants` from the ``(sign, log|det|)`` (B, K) of every block."""
    logabs, phase = 0.0, 1.0
    for s, l in slogdets:
        logabs = logabs + l
        phase = phase * s
    shift = jnp.max(logabs, axis=-1)  # (B,)
    shift = jax.lax.stop_gradient(jnp.where(jnp.isfinite(shift), shift, 0.0))
    total = jnp.sum(phase * jnp.exp(logabs - shift[:, None]), axis=-1)
    return shift, total


def log_psi_from_orbitals(blocks: list[jnp.ndarray], output: str = "complex"):
    """``log psi`` (B,) from orbital blocks.

    Args:
        blocks: see :func:`sum_determinants`.
        output: ``"complex"``: complex ``log psi = log|psi| + i arg psi`` (for real orbitals
            ``arg psi`` is 0 or pi); ``"log_abs"``: real ``log|psi|`` only.
    """
    return log_psi_from_slogdets([jnp.linalg.slogdet(block) for block in blocks], output)


def log_psi_from_slogdets(slogdets: list[tuple[jnp.ndarray, jnp.ndarray]], output: str = "complex"):
    """:func:`log_psi_from_orbitals` from the ``(sign, log|det|)`` (B, K) of every block."""
    shift, total = combine_slogdets(slogdets)
    if output == "log_abs":
        return shift + jnp.log(jnp.abs(total))
    if output != "complex":
        raise ValueError(f"output must be 'complex' or 'log_abs', got {output!r}")
    if jnp.iscomplexobj(total):
        return shift + jnp.log(total)
    # real psi: log|psi| + i pi [psi < 0]; the phase is piecewise constant (zero derivative)
    return (shift + jnp.log(jnp.abs(total))) + 1j * jnp.pi * (total < 0).astype(total.dtype)
