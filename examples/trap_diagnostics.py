"""Diagnostics of a trained quantum-dot model (issue 19): energy with NetKet and blocking errors,
the virial 2T - 2U + W (zero in an eigenstate), and the spin <S^2> (0 for a singlet).

    python examples/trap_diagnostics.py runs/validation/trap_n6/checkpoint.npz --n-samples 32768

Samples are drawn on fresh thermalised chains (:func:`qernel.run.state_at_values`) in blocks of
``--block`` samples (bounded memory); each block's per-sample series are concatenated along the
chains before estimating, so the blocking analysis sees chains of all blocks together.
<S^2> needs the sign of psi: the model is rebuilt with ``log_abs_only = False`` and the trained
parameters (the flag changes only the output, not the parameters); a model trained with
``[ansatz] spin_flip`` keeps its symmetrisation in that rebuild.

``--spin-flip +1`` (or -1) evaluates the trained parameters in the spin-flip-symmetrised ansatz
``psi(R) + psi(F R)`` (``QERNELConfig.spin_flip``, same parameters, signed output): a *different*
state, the trained one with its odd-S (even-S) part removed, whose energy and <S^2> show what the
symmetrisation does without retraining. ``--spin-flip 0`` evaluates a spin-flip-trained checkpoint
without it; by default the checkpoint's own setting is used.

    python examples/trap_diagnostics.py runs/validation/trap_n6/checkpoint.npz --spin-flip 1
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import numpy as np

import qernel
from qernel.config import config_from_dict
from qernel.hamiltonian.trap import HarmonicTrap
from qernel.observables import estimate, groups_from_state, local_energy_components
from qernel.observables.spin import local_spin_squared
from qernel.run import build_model, state_at_values
from qernel.training.checkpoint import load_checkpoint


def signed_model(run):
    """The run's model rebuilt with ``log_abs_only = False`` (same parameters, signed ``log psi``);
    every other ansatz option, ``spin_flip`` included, is kept."""
    data = run.config.to_dict()
    signed_config = config_from_dict({**data, "ansatz": {**data["ansatz"], "log_abs_only": False}})
    return build_model(signed_config, run.hamiltonian, run.parameter_space)


def diagnose(checkpoint: str | Path, *, n_samples: int = 32768, block: int = 4096, spin_samples: int = 4096,
             spin_flip: int | None = None) -> dict:
    """Energy (NetKet and blocking errors), virial and <S^2> of a trained trap model (Hartree).

    ``spin_flip``: None: the checkpoint's ansatz; -1, 0, +1: its parameters in the ansatz with
    ``spin_flip`` set to that value (signed output; see the module docstring)."""
    n_blocks = max(1, math.ceil(n_samples / block))
    overrides = None if spin_flip is None else {"spin_flip": int(spin_flip), "log_abs_only": False}
    run, vstate, evaluator = state_at_values(checkpoint, None, n_samples=n_samples // n_blocks, ansatz=overrides)
    ham = run.hamiltonian
    if not isinstance(ham, HarmonicTrap):
        raise ValueError("trap_diagnostics needs a harmonic-trap checkpoint")
    parts, spin_parts, spin_done = [], [], 0
    signed = signed_model(run)
    n_up, n_down = ham.n_up, ham.n_electrons - ham.n_up
    for _ in range(n_blocks):
        vstate.sample()
        components = local_energy_components(vstate, ham)
        parts.append({k: np.asarray(v) for k, v in components.items()})
        if spin_done < spin_samples:
            params = vstate.parameters
            spin_parts.append(np.asarray(local_spin_squared(
                lambda x: signed.apply(params, None, x), vstate.samples, n_up, n_down)))
            spin_done += vstate.samples.shape[0] * vstate.samples.shape[1]
        evaluator.adapt()
    groups = groups_from_state(vstate, ham)
    assert len(groups.present) == 1, "one parameter value per diagnostic"
    joined = {k: np.concatenate([p[k] for p in parts], axis=1) for k in parts[0]}
    total = joined["kinetic"] + joined["one_body"] + joined["interaction"]
    virial = 2 * joined["kinetic"] - 2 * joined["one_body"] + joined["interaction"]
    energy, vir = estimate(total, blocking=True), estimate(virial, blocking=True)
    spin = estimate(np.concatenate(spin_parts, axis=1), blocking=True)
    means = {k: float(np.mean(v)) for k, v in joined.items()}
    return {
        "checkpoint_steps": int(load_checkpoint(checkpoint)["step"]),
        "spin_flip": int(run.config.ansatz.options.get("spin_flip", 0)),
        "n_samples": int(total.size),
        "energy": energy.to_dict(),
        "kinetic": means["kinetic"], "trap": means["one_body"], "coulomb": means["interaction"],
        "virial_2T_minus_2U_plus_W": vir.to_dict(),
        "spin_squared": spin.to_dict(),
        "spin_samples": int(np.concatenate(spin_parts, axis=1).size),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoint")
    parser.add_argument("--n-samples", type=int, default=32768)
    parser.add_argument("--block", type=int, default=4096)
    parser.add_argument("--spin-samples", type=int, default=4096, help="<S^2> from at least this many samples (whole blocks)")
    parser.add_argument("--spin-flip", type=int, choices=(-1, 0, 1), default=None,
                        help="evaluate the parameters with this QERNEL spin_flip (default: the checkpoint's)")
    parser.add_argument("--json", default=None, help="write the results here")
    args = parser.parse_args(argv)
    # jaxlib 0.10's CPU LAPACK kernels can deadlock on few cores: one CPU (one XLA thread) before JAX
    # starts, see docs/howto/devices.md; QERNEL_PIN_CPU=0 skips it (GPUs, many-core nodes)
    qernel.pin_to_one_cpu()
    result = diagnose(args.checkpoint, n_samples=args.n_samples, block=args.block, spin_samples=args.spin_samples,
                      spin_flip=args.spin_flip)
    text = json.dumps(result, indent=2, default=float)
    print(text)
    if args.json:
        Path(args.json).write_text(text)
    return result


if __name__ == "__main__":
    main()
