"""Guard against a segmentation fault of jaxlib 0.10.2's CPU YNNPACK fusions in float32.

**What crashes.** jaxlib 0.10.2 (and 0.11.0) offloads float32 elementwise + reduce and dot
fusions on the CPU to YNNPACK (``__ynn_fusion`` in the optimised HLO, run by ``slinky``). Some
fusions of rank-7 arrays overflow YNNPACK's fixed-rank buffers, and the process dies with SIGSEGV
in a ``tf_XLAEigen`` thread (``slinky::fuse_contiguous_dims`` or ``optimize_dims`` under
``ynn::make_transpose_impl``). Upstream: jax-ml/jax#39257 and #40412 (0.10.1 not affected), fixed
by XNNPACK commit ``53a1797ba``, which no jaxlib release up to 0.11.0 contains. YNNPACK has no
float64 path, so float64 programs never reach it. In qernel the forward Laplacian of the
attention softmax (``qernel/ansatz/fused.py``, ``_softmax_last``) multiplies and reduces arrays
of shape (batch, 2N Jacobian rows, 1, kv heads, heads per kv head, N, N). With the model of
``examples/configs/moire_nu23_3x3.toml`` (4 heads over 2 kv heads, N = 6) every float32 run
died in its first local energy, in a process of its own as well; ``jnp.sum(a * b, axis=1)``
on float32 arrays of shape (256, 12, 1, 2, 2, 6, 6) alone reproduces the crash.

**What prevents it.** ``--xla_cpu_experimental_ynn_fusion_type=`` (an empty list) in
``XLA_FLAGS`` turns YNNPACK fusions off; XLA then compiles these fusions itself. XLA reads
``XLA_FLAGS`` once, when JAX creates its backend (``import netket`` does), so the flag has to
be in the environment before that: ``import qernel`` adds it (:func:`disable_ynn_fusion`) when
the installed jaxlib is one of the affected versions. It appends and never overrides: a
``xla_cpu_experimental_ynn_fusion_type`` the user put in ``XLA_FLAGS`` is kept, and
``QERNEL_YNN_GUARD=0`` leaves ``XLA_FLAGS`` alone. Child processes inherit the flag.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from importlib import metadata

__all__ = ["disable_ynn_fusion", "guarded_xla_flags"]

#: Environment variable: ``0`` keeps XLA's YNNPACK fusions (e.g. with a fixed jaxlib build)
GUARD_VARIABLE = "QERNEL_YNN_GUARD"
YNN_FLAG = "xla_cpu_experimental_ynn_fusion_type"
#: jaxlib versions (inclusive range) with the crash; later releases are untested
AFFECTED = ((0, 10, 2), (0, 11, 0))


def jaxlib_version() -> tuple[int, int, int] | None:
    """The installed jaxlib's ``(major, minor, patch)``, read without importing JAX (None if absent)."""
    try:
        match = re.match(r"(\d+)\.(\d+)\.(\d+)", metadata.version("jaxlib"))
    except metadata.PackageNotFoundError:
        return None
    return tuple(int(x) for x in match.groups()) if match else None


def guarded_xla_flags(xla_flags: str, version: tuple[int, int, int] | None) -> str | None:
    """``xla_flags`` with YNNPACK fusions turned off, or None when nothing needs to change (jaxlib
    ``version`` not affected, or the user already chose a YNN fusion setting)."""
    if version is None or not AFFECTED[0] <= version <= AFFECTED[1]:
        return None
    if YNN_FLAG in xla_flags:
        return None
    return f"{xla_flags} --{YNN_FLAG}=".strip()


def disable_ynn_fusion() -> bool:
    """Add ``--xla_cpu_experimental_ynn_fusion_type=`` to ``XLA_FLAGS`` on affected jaxlib versions
    (``import qernel`` calls it). Returns whether ``XLA_FLAGS`` was changed."""
    setting = os.environ.get(GUARD_VARIABLE, "").strip()
    if setting not in ("", "0", "1"):
        raise ValueError(f"{GUARD_VARIABLE} must be 0 or 1 (or unset), got {setting!r}")
    if setting == "0":
        return False
    flags = guarded_xla_flags(os.environ.get("XLA_FLAGS", ""), jaxlib_version())
    if flags is None:
        return False
    bridge = sys.modules.get("jax._src.xla_bridge")
    if bridge is not None and getattr(bridge, "backends_are_initialized", lambda: False)():
        warnings.warn(
            "qernel was imported after JAX started its backend: XLA has read XLA_FLAGS already, so float32 "
            f"programs may crash in YNNPACK fusions (jaxlib 0.10.2); set XLA_FLAGS=--{YNN_FLAG}= or import "
            "qernel before netket",
            RuntimeWarning,
            stacklevel=3,
        )
    os.environ["XLA_FLAGS"] = flags
    return True
