"""The docs build's coverage check (docs/_ext/api_coverage.py) finds undocumented public names.

The check itself runs inside ``nox -s docs``; here its logic is tested on hand-made sets of
documented objects, without Sphinx.
"""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "docs" / "_ext" / "api_coverage.py"
PACKAGES = ["stategraph", "statejax", "statediff", "statediff_units"]


def load_extension():
    spec = importlib.util.spec_from_file_location("api_coverage", EXT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def ext():
    return load_extension()


@pytest.fixture(scope="module")
def present() -> list[str]:
    return [p for p in PACKAGES if importlib.util.find_spec(p) is not None]


def everything(ext, packages: list[str]) -> dict[str, str]:
    """Documented objects covering every public name, under its own full name."""
    objects = {}
    for package in packages:
        objects[package] = "module"
        for full, obj in ext.public_names(package):
            objects[obj.__name__ if inspect.ismodule(obj) else full] = (
                "module" if inspect.ismodule(obj) else "data"
            )
    return objects


def test_full_documentation_passes(ext, present) -> None:
    assert ext.undocumented(present, everything(ext, present)) == []


def test_a_missing_function_is_reported(ext, present) -> None:
    if "statejax" not in present:
        pytest.skip("statejax not installed")
    objects = everything(ext, present)
    del objects["statejax.jit"]
    assert ext.undocumented(present, objects) == ["statejax.jit"]


def test_a_reexport_is_covered_by_the_original(ext, present) -> None:
    objects = everything(ext, present)
    for name in [n for n in objects if n.endswith(".StateError")]:
        del objects[name]
    objects["stategraph.errors.StateError"] = "exception"
    assert ext.undocumented(present, objects) == []
    del objects["stategraph.errors.StateError"]
    missing = ext.undocumented(present, objects)
    assert "stategraph.StateError" in missing and "stategraph.errors.StateError" in missing


def test_an_undocumented_submodule_is_reported(ext, present) -> None:
    objects = everything(ext, present)
    del objects["stategraph.extend"]
    missing = ext.undocumented(present, objects)
    assert any(m.startswith("stategraph.extend (module") for m in missing)


def test_data_needs_its_own_entry(ext, present) -> None:
    objects = everything(ext, present)
    del objects["stategraph.__version__"]
    assert ext.undocumented(present, objects) == ["stategraph.__version__"]
