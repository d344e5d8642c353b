"""Test-session setup.

* Pin each test process (or xdist worker) to one CPU before JAX starts its threads (jaxlib 0.10's
  LAPACK deadlock on few cores, see qernel/_xla.py). ``QERNEL_PIN_CPU=1`` is set for the
  subprocesses the tests start (they pin on ``import qernel``); ``QERNEL_PIN_CPU=0`` in the
  environment turns all of it off.
* One persistent JAX compilation cache per test session, in a temporary directory shared by the
  xdist workers and the subprocesses the tests start: many tests build the same tiny models and
  steps, and an XLA program compiled by one of them is then loaded, not compiled, by the others.
  A cached executable is the one the compiler would produce (the cache key covers the program, the
  compile options, the XLA flags and the jaxlib version), so no test changes meaning; JAX still
  records its backend-compile event on a cache hit, so compile counting (tests/_compile_counter.py)
  is unaffected. ``JAX_COMPILATION_CACHE_DIR`` set in the environment is used (and kept) instead.
"""

import importlib.util
import os
import shutil
import sys
import tempfile

from qernel._xla import PIN_VARIABLE, pin_to_one_cpu

os.environ.setdefault(PIN_VARIABLE, "1")

CACHE_VARIABLE = "JAX_COMPILATION_CACHE_DIR"
#: programs that compile faster than this are not worth a disk round trip (JAX's default is 1 s)
MIN_COMPILE_SECONDS = "0.5"
#: far above what a session writes (~100 MB): the limit only switches the file locking on
CACHE_MAX_BYTES = 8 * 2**30
_own_cache: str | None = None


def _compilation_cache() -> None:
    """Point JAX (this process and every child, which inherit the environment) at the session cache."""
    global _own_cache
    if not os.environ.get(CACHE_VARIABLE):  # the xdist controller (or a plain run) creates it
        _own_cache = tempfile.mkdtemp(prefix="qernel-jax-cache-")
        os.environ[CACHE_VARIABLE] = _own_cache
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", MIN_COMPILE_SECONDS)
    # A size limit makes JAX lock the directory around every read and write (it needs filelock):
    # without it a worker can read an entry another worker is still writing (a warning, then a
    # recompilation), and a few tests turn warnings into errors.
    if importlib.util.find_spec("filelock") is not None:
        os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(CACHE_MAX_BYTES))
    if "jax" in sys.modules:  # JAX reads its environment variables at import only
        import jax

        jax.config.update("jax_compilation_cache_dir", os.environ[CACHE_VARIABLE])
        jax.config.update("jax_persistent_cache_min_compile_time_secs",
                          float(os.environ["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"]))
        if "JAX_COMPILATION_CACHE_MAX_SIZE" in os.environ:
            jax.config.update("jax_compilation_cache_max_size", int(os.environ["JAX_COMPILATION_CACHE_MAX_SIZE"]))


def pytest_configure(config):
    _compilation_cache()
    # The xdist controller runs no JAX, and the workers it starts inherit its CPU affinity: pinned
    # here, it would put every worker on its own one CPU (the suite then ran on one core of two).
    if getattr(config.option, "numprocesses", None) and not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    pin_to_one_cpu()


def pytest_unconfigure(config):
    if _own_cache is not None:
        shutil.rmtree(_own_cache, ignore_errors=True)
