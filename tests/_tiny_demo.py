"""A shrunk ``qernel.cli.DEMO_CONFIG`` for the scale and sharding tests (not a test module).

The demo's moiré system (N = 4 spin-polarised electrons on a 2 x 2 WSe2/WS2 supercell) with a tiny
QERNEL model; each test supplies its own parameter space, sampler and optimizer sections.
"""

from __future__ import annotations

import copy

from qernel.cli import DEMO_CONFIG

#: one block, width 8, 2 query / 1 KV heads, 2 experts top-1, one determinant
TINY_ANSATZ = {"kind": "qernel", "n_layers": 1, "width": 8, "num_heads": 2, "num_kv_heads": 1,
               "num_experts": 2, "top_k": 1, "n_determinants": 1, "film_hidden": 8}


def tiny_demo_config(parameters: dict, sampler: dict, optimizer: dict) -> dict:
    """The demo's system with :data:`TINY_ANSATZ`, the given sections and ``run = {seed: 0}``."""
    config = copy.deepcopy(DEMO_CONFIG)
    config.update(parameters=parameters, ansatz=dict(TINY_ANSATZ), sampler=sampler, optimizer=optimizer,
                  run={"seed": 0})
    config["pretrain"] = {"steps": 0}  # the tests that want pretraining set it themselves
    return config
