"""Every ```python block of the guide runs, page by page, in order, in a fresh interpreter.

Pages: ``docs/guide/*.md`` and ``docs/brainstate.md``. The blocks of one page share one
namespace, like a notebook. A block whose first line is ``# doc: no-run`` is skipped (shown in
the docs, not run). The blocks state their facts with ``assert``, so a change of behaviour fails
here. The interpreter sees 8 virtual CPU devices (for the sharding page), as the test sessions
give the unit tests.

Run one page by hand with ``python tests/integration/test_docs_examples.py docs/guide/units.md``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted((DOCS / "guide").glob("*.md")) + [DOCS / "brainstate.md"]
NO_RUN = "# doc: no-run"
CPU_DEVICES = "--xla_force_host_platform_device_count=8"
TIMEOUT_S = 600

# A fenced block opening with ```python (or ```py) at the start of a line, up to its closing fence.
_BLOCK = re.compile(
    r"^(?P<fence>`{3,})(?:python|py)[ \t]*\n(?P<code>.*?)^(?P=fence)[ \t]*$", re.M | re.S
)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """Return ``(first line number, code)`` for each python block, skipping no-run blocks."""
    blocks = []
    for match in _BLOCK.finditer(text):
        code = match.group("code")
        if code.lstrip().startswith(NO_RUN):
            continue
        line = text.count("\n", 0, match.start("code")) + 1
        blocks.append((line, code))
    return blocks


def run_page(page: Path) -> None:
    """Execute the page's blocks in one namespace; tracebacks show the page's line numbers."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    for line, code in python_blocks(page.read_text(encoding="utf-8")):
        # Padding with newlines makes the code's line numbers those of the Markdown file.
        exec(compile("\n" * (line - 1) + code, str(page), "exec"), namespace)


def test_block_extraction() -> None:
    text = (
        "x\n```python\na = 1\n```\n\n```python\n# doc: no-run\nraise SystemExit\n```\n"
        "````python\nb = '''\n```\n'''\n````\n```bash\nexit 1\n```\n"
    )
    blocks = python_blocks(text)
    assert [line for line, _ in blocks] == [3, 11]
    assert blocks[0][1] == "a = 1\n"
    assert "b = '''" in blocks[1][1]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(DOCS)))
def test_page_runs(page: Path) -> None:
    if not page.exists():
        pytest.skip(f"{page.relative_to(ROOT)} does not exist")
    if not python_blocks(page.read_text(encoding="utf-8")):
        pytest.skip(f"{page.relative_to(ROOT)} has no runnable python block")
    env = dict(os.environ)
    flags = env.get("XLA_FLAGS", "")
    if CPU_DEVICES not in flags:
        env["XLA_FLAGS"] = f"{flags} {CPU_DEVICES}".strip()
    env.setdefault("MPLBACKEND", "Agg")
    proc = subprocess.run(
        [sys.executable, __file__, str(page)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert proc.returncode == 0, (
        f"{page.relative_to(ROOT)}: a code block failed (line numbers are the page's)\n"
        f"--- stdout ---\n{proc.stdout[-4000:]}\n--- stderr ---\n{proc.stderr[-8000:]}"
    )


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        run_page(Path(arg).resolve())
