"""Clock and compiled-memory helpers shared by the benchmark scripts.

Imported as ``from _measure import ...``: the scripts are run as ``python benchmarks/NAME.py``, so
this folder is first on ``sys.path``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import jax

__all__ = ["clock", "memory_bytes"]


def clock(name: str) -> Callable[[], float]:
    """``time.process_time`` ("cpu": CPU time) or ``time.perf_counter`` ("wall").

    "auto": CPU time on CPU backends, where the scripts pin the process to one core, so that the time
    other processes hold that core on a shared machine is not counted; wall time on GPUs.
    """
    if name == "auto":
        name = "cpu" if jax.devices()[0].platform == "cpu" else "wall"
    return time.process_time if name == "cpu" else time.perf_counter


def memory_bytes(compiled) -> int:
    """Temp + argument + output bytes of a compiled XLA executable (its memory analysis)."""
    stats = compiled.memory_analysis()
    if isinstance(stats, (list, tuple)):
        stats = stats[0]
    return int(stats.temp_size_in_bytes + stats.argument_size_in_bytes + stats.output_size_in_bytes)
