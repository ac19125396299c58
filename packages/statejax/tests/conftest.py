"""Shared fixtures of the statejax tests."""

from __future__ import annotations

import pytest

from stategraph.extend import ACTIVE, open_traces


@pytest.fixture(autouse=True)
def _no_leaked_traces():
    """Every test must leave no state trace or catcher open, in this thread or any other."""
    assert ACTIVE.count == 0, "a previous test left a state trace or catcher open"
    yield
    assert open_traces() == ()
    assert ACTIVE.count == 0
