"""Scan a trained foundation model over a dense parameter grid and locate the transition.

For every value of one scanned parameter (e.g. the moiré depth V) the model is sampled and the
observables of :mod:`qernel.observables` are measured: total, kinetic, one-body and interaction
energy, the crystal order parameter ``|<rho(g)>|`` (first moiré shell), the structure-factor
peak and density maps; where the supercell contains the moiré K points (n x n, n a multiple of 3)
also the honeycomb-crystal order parameter ``|<rho(K)>|`` with its noise floor and ``S(K)``
(:mod:`qernel.observables.wigner_crystal`), and ``dE_int/dp`` by finite differences. The
transition is located from the data: the position of the largest slope of E_int(V) (and of the
order parameters), with an uncertainty from a parametric bootstrap
of the Monte Carlo error bars (resample every point within its error, recompute the location);
and by a weighted fit of a tanh step to the whole curve (:mod:`qernel.transition`), whose width
measures how sharp the change is. No threshold is chosen by hand.
"""

from __future__ import annotations

import csv
import json
import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .observables import Estimate, finite_difference, moire_k_points
from .config import ConfigError
from .run import state_at_values
from .transition import SmoothStepFit, fit_smooth_step, smooth_step
from .units import PARAMETER_UNITS

__all__ = ["ScanResult", "ScanObservables", "TransitionEstimate", "locate_transition", "scan_checkpoint", "plot_scan", "step_fits",
           "write_scan"]


@dataclass
class TransitionEstimate:
    """Location of the steepest change of a quantity along the scan (user units of the parameter)."""

    quantity: str
    location: float
    error: float
    slope: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def locate_transition(
    x, y, y_error, *, quantity: str = "", n_bootstrap: int = 2000, seed: int = 0
) -> TransitionEstimate:
    """Location of the largest |dy/dx| of a scanned curve, with a bootstrap uncertainty.

    The finite-difference slope between neighbouring points is assigned to their midpoint;
    the location is the midpoint of the steepest segment. The uncertainty is the standard
    deviation of that location over ``n_bootstrap`` curves resampled within the error bars,
    combined in quadrature with half the local grid spacing (the resolution of the scan).

    Args:
        x: (M,) scanned parameter values, strictly increasing, M >= 3.
        y, y_error: (M,) the quantity and its Monte Carlo error.
    """
    x, y, y_error = (np.asarray(a, dtype=float) for a in (x, y, y_error))
    if x.ndim != 1 or len(x) < 3 or y.shape != x.shape or y_error.shape != x.shape:
        raise ValueError(f"x, y, y_error must be 1D of equal length >= 3, got {x.shape}, {y.shape}, {y_error.shape}")
    if np.any(np.diff(x) <= 0):
        raise ValueError("x must be strictly increasing")
    mid = 0.5 * (x[1:] + x[:-1])
    dx = np.diff(x)

    def steepest(values):
        slopes = np.diff(values, axis=-1) / dx
        return np.argmax(np.abs(slopes), axis=-1), slopes

    index, slopes = steepest(y)
    rng = np.random.default_rng(seed)
    errors = np.where(np.isfinite(y_error), y_error, 0.0)
    resampled = y + rng.standard_normal((n_bootstrap, len(y))) * errors
    boot_index, _ = steepest(resampled)
    spread = float(np.std(mid[boot_index]))
    resolution = 0.5 * float(dx[index])
    return TransitionEstimate(quantity, float(mid[index]), math.hypot(spread, resolution), float(slopes[index]))


@dataclass
class ScanResult:
    """Per-value observables of a scan (energies in user units; ``*_error`` are MC errors)."""

    parameter: str
    rows: list[dict[str, float]]
    transitions: list[TransitionEstimate]
    densities: dict[float, Any]
    derivatives: dict[str, Any] = field(default_factory=dict)
    step_fits: list[SmoothStepFit] = field(default_factory=list)

    def column(self, name: str) -> np.ndarray:
        return np.array([row[name] for row in self.rows])

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "rows": self.rows,
            "transitions": [t.to_dict() for t in self.transitions],
            "derivatives": {name: d.to_dict() for name, d in self.derivatives.items()},
            "step_fits": [f.to_dict() for f in self.step_fits],
        }


def scan_checkpoint(
    checkpoint: str | Path,
    parameter: str,
    values,
    *,
    n_samples: int | None = None,
    density_at=(),
    n_bins: int = 24,
    seed: int = 1234,
    chunk_size: int | None = 4096,
    k_points: bool | None = None,
    block_size: int = 4096,
) -> ScanResult:
    """Evaluate a trained model at every value of ``parameter`` (others fixed) and locate the transition.

    Samples are drawn and measured in blocks of about ``block_size`` (:class:`ScanObservables`),
    so peak memory does not grow with ``n_samples``. In a multi-process run
    (:mod:`qernel.distributed`) every process samples its share of the chains and gets the same
    numbers; only process 0 should write them.

    Args:
        checkpoint: training checkpoint.
        parameter: the scanned carried parameter (e.g. ``"V"``); the model must carry exactly it.
        values: (M,) increasing values, may include values never trained on.
        n_samples: total samples over all values (default: 512 per value).
        density_at: values at which density maps are kept (must be among ``values``).
        chunk_size: samples per local-energy evaluation within a block (bounds memory: the forward
            Laplacian of every sample at once needs memory proportional to the block); None: the
            whole block at once.
        k_points: measure ``|<rho(K)>|`` and ``S(K)`` at the moiré K points: None (if the supercell
            contains them, else a warning), True (ValueError if it does not), False (never).
        block_size: samples per block (over all values).

    Raises:
        MemoryError: before any compute, if the kept per-sample series cannot fit.
    """
    from .distributed import to_host
    from .observables import groups as _groups
    from .observables.energy import local_energy_components
    from .sampler import chain_group_ids, group_values
    from .streaming import check_fits_in_memory, n_blocks_for

    if block_size < 1:
        raise ConfigError(f"block_size must be >= 1, got {block_size}")
    values = sorted(float(v) for v in values)
    n_samples = n_samples or 512 * len(values)
    check_fits_in_memory(n_samples, block_size, ScanObservables.BYTES_PER_SAMPLE)
    run, vstate, evaluator = state_at_values(checkpoint, {parameter: values}, n_samples=min(block_size, n_samples),
                                             seed=seed)
    ham = run.hamiltonian
    k_points = _k_points_wanted(ham, k_points)  # checked before the sampling work
    groups = _groups.ParameterGroups(tuple(ham.conditioned_on), to_host(group_values(vstate)),
                                     to_host(chain_group_ids(vstate)))
    n_blocks = n_blocks_for(n_samples, vstate.n_samples)
    chain_length = n_blocks * (vstate.n_samples // groups.n_chains)
    observables = ScanObservables(ham, groups, chain_length, k_points=k_points, n_bins=n_bins,
                                  density_at={parameter: density_at})
    for _ in range(n_blocks):
        vstate.sample()
        energies = local_energy_components(vstate, ham, chunk_size=chunk_size)
        observables.add(to_host(vstate.samples), {k: to_host(v) for k, v in energies.items()})
        vstate.reset()  # drop this block's samples before drawing the next
    energies, order, peaks, k_order, k_sq, maps = observables.results()
    n = ham.n_electrons
    rows = []
    for key in sorted(energies):
        e = energies[key]
        peak_q, peak = peaks[key]
        rows.append({
            parameter: float(e.parameters[parameter]),
            "E": float(e.total.mean), "E_error": float(e.total.error),
            "E_error_blocking": float(e.total.error_blocking), "E_n_effective": float(e.total.n_effective),
            "E_kin": float(e.kinetic.mean), "E_kin_error": float(e.kinetic.error),
            "E_pot": float(e.one_body.mean), "E_pot_error": float(e.one_body.error),
            "E_int": float(e.interaction.mean), "E_int_error": float(e.interaction.error),
            "E_per_electron": float(e.total.mean) / n,
            "order_parameter": float(order[key].value.mean), "order_parameter_error": float(order[key].value.error),
            "order_noise_floor": float(order[key].noise_floor),
            "S_peak_q": float(peak_q), "S_peak": float(peak.mean), "S_peak_error": float(peak.error),
        })
        if k_points:
            rows[-1].update({
                "order_K": float(k_order[key].value.mean), "order_K_error": float(k_order[key].value.error),
                "order_K_noise_floor": float(k_order[key].noise_floor),
                "S_K": float(k_sq[key]["S"].mean), "S_K_error": float(k_sq[key]["S"].error),
            })
    x = np.array([r[parameter] for r in rows])
    transitions = []
    derivatives = {}
    if len(rows) >= 2:
        derivatives["dE_int/d" + parameter] = finite_difference(
            x, [r["E_int"] for r in rows], [r["E_int_error"] for r in rows])
    if len(rows) >= 3:
        for quantity in ("E_int", "order_parameter") + (("order_K",) if k_points else ()):
            y = np.array([r[quantity] for r in rows])
            err = np.array([r[quantity + "_error"] for r in rows])
            transitions.append(locate_transition(x, y, err, quantity=quantity))
    densities = {float(k[0]): m for k, m in maps.items()}
    return ScanResult(parameter, rows, transitions, densities, derivatives, step_fits(rows, parameter))


def step_fits(rows: list[dict[str, float]], parameter: str) -> list[SmoothStepFit]:
    """Smooth-step fits (:func:`~qernel.transition.fit_smooth_step`) of E_int and the order parameters
    along a scan of at least 5 values; a quantity whose fit does not converge is left out with a warning."""
    if len(rows) < 5:
        return []
    x = np.array([r[parameter] for r in rows])
    fits = []
    for quantity in ("E_int", "order_parameter", "order_K"):
        if quantity not in rows[0]:
            continue
        try:
            fits.append(fit_smooth_step(x, [r[quantity] for r in rows], [r[quantity + "_error"] for r in rows],
                                        quantity=quantity))
        except ValueError as error:
            warnings.warn(f"scan: {error}", stacklevel=2)
    return fits


class ScanObservables:
    """The scan's observables measured block by block, equal to measuring all samples at once.

    Kept per sample (what needs the whole series): the three energy components (the blocking
    error analysis), ``rho(g)`` at the moiré first shell and ``rho(K)`` at the K points (the
    delta-method modulus needs the final group mean first); :data:`BYTES_PER_SAMPLE` in all.
    Kept per chain, independent of the number of samples (:class:`~qernel.streaming.ChainSums`):
    the ``S(q)`` shell averages (for the peak) and the density maps of the groups in
    ``density_at``. The results are those of :func:`~qernel.observables.energy_decomposition`,
    :func:`~qernel.observables.crystal_order_parameter`, ``structure_factor(...).peak()``,
    :func:`~qernel.observables.k_point_order_parameter`,
    :func:`~qernel.observables.k_point_structure_factor` and
    :func:`~qernel.observables.density_map` of the concatenated samples, up to rounding.

    Args:
        hamiltonian: the periodic Hamiltonian of the samples.
        groups: chain-to-group assignment of every block (the chains continue across blocks).
        chain_length: samples per chain once every block is added.
        k_points: also measure the K-point observables.
        n_bins: bins per supercell vector of the density maps.
        density_at: ``{parameter: values}``: groups whose density map is kept (one parameter).
    """

    #: kept per sample: 3 energy components (float64) + 3 + 3 complex128 Fourier components
    BYTES_PER_SAMPLE = 3 * 8 + 6 * 16

    def __init__(self, hamiltonian, groups, chain_length: int, *, k_points: bool, n_bins: int = 24,
                 density_at: dict[str, Any] | None = None) -> None:
        from .observables.fourier import default_order_parameter_vectors
        from .observables.structure_factor import _shells, default_q_max, reciprocal_points
        from .streaming import ChainSums

        self.hamiltonian, self.groups, self.k_points, self.n_bins = hamiltonian, groups, k_points, int(n_bins)
        self.G = default_order_parameter_vectors(hamiltonian)
        self.K = moire_k_points(hamiltonian) if k_points else None
        self.q = reciprocal_points(hamiltonian.supercell, default_q_max(hamiltonian))
        self.series: dict[str, list] = {"energies": [], "rho_g": [], "rho_K": []}
        self.q_shells = _shells(self.q)[0]
        self.shells = ChainSums(groups.n_chains, chain_length, (len(self.q_shells),))
        (name, wanted), = (density_at or {"": ()}).items()
        wanted = {float(v) for v in wanted}
        index = groups.names.index(name) if name in groups.names else None
        self.density_groups = [g for g in groups.present
                               if index is not None and float(groups.parameters(g)[name]) in wanted]
        self.density_chains = np.flatnonzero(np.isin(groups.chain_ids, self.density_groups))
        self.density = (ChainSums(len(self.density_chains), chain_length, (self.n_bins**2,))
                        if len(self.density_chains) else None)

    def add(self, samples, energies: dict[str, Any]) -> None:
        """Measure one block: ``samples`` (n_chains, block_length, 2N + P) and its local energy
        components ``{"kinetic", "one_body", "interaction"} -> (n_chains, block_length)``."""
        from .observables.density import density_samples
        from .observables.fourier import density_fourier_samples
        from .observables.structure_factor import structure_factor_shell_samples

        ham = self.hamiltonian
        self.series["energies"].append({k: np.real(np.asarray(v)) for k, v in energies.items()})
        self.series["rho_g"].append(np.asarray(density_fourier_samples(samples, ham, self.G)))
        if self.k_points:
            self.series["rho_K"].append(np.asarray(density_fourier_samples(samples, ham, self.K)))
        self.shells.add(structure_factor_shell_samples(samples, ham, self.q)[1])
        if self.density is not None:
            self.density.add(density_samples(np.asarray(samples)[self.density_chains], ham, n_bins=self.n_bins))

    def results(self):
        """``(energies, order, S peaks, K order, S(K), density maps)``, each ``{group key: ...}``
        (S peaks: ``(|q|, Estimate)`` of the shell with the largest mean ``S``)."""
        from .observables.density import DensityMap
        from .observables.energy import energy_decomposition
        from .observables.fourier import order_parameter_from_fourier
        from .observables.estimates import estimate

        ham, groups = self.hamiltonian, self.groups
        components = {k: np.concatenate([b[k] for b in self.series["energies"]], axis=1)
                      for k in self.series["energies"][0]}
        energies = energy_decomposition(components, groups, energy_unit=ham.energy_unit,
                                        unit_name=ham.energy_unit_name)
        order = order_parameter_from_fourier(np.concatenate(self.series["rho_g"], axis=1), self.G, groups)
        k_order, k_sq = {}, {}
        if self.k_points:
            rho_K = np.concatenate(self.series["rho_K"], axis=1)
            k_order = order_parameter_from_fourier(rho_K, self.K, groups)
            s_K = ham.n_electrons * np.abs(rho_K) ** 2 @ np.full(len(self.K), 1.0 / len(self.K))
            k_sq = {groups.key(g): {"S": estimate(s_K[np.flatnonzero(groups.members(g))])} for g in groups.present}
        peaks = {}
        for g in groups.present:
            shells = self.shells.estimate(np.flatnonzero(groups.members(g)))
            i = int(np.nanargmax(np.asarray(shells.mean)))
            peaks[groups.key(g)] = (float(self.q_shells[i]), shells[i])
        maps = {}
        cell = ham.supercell
        for g in self.density_groups:
            chains = np.flatnonzero(groups.chain_ids[self.density_chains] == g)
            density = self.density.estimate(chains)
            maps[groups.key(g)] = DensityMap(
                parameters=groups.parameters(g), spin=None, n_electrons=ham.n_electrons,
                density=Estimate(*(np.reshape(a, (self.n_bins, self.n_bins)) for a in
                                   (density.mean, density.error, density.tau_corr, density.variance))),
                bin_area=cell.area / self.n_bins**2, supercell_vectors=cell.vectors,
                n_samples=int(len(chains) * self.shells.chain_length),
            )
        return energies, order, peaks, k_order, k_sq, maps


def _k_points_wanted(hamiltonian, requested: bool | None) -> bool:
    """Whether the scan measures the K-point observables (see :func:`scan_checkpoint`)."""
    if requested is False:
        return False
    try:
        moire_k_points(hamiltonian)
    except ValueError as error:
        if requested:
            raise ValueError(f"k_points=True: {error}") from error
        warnings.warn(f"scan: K-point order parameter skipped: {error}", stacklevel=3)
        return False
    return True


def write_scan(result: ScanResult, output_dir: str | Path, unit: str = "meV") -> list[Path]:
    """Write ``scan.csv``, ``scan.json`` and the PNG plots to ``output_dir``; returns the paths."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "scan.csv", out / "scan.json"]
    with open(paths[0], "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(result.rows[0]))
        writer.writeheader()
        writer.writerows(result.rows)
    paths[1].write_text(json.dumps(result.to_dict(), indent=2))
    paths += plot_scan(result, out, unit)
    return paths


def plot_scan(result: ScanResult, output_dir: str | Path, unit: str = "meV") -> list[Path]:
    """PNG plots: energies, dE_int/dp, order parameter, S(q) peak, and density maps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    p = result.parameter
    p_label = f"{p} [{PARAMETER_UNITS[p]}]" if p in PARAMETER_UNITS else p
    x = result.column(p)
    col = result.column
    marks = {t.quantity: t for t in result.transitions}
    fits = {f.quantity: f for f in result.step_fits}
    paths = []

    def mark(ax, quantity, draw_fit=False):
        if quantity in marks:
            t = marks[quantity]
            ax.axvspan(t.location - t.error, t.location + t.error, color="C3", alpha=0.15)
            ax.axvline(t.location, color="C3", lw=1, label=f"steepest change {t.location:.2f} ± {t.error:.2f}")
        if quantity in fits:
            f = fits[quantity]
            label = f"tanh step at {f.location:.2f} ± {f.location_error:.2f}, width {f.width:.2f} ± {f.width_error:.2f}"
            if draw_fit:
                fine = np.linspace(x[0], x[-1], 400)
                ax.plot(fine, smooth_step(fine, f.base, f.height, f.location, f.width), "k-", lw=1, alpha=0.6,
                        label=label)
            else:
                ax.axvline(f.location, color="k", lw=1, ls="--", label=label)
        if quantity in marks or quantity in fits:
            ax.legend(fontsize=8)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].errorbar(x, col("E"), col("E_error"), fmt="o-", ms=3, label="E")
    axes[0].set(xlabel=p_label, ylabel=f"E [{unit}]", title="total energy")
    axes[1].errorbar(x, col("E_int"), col("E_int_error"), fmt="o-", ms=3, color="C1")
    axes[1].set(xlabel=p_label, ylabel=f"E_int [{unit}]", title="interaction energy")
    mark(axes[1], "E_int", draw_fit=True)
    fig.tight_layout()
    paths.append(out / "energy.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(5, 4))
    slope = finite_difference(x, col("E_int"), col("E_int_error"))
    ax.errorbar(slope.x, slope.slope, slope.error, fmt="o-", ms=3, color="C1")
    ax.set(xlabel=p_label, ylabel=f"dE_int/d{p} [{unit}/{PARAMETER_UNITS.get(p, 'unit')}]",
           title="slope of the interaction energy")
    mark(ax, "E_int")
    fig.tight_layout()
    paths.append(out / "dEint.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    axes[0].errorbar(x, col("order_parameter"), col("order_parameter_error"), fmt="o-", ms=3, color="C2",
                     label="|<rho(g)>| (first moiré shell)")
    axes[0].plot(x, col("order_noise_floor"), "k:", lw=1, label="noise floor")
    axes[0].set(xlabel=p_label, ylabel="|<rho(g)>|, |<rho(K)>|", title="density contrast (order parameter)")
    if "order_K" in result.rows[0]:
        axes[0].errorbar(x, col("order_K"), col("order_K_error"), fmt="s-", ms=3, color="C5", label="|<rho(K)>|")
        axes[0].plot(x, col("order_K_noise_floor"), "k--", lw=1, label="noise floor at K")
    # the honeycomb crystal's own order parameter where the cell has the K points
    mark(axes[0], "order_K" if "order_K" in marks else "order_parameter", draw_fit=True)
    axes[1].errorbar(x, col("S_peak"), col("S_peak_error"), fmt="o-", ms=3, color="C4")
    axes[1].set(xlabel=p_label, ylabel="max S(q)", title="structure-factor peak")
    fig.tight_layout()
    paths.append(out / "order.png")
    fig.savefig(paths[-1], dpi=120)
    plt.close(fig)

    # one colour scale for all maps of a scan, so that maps on both sides of a change compare
    vmax = max((float(np.max(d.density.mean)) for d in result.densities.values()), default=None)
    for value, dmap in sorted(result.densities.items()):
        fig, ax = plt.subplots(figsize=(4.5, 4))
        n_bins = dmap.density.mean.shape[0]
        s = (np.arange(n_bins) + 0.5) / n_bins
        s1, s2 = np.meshgrid(s, s, indexing="ij")
        r = np.stack([s1, s2], -1) @ np.asarray(dmap.supercell_vectors)
        im = ax.scatter(r[..., 0].ravel(), r[..., 1].ravel(), c=dmap.density.mean.ravel(), s=18, marker="h",
                        cmap="viridis", vmin=0.0, vmax=vmax)
        fig.colorbar(im, ax=ax, label="density [1/a_M^2]")
        ax.set(aspect="equal", xlabel="x [a_M]", ylabel="y [a_M]",
               title=f"{p} = {value:g} {PARAMETER_UNITS.get(p, '')}")
        fig.tight_layout()
        paths.append(out / f"density_{p}_{value:g}.png")
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths
