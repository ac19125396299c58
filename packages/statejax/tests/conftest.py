"""Shared fixtures of the statejax tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from stategraph.extend import ACTIVE, open_traces

# ``multihost`` (helpers that work on one process and on several) sits next to the tests.
sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.fixture(autouse=True)
def _no_leaked_traces():
    """Every test must leave no state trace or catcher open, in this thread or any other."""
    assert ACTIVE.count == 0, "a previous test left a state trace or catcher open"
    yield
    assert open_traces() == ()
    assert ACTIVE.count == 0
