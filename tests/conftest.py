"""Test-session setup: pin each test process (or xdist worker) to one CPU before JAX starts its
threads (jaxlib 0.10's LAPACK deadlock on few cores, see qernel/_xla.py). ``QERNEL_PIN_CPU=1`` is
set for the subprocesses the tests start (they pin on ``import qernel``); ``QERNEL_PIN_CPU=0``
in the environment turns all of it off."""

import os

from qernel._xla import PIN_VARIABLE, pin_to_one_cpu

os.environ.setdefault(PIN_VARIABLE, "1")


def pytest_configure(config):
    # The xdist controller runs no JAX, and the workers it starts inherit its CPU affinity: pinned
    # here, it would put every worker on its own one CPU (the suite then ran on one core of two).
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    pin_to_one_cpu()
