"""The public surface of `interplay.infotheory`: documented, and no name hiding a module."""

import importlib
import inspect
import pkgutil
import types

import pytest

import interplay.infotheory as it

SUBMODULES = [m.name for m in pkgutil.iter_modules(it.__path__)]
PUBLIC_MODULES = [importlib.import_module(f"{it.__name__}.{m}") for m in SUBMODULES if m[0] != "_"]
FORMULA = set("=·Σ√λ⊙")  # an equation or a sum, product or eigenvalue in the text


def _defined(module: types.ModuleType) -> dict[str, object]:
    """The functions and classes a module defines under public names (not its imports)."""
    return {
        f"{module.__name__}.{name}": obj
        for name, obj in vars(module).items()
        if name[0] != "_"
        and (inspect.isfunction(obj) or inspect.isclass(obj))
        and getattr(obj, "__module__", None) == module.__name__
    }


PUBLIC = {k: v for m in PUBLIC_MODULES for k, v in _defined(m).items()}


def test_the_public_modules_are_the_documented_ones():
    assert len(PUBLIC) > 50
    internal = {m for m in SUBMODULES if m[0] == "_"}
    assert internal == {"_checks", "_precision", "_sharding"}
    assert not {n for n in it.__all__ if n[0] == "_"}


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_has_a_formula_or_an_example(name):
    doc = inspect.getdoc(PUBLIC[name]) or ""
    assert ">>>" in doc or FORMULA & set(doc), f"{name}: docstring without formula or example"


@pytest.mark.parametrize("name", sorted(it.__all__))
def test_top_level_names_are_documented_public_objects(name):
    obj = getattr(it, name)
    if isinstance(obj, types.ModuleType):
        assert obj.__name__ == f"{it.__name__}.{name}"
    else:
        assert f"{obj.__module__}.{obj.__qualname__}" in PUBLIC, name


@pytest.mark.parametrize("module", SUBMODULES)
def test_no_function_shadows_a_module(module):
    importlib.import_module(f"{it.__name__}.{module}")
    bound = getattr(it, module)
    assert isinstance(bound, types.ModuleType), f"it.{module} is {bound!r}, not the module"


def test_one_class_entropies():
    named = [k for k in PUBLIC if k.rsplit(".", 1)[1] == "class_entropies"]
    assert named == ["interplay.infotheory.clustering.class_entropies"]
