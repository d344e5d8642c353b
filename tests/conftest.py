"""Test-session setup: pin each test process (or xdist worker) to one CPU before JAX starts its
threads (see qernel/_xla.py for why)."""

from qernel._xla import pin_to_one_cpu

pin_to_one_cpu()
