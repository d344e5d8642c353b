"""The demo's evaluation report: energies per electron against the references, stored and drawn.

``qernel demo`` trains one model over V, then calls :func:`demo_report`: the model's energy per
electron at every trained V and at unseen ones, the Bloch-determinant energy (the Slater determinant
of the exact non-interacting Bloch orbitals with Coulomb) and the Hartree-Fock energy, both exact
plane-wave energies without sampling error (the Bloch one agrees with the Monte Carlo estimate of
:func:`qernel.reference.bloch_slater_energy` within its error bars); written to ``summary.json`` (a list
of records) and drawn to ``energy.png``. The evaluation is stored in ``evaluation.json`` with the
SHA-256 of the model it came from (step and parameters): an unchanged model reuses it instead of
re-evaluating.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

__all__ = ["demo_report", "write_energy_plot", "hartree_fock_energy"]


def _model_digest(path: Path) -> str:
    """SHA-256 of the checkpoint's step counter and variational parameters (what the evaluation
    depends on; not of the file, whose bytes also hold the sampler and optimizer states)."""
    import jax
    import numpy as np

    from .training.checkpoint import load_checkpoint

    data = load_checkpoint(path)
    digest = hashlib.sha256(str(int(data["step"])).encode())
    for leaf in jax.tree_util.tree_leaves(data["params"]):
        digest.update(np.ascontiguousarray(np.asarray(leaf)).tobytes())
    return digest.hexdigest()


def hartree_fock_energy(hamiltonian, V: float) -> tuple[float, float] | None:
    """Self-consistent Hartree-Fock energy (meV, total) at depth V and its error (0: a plane-wave
    energy, no sampling), lowest of the solver's starts (:func:`qernel.reference.hartree_fock`);
    None for a Hamiltonian it does not cover."""
    from .hamiltonian import MoireHamiltonian
    from .reference.hartree_fock import hartree_fock

    if not isinstance(hamiltonian, MoireHamiltonian):
        return None
    return hartree_fock(hamiltonian, V=V).energy_meV, 0.0


def demo_report(checkpoint: str | Path, values: list[float], trained: list[float], *,
                n_samples: int = 4096) -> tuple[list[dict[str, Any]], bool]:
    """Per-V records (energies per electron in meV) for the demo, evaluated or reused.

    Args:
        checkpoint: the trained demo's ``checkpoint.npz``.
        values: depths V (meV) to evaluate, trained and unseen.
        trained: the trained depths.
        n_samples: Monte Carlo samples of the model's evaluation (over all V).

    Returns:
        ``(records, reused)``: one record per V with keys ``V``, ``trained``,
        ``energy_meV_per_electron``, ``error_meV_per_electron``, ``bloch_meV_per_electron``,
        ``bloch_error_meV_per_electron`` (0: a plane-wave energy), ``noninteracting_meV_per_electron`` and
        ``hartree_fock_meV_per_electron`` (when available); ``reused`` is True when the stored
        evaluation of the same checkpoint and settings was returned.
    """
    checkpoint = Path(checkpoint)
    store = checkpoint.parent / "evaluation.json"
    key = {"model_sha256": _model_digest(checkpoint), "values": [float(v) for v in values],
           "n_samples": int(n_samples), "bloch": "plane-wave"}
    if store.is_file():
        stored = json.loads(store.read_text())
        if stored.get("key") == key:
            return stored["records"], True

    from .reference.bloch import bloch_determinant
    from .run import state_at_values

    run, _, evaluator = state_at_values(checkpoint, {"V": [float(v) for v in values]}, n_samples=n_samples)
    ham = run.hamiltonian
    n = ham.n_electrons
    model = [g.as_dict() for g in evaluator.measure()]
    records = []
    for r in model:
        V = float(r["parameters"]["V"])
        bloch = bloch_determinant(ham, V)["energy_meV"]
        record = {
            "V": V,
            "trained": any(math.isclose(V, t) for t in trained),
            "energy_meV_per_electron": r["energy"] / n,
            "error_meV_per_electron": r["error"] / n,
            "bloch_meV_per_electron": bloch / n,
            "bloch_error_meV_per_electron": 0.0,
            "noninteracting_meV_per_electron": ham.noninteracting_ground_state(V=V).energy_meV / n,
        }
        hf = hartree_fock_energy(ham, V)
        if hf is not None:
            record["hartree_fock_meV_per_electron"] = hf[0] / n
            record["hartree_fock_error_meV_per_electron"] = hf[1] / n
        records.append(record)
    store.write_text(json.dumps({"key": key, "records": records}, indent=2) + "\n")
    return records, False


def write_energy_plot(records: list[dict[str, Any]], path: str | Path, title: str = "") -> Path:
    """Energy per electron vs V with error bars (filled: trained V, open: unseen V), the
    Bloch-determinant and (if present) Hartree-Fock energies as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = sorted(records, key=lambda r: r["V"])
    V = [r["V"] for r in records]
    fig, ax = plt.subplots(figsize=(6, 4))
    bloch = [r["bloch_meV_per_electron"] for r in records]
    ax.plot(V, bloch, "-", color="tab:gray", label="Bloch determinant (with Coulomb)")
    if all("hartree_fock_meV_per_electron" in r for r in records):
        ax.plot(V, [r["hartree_fock_meV_per_electron"] for r in records], "--", color="tab:orange", label="Hartree-Fock")
    for trained, marker, label in ((True, "o", "QERNEL, trained V"), (False, "s", "QERNEL, unseen V")):
        rows = [r for r in records if r["trained"] == trained]
        if rows:
            ax.errorbar([r["V"] for r in rows], [r["energy_meV_per_electron"] for r in rows],
                        yerr=[r["error_meV_per_electron"] for r in rows], fmt=marker, color="tab:blue",
                        mfc="tab:blue" if trained else "white", capsize=3, label=label)
    ax.set_xlabel("moiré depth V [meV]")
    ax.set_ylabel("energy per electron [meV]")
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
