"""A 150-electron state of the filling-2/3 model family, evaluated (not trained) on one CPU core.

The GPU configuration ``configs/moire_nu23_gpu.toml`` (15x15 moiré supercell, N = 150, the paper's
largest size) is built as it is, except for the sampler, which is cut to what one core can run: a
few chains at the chosen V, local energies one sample at a time (``chunk_size = 1``: about 1.2 GB of
XLA memory per sample in float64, docs/benchmarks.md). The parameters are the model's
initialisation, *not trained and not pretrained*: the energy printed says only that the code path
(Hamiltonian with Ewald sums, sampler, forward-Laplacian local energy, streaming evaluation) runs at
N = 150; it is far above any reference. Written: ``examples/nu23_results/n150_cpu_evaluation.json``
(times, peak memory, the record), with repository-relative paths only::

    python examples/nu23_150_on_cpu.py                       # N = 150, V = 15 meV, 8 samples (~8 min)
    python examples/nu23_150_on_cpu.py --supercell 3 --n-electrons 6 --output n6_check.json   # quick check
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import time
from pathlib import Path

import qernel

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "examples/configs/moire_nu23_gpu.toml"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--V", type=float, default=15.0, help="moiré depth (meV)")
    parser.add_argument("--n-samples", type=int, default=8, help="samples (two per chain)")
    parser.add_argument("--n-thermalise", type=int, default=100,
                        help="thermalisation sweeps (20 left the acceptance at 0.035 at N = 150)")
    parser.add_argument("--supercell", type=int, default=None, help="override (quick checks)")
    parser.add_argument("--n-electrons", type=int, default=None, help="override (quick checks)")
    parser.add_argument("--n-harmonics", type=int, default=None, help="override (default: the supercell)")
    parser.add_argument("--output", default=str(ROOT / "examples" / "nu23_results" / "n150_cpu_evaluation.json"))
    args = parser.parse_args(argv)
    qernel.pin_to_one_cpu()  # before JAX starts (docs/howto/devices.md)

    import jax
    import numpy as np

    from qernel.config import config_from_dict, load_config
    from qernel.run import build_run, evaluate_checkpoint

    data = load_config(ROOT / CONFIG).to_dict()
    if args.supercell is not None:
        data["system"]["supercell"] = args.supercell
        data["ansatz"]["n_harmonics"] = args.n_harmonics or args.supercell
    if args.n_electrons is not None:
        data["system"]["n_electrons"] = args.n_electrons
    data["parameters"] = {"type": "grid", "values": {"V": [args.V]}}
    data["sampler"].update(n_chains=max(1, args.n_samples // 2), n_samples=args.n_samples, n_discard_per_chain=1,
                           n_thermalise=0, chunk_size=1)
    data["pretrain"]["steps"] = 0
    out_dir = Path("runs") / "nu23_150_cpu"
    data["run"]["output_dir"] = str(out_dir)
    config = config_from_dict(data)

    t0 = time.perf_counter()
    run = build_run(config)  # initial parameters of the model family at this size
    n_parameters = sum(int(np.size(x)) for x in jax.tree_util.tree_leaves(run.vstate.parameters))
    checkpoint = run.driver.save(out_dir / "checkpoint.npz", extra={"config": run.config.to_dict()})
    build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    (record,) = evaluate_checkpoint(checkpoint, {"V": [args.V]}, n_samples=args.n_samples,
                                    n_thermalise=args.n_thermalise, block_size=args.n_samples)
    evaluate_s = time.perf_counter() - t0
    n = config.system.n_electrons
    result = {
        "config": CONFIG, "overrides": {"supercell": config.system.supercell, "n_electrons": n,
                                        "sampler": data["sampler"], "parameters": data["parameters"]},
        "parameters_trained": False, "n_parameters": n_parameters,
        "V_meV": args.V, "n_samples": args.n_samples, "n_thermalise": args.n_thermalise,
        "energy_meV_per_electron": record["energy"] / n,
        # NetKet's autocorrelation-aware error is NaN for chains this short; the i.i.d. error
        # sqrt(variance / n_samples) ignores autocorrelation (a lower bound on the true error)
        "error_meV_per_electron": None if math.isnan(record["error"]) else record["error"] / n,
        "error_iid_meV_per_electron": math.sqrt(record["variance"] / args.n_samples) / n,
        "acceptance": record.get("acceptance"),
        "build_wall_seconds": build_s, "evaluate_wall_seconds": evaluate_s,
        "peak_rss_GB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2,
        "jax_version": jax.__version__, "qernel_version": qernel.__version__,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
