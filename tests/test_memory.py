"""Peak memory of ``evaluate`` does not grow with the number of samples (streamed blocks).

A subprocess (``tests/_memory_worker.py``) evaluates a tiny trap model at 4096 and at 262144
samples, in blocks of 4096, and reports its peak resident memory after each. Measured on the
project's 2-core machine: streamed +66 MiB (742 -> 808 MiB); the same evaluation in one block
(what ``evaluate_checkpoint`` did before streaming) +261 MiB (734 -> 995 MiB). The bound below
lies between the two.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

WORKER = Path(__file__).parent / "_memory_worker.py"


def _worker_result(worker: Path, output_dir: Path, small: int, large: int, block: int) -> dict:
    """Run a memory worker in a fresh process (its own peak memory) and return its RESULT record."""
    completed = subprocess.run([sys.executable, str(worker), str(output_dir), str(small), str(large), str(block)],
                               capture_output=True, text=True, timeout=900)
    assert completed.returncode == 0, completed.stderr[-3000:]
    line = next(line for line in completed.stdout.splitlines() if line.startswith("RESULT "))
    return json.loads(line[len("RESULT "):])


def test_evaluation_peak_memory_does_not_grow_with_samples(tmp_path):
    result = _worker_result(WORKER, tmp_path / "run", 4096, 262144, 4096)
    small, large = result["4096"], result["262144"]
    assert (small["n_samples"], large["n_samples"]) == (4096, 262144)
    # the kept series is 2 MiB; 64x the samples costs less than 128 MiB of peak memory
    assert large["peak_mib"] - small["peak_mib"] < 128
    # the same chains, longer: the error shrinks like 1/sqrt(samples) (factor 8, within noise)
    assert large["error"] < small["error"] / 4


def test_request_that_cannot_fit_is_refused_before_compute():
    from qernel.streaming import check_fits_in_memory

    check_fits_in_memory(10**6, 4096, available=2**30)
    with pytest.raises(MemoryError, match=r"n_samples=100000000000 keeps .* GiB .* block_size=4096 and sampler.chunk_size"):
        check_fits_in_memory(10**11, 4096, available=2**34)


def test_cli_refuses_an_evaluation_that_cannot_fit(tmp_path, capsys):
    from qernel.cli import main

    assert main(["evaluate", str(tmp_path / "checkpoint.npz"), "--n-samples", str(10**14)]) == 2
    err = capsys.readouterr().err
    assert "n_samples=100000000000000 keeps" in err and "sampler.chunk_size" in err


SCAN_WORKER = Path(__file__).parent / "_scan_memory_worker.py"


def test_scan_peak_memory_does_not_grow_with_samples(tmp_path):
    """``scan_checkpoint`` in blocks of 3072: 64x the samples (3072 -> 196608 over 3 values of V,
    a density map at one of them) keeps 120 bytes per sample (22.5 MiB at the large count); the
    S(q) shells and the 24 x 24 density map are per-chain sums. Measured on the project's 2-core
    machine, over the second small scan: +50 MiB (914 -> 964 MiB) and, under heavy load, +112 MiB
    (953 -> 1066 MiB); the scan before streaming (all samples at once) +1050 MiB (949 -> 1999 MiB).
    The bound below lies between the two."""
    result = _worker_result(SCAN_WORKER, tmp_path / "run", 3072, 196608, 3072)
    baseline, large = result["small_again"], result["large"]
    assert large["density_n_samples"] == 64 * baseline["density_n_samples"]
    assert large["peak_mib"] - baseline["peak_mib"] < 256
    # the same chains, longer: the errors shrink like 1/sqrt(samples) (factor 8, within noise)
    assert large["E_error"] < baseline["E_error"] / 4
    assert large["order_parameter_error"] < baseline["order_parameter_error"] / 4
