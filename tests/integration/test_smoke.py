"""Placeholder full-stack check: the stack imports and reports one shared version.

Full-stack scenarios (checked against plain-JAX references) go beside this file.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# (dist name, import name), bottom first.
STACK = [
    ("stategraph", "stategraph"),
    ("statejax", "statejax"),
    ("statediff", "statediff"),
    ("statediff-units", "statediff_units"),
]


def _declared_version(dist: str) -> str:
    text = (ROOT / "packages" / dist / "pyproject.toml").read_text()
    return tomllib.loads(text)["project"]["version"]


def test_stategraph_imports_with_its_version() -> None:
    import stategraph

    assert stategraph.__version__ == _declared_version("stategraph")


@pytest.mark.parametrize(("dist", "module"), STACK)
def test_layers_share_one_version(dist: str, module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__version__ == _declared_version(dist) == _declared_version("stategraph")
    try:
        installed = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:  # layers on PYTHONPATH (cuda legs)
        return
    assert installed == mod.__version__
