"""Subprocess worker of ``tests/test_memory.py`` (not a test module): peak memory of a scan.

Trains a tiny moiré model (2 electrons on a 2x2 supercell, Slater-Jastrow, 0 steps: thermalised
chains and a checkpoint), scans 3 values of V at the small sample count twice (the second run is
the baseline: building the evaluation state again costs memory of its own) and then at the large
one, and prints the peak resident memory (``ru_maxrss``) after each, as one JSON line prefixed
``RESULT`` (keys ``small``, ``small_again``, ``large``). Usage:
``python tests/_scan_memory_worker.py OUTPUT_DIR SMALL LARGE BLOCK``.
"""

from __future__ import annotations

import json
import sys

import qernel  # noqa: F401  (CPU pinning first)
from qernel.run import train
from qernel.scan import scan_checkpoint

from _memory_worker import peak_mib  # the same peak-memory reading as the evaluation worker

CONFIG = {
    "system": {"kind": "moire", "V": 15.0, "phi": 45.0, "m_star": 0.35, "a_M": 8.031, "eps": 10.0,
               "supercell": 2, "n_electrons": 2, "polarized": True},
    "parameters": {"type": "grid", "values": {"V": [5.0, 25.0]}},
    "ansatz": {"kind": "slater_jastrow", "jastrow_smooth": 2, "complex_output": False, "log_abs_only": True},
    "sampler": {"n_chains": 16, "n_samples": 64, "n_discard_per_chain": 1, "n_thermalise": 5, "sweep_size": 2},
    "optimizer": {"n_steps": 0},
    "run": {"seed": 0, "checkpoint_every": 1},
}


def main(output_dir: str, small: int, large: int, block: int) -> dict:
    CONFIG["run"]["output_dir"] = output_dir
    train(CONFIG, progress=False)
    result = {}
    for name, n in (("small", small), ("small_again", small), ("large", large)):
        scan = scan_checkpoint(f"{output_dir}/checkpoint.npz", "V", [5.0, 15.0, 25.0], n_samples=n,
                               density_at=[15.0], n_bins=24, block_size=block or n, k_points=False)
        row = scan.rows[1]
        result[name] = {"n_samples": n, "peak_mib": peak_mib(), "E": row["E"], "E_error": row["E_error"],
                          "order_parameter_error": row["order_parameter_error"],
                          "density_n_samples": scan.densities[15.0].n_samples}
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], *map(int, sys.argv[2:5]))), flush=True)
