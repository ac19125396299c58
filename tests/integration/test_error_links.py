"""Every message of the named error classes ends with a link to its entry on the errors page.

The link is ``(See <DOCS_URL>/errors.html#<anchor>)`` on a line of its own, where the anchor is
the full name of the nearest documented class (``stategraph.errors.TraceContextError``), which
is the id Sphinx's autodoc gives that entry on ``docs/errors.md``. When the docs have been built
(``nox -s docs``), the anchors are also checked against the HTML.
"""

from __future__ import annotations

import importlib.metadata
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import stategraph as sg
from stategraph.errors import DOCS_URL

ROOT = Path(__file__).resolve().parents[2]
BUILT_ERRORS_PAGE = ROOT / "docs" / "_build" / "html" / "errors.html"

STATE_ERRORS = [sg.StateError, sg.TraceContextError, sg.StateStructureError, sg.TraceOrderError]


def documented_classes() -> list[type]:
    classes: list[type] = list(STATE_ERRORS)
    try:
        import statediff
    except ImportError:
        return classes
    return [*classes, statediff.errors.UnitsNotInstalledError]


def link(anchor: str) -> str:
    return f"\n(See {DOCS_URL}/errors.html#{anchor})"


def test_docs_url_is_one_https_base() -> None:
    assert re.fullmatch(r"https://[\w.-]+(/[\w.-]+)*", DOCS_URL), DOCS_URL
    assert not DOCS_URL.endswith("/")


@pytest.mark.parametrize("cls", documented_classes(), ids=lambda c: c.__name__)
def test_message_ends_with_its_link(cls: type) -> None:
    anchor = f"{cls.__module__}.{cls.__qualname__}"
    err = cls("what went wrong. Fix: do it right.")
    text = str(err)
    assert text.startswith("what went wrong. Fix: do it right.")
    assert text.endswith(link(anchor))
    assert err.args == ("what went wrong. Fix: do it right.",)  # the arguments are untouched


def test_builtin_bases_are_kept() -> None:
    assert issubclass(sg.StateStructureError, ValueError)
    assert issubclass(sg.TraceOrderError, RuntimeError)
    statediff = pytest.importorskip("statediff")
    assert issubclass(statediff.UnitsNotInstalledError, ImportError)


def test_a_users_subclass_links_to_its_documented_base() -> None:
    class FrameworkError(sg.TraceContextError):
        pass

    assert str(FrameworkError("x")).endswith(link("stategraph.errors.TraceContextError"))


def test_reexported_classes_link_to_the_original() -> None:
    statejax = pytest.importorskip("statejax")
    assert statejax.errors.StateError is sg.StateError
    assert str(statejax.errors.StateStructureError("x")).endswith(
        link("stategraph.errors.StateStructureError")
    )


def test_a_raised_error_carries_the_link() -> None:
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    def step(x):
        h.value = h.value + x
        return x

    with pytest.raises(sg.TraceContextError) as info:
        jax.jit(step)(1.0)
    assert str(info.value).endswith(link("stategraph.errors.TraceContextError"))
    assert "Fix:" in str(info.value)


def test_units_not_installed_carries_the_link(monkeypatch: pytest.MonkeyPatch) -> None:
    statediff = pytest.importorskip("statediff")
    from statediff._src import units_hook

    monkeypatch.setattr(units_hook, "_BACKEND", [])
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])
    with pytest.raises(statediff.UnitsNotInstalledError) as info:
        statediff.jacfwd(lambda x: x, unit_aware=True)
    text = str(info.value)
    assert "pip install statediff-units" in text
    assert text.endswith(link("statediff.errors.UnitsNotInstalledError"))


@pytest.mark.skipif(not BUILT_ERRORS_PAGE.exists(), reason="docs not built (nox -s docs)")
@pytest.mark.parametrize("cls", documented_classes(), ids=lambda c: c.__name__)
def test_anchor_exists_in_the_built_errors_page(cls: type) -> None:
    html = BUILT_ERRORS_PAGE.read_text(encoding="utf-8")
    anchor = str(cls("x")).rsplit("#", 1)[1].rstrip(")")
    assert f'id="{anchor}"' in html, f"errors.html has no anchor {anchor!r}"
