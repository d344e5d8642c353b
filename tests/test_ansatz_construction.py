"""Issue 16 item 9: one construction idiom in the ansatz.

* constructors with many arguments take them by keyword (a positional call still works for one
  release, with a ``DeprecationWarning`` that names the call);
* the Slater-Jastrow baseline is a Haiku module with its own config, built as
  ``make_slater_jastrow(config, hamiltonian, space)`` like ``make_qernel``; the plain transformer
  has its own config that refuses FiLM/MoE/GQA keys;
* the registry (TOML) path and the construction path build identical models (tree and values), and
  the old call forms build the same models as the new ones;
* one spelling (``center``), and type hints on the public functions of ``qernel.sampler``.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import typing
import warnings
from pathlib import Path

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from qernel._deprecation import positional_deprecated
from qernel.ansatz import (
    QERNEL,
    GroupedQueryAttention,
    Jastrow,
    MixtureOfExperts,
    Orbitals,
    PlainTransformerConfig,
    QERNELConfig,
    SlaterJastrow,
    SlaterJastrowConfig,
    TransformerBlock,
    make_plain_transformer,
    make_qernel,
    make_slater_jastrow,
)
from qernel.config import ConfigError, config_from_dict
from qernel.geometry.hilbert import ElectronHilbert
from qernel.geometry.lattice import triangular_lattice
from qernel.hamiltonian import HarmonicTrap, MoireHamiltonian
from qernel.run import build_hamiltonian, build_model, build_parameter_space
from qernel.sampler import ParameterGrid

from _perturb import perturbed

PACKAGE = Path(__file__).resolve().parents[1] / "qernel"
CELL = triangular_lattice(1.0).supercell(2)
SMALL = {"n_layers": 1, "width": 8, "num_heads": 2, "n_determinants": 1, "jastrow_smooth": 2}
MOE = {"num_kv_heads": 1, "num_experts": 2, "top_k": 1, "film_hidden": 4}


def _trees_equal(a, b) -> None:
    """Same tree structure, shapes, dtypes and values, bit for bit."""
    assert jax.tree_util.tree_structure(a) == jax.tree_util.tree_structure(b)
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        assert x.shape == y.shape and x.dtype == y.dtype
        np.testing.assert_array_equal(x, y)


def _same_model(reference, other, x, seed: int = 0) -> None:
    """Identical initial parameters at a fixed seed and identical log psi at moved parameters."""
    params = jax.jit(reference.init)(jax.random.PRNGKey(seed), x[:1])
    _trees_equal(params, jax.jit(other.init)(jax.random.PRNGKey(seed), x[:1]))
    moved = perturbed(params, seed=seed + 1, scale=0.1)
    np.testing.assert_array_equal(jax.jit(reference.apply)(moved, None, x), jax.jit(other.apply)(moved, None, x))


def _samples(hilbert: ElectronHilbert, values, n: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    r = rng.normal(scale=0.8, size=(n * len(values), 2 * hilbert.n_electrons))
    p = np.repeat(np.asarray(values, dtype=float).reshape(len(values), -1), n, axis=0)
    return np.concatenate([r, p], axis=1)


# -- the decorator ---------------------------------------------------------------------------------------
@positional_deprecated("b", "c")
def _toy(a, *, b=1, c=2, d=3):
    return (a, b, c, d)


def test_positional_deprecated_maps_old_positions_to_names_and_warns_naming_the_call():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the keyword form is silent
        assert _toy(0, b=5, c=6) == (0, 5, 6, 3)
    with pytest.warns(DeprecationWarning, match=r"test_ansatz_construction\._toy: passing b, c by position is "
                                                r"deprecated .* pass b=\.\.\., c=\.\.\. by keyword"):
        assert _toy(0, 5, 6, d=7) == (0, 5, 6, 7)
    with pytest.raises(TypeError, match="at most 3 positional"):
        _toy(0, 5, 6, 7)  # d was never positional
    with pytest.raises(TypeError, match="multiple values for argument 'b'"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        _toy(0, 5, b=6)
    with pytest.raises(TypeError, match="no keyword-only"):
        positional_deprecated("e")(_toy.__wrapped__)


#: (constructor, positional parameters it keeps, excluding self)
KEYWORD_ONLY = [
    (Jastrow, 3), (GroupedQueryAttention, 3), (MixtureOfExperts, 3), (TransformerBlock, 3), (Orbitals, 2),
    (QERNEL, 2), (SlaterJastrow, 2), (make_qernel, 3), (make_plain_transformer, 3),
]


@pytest.mark.parametrize("target, n_positional", KEYWORD_ONLY, ids=[t.__name__ for t, _ in KEYWORD_ONLY])
def test_many_argument_constructors_take_the_rest_by_keyword(target, n_positional):
    function = target.__init__ if inspect.isclass(target) else target
    parameters = [p for p in inspect.signature(function).parameters.values() if p.name != "self"]
    positional = [p.name for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    assert len(positional) == n_positional, positional
    assert len(parameters) > n_positional  # the rest is keyword-only


def _init(module_fn, *args):
    model = hk.transform(module_fn)
    params = model.init(jax.random.PRNGKey(0), *args)
    return params, model.apply(perturbed(params, 1, 0.1) if params else params, None, *args)


# (name, keyword construction, the same by the old positional order, the call's input)
_H = jax.random.normal(jax.random.PRNGKey(3), (2, 3, 8))
_P = jax.random.normal(jax.random.PRNGKey(4), (2, 1))
_R = jax.random.normal(jax.random.PRNGKey(5), (2, 3, 2))
LEGACY_MODULES = [
    ("Jastrow", lambda r: Jastrow(2, 1, CELL, cusp_coupling=0.7, length=0.4, n_smooth=3, name="j")(r),
     lambda r: Jastrow(2, 1, CELL, 0.7, 0.4, 3, "j")(r), (_R,)),
    ("GroupedQueryAttention", lambda h: GroupedQueryAttention(4, 2, 3, model_size=8, name="a")(h),
     lambda h: GroupedQueryAttention(4, 2, 3, 8, None, "a")(h), (_H,)),
    ("MixtureOfExperts", lambda h, p: MixtureOfExperts(3, 2, 5, routing="parameters", gating="renormalized",
                                                       dispatch="dense", name="m")(h, p)[0],
     lambda h, p: MixtureOfExperts(3, 2, 5, "parameters", "renormalized", jax.nn.gelu, "dense", "m")(h, p)[0],
     (_H, _P)),
    ("TransformerBlock", lambda h, p: TransformerBlock(2, 1, 6, num_experts=2, top_k=1, use_film=False,
                                                       name="b")(h, None, p)[0],
     lambda h, p: TransformerBlock(2, 1, 6, 2, 1, "parameters", "continuous", False, "gather", "b")(h, None, p)[0],
     (_H, _P)),
    ("Orbitals", lambda h, r: Orbitals(2, 1, n_determinants=2, complex_output=True, supercell=CELL,
                                       full_determinant=True, name="o")(h, r)[0],
     lambda h, r: Orbitals(2, 1, 2, True, CELL, "plane_wave", 1.0, None, True, "o")(h, r)[0], (_H, _R)),
]


@pytest.mark.parametrize("name, new, old, args", LEGACY_MODULES, ids=[m[0] for m in LEGACY_MODULES])
def test_old_positional_module_calls_build_the_same_module_with_a_warning(name, new, old, args):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        params, value = _init(new, *args)
    with pytest.warns(DeprecationWarning, match=rf"qernel\.ansatz\.\w+\.{name}: passing .* by position"):
        old_params, old_value = _init(old, *args)
    _trees_equal(params, old_params)
    np.testing.assert_array_equal(value, old_value)


@pytest.mark.slow  # ~100 s CPU (8 QERNEL compilations); by default the decorator's mapping and warning are
# covered by test_positional_deprecated_maps_old_positions_to_names_and_warns_naming_the_call and the
# module cases of test_old_positional_module_calls_build_the_same_module_with_a_warning
def test_old_positional_builder_calls_build_the_same_models():
    hilbert = ElectronHilbert(2, 1, CELL, ("V",))
    x = _samples(hilbert, [[5.0], [25.0]])
    config = QERNELConfig(**SMALL, **MOE)
    new = make_qernel(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0], with_aux=True)
    with pytest.warns(DeprecationWarning, match=r"qernel\.ansatz\.qernel\.make_qernel: passing parameter_scale, "
                                                r"with_aux by position"):
        old = make_qernel(config, hilbert, [15.0], [10.0], True)
    params = jax.jit(new.init)(jax.random.PRNGKey(0), x[:1])
    _trees_equal(params, jax.jit(old.init)(jax.random.PRNGKey(0), x[:1]))
    moved = perturbed(params, 2, 0.1)
    _trees_equal(jax.jit(new.apply)(moved, None, x), jax.jit(old.apply)(moved, None, x))  # log psi and router aux
    with pytest.warns(DeprecationWarning, match=r"make_plain_transformer: passing parameter_scale by position"):
        old_plain = make_plain_transformer(config, hilbert, [15.0], [10.0])
    _same_model(make_plain_transformer(config, hilbert, parameter_center=[15.0], parameter_scale=[10.0]), old_plain, x)


# -- registry path == construction path ------------------------------------------------------------------
MOIRE = {"system": {"kind": "moire", "supercell": 2, "n_electrons": 3},
         "parameters": {"type": "grid", "values": {"V": [5.0, 25.0]}}, "pretrain": {"steps": 0}}
TRAP = {"system": {"kind": "trap", "n_electrons": 3, "omega": 0.5, "interaction": 0.8},
        "parameters": {"type": "grid", "values": {"omega": [0.25, 1.0]}}, "pretrain": {"steps": 0}}


def _registry_model(system: dict, ansatz: dict):
    config = config_from_dict({**system, "ansatz": ansatz})
    ham = build_hamiltonian(config)
    space = build_parameter_space(config, ham)
    return ham, space, build_model(config, ham, space)


@pytest.mark.parametrize("system", [MOIRE, TRAP], ids=["moire", "trap"])
def test_registry_and_construction_paths_build_identical_models(system):
    """The TOML/registry path and the direct builders give the same tree and log psi; so do the old
    call forms (plain transformer from a QERNELConfig, Slater-Jastrow with options as arguments)."""
    periodic = system is MOIRE
    extra = {"n_harmonics": 2} if periodic else {}  # build_model's default for the 2x2 supercell
    ham, space, model = _registry_model(system, {"kind": "qernel", **SMALL, **MOE})
    x = _samples(ham.hilbert, np.asarray(space.points))
    _same_model(model, make_qernel(QERNELConfig(**SMALL, **MOE, **extra), ham, space), x)

    _, _, model = _registry_model(system, {"kind": "plain_transformer", **SMALL})
    _same_model(model, make_plain_transformer(PlainTransformerConfig(**SMALL, **extra), ham, space), x)
    _same_model(model, make_plain_transformer(QERNELConfig(**SMALL, **MOE, **extra), ham, space), x)  # old form

    sj = {"n_basis": 4, "jastrow_smooth": 2, "complex_output": periodic}
    _, _, model = _registry_model(system, {"kind": "slater_jastrow", **sj})
    _same_model(model, make_slater_jastrow(SlaterJastrowConfig(**sj), ham, space), x)
    with pytest.warns(DeprecationWarning, match=r"make_slater_jastrow\(system, \.\.\.\) with the options as "
                                                r"arguments is deprecated"):
        old = make_slater_jastrow(ham, **sj)
    _same_model(model, old, x)
    # the old (pre-module) parameter layout: coefficients at the top level, the Jastrow beside them
    params = jax.eval_shape(model.init, jax.random.PRNGKey(0), x[:1])
    assert set(params) == {"~", "jastrow"}
    spins = [s for s, n in (("up", ham.hilbert.n_up), ("down", ham.hilbert.n_down)) if n]
    assert set(params["~"]) == {f"coefficients_{s}_{part}" for s in spins
                                for part in (("real", "imag") if periodic else ("real",))}


def test_slater_jastrow_from_a_hilbert_space_and_from_the_hamiltonian():
    """The low-level path (an ElectronHilbert, physics from the config) equals the Hamiltonian path,
    and a wrong cusp coupling gives another log psi (the comparison can fail)."""
    ham = HarmonicTrap(2, omega=0.5, interaction=0.8)
    x = _samples(ham.hilbert, np.zeros((1, 0)))
    settings = SlaterJastrowConfig(complex_output=False, jastrow_smooth=2)
    by_hamiltonian = make_slater_jastrow(settings, ham)
    by_hilbert = make_slater_jastrow(settings.replace(cusp_coupling=0.8, length_scale=ham.length_scale), ham.hilbert)
    _same_model(by_hamiltonian, by_hilbert, x)
    wrong = make_slater_jastrow(settings.replace(cusp_coupling=1.0, length_scale=ham.length_scale), ham.hilbert)
    with pytest.raises(AssertionError):
        _same_model(by_hamiltonian, wrong, x)
    with pytest.raises(TypeError, match="set \\['n_basis'\\] in the config"):
        make_slater_jastrow(settings, ham, n_basis=3)
    with pytest.raises(ValueError, match="n_basis must be >= max"):
        make_slater_jastrow(SlaterJastrowConfig(n_basis=1), ElectronHilbert(2, 1, None, ()))  # 2 up electrons


def test_slater_jastrow_module_is_usable_in_a_custom_model():
    hilbert = ElectronHilbert(2, 1, CELL, ())
    x = _samples(hilbert, np.zeros((1, 0)))

    def forward(x):
        return SlaterJastrow(SlaterJastrowConfig(jastrow_smooth=1), hilbert, cusp_coupling=1.0)(x) + 1.0

    model = hk.transform(forward)
    params = model.init(jax.random.PRNGKey(0), x[:1])
    reference = make_slater_jastrow(SlaterJastrowConfig(jastrow_smooth=1, cusp_coupling=1.0), hilbert)
    np.testing.assert_array_equal(model.apply(params, None, x), reference.apply(params, None, x) + 1.0)


# -- per-kind configs ------------------------------------------------------------------------------------
@pytest.mark.parametrize("key, value", [("use_film", False), ("num_experts", 4), ("top_k", 1), ("routing", "parameters"),
                                        ("gating", "continuous"), ("moe_dispatch", "dense"), ("film_hidden", 8),
                                        ("film_layers", 1), ("num_kv_heads", 2), ("concat_parameters", True)])
def test_plain_transformer_config_rejects_film_moe_and_gqa_keys_naming_them(key, value):
    with pytest.raises(ConfigError) as info:
        config_from_dict({**TRAP, "ansatz": {"kind": "plain_transformer", "width": 8, key: value}})
    message = str(info.value)
    assert message.startswith(f"[ansatz] kind = \"plain_transformer\" does not take '{key}';") and "\n" not in message
    assert key in {f.name for f in dataclasses.fields(QERNELConfig)}  # a QERNEL key, foreign to this kind


def test_plain_transformer_config_validates_like_qernel_and_loads_old_checkpoint_configs():
    with pytest.raises(ValueError, match="PlainTransformerConfig.width=6 must be divisible by num_heads=4"):
        PlainTransformerConfig(width=6)
    stored = config_from_dict({**TRAP, "ansatz": {"kind": "plain_transformer", **SMALL}}).to_dict()
    stored["ansatz"].update(MOE, use_film=True)  # what an older qernel stored (a QERNELConfig, keys ignored)
    with pytest.raises(ConfigError, match="does not take"):
        config_from_dict(stored)
    loaded = config_from_dict(stored, checkpoint=True)
    assert loaded.ansatz.settings() == PlainTransformerConfig(**SMALL)


# -- one spelling ----------------------------------------------------------------------------------------
#: British spellings kept as deprecated aliases for one release
ALIASES = {"centred_jacobian", "centred_local_energies", "centres_within_groups", "fractional_centres",
           "cartesian_centres", "_warn_spelling"}


def test_code_identifiers_spell_center():
    """No function, class, argument, attribute or variable of the package is spelled ``centre``."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.append(node.name)
            elif isinstance(node, ast.arg):
                names.append(node.arg)
            elif isinstance(node, ast.Name):
                names.append(node.id)
            elif isinstance(node, ast.Attribute):
                names.append(node.attr)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.isidentifier():
                if (path.name, node.value) != ("config.py", "centre"):  # the hint for a TOML key spelled so
                    names.append(node.value)  # getattr(x, "name"), __all__ entries
            found += [f"{path.name}:{name}" for name in names
                      if "centre" in name.lower() and name not in ALIASES]
    assert found == []


def test_british_spellings_still_work_with_a_warning():
    from qernel import training
    from qernel.training import FoundationVMC

    ids = jnp.array([0, 0, 1, 1])
    energies = jnp.array([1.0, 2.0, 5.0, 9.0])
    with pytest.warns(DeprecationWarning, match=r"qernel\.training\.gradient\.centred_local_energies is deprecated"
                                                r".*use qernel\.training\.gradient\.centered_local_energies"):
        old = training.centred_local_energies(energies, ids, 2, None)
    _trees_equal(old, training.centered_local_energies(energies, ids, 2, None))
    assert FoundationVMC.centers_within_groups and FoundationVMC.centres_within_groups
    with pytest.raises(ConfigError, match=r"parameters\.centre: unknown key: qernel spells it 'center'"):
        config_from_dict({**TRAP, "parameters": {**TRAP["parameters"], "centre": {"omega": 0.5}}})


# -- type hints --------------------------------------------------------------------------------------------
def _public_callables(module):
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj):
            yield name, obj
        elif inspect.isclass(obj) and obj.__module__.startswith("qernel."):
            for attr, member in vars(obj).items():
                if inspect.isfunction(member) and member.__module__.startswith("qernel.") \
                        and (not attr.startswith("_") or attr == "__init__"):
                    yield f"{name}.{attr}", member


def _missing_hints(function) -> list[str]:
    hints = typing.get_type_hints(function)
    signature = inspect.signature(function)
    missing = [p for p in signature.parameters if p not in ("self", "cls") and p not in hints]
    return missing + ([] if "return" in hints else ["return"])


def test_public_sampler_functions_have_type_hints():
    import qernel.sampler as sampler
    from netket.sampler.rules import MetropolisRule

    netket_overrides = set(vars(MetropolisRule))  # NetKet's rule interface, typed by NetKet
    missing = {name: _missing_hints(function) for name, function in _public_callables(sampler)
               if name.rpartition(".")[2] not in netket_overrides or name.endswith("__init__")}
    assert {name: m for name, m in missing.items() if m} == {}
    assert _missing_hints(lambda x, y: x) == ["x", "y", "return"]  # the check can fail
