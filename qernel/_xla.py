"""CPU affinity applied when qernel is imported, to avoid an XLA CPU deadlock seen on our machines.

With jax/jaxlib 0.10.x on the project's CPU machines (2-core VMs), XLA's CPU runtime
intermittently deadlocked: every worker thread idle in a futex wait, the compilation or the
result never delivered (seen in compiling new programs, in determinant / linear-solve kernels
and in NetKet's Hessian-based kinetic operator; reproduced 4 times in 4 runs of the same script).
Restricting the process to a single CPU made the same script complete every time. qernel
therefore pins the importing process to one CPU of its allowed set, chosen from the pytest-xdist
worker index or the process id so that parallel processes spread over the cores.

Set ``QERNEL_PIN_CPU=0`` to keep the affinity untouched (e.g. on large CPU nodes after checking
that no hang occurs there, or on GPU machines where the host threads matter little).
"""

from __future__ import annotations

import os
import re

__all__ = ["pin_to_one_cpu"]


def pin_to_one_cpu() -> int | None:
    """Pin this process to one allowed CPU (see module docstring); returns the CPU or None."""
    if os.environ.get("QERNEL_PIN_CPU", "1") == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) <= 1:
        return allowed[0] if allowed else None
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = int(worker.group(1)) if worker else os.getpid()
    cpu = allowed[index % len(allowed)]
    os.sched_setaffinity(0, {cpu})
    return cpu
