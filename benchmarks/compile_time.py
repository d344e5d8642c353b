"""Compile time of the first training step, part by part: trace, lowering and XLA compile.

The predecessor-sized model (4 blocks, width 64, 4 heads, dense feed-forward 64, 4 complex
determinants, no FiLM; ``benchmarks/sr_step.py --model predecessor``) on the 3x3 filling-2/3
system of ``examples/configs/moire_nu23_3x3.toml`` (N = 6, eps = 5), built with
:func:`qernel.run.build_run` as a user's run is (4 V values, 16 chains each; ``--batch``
samples per step; SPRING, as the config).

Two measurements per (dtype, batch), each in a fresh child process (so that no JAX cache is
shared; process CPU time, pinned to one core by :func:`qernel.pin_to_one_cpu`):

* ``parts``: the programs one step runs, each traced, lowered and compiled ahead of time
  (``jitted.trace(...)``, ``.lower()``, ``.compile()``) from the very jitted functions the driver
  calls, on abstract inputs (nothing is executed): the MCMC call (qernel's one compiled sweep,
  ``qernel.sampler.sampler._metropolis_sweep``; before it, NetKet's ``_sample_chain`` at the chain
  length of one step), the local energy of the batch (NetKet's ``_local_estimators_impl``
  with qernel's operator) and the per-sample Jacobian + SPRING direction (the driver's
  ``_update_direction``). Reported: seconds of each stage and the size of the lowered StableHLO
  text in characters (where the programs are big).
* ``step``: the user's view: ``driver.thermalise(20)`` then the first ``driver.step()``, then a
  second step (execution only); per compiled function, the trace, lowering and compile time
  JAX reports (process CPU time between the start and end events JAX records for each stage,
  ``jax.monitoring``) and how often it was compiled.

    python benchmarks/compile_time.py [--batch 256 1024] [--dtype float64 float32] [--what parts step]
                                      [--compare DIR] [--output FILE]

``--compare DIR`` measures, alternately with the installed package, the ``qernel`` package in
``DIR`` (``git archive <commit> qernel | tar -x -C DIR``): before and after a change in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = "examples/configs/moire_nu23_3x3.toml"
V_VALUES = [0.0, 10.0, 20.0, 30.0]
CHAINS_PER_VALUE = 16
#: the predecessor-sized model (as benchmarks/sr_step.py's PREDECESSOR)
PREDECESSOR_ANSATZ = dict(
    kind="qernel", n_layers=4, width=64, num_heads=4, num_kv_heads=4, ffn_hidden=64, num_experts=1, top_k=1,
    n_determinants=4, use_film=False,
)
N_THERMALISE = 20
#: jax.monitoring events (jax/_src/dispatch.py) and the column each one fills
EVENTS = {
    "/jax/core/compile/jaxpr_trace_duration": "trace",
    "/jax/core/compile/jaxpr_to_mlir_module_duration": "lower",
    "/jax/core/compile/backend_compile_duration": "compile",
}


def build(dtype: str, batch: int):
    """The run (:class:`qernel.run.Run`) of the predecessor model at ``dtype`` and ``batch``."""
    from qernel.config import load_config
    from qernel.run import build_run

    data = load_config(ROOT / CONFIG).to_dict()
    data["ansatz"] = dict(PREDECESSOR_ANSATZ)
    data["parameters"]["values"]["V"] = list(V_VALUES)
    data["sampler"].update(n_chains=CHAINS_PER_VALUE * len(V_VALUES), n_samples=batch)
    data["run"].update(dtype=dtype)
    data["pretrain"] = {"steps": 0}
    return build_run(data)


def _stages(jitted, *args, **kwargs) -> dict:
    """CPU seconds of trace, lower and compile of ``jitted`` on ``args``, and the HLO size."""
    start = time.process_time()
    traced = jitted.trace(*args, **kwargs)
    t_trace = time.process_time()
    lowered = traced.lower()
    t_lower = time.process_time()
    hlo_chars = len(lowered.as_text())
    t_text = time.process_time()
    lowered.compile()
    t_compile = time.process_time()
    return {"trace": t_trace - start, "lower": t_lower - t_trace, "compile": t_compile - t_text,
            "hlo_chars": hlo_chars}


def _mcmc_stages(sampler, machine, variables, state, length: int) -> dict:
    """Stages of the MCMC call: the one compiled sweep of qernel's sampler where it has one, else
    NetKet's ``_sample_chain`` (a scan over ``length`` sweeps, compiled per length)."""
    try:
        from qernel.sampler.sampler import _metropolis_sweep
    except ImportError:  # a qernel before the shared sweep (--compare)
        return _stages(type(sampler)._sample_chain, sampler, machine, variables, state, chain_length=length,
                       return_log_probabilities=False)
    return _stages(_metropolis_sweep, sampler, machine, variables, state)


def measure_parts(run) -> dict:
    """Trace/lower/compile of the MCMC call, the local energy and the direction (nothing executed)."""
    import jax
    import jax.numpy as jnp
    from netket.utils import wrap_afun
    from netket.vqs.mc import get_local_kernel
    from netket.vqs.mc.mc_state.local_estimators import _local_estimators_impl

    from qernel.sampler import chain_group_ids
    from qernel.training.driver import _update_direction

    vstate, driver = run.vstate, run.driver
    sampler = vstate.sampler
    n_chains, length = sampler.n_chains, vstate.chain_length
    real = jnp.dtype(sampler.dtype)
    samples = jax.ShapeDtypeStruct((n_chains, length, vstate.hilbert.size), real)
    energies = jax.ShapeDtypeStruct((n_chains * length,), jnp.result_type(real, 1j))
    group_ids = jnp.broadcast_to(jnp.asarray(chain_group_ids(vstate))[:, None], (n_chains, length)).reshape(-1)
    parts = {
        "mcmc": _mcmc_stages(sampler, wrap_afun(vstate._sampler_model), vstate._sampler_variables,
                             vstate.sampler_state, length),
        "local_energy": _stages(_local_estimators_impl, get_local_kernel(vstate, driver.operator, None),
                                vstate._apply_fun, samples.shape[:-1], vstate.variables, samples, driver.operator),
        "direction": _stages(
            _update_direction, vstate._apply_fun, vstate.parameters, vstate.model_state,
            jax.ShapeDtypeStruct((n_chains * length, samples.shape[-1]), real), energies, group_ids,
            driver._diag_shift(), driver.momentum, driver.previous_direction, n_groups=run.parameter_space.n_groups,
            clip_width=driver.clip_width, preconditioner=driver.preconditioner, chunk_size=vstate.chunk_size,
        ),
    }
    return parts


def measure_step(run) -> dict:
    """CPU seconds of thermalisation, the first and the second step; per-function compile events."""
    from jax import monitoring

    functions: dict = defaultdict(lambda: {"trace": 0.0, "lower": 0.0, "compile": 0.0, "n_compiles": 0})
    started: dict = defaultdict(list)  # (event, function) -> process CPU times at the starts

    def on_start(event: str, value: float, **kwargs) -> None:  # JAX records a scalar when a stage starts
        if event in EVENTS:
            started[event, str(kwargs.get("fun_name"))].append(time.process_time())

    def on_end(event: str, duration: float, **kwargs) -> None:  # ... and its (wall) duration at the end
        name = str(kwargs.get("fun_name"))
        if event in EVENTS and started[event, name]:
            entry = functions[name]
            entry[EVENTS[event]] += time.process_time() - started[event, name].pop()
            entry["n_compiles"] += event.endswith("backend_compile_duration")

    monitoring.register_scalar_listener(on_start)
    monitoring.register_event_duration_secs_listener(on_end)
    try:
        timings = {}
        start = time.process_time()
        run.driver.thermalise(N_THERMALISE)
        timings["thermalise"] = time.process_time() - start
        before_step = {k: dict(v) for k, v in functions.items()}
        start = time.process_time()
        run.driver.step()
        timings["first_step"] = time.process_time() - start
        first_step_functions = {
            k: {stage: v[stage] - before_step.get(k, {}).get(stage, 0) for stage in v} for k, v in functions.items()
        }
        start = time.process_time()
        run.driver.step()
        timings["second_step"] = time.process_time() - start
    finally:
        monitoring.unregister_event_duration_listener(on_end)
        monitoring.unregister_scalar_listener(on_start)
    return {"seconds": timings, "first_step_functions": {k: v for k, v in first_step_functions.items()
                                                         if v["n_compiles"] or v["trace"] > 0.01},
            "all_functions": dict(functions)}


def child(what: str, dtype: str, batch: int) -> dict:
    import qernel

    qernel.pin_to_one_cpu()
    import jax
    from qernel.ansatz.qernel import count_parameters

    start = time.process_time()
    run = build(dtype, batch)
    result = {"what": what, "dtype": dtype, "batch": batch, "build_seconds": time.process_time() - start,
              "n_parameters": count_parameters(run.vstate.parameters), "jax": jax.__version__,
              "qernel_file": qernel.__file__}
    result.update(measure_parts(run) if what == "parts" else measure_step(run))
    return result


def _run_child(what: str, dtype: str, batch: int, source: str | None = None) -> dict:
    """One measurement in a fresh process; ``source``: a directory whose ``qernel`` package is imported
    instead of the installed one (an older version, for before/after comparisons)."""
    command = [sys.executable, __file__, "--child", what, "--dtype", dtype, "--batch", str(batch)]
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(Path(source).resolve()), env.get("PYTHONPATH", "")])
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
    result = json.loads(out.strip().splitlines()[-1])
    result["code"] = "before" if source is not None else "current"
    imported = Path(result.pop("qernel_file")).resolve()
    if source is not None and Path(source).resolve() not in imported.parents:
        raise RuntimeError(f"--compare {source}: the child imported qernel from {imported}")
    return result


def report(results: list[dict]) -> None:
    print(f"{'dtype':>8s} {'batch':>6s} {'part':>14s} {'trace [s]':>10s} {'lower [s]':>10s} {'compile [s]':>12s} "
          f"{'HLO [kchar]':>12s}")
    for r in results:
        if r["what"] != "parts":
            continue
        for part in ("mcmc", "local_energy", "direction"):
            p = r[part]
            print(f"{r['dtype']:>8s} {r['batch']:6d} {part:>14s} {p['trace']:10.2f} {p['lower']:10.2f} "
                  f"{p['compile']:12.2f} {p['hlo_chars'] / 1e3:12.0f}  {r['code']}")
    for r in results:
        if r["what"] != "step":
            continue
        s = r["seconds"]
        print(f"\n[{r['code']}] {r['dtype']} batch {r['batch']} ({r['n_parameters']} parameters): thermalise({N_THERMALISE}) "
              f"{s['thermalise']:.1f} s, first step {s['first_step']:.1f} s, second step {s['second_step']:.1f} s "
              "(CPU); compiled functions (CPU time, all of thermalisation + 2 steps):")
        for name, v in sorted(r["all_functions"].items(), key=lambda kv: -kv[1]["compile"]):
            if v["n_compiles"] or v["trace"] > 0.05:
                print(f"  {name:>32s}: trace {v['trace']:6.2f} s, lower {v['lower']:6.2f} s, "
                      f"compile {v['compile']:6.2f} s, {v['n_compiles']} compile(s)")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    parser.add_argument("--dtype", nargs="+", default=["float64", "float32"], choices=["float32", "float64"])
    parser.add_argument("--what", nargs="+", default=["parts", "step"], choices=["parts", "step"])
    parser.add_argument("--output", default=None, help="JSON file for the results")
    parser.add_argument("--compare", default=None, metavar="DIR",
                        help="also measure the qernel package found in DIR (e.g. an older commit unpacked with "
                             "git archive), alternating with the installed one")
    parser.add_argument("--child", default=None, choices=["parts", "step"], help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.dtype[0], args.batch[0])))
        return 0
    results = []
    for dtype in args.dtype:
        for batch in args.batch:
            for what in args.what:
                for source in ([args.compare] if args.compare else []) + [None]:
                    results.append(_run_child(what, dtype, batch, source))
                    print(f"[{what} {dtype} {batch} {results[-1]['code']} done]", file=sys.stderr, flush=True)
    report(results)
    if args.output:
        meta = {"command": "python benchmarks/compile_time.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                "config": CONFIG, "ansatz": PREDECESSOR_ANSATZ, "V_values": V_VALUES, "platform": platform.machine(),
                "clock": "process CPU time"}
        Path(args.output).write_text(json.dumps({**meta, "results": results}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
