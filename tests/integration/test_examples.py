"""Every ``examples/*.py`` script, and the README's example, run to completion (exit status 0).

Convention (see examples/README.md): a script names the optional modules it needs in a comment
header at its very top, e.g. ``# requires: matplotlib, brainunit``; the script is skipped when
one of them cannot be imported. Scripts write their files under ``$EXAMPLES_OUTPUT_DIR``
(here a temporary folder), defaulting to ``examples/output/``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
TIMEOUT_S = 300  # generous: the demo takes seconds, but CI machines are shared

_REQUIRES = re.compile(r"#\s*requires:\s*(.*)", re.IGNORECASE)


def required_modules(script: Path) -> list[str]:
    """The modules listed in ``# requires:`` lines of the script's leading comment block."""
    modules: list[str] = []
    for line in script.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if not stripped.startswith("#"):
            break  # the header ends at the first line that is not a comment
        match = _REQUIRES.match(stripped)
        if match:
            modules += [m for m in re.split(r"[,\s]+", match.group(1)) if m]
    return modules


def run_example(script: Path, out_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg", "EXAMPLES_OUTPUT_DIR": str(out_dir)}
    return subprocess.run(
        [sys.executable, str(script)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )


def test_examples_exist() -> None:
    assert (EXAMPLES / "demo.py") in SCRIPTS


def test_requires_header_parsing(tmp_path: Path) -> None:
    script = tmp_path / "x.py"
    script.write_text(
        '# requires: brainunit, optax\n# requires: matplotlib\n"""Doc."""\n# requires: never_read\n'
    )
    assert required_modules(script) == ["brainunit", "optax", "matplotlib"]


@pytest.mark.parametrize("script", SCRIPTS, ids=[s.name for s in SCRIPTS])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    for module in required_modules(script):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f"{script.name} requires {module!r}, which is not installed")
    proc = run_example(script, tmp_path)
    output = f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
    assert proc.returncode == 0, f"{script.name} exited with {proc.returncode}\n{output}"

    if script.name == "demo.py":
        # The table: a header and one OK row per Jacobian block, no FAIL.
        assert re.search(
            r"^block\s+jacobian shape\s+max \|jac\|\s+max abs err\s+check$",
            proc.stdout,
            re.MULTILINE,
        ), output
        rows = re.findall(
            r"^(\w+)\s+\([\d, ]+\)\s+\S+\s+\S+\s+(OK|FAIL)$", proc.stdout, re.MULTILINE
        )
        assert {name for name, _ in rows} >= {"W", "W_in", "tau", "b", "input"}, output
        assert all(status == "OK" for _, status in rows), output
        png = tmp_path / "demo_jacobian.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", output
        assert str(png) in proc.stdout, output


def readme_example() -> str:
    """The Python code block of the README's "## Example" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("\n## Example\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"^```python\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)
    assert len(blocks) == 1, "the README's Example section must hold one ```python block"
    return blocks[0]


def test_readme_example_runs(tmp_path: Path) -> None:
    script = tmp_path / "readme_example.py"
    script.write_text(readme_example(), encoding="utf-8")
    proc = run_example(script, tmp_path)
    assert proc.returncode == 0, f"the README example failed:\n{proc.stdout}\n{proc.stderr}"
    # Its last line prints the Jacobian shapes its comment announces.
    assert proc.stdout.split() == ["(3,", "3,", "3)", "(3,", "3)", "(3,", "3)"], proc.stdout
