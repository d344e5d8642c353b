"""The QERNEL wavefunction: a FiLM-conditioned transformer over electron tokens (arXiv 2604.26018).

    x (..., 2N + P)  --split-->  positions r (B, N, 2), parameters p (B, P)
    p_hat = (p - center) / scale                                   (normalised parameters)
    tokens  = Linear([periodic or open features(r_i), spin_i (, p_hat if concat_parameters)])
    n_layers x pre-norm block: GQA attention + MoE feed-forward, FiLM(p_hat) in both halves,
            MoE routed on p_hat per walker (smooth in r) or softly per token
    LayerNorm -> generalized orbitals x envelopes -> K full (N x N) or spin-block determinants
    log psi = log sum_d det Phi_d  (+ Jastrow with the 2D cusps)

Output: ``log psi`` of shape ``x.shape[:-1]``. With ``complex_output=True`` (default) the
orbitals are complex and ``log psi`` is complex. With ``complex_output=False`` the orbitals are
real; ``log psi`` is still returned as a complex number ``log|psi| + i pi [psi < 0]`` so that
NetKet quantities that use wavefunction *ratios* (``exp(log psi(x') - log psi(x))``) see the sign;
``log_abs_only=True`` returns the real ``log|psi|`` instead, which is enough for continuous-space
VMC with real wavefunctions (sampling uses ``|psi|^2``, the local energy of ``-1/2 nabla^2 + V``
and the parameter gradient only involve derivatives of ``log|psi|`` away from the nodes) and
lets NetKet use its cheaper real-to-real mode.

NetKet: pass ``make_qernel(...)`` (an ``hk.Transformed``, *not* ``hk.without_apply_rng``) as
``model=`` to ``nk.vqs.MCState``; the model uses no randomness at apply time.
Router statistics: ``make_qernel(..., with_aux=True)`` has the same parameters and returns
``(log_psi, aux)``; reduce ``aux`` with :func:`~qernel.ansatz.moe.router_statistics`.
"""

from __future__ import annotations

import dataclasses
import warnings
from dataclasses import dataclass
from typing import Any

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from qernel._deprecation import positional_deprecated
from qernel.geometry.hilbert import ElectronHilbert
from qernel.types import ArrayLike

from .block import TransformerBlock
from .features import open_features, periodic_features, spin_features
from .film import FiLMEmbedding
from .jastrow import Jastrow
from .layer_norm import LayerNorm
from .moe import DISPATCH_MODES, GATING_MODES, ROUTING_MODES
from .orbitals import ORBITAL_INITS, Orbitals, log_psi_from_orbitals, log_psi_from_slogdets
from .spin_flip import check_spin_flip, combine_flipped, flip_spins, spin_flip_symmetric
from .system import resolve_system

__all__ = [
    "QERNEL",
    "QERNELConfig",
    "PlainTransformerConfig",
    "make_qernel",
    "make_plain_transformer",
    "count_parameters",
    "normalisation_arrays",
]

_DTYPES = {"float32": jnp.float32, "float64": jnp.float64}

#: :class:`QERNELConfig` fields that describe the Hamiltonian, not the network (deprecated: derived
#: from the Hamiltonian by :func:`make_qernel`).
PHYSICS_FIELDS = ("cusp_coupling", "length_scale")


@dataclass(frozen=True)
class QERNELConfig:
    """Hyper-parameters of the QERNEL model (defaults: PeriodicWave-sized trunk plus GQA/MoE/FiLM).

    Attributes:
        n_layers: transformer blocks (>= 1).
        width: token width D, divisible by ``num_heads``.
        num_heads: query heads H.
        num_kv_heads: key/value heads, a divisor of H (H: MHA, 1: MQA).
        ffn_hidden: hidden width of each expert / of the dense FFN (default ``4 * width``).
        num_experts: experts E (1: dense FFN).
        top_k: experts used per walker, 1 <= top_k <= E.
        routing: ``"parameters"`` (per walker on p_hat, smooth in r) or ``"tokens_soft"``
            (per electron, dense softmax gates, needs top_k == E); see :mod:`qernel.ansatz.moe`.
        gating: ``"continuous"`` (continuous in the router input) or ``"renormalized"``.
        moe_dispatch: ``"gather"`` (evaluate only the selected experts) or ``"dense"`` (all
            experts in one matmul, masked by the gates; same psi, see :mod:`qernel.ansatz.moe`).
        n_determinants: determinants K (>= 1).
        full_determinant: N x N determinants mixing spin blocks (default, as PeriodicWave and
            FermiNet) or the product of spin-block determinants (see :class:`Orbitals`).
        use_film: FiLM conditioning on p_hat in every block half.
        film_hidden, film_layers: FiLM embedding MLP.
        concat_parameters: append p_hat to every input token (the plain-transformer baseline).
        use_jastrow: multiply by the two-body Jastrow factor.
        cusp_coupling: *deprecated* (physics, not a hyper-parameter): pass the Hamiltonian to
            :func:`make_qernel`, which takes its ``cusp_coupling``. When given (>= 0) it overrides
            the Hamiltonian's value, with a ``DeprecationWarning``; None (default): derived.
        jastrow_smooth: smooth Jastrow basis functions per spin channel.
        complex_output: complex orbitals (else real orbitals, see module docstring).
        log_abs_only: with real orbitals return the real ``log|psi|``.
        dtype: ``"float32"`` or ``"float64"`` for parameters and computation.
        n_harmonics: harmonics of the periodic input features.
        envelope: ``"auto"`` (plane waves for periodic cells, Gaussians for open boundaries)
            or ``"none"``.
        length_scale: *deprecated* as ``cusp_coupling``: the Hamiltonian's ``length_scale`` (the
            length of the open-boundary features and Gaussian envelope, e.g. the oscillator length
            ``1/sqrt(omega)``; unused for periodic cells) is used unless this is given.
        twist: boundary twist (fractional supercell reciprocal units) or None (periodic).
        orbital_init: ``"random"`` (default) or ``"plane_waves"``: the orbital maps start so that
            every determinant is within ~10 % of the free-electron Fermi-sea determinant of the
            envelope's plane waves (periodic cells; see :mod:`qernel.ansatz.orbitals`).
        fused_determinant: evaluate orbital matrices and their ``slogdet`` as one op with a
            closed-form forward-Laplacian rule (same psi and parameters; False: plain
            ``slogdet``, folx traces every primitive; see :mod:`qernel.ansatz.fused_determinant`).
        spin_flip: 0 (default): no symmetrisation; +1 or -1: ``psi_s(R) = psi(R) + spin_flip *
            psi(F R)`` with ``F`` the exchange of all up and down electrons
            (:func:`~qernel.ansatz.spin_flip.spin_flip_symmetric`, same parameters, twice the cost),
            which keeps the even-S (+1, e.g. singlets) or odd-S (-1) components of an S_z = 0
            state. Needs ``n_up == n_down`` and the signed ``log psi`` (``log_abs_only=False``).
    """

    n_layers: int = 4
    width: int = 64
    num_heads: int = 4
    num_kv_heads: int = 2
    ffn_hidden: int | None = None
    num_experts: int = 8
    top_k: int = 2
    routing: str = "parameters"
    gating: str = "continuous"
    moe_dispatch: str = "gather"
    n_determinants: int = 4
    full_determinant: bool = True
    use_film: bool = True
    film_hidden: int = 32
    film_layers: int = 2
    concat_parameters: bool = False
    use_jastrow: bool = True
    cusp_coupling: float | None = None
    jastrow_smooth: int = 8
    complex_output: bool = True
    log_abs_only: bool = False
    dtype: str = "float64"
    n_harmonics: int = 1
    envelope: str = "auto"
    length_scale: float | None = None
    twist: tuple[float, float] | None = None
    fused_determinant: bool = True
    spin_flip: int = 0
    orbital_init: str = "random"

    def __post_init__(self) -> None:
        positive = ("n_layers", "width", "num_heads", "num_kv_heads", "num_experts", "top_k", "n_determinants",
                    "film_hidden", "film_layers", "n_harmonics")
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"QERNELConfig.{name} must be an integer >= 1, got {value!r}")
        if self.width % self.num_heads:
            raise ValueError(f"QERNELConfig.width={self.width} must be divisible by num_heads={self.num_heads}")
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"QERNELConfig.num_kv_heads must divide num_heads={self.num_heads}, got {self.num_kv_heads}"
            )
        if self.ffn_hidden is not None and self.ffn_hidden < 1:
            raise ValueError(f"QERNELConfig.ffn_hidden must be >= 1 or None, got {self.ffn_hidden}")
        if not self.top_k <= self.num_experts:
            raise ValueError(f"QERNELConfig.top_k must lie in [1, num_experts={self.num_experts}], got {self.top_k}")
        if self.routing not in ROUTING_MODES:
            raise ValueError(f"QERNELConfig.routing must be one of {ROUTING_MODES}, got {self.routing!r}")
        if self.routing == "tokens_soft" and self.top_k != self.num_experts:
            raise ValueError("QERNELConfig.routing='tokens_soft' evaluates all experts: set top_k = num_experts")
        if self.gating not in GATING_MODES:
            raise ValueError(f"QERNELConfig.gating must be one of {GATING_MODES}, got {self.gating!r}")
        if self.moe_dispatch not in DISPATCH_MODES:
            raise ValueError(f"QERNELConfig.moe_dispatch must be one of {DISPATCH_MODES}, got {self.moe_dispatch!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(f"QERNELConfig.dtype must be one of {tuple(_DTYPES)}, got {self.dtype!r}")
        if self.envelope not in ("auto", "none"):
            raise ValueError(f"QERNELConfig.envelope must be 'auto' or 'none', got {self.envelope!r}")
        if self.orbital_init not in ORBITAL_INITS:
            raise ValueError(f"QERNELConfig.orbital_init must be one of {ORBITAL_INITS}, got {self.orbital_init!r}")
        if self.orbital_init == "plane_waves" and self.envelope == "none":
            raise ValueError("QERNELConfig.orbital_init='plane_waves' needs the plane-wave envelope (envelope='auto')")
        if self.cusp_coupling is not None and not self.cusp_coupling >= 0:
            raise ValueError(f"QERNELConfig.cusp_coupling must be >= 0, got {self.cusp_coupling}")
        if self.jastrow_smooth < 0:
            raise ValueError(f"QERNELConfig.jastrow_smooth must be >= 0, got {self.jastrow_smooth}")
        if self.length_scale is not None and not self.length_scale > 0:
            raise ValueError(f"QERNELConfig.length_scale must be > 0, got {self.length_scale}")
        for name in PHYSICS_FIELDS:
            if getattr(self, name) is not None:
                warnings.warn(
                    f"QERNELConfig.{name} is deprecated and will be removed in the next version: pass the "
                    f"Hamiltonian to make_qernel(config, hamiltonian, parameter_space), which derives {name}",
                    DeprecationWarning, stacklevel=3,
                )
        if self.log_abs_only and self.complex_output:
            raise ValueError("QERNELConfig.log_abs_only=True needs complex_output=False (real orbitals)")
        if isinstance(self.spin_flip, bool) or self.spin_flip not in (-1, 0, 1):
            raise ValueError(f"QERNELConfig.spin_flip must be -1, 0 (off) or +1, got {self.spin_flip!r}")
        if self.spin_flip and self.log_abs_only:
            raise ValueError("QERNELConfig.spin_flip needs the signed log psi: set log_abs_only = false")
        if self.twist is not None and not self.complex_output:
            raise ValueError("QERNELConfig.twist needs complex_output=True")

    @property
    def expert_hidden(self) -> int:
        return self.ffn_hidden if self.ffn_hidden is not None else 4 * self.width

    @property
    def jnp_dtype(self):
        return _DTYPES[self.dtype]

    def replace(self, **changes) -> "QERNELConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


#: what the plain-transformer baseline fixes in a :class:`QERNELConfig` (no FiLM, no MoE, no GQA)
_PLAIN_OVERRIDES = dict(use_film=False, concat_parameters=True, num_experts=1, top_k=1, routing="parameters")


@dataclass(frozen=True)
class PlainTransformerConfig:
    """Hyper-parameters of the plain-transformer baseline (``[ansatz] kind = "plain_transformer"``).

    The QERNEL trunk without its conditioning machinery: the normalised parameters are appended to
    every input token (no FiLM), the feed-forward layer is dense (no mixture of experts) and the
    attention is full multi-head (no grouped key/value heads). So there is no FiLM, MoE or GQA
    field: a configuration that sets one (``use_film``, ``num_experts``, ``num_kv_heads``, ...) is
    rejected with the key named. The fields and their defaults are those of :class:`QERNELConfig`
    (see there): n_layers, width, num_heads, ffn_hidden (dense FFN hidden width, default
    ``4 * width``), n_determinants, full_determinant, use_jastrow, jastrow_smooth, complex_output,
    log_abs_only, dtype, n_harmonics, envelope, twist, fused_determinant, orbital_init, and the deprecated
    physics overrides cusp_coupling and length_scale.
    """

    n_layers: int = 4
    width: int = 64
    num_heads: int = 4
    ffn_hidden: int | None = None
    n_determinants: int = 4
    full_determinant: bool = True
    use_jastrow: bool = True
    cusp_coupling: float | None = None
    jastrow_smooth: int = 8
    complex_output: bool = True
    log_abs_only: bool = False
    dtype: str = "float64"
    n_harmonics: int = 1
    envelope: str = "auto"
    length_scale: float | None = None
    twist: tuple[float, float] | None = None
    fused_determinant: bool = True
    orbital_init: str = "random"

    def __post_init__(self) -> None:
        try:
            self.qernel_config()
        except ValueError as error:
            raise ValueError(str(error).replace("QERNELConfig.", "PlainTransformerConfig.")) from None
        for name in PHYSICS_FIELDS:
            if getattr(self, name) is not None:
                warnings.warn(
                    f"PlainTransformerConfig.{name} is deprecated and will be removed in the next version: pass the "
                    f"Hamiltonian to make_plain_transformer(config, hamiltonian, parameter_space), which derives {name}",
                    DeprecationWarning, stacklevel=3,
                )

    def qernel_config(self) -> QERNELConfig:
        """The equivalent :class:`QERNELConfig` (FiLM, MoE and GQA switched off)."""
        fields = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        with warnings.catch_warnings():  # the deprecated physics fields are warned about by __post_init__
            warnings.simplefilter("ignore", DeprecationWarning)
            return QERNELConfig(**fields, **_PLAIN_OVERRIDES, num_kv_heads=self.num_heads)

    def replace(self, **changes) -> "PlainTransformerConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def normalisation_arrays(hilbert: ElectronHilbert, parameter_center=None, parameter_scale=None):
    """Validated (P,) NumPy arrays ``center`` (default 0) and ``scale`` (default 1, must be > 0)."""
    n = hilbert.n_parameters
    center = np.zeros(n) if parameter_center is None else np.asarray(parameter_center, dtype=float).reshape(-1)
    scale = np.ones(n) if parameter_scale is None else np.asarray(parameter_scale, dtype=float).reshape(-1)
    for name, value in (("parameter_center", center), ("parameter_scale", scale)):
        if value.shape != (n,):
            raise ValueError(
                f"{name} must have one entry per carried parameter {hilbert.parameter_names} (P={n}), got shape {value.shape}"
            )
        if not np.all(np.isfinite(value)):
            raise ValueError(f"{name} must be finite, got {value}")
    if np.any(scale <= 0):
        raise ValueError(f"parameter_scale must be > 0 for every parameter, got {scale}")
    return center, scale


class QERNEL(hk.Module):
    """The QERNEL wavefunction as a Haiku module: ``QERNEL(config, hilbert, parameter_center=...,
    parameter_scale=...)(x)``; the arguments after ``hilbert`` are keyword-only (by position:
    deprecated, with a warning).

    Call with samples ``x`` (..., 2N + P); returns ``(log_psi (...,), aux)`` where ``aux`` maps
    ``"block_<l>"`` to the MoE router outputs of that block (see
    :func:`~qernel.ansatz.moe.router_statistics`). :func:`make_qernel` wraps it for NetKet.

    Args:
        config: hyper-parameters.
        hilbert: electrons, spin sector, cell and carried parameter names.
        parameter_center, parameter_scale: (P,) normalisation (see :func:`normalisation_arrays`).
        cusp_coupling: Coulomb coupling kappa of the Hamiltonian (internal units) for the Jastrow
            cusps; None: ``config.cusp_coupling`` if set (deprecated), else 1.0.
        length_scale: open-boundary feature and envelope length (internal units); None:
            ``config.length_scale`` if set (deprecated), else 1.0.
    """

    @positional_deprecated("parameter_center", "parameter_scale", "name")
    def __init__(
        self,
        config: QERNELConfig,
        hilbert: ElectronHilbert,
        *,
        parameter_center: ArrayLike | None = None,
        parameter_scale: ArrayLike | None = None,
        name: str | None = "qernel",
        cusp_coupling: float | None = None,
        length_scale: float | None = None,
    ) -> None:
        super().__init__(name=name)
        if not isinstance(hilbert, ElectronHilbert):
            raise TypeError(f"hilbert must be a qernel ElectronHilbert, got {type(hilbert).__name__}")
        self.config = config
        self.hilbert = hilbert
        self.center, self.scale = normalisation_arrays(hilbert, parameter_center, parameter_scale)
        self.cusp_coupling = _first_given(config.cusp_coupling, cusp_coupling, 1.0)
        self.length_scale = _first_given(config.length_scale, length_scale, 1.0)

    def __call__(self, x):
        config, hilbert = self.config, self.hilbert
        dtype = config.jnp_dtype
        n_up, n_down, n = hilbert.n_up, hilbert.n_down, hilbert.n_electrons
        x, batch_shape = hilbert.flatten(jnp.asarray(x))
        x = x.astype(dtype)
        positions, p = hilbert.split(x)
        p_hat = (p - jnp.asarray(self.center, dtype)) / jnp.asarray(self.scale, dtype)  # (B, P)
        batch = x.shape[0]

        if hilbert.is_periodic:
            features = periodic_features(positions, hilbert.supercell, config.n_harmonics)
        else:
            features = open_features(positions, self.length_scale)
        parts = [features, jnp.broadcast_to(spin_features(n_up, n_down, dtype), (batch, n, 1))]
        if config.concat_parameters:
            parts.append(jnp.broadcast_to(p_hat[:, None, :], (batch, n, p_hat.shape[-1])))
        h = hk.Linear(config.width, name="embedding")(jnp.concatenate(parts, axis=-1))  # (B, N, D)

        film = None
        if config.use_film:
            film = FiLMEmbedding(config.film_hidden, config.film_layers, name="film_embedding")(p_hat)
        aux = {}
        for layer in range(config.n_layers):
            block = TransformerBlock(
                config.num_heads,
                config.num_kv_heads,
                config.expert_hidden,
                num_experts=config.num_experts,
                top_k=config.top_k,
                routing=config.routing,
                gating=config.gating,
                use_film=config.use_film,
                dispatch=config.moe_dispatch,
                name=f"block_{layer}",
            )
            h, aux[f"block_{layer}"] = block(h, film, p_hat)
        h = LayerNorm(name="final_norm")(h)

        if config.envelope == "none":
            envelope = "none"
        else:
            envelope = "plane_wave" if hilbert.is_periodic else "gaussian"
        orbitals = Orbitals(
            n_up, n_down, n_determinants=config.n_determinants, complex_output=config.complex_output,
            supercell=hilbert.supercell, envelope=envelope, length_scale=self.length_scale, twist=config.twist,
            full_determinant=config.full_determinant, name="orbitals", init=config.orbital_init,
        )
        output = "log_abs" if config.log_abs_only else "complex"
        if config.fused_determinant:
            log_psi = log_psi_from_slogdets(orbitals.slogdets(h, positions), output)
        else:
            log_psi = log_psi_from_orbitals(orbitals(h, positions), output)
        if config.use_jastrow:
            jastrow = Jastrow(
                n_up, n_down, hilbert.supercell, cusp_coupling=self.cusp_coupling,
                length=None if hilbert.is_periodic else self.length_scale,
                n_smooth=config.jastrow_smooth, name="jastrow",
            )
            log_psi = log_psi + jastrow(positions)
        return log_psi.reshape(batch_shape), aux


def _first_given(*values):
    """The first of ``values`` that is not None (as float)."""
    return float(next(v for v in values if v is not None))


@positional_deprecated("parameter_scale", "with_aux")
def make_qernel(
    config: QERNELConfig,
    system: Any,
    parameter_space: Any = None,
    *,
    parameter_scale: ArrayLike | None = None,
    with_aux: bool = False,
    parameter_center: ArrayLike | None = None,
) -> hk.Transformed:
    """Build the QERNEL model for a Hamiltonian and the parameter space its chains carry.

    ``make_qernel(config, hamiltonian, parameter_space)`` derives everything physical from its
    arguments: the Jastrow cusps from ``hamiltonian.cusp_coupling``, the open-boundary length
    from ``hamiltonian.length_scale``, and the normalisation ``p_hat = (p - center) / scale`` of
    the carried parameters from ``parameter_space.center`` / ``.scale`` (so a model rebuilt from
    a checkpoint's parameter space normalises exactly as in training).

    Args:
        config: network hyper-parameters.
        system: a Hamiltonian (anything with ``hilbert``, ``cusp_coupling`` and ``length_scale``,
            e.g. a :class:`~qernel.hamiltonian.base.ContinuumHamiltonian`); or, the low-level
            path, an :class:`ElectronHilbert` (then the cusp coupling and length are
            ``config``'s deprecated fields or 1.0, and the normalisation is given by hand).
        parameter_space: with a Hamiltonian: the :class:`~qernel.sampler.ParameterSpace` whose
            names equal the Hamiltonian's carried parameters (None only if it carries none).
            With an ``ElectronHilbert``: the (P,) ``parameter_center`` (positional, as before).
        parameter_scale, parameter_center: (P,) normalisation in user units for the
            ``ElectronHilbert`` path only (defaults 1 and 0); keyword-only (a positional
            ``parameter_scale`` or ``with_aux`` still works, with a ``DeprecationWarning``).
        with_aux: return ``(log_psi, aux)`` (router outputs per block) instead of ``log_psi``;
            the parameters are identical to the ``with_aux=False`` model. With ``config.spin_flip``
            the ``aux`` is that of the unflipped evaluation.

    Returns:
        ``hk.Transformed`` whose ``apply(params, None, x)`` maps samples (..., 2N + P) to
        ``log psi`` (...,).

    Raises:
        TypeError: ``system`` is neither a Hamiltonian nor an ``ElectronHilbert``.
        ValueError: parameter-space names differ from the carried parameters, a Hamiltonian
            was given together with a hand-made ``parameter_center``/``parameter_scale``, or
            ``config.spin_flip`` is set for a system with ``n_up != n_down``.
    """
    hilbert, center, scale, physics = resolve_system(
        system, parameter_space, parameter_center, parameter_scale, who="make_qernel")
    normalisation_arrays(hilbert, center, scale)  # validate before tracing
    if config.spin_flip:
        try:
            check_spin_flip(hilbert, config.spin_flip)
        except ValueError as error:
            raise ValueError(f"QERNELConfig.spin_flip = {config.spin_flip}: {error}; set spin_flip = 0") from None

    def forward(x):
        log_psi, aux = QERNEL(config, hilbert, parameter_center=center, parameter_scale=scale, **physics)(x)
        return (log_psi, aux) if with_aux else log_psi

    if not config.spin_flip:
        return hk.transform(forward)
    if not with_aux:
        return spin_flip_symmetric(hk.transform(forward), hilbert, config.spin_flip)

    def symmetric_forward(x):  # one module called twice: the same parameters as without aux
        module = QERNEL(config, hilbert, parameter_center=center, parameter_scale=scale, **physics)
        log_a, aux = module(x)
        log_b, _ = module(flip_spins(jnp.asarray(x), hilbert.n_up))
        return combine_flipped(log_a, log_b, config.spin_flip), aux

    return hk.transform(symmetric_forward)


@positional_deprecated("parameter_scale")
def make_plain_transformer(
    config: PlainTransformerConfig | QERNELConfig,
    system: Any,
    parameter_space: Any = None,
    *,
    parameter_scale: ArrayLike | None = None,
    parameter_center: ArrayLike | None = None,
) -> hk.Transformed:
    """Ablation baseline: the same transformer with FiLM replaced by appending ``p_hat`` to every
    input token, a dense FFN (hidden ``config.expert_hidden``) and full multi-head attention.

    ``config`` is a :class:`PlainTransformerConfig`, or a :class:`QERNELConfig` whose FiLM, MoE
    and GQA fields are overridden (as before). Other arguments as :func:`make_qernel`."""
    if isinstance(config, PlainTransformerConfig):
        plain = config.qernel_config()
    else:
        with warnings.catch_warnings():  # the deprecated physics fields were warned about already
            warnings.simplefilter("ignore", DeprecationWarning)
            plain = config.replace(**_PLAIN_OVERRIDES, num_kv_heads=config.num_heads)
    return make_qernel(plain, system, parameter_space, parameter_scale=parameter_scale, parameter_center=parameter_center)


def count_parameters(params) -> int:
    """Number of real scalar parameters in a (Haiku or NetKet ``{"params": ...}``) pytree."""
    return int(sum(int(np.prod(leaf.shape)) * (2 if jnp.iscomplexobj(leaf) else 1) for leaf in jax.tree_util.tree_leaves(params)))
