"""
Configuration files, checkpoints, resuming and evaluating
=========================================================

The ``qernel`` command line runs everything from a TOML configuration:

.. code-block:: bash

    qernel train run.toml            # train, writing checkpoint.npz and log.jsonl
    qernel train run.toml --resume   # continue from the checkpoint
    qernel evaluate runs/tiny/checkpoint.npz --param V=5,10,15,20,25

This tutorial does the same through the Python functions the CLI calls
(:func:`qernel.config.load_config`, :func:`qernel.run.train`,
:func:`qernel.run.evaluate_checkpoint`), on a tiny system so that it runs during the
documentation build: a run is interrupted after 6 steps, resumed to 10, and the trained model is
evaluated on a grid of depths that includes values it never saw.
"""

# %%
# A configuration
# ---------------
# Every section and key is validated before any computation: an unknown key, a wrong type or an
# out-of-range value raises :class:`~qernel.config.ConfigError` naming ``section.key``. The
# ``[ansatz]`` keys are :class:`~qernel.ansatz.QERNELConfig` fields.
import json
import shutil
import tempfile
from pathlib import Path

from qernel.config import ConfigError, config_from_dict, load_config
from qernel.run import evaluate_checkpoint, train
from qernel.training.driver import read_log

workdir = Path(tempfile.mkdtemp(prefix="qernel-tutorial-"))
toml = f"""
[system]
kind = "moire"
V = 15.0            # meV (the carried V comes from [parameters])
phi = 45.0          # degrees
m_star = 0.35       # m_e
a_M = 8.031         # nm
eps = 10.0
supercell = [[2, 0], [0, 1]]
filling = 1.0
polarized = true

[parameters]
type = "grid"
values = {{ V = [5.0, 25.0] }}

[ansatz]
kind = "qernel"
n_layers = 1
width = 8
num_heads = 2
num_kv_heads = 1
num_experts = 1
top_k = 1
n_determinants = 1
film_hidden = 8

[sampler]
n_chains = 16
n_samples = 256
sweep_size = 2
n_discard_per_chain = 2
n_thermalise = 20

[optimizer]
n_steps = 6
learning_rate = 0.3
preconditioner = "minsr"
diag_shift = 0.01
max_update_norm = 0.5

[run]
seed = 0
output_dir = "{workdir / 'tiny'}"
checkpoint_every = 3
"""
config_path = workdir / "run.toml"
config_path.write_text(toml)
config = load_config(config_path)
print(config.parameters)
print(config.optimizer)

# %%
# A typo is caught before anything runs:
try:
    config_from_dict({"sampler": {"n_chain": 16}})
except ConfigError as error:
    print("ConfigError:", error)

# %%
# Train, "interrupted" after 6 steps
# ----------------------------------
# :func:`~qernel.run.train` builds the Hamiltonian, parameter space, model, sampler, ``MCState``
# and :class:`~qernel.training.driver.FoundationVMC` driver from the configuration, thermalises
# the chains, and runs to ``optimizer.n_steps``, writing ``log.jsonl`` after every step and an
# atomic checkpoint every ``run.checkpoint_every`` steps and at the end.
run = train(config, progress=False)
output = run.output_dir
print(sorted(p.name for p in output.iterdir()))

# %%
# Resume to 10 steps
# ------------------
# ``n_steps`` is the *total* number of steps of the run, so a resumed run continues to the same
# end. The checkpoint holds the variational parameters, optimizer state, sampler state (chains,
# per-chain step sizes, PRNG key) and step counter, so the resumed trajectory is the one an
# uninterrupted run would have followed (``tests/test_driver.py`` checks this bit for bit).
longer = load_config(config_path)
longer.optimizer.n_steps = 10
resumed = train(longer, resume=True, progress=False)
print("resumed run is at step", resumed.driver.step_count)

for record in read_log(output / "log.jsonl"):
    groups = "  ".join(f"V={g['parameters']['V']:g}: {g['energy']:8.3f} ± {g['error']:.3f}"
                       for g in record["groups"])
    print(f"step {record['step']:2d}  {groups}  [meV]")

# %%
# Starting again without ``resume`` refuses to overwrite the run:
try:
    train(config, progress=False)
except ConfigError as error:
    print("ConfigError:", error)

# %%
# Evaluate the checkpoint on a grid of depths
# -------------------------------------------
# :func:`~qernel.run.evaluate_checkpoint` (the ``qernel evaluate`` command) rebuilds the model
# from the configuration stored in the checkpoint and samples fresh chains at any values of the
# carried parameters, trained on or not.
records = evaluate_checkpoint(output / "checkpoint.npz", {"V": [5.0, 15.0, 25.0]},
                              n_samples=512, n_thermalise=30)
print(f"{'V [meV]':>8} {'E [meV]':>10} {'error':>7} {'acceptance':>10}")
for r in records:
    V = r["parameters"]["V"]
    print(f"{V:8.1f} {r['energy']:10.3f} {r['error']:7.3f} {r['acceptance']:10.2f}")
print(json.dumps(records[0], indent=1))
shutil.rmtree(workdir)  # the tutorial's temporary run directory
