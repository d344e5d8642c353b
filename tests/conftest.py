"""Test-session setup: select XLA's classic CPU runtime before any test imports NetKet/JAX backends
(see qernel/_xla.py for why)."""

from qernel._xla import configure_xla_cpu_runtime

configure_xla_cpu_runtime()
