"""Each API page leads with the functions users call, then the classes, and links to JAX.

The pages (docs/api/*.md) generate their entries from ``__all__`` with the ``api-members``
directive of docs/_ext/api_pages.py. The source order is checked always; the rendered order
and the links to the JAX function each transform mirrors are checked when the docs have
been built (``nox -s docs``).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
API = ROOT / "docs" / "api"
BUILT = ROOT / "docs" / "_build" / "html" / "api"
PAGES = ["stategraph", "statejax", "statediff", "statediff_units"]
MIRRORS = {
    "statejax": {"jit": "jax.jit", "vmap": "jax.vmap", "scan": "jax.lax.scan"},
    "statediff": {"grad": "jax.grad", "jacfwd": "jax.jacfwd", "hessian": "jax.hessian"},
}


@pytest.mark.parametrize("page", PAGES)
def test_functions_section_comes_before_classes(page: str) -> None:
    text = (API / f"{page}.md").read_text()
    functions = text.index("## Functions")
    classes = text.index("## Classes")
    assert functions < classes
    assert ":kind: functions" in text[functions:classes]
    assert ":kind: classes" in text[classes:]


def _ids(html: str, package: str) -> list[str]:
    return re.findall(rf'<dt class="sig[^"]*" id="({re.escape(package)}\.\w+)"', html)


@pytest.mark.parametrize("page", PAGES)
def test_built_page_lists_functions_first(page: str) -> None:
    path = BUILT / f"{page}.html"
    if not path.exists():
        pytest.skip("docs not built (nox -s docs)")
    module = pytest.importorskip(page)
    ids = _ids(path.read_text(encoding="utf-8"), page)
    kinds = [isinstance(getattr(module, i.rsplit(".", 1)[1]), type) for i in ids]
    assert kinds and not kinds[0], f"{page}: the page opens with a class: {ids[:3]}"
    first_class = kinds.index(True) if True in kinds else len(kinds)
    # The leading block is functions only (hooks for frameworks may follow the classes).
    assert not any(kinds[:first_class]) and first_class >= 3, ids


@pytest.mark.parametrize("package", sorted(MIRRORS))
def test_built_page_links_to_the_jax_function(package: str) -> None:
    path = BUILT / f"{package}.html"
    if not path.exists():
        pytest.skip("docs not built (nox -s docs)")
    html = path.read_text(encoding="utf-8")
    for name, target in MIRRORS[package].items():
        start = html.index(f'id="{package}.{name}"')
        entry = html[start : start + 20000]
        assert f"_autosummary/{target}.html" in entry, f"{package}.{name} has no link to {target}"
