"""donate_states=True and a call that fails at run time (issue 11)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj
from stategraph.errors import DonatedStateError, StateError


class Model:
    def __init__(self):
        self.h = sg.ShortTermState(jnp.arange(3.0), name="h")
        self.w = sg.ParamState(jnp.ones(3), name="w")


def _maybe_fail(flag):
    if flag:
        raise RuntimeError("injected failure")


def make(m):
    @sj.jit(donate_states=True)
    def step(x, fail):
        jax.debug.callback(_maybe_fail, fail)
        m.h.value = m.h.value * m.w.value + x
        return m.h.value.sum()

    return step


def pure_step(h, w, x):
    h = h * w + x
    return h.sum(), h


def test_failed_donating_call_leaves_a_named_state_error_and_restore_works():
    m = Model()
    step = make(m)
    step(1.0, False)
    # A copy: donation deletes the buffers a plain snapshot refers to, on success too.
    snap = jax.tree.map(jnp.copy, sg.snapshot(m))
    with pytest.raises(Exception, match="injected failure") as info:
        step(1.0, True)
    if not m.h._value.is_deleted():  # the backend did not donate: nothing was lost
        pytest.skip("this backend does not donate buffers")
    assert any("donate_states=True" in note for note in getattr(info.value, "__notes__", []))
    # Reading the state names it, the donation and the fix; never "Array has been deleted".
    with pytest.raises(DonatedStateError, match=r"ShortTermState 'h'.*donated.*restore") as err:
        m.h.value
    assert isinstance(err.value, StateError)
    # The next call raises the same named error.
    with pytest.raises(DonatedStateError, match="'h'"):
        step(1.0, False)
    # The read-only state was not donated and is intact.
    assert np.array_equal(m.w.value, jnp.ones(3))
    # Restoring from a snapshot makes everything work again (plain-JAX reference).
    ref_out, ref_h = pure_step(snap["h"], snap["w"], 2.0)
    sg.restore(m, snap)
    out = step(2.0, False)
    assert np.allclose(out, ref_out) and np.allclose(m.h.value, ref_h)


def test_writing_the_state_also_restores_it():
    m = Model()
    step = make(m)
    step(1.0, False)
    with pytest.raises(Exception, match="injected failure"):
        step(1.0, True)
    if not sg.extend.is_donated(m.h):
        pytest.skip("this backend does not donate buffers")
    m.h.value = jnp.zeros(3)
    assert float(step(1.0, False)) == 3.0


def test_without_donation_a_failure_changes_nothing():
    m = Model()

    @sj.jit
    def step(x, fail):
        jax.debug.callback(_maybe_fail, fail)
        m.h.value = m.h.value + x
        return m.h.value.sum()

    before = m.h.value
    with pytest.raises(Exception, match="injected failure"):
        step(1.0, True)
    assert m.h.value is before
