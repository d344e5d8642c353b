"""Subprocess worker of ``tests/test_memory.py`` (not a test module).

Trains a tiny 2-electron trap model for 0 steps (thermalised chains, a checkpoint), then evaluates
it at two sample counts and prints the peak resident memory (``ru_maxrss``) after each, as one
JSON line prefixed ``RESULT``. Usage: ``python tests/_memory_worker.py OUTPUT_DIR SMALL LARGE BLOCK``
(``BLOCK`` 0: one block of all samples, i.e. no streaming).
"""

from __future__ import annotations

import json
import resource
import sys

import qernel  # noqa: F401  (CPU pinning first)
from qernel.run import evaluate_checkpoint, train

CONFIG = {
    "system": {"kind": "trap", "n_electrons": 2, "omega": 1.0},
    "parameters": {"type": "none"},
    "ansatz": {"kind": "slater_jastrow", "jastrow_smooth": 2, "complex_output": False, "log_abs_only": True},
    "sampler": {"n_chains": 16, "n_samples": 64, "n_discard_per_chain": 1, "n_thermalise": 5, "sweep_size": 2},
    "optimizer": {"n_steps": 0},
    "run": {"seed": 0, "checkpoint_every": 1},
}


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main(output_dir: str, small: int, large: int, block: int) -> dict:
    CONFIG["run"]["output_dir"] = output_dir
    train(CONFIG, progress=False)
    checkpoint = f"{output_dir}/checkpoint.npz"
    result = {}
    for n in (small, large):
        records = evaluate_checkpoint(checkpoint, n_samples=n, n_thermalise=2, block_size=block or n)
        result[str(n)] = {"peak_mib": peak_mib(), "n_samples": records[0]["n_samples"],
                          "energy": records[0]["energy"], "error": records[0]["error"]}
    return result


if __name__ == "__main__":
    print("RESULT " + json.dumps(main(sys.argv[1], *map(int, sys.argv[2:5]))), flush=True)
