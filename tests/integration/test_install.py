"""Every install command of the README works, as written, in a fresh virtual environment.

Each ```bash block of the README's "Install" section is one way to install the stack. The test
copies ``packages/`` into a temporary folder (so wheelhouses and venvs never land in the
checkout), runs the block there with bash (``set -e``: every line must succeed), and then
checks what the block's venv can import: the whole stack, or, for the wheelhouse install of
one layer, that layer and the ones below it and nothing above; an editable install must import
from the copied folders. pip blocks use the venv's own pip; uv blocks need uv next to the
interpreter running the tests (the integration session installs it).

These are the slowest tests of the suite (a venv and a full install each, JAX included, from
PyPI or the local caches), so there are only as many as the README has blocks, and they run
in parallel with the rest under pytest-xdist.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LAYERS = ["stategraph", "statejax", "statediff", "statediff_units"]
TIMEOUT_S = 900

_BLOCK = re.compile(r"^```bash[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


def install_section(text: str) -> str:
    """The README's "## Install" section, up to the next level-2 heading."""
    match = re.search(r"^## Install[ \t]*\n(?P<body>.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "README.md has no '## Install' section"
    return match.group("body")


def install_blocks() -> list[str]:
    """The bash blocks of the README's install section, in order."""
    return [m.group("code") for m in _BLOCK.finditer(install_section(README.read_text()))]


def expected_imports(block: str) -> tuple[list[str], list[str]]:
    """(packages the block's venv must import, packages it must not have)."""
    match = re.search(r"--find-links\s+\S+\s+(?P<dist>[\w-]+)", block)
    if match is None:
        return LAYERS, []
    top = match.group("dist").replace("-", "_")
    assert top in LAYERS, f"the wheelhouse line installs {top!r}, not a layer of the stack"
    upto = LAYERS.index(top) + 1
    return LAYERS[:upto], LAYERS[upto:]


def _block_id(block: str) -> str:
    if "--find-links" in block:
        return "wheelhouse-one-layer"
    if " -e " in block:
        return "editable-uv" if "uv" in block else "editable-pip"
    return "whole-stack-uv" if "python3 -m uv" in block else "whole-stack-pip"


BLOCKS = install_blocks()


def test_the_readme_documents_the_three_ways() -> None:
    ids = [_block_id(b) for b in BLOCKS]
    assert "wheelhouse-one-layer" in ids
    assert any(i.startswith("whole-stack") for i in ids)
    assert any(i.startswith("editable") for i in ids)
    for block in BLOCKS:
        assert ".venv" in block, f"a block that does not create its fresh venv:\n{block}"


def test_block_parsing() -> None:
    assert expected_imports("pip install --find-links wheelhouse statejax") == (
        ["stategraph", "statejax"],
        ["statediff", "statediff_units"],
    )
    assert expected_imports("pip install ./packages/stategraph")[1] == []


def _clean_env(tmp: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME", "CONDA_PREFIX")
        and not k.startswith(("PIP_", "UV_"))
    }
    # `python3` is the interpreter running the tests (the session venv's, under nox).
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["HOME"] = os.environ.get("HOME", str(tmp))  # the pip and uv caches stay shared
    env["JAX_PLATFORMS"] = "cpu"
    return env


@pytest.mark.parametrize("block", BLOCKS, ids=[_block_id(b) for b in BLOCKS])
def test_install_block_works_in_a_fresh_venv(block: str, tmp_path: Path) -> None:
    if "python3 -m uv" in block:
        probe = subprocess.run([sys.executable, "-m", "uv", "--version"], capture_output=True)
        if probe.returncode != 0:
            pytest.skip("uv is not installed next to this interpreter (nox -s tests installs it)")
    shutil.copytree(
        ROOT / "packages",
        tmp_path / "packages",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "tests", ".venv", "build", "dist"),
    )
    env = _clean_env(tmp_path)
    proc = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"README install block failed (exit {proc.returncode}):\n{block}\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-6000:]}"
    )
    python = tmp_path / ".venv" / "bin" / "python"
    assert python.exists(), "the block did not create .venv"
    present, absent = expected_imports(block)
    check = (
        "import importlib, importlib.util, json\n"
        f"present = {present!r}\n"
        f"absent = {absent!r}\n"
        "mods = {n: importlib.import_module(n) for n in present}\n"
        "versions = {m.__version__ for m in mods.values()}\n"
        "assert len(versions) == 1, versions\n"
        "missing = [n for n in absent if importlib.util.find_spec(n) is not None]\n"
        "assert not missing, f'installed although not asked for: {missing}'\n"
        "print(json.dumps({n: m.__file__ for n, m in mods.items()}))\n"
    )
    out = subprocess.run(
        [str(python), "-c", check], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert out.returncode == 0, f"after:\n{block}\n{out.stdout}\n{out.stderr[-4000:]}"
    if " -e " in block:
        assert str(tmp_path / "packages") in out.stdout, f"not an editable install: {out.stdout}"
