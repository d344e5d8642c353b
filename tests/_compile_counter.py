"""Count XLA compilations inside a ``with`` block (shared by tests/test_scale.py and the sharding worker)."""

from __future__ import annotations

import contextlib

from jax import monitoring

#: JAX records this event once per XLA backend compilation (jax/_src/dispatch.py).
BACKEND_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"


@contextlib.contextmanager
def count_compilations():
    """Collect the names of the functions XLA compiles inside the ``with`` block."""
    names: list[str] = []

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == BACKEND_COMPILE_EVENT:
            names.append(str(kwargs.get("fun_name")))

    monitoring.register_event_duration_secs_listener(listener)
    try:
        yield names
    finally:
        monitoring.unregister_event_duration_listener(listener)
