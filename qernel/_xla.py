"""XLA CPU runtime setting applied when qernel is imported (before JAX creates its CPU backend).

With jax/jaxlib 0.10.2, XLA's CPU "thunk" runtime was observed to deadlock (all worker threads
idle, the result never delivered) on some of qernel's programs: NetKet's Hessian-based
``KineticEnergy`` of the QERNEL model, and occasionally the determinant / linear-solve kernels of
training steps. The classic CPU runtime runs the same programs correctly at the same speed, so
qernel selects it by adding ``--xla_cpu_use_thunk_runtime=false`` to ``XLA_FLAGS`` unless the
user already set that flag, or sets ``QERNEL_KEEP_XLA_FLAGS=1``. GPU backends are unaffected.
The flag only takes effect if no JAX computation has run before ``import qernel``.
"""

from __future__ import annotations

import os
import warnings

_FLAG_NAME = "xla_cpu_use_thunk_runtime"


def configure_xla_cpu_runtime() -> None:
    """Add ``--xla_cpu_use_thunk_runtime=false`` to ``XLA_FLAGS`` (see module docstring)."""
    if os.environ.get("QERNEL_KEEP_XLA_FLAGS") == "1":
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if _FLAG_NAME in flags:
        return
    os.environ["XLA_FLAGS"] = f"{flags} --{_FLAG_NAME}=false".strip()
    if _backends_initialised():
        warnings.warn(
            "JAX's backend was initialised before qernel was imported (e.g. by `import netket`), so "
            f"qernel could not select XLA's classic CPU runtime (--{_FLAG_NAME}=false), which avoids a "
            "deadlock of jaxlib 0.10.2's CPU runtime on some programs. Import qernel before netket, or "
            f"set XLA_FLAGS=--{_FLAG_NAME}=false in the environment.",
            RuntimeWarning,
            stacklevel=3,
        )


def _backends_initialised() -> bool:
    try:
        from jax._src import xla_bridge
    except ImportError:  # pragma: no cover - JAX internals moved
        return False
    return bool(getattr(xla_bridge, "_backends", None))
