"""Opt-in guard against a deadlock of jaxlib 0.10.x's CPU LAPACK kernels: one XLA thread.

**What hangs.** jaxlib 0.10.0-0.10.2 (``jaxlib/cpu/lapack_kernels.cc``, ``ParallelBatchMap``)
splits the batch of a LAPACK call (LU ``getrf``, triangular solve ``trsm``, Cholesky, eigen-
and singular-value solvers) into chunks, schedules them on XLA's intra-op thread pool and blocks
until they are done. The kernel itself runs on a thread of that same pool. When the thunk
executor runs as many independent LAPACK calls at once as the pool has threads, every thread
blocks waiting for chunks that no free thread is left to run: the process hangs at 0 % CPU.
On a 2-core machine the pool has 2 threads, and the Hessian or forward Laplacian of a
determinant (an LU followed by several independent triangular solves) is enough. A ``gdb``
backtrace of a hung process shows every ``tf_XLAEigen`` thread in
``lapack_*_ffi -> jax::ParallelBatchMap -> absl::BlockingCounter::Wait``.

**Reproduction** (jax/jaxlib 0.10.2, 2 cores; ``docs/howto/devices.md`` has the script): one
batched LU of 4000 16x16 matrices followed by 4 independent ``lu_solve`` in one jitted function
hung in 3 of 3 runs (``gdb``: both pool threads in ``BlockingCounter::Wait``); it finished in 3 of
3 runs with each of the two remedies below, and still hung in 3 of 3 with
``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` (that flag selects single-threaded Eigen
matmul/convolution code, not the pool LAPACK uses), ``--xla_cpu_use_thunk_runtime=false``,
``OMP_NUM_THREADS=OPENBLAS_NUM_THREADS=MKL_NUM_THREADS=1`` and ``JAX_CPU_ENABLE_ASYNC_DISPATCH=0``.

**What prevents it.** A pool of *one* thread: jaxlib then never splits a batch
(``GetLapackBatchChunkSize`` returns the whole batch when ``num_threads <= 1``). XLA sizes the pool
when JAX creates its CPU backend, from the environment variable ``PJRT_NPROC`` (or ``NPROC``) if
set, else from the process's CPU affinity. So either

* :func:`pin_to_one_cpu` before the first JAX computation (what the ``qernel`` CLI and the test
  suite do; xdist workers are spread over the cores), or
* ``PJRT_NPROC=1`` in the environment, which shrinks only XLA's pool and leaves the affinity of
  the process (NumPy/BLAS, compilation threads) alone.

Both cost XLA's intra-op parallelism on the CPU (run several processes, or more devices, for
parallel work). Upstream JAX no longer parallelises LAPACK batches in open-source builds (commit
``859992407d``, "Don't try to parallelize LAPACK kernels in opensource builds", July 2026; not in
the 0.11.0 tag), so releases after 0.11.0 should not need either; pyproject.toml requires 0.10.2.
GPU runs do not use these kernels. On CPU nodes with many cores all pool threads would have to
block at once, which a program with a few independent solves does not do (not tested here).

**Policy.** ``import qernel`` pins nothing unless ``QERNEL_PIN_CPU=1``. The ``qernel`` command
and the test suite call :func:`pin_to_one_cpu`; ``QERNEL_PIN_CPU=0`` turns every pinning off
(e.g. on a GPU machine), including calls in scripts.
"""

from __future__ import annotations

import os
import re
import sys
import warnings

__all__ = ["pin_to_one_cpu"]

#: Environment variable: ``1`` pins on ``import qernel``, ``0`` disables all pinning, unset: only
#: where :func:`pin_to_one_cpu` is called (the CLI, the test suite, scripts).
PIN_VARIABLE = "QERNEL_PIN_CPU"


def pin_setting() -> str:
    """The value of ``QERNEL_PIN_CPU``: ``""`` (unset), ``"0"`` or ``"1"``; anything else raises."""
    value = os.environ.get(PIN_VARIABLE, "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"{PIN_VARIABLE} must be 0 or 1 (or unset), got {value!r}")
    return value


def _jax_backend_initialized() -> bool:
    bridge = sys.modules.get("jax._src.xla_bridge")
    check = getattr(bridge, "backends_are_initialized", None)
    return bool(check()) if check is not None else False


def pin_to_one_cpu() -> int | None:
    """Pin the calling process to one CPU of its allowed set, so that XLA's CPU thread pool has one
    thread and jaxlib 0.10.x's LAPACK deadlock cannot occur (``qernel/_xla.py``,
    :doc:`/howto/devices`).

    Call it before the first JAX computation: XLA sizes its pool when the backend starts, and a
    later call only restricts the process (a warning says so). The CPU is chosen from the
    pytest-xdist worker index or the process id, so that parallel processes spread over the cores.
    Does nothing if ``QERNEL_PIN_CPU=0`` or the platform has no ``sched_setaffinity``.

    Returns:
        The CPU the process now runs on, or None if nothing was pinned.
    """
    if pin_setting() == "0" or not hasattr(os, "sched_setaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) <= 1:
        return allowed[0] if allowed else None
    if _jax_backend_initialized():
        warnings.warn(
            "qernel.pin_to_one_cpu() called after JAX started its CPU backend: XLA's thread pool keeps "
            "its size, so the LAPACK deadlock guard does not apply; call it before any JAX computation "
            "(or set PJRT_NPROC=1)",
            RuntimeWarning,
            stacklevel=2,
        )
    worker = re.fullmatch(r"gw(\d+)", os.environ.get("PYTEST_XDIST_WORKER", ""))
    index = int(worker.group(1)) if worker else os.getpid()
    cpu = allowed[index % len(allowed)]
    os.sched_setaffinity(0, {cpu})
    return cpu


def pin_if_requested() -> int | None:
    """``import qernel``'s hook: pin only if ``QERNEL_PIN_CPU=1``."""
    return pin_to_one_cpu() if pin_setting() == "1" else None
