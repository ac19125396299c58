"""statejax.cond and statejax.switch against jax.lax.cond / jax.lax.switch."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer

SETTINGS = settings(max_examples=8, deadline=None)


def _model():
    acc = sg.ShortTermState(jnp.zeros(3), name="acc")
    w = sg.ParamState(jnp.arange(3.0), name="w")
    n = sg.ShortTermState(jnp.zeros((), jnp.int32), name="n")

    def up(x):
        acc.value = acc.value + w.value * x
        n.value = n.value + 1
        return acc.value.sum()

    def down(x):
        acc.value = acc.value - x
        return -x * 2

    return acc, w, n, up, down


def _ref_up(acc, w, n, x):
    acc = acc + w * x
    return acc.sum(), acc, n + 1


def _ref_down(acc, w, n, x):
    return -x * 2, acc - x, n


# ------------------------------------------------------------------------- cond


_SHARED = _model()  # one model for every example: the branches are traced once


def _ref_cond(p, acc, w, n, x):
    return jax.lax.cond(p, _ref_up, _ref_down, acc, w, n, x)


_REF_COND = jax.jit(_ref_cond)


@SETTINGS
@given(preds=st.lists(st.booleans(), min_size=1, max_size=4), x=st.floats(-3, 3, width=32))
def test_cond_matches_lax_cond(preds, x):
    acc, w, n, up, down = _SHARED
    acc.value, n.value = jnp.zeros(3), jnp.zeros((), jnp.int32)
    r_acc, r_n = acc.value, n.value
    x = jnp.float32(x)
    for p in preds:
        out = sj.cond(p, up, down, x)
        r_out, r_acc, r_n = _REF_COND(p, r_acc, w.value, r_n, x)
        np.testing.assert_allclose(out, r_out, rtol=1e-6)
        np.testing.assert_allclose(acc.value, r_acc, rtol=1e-6)
        assert int(n.value) == int(r_n)
    np.testing.assert_allclose(w.value, jnp.arange(3.0))


def test_cond_traced_pred_inside_jit():
    acc, w, n, up, down = _model()

    @sj.jit
    def f(x):
        return sj.cond(x > 0, up, down, x)

    np.testing.assert_allclose(f(1.0), 3.0)
    np.testing.assert_allclose(f(-1.0), 2.0)
    np.testing.assert_allclose(acc.value, jnp.arange(3.0) + 1.0)
    assert int(n.value) == 1


def test_cond_eager_calls_trace_the_branches_once():
    calls = {"t": 0, "f": 0}
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def t(x):
        calls["t"] += 1
        s.value = s.value + x
        return x

    def f(x):
        calls["f"] += 1
        return -x

    for i in range(5):
        sj.cond(i % 2 == 0, t, f, jnp.float32(1.0))
    assert calls == {"t": 1, "f": 1}
    assert float(s.value) == 3.0


def test_cond_weakly_typed_state_written_strong_value():
    s = sg.State(0.0, name="weak")  # a Python float: weakly typed float32
    x = jnp.ones((), jnp.float32)

    def write(x):
        s.value = s.value + x
        return x

    sj.cond(True, write, lambda x: x, x)
    assert float(s.value) == 1.0
    assert s.value.dtype == jnp.float32


def test_cond_strong_state_written_weak_value_keeps_its_type():
    s = sg.State(jnp.ones((), jnp.float32), name="strong")

    def write(x):
        s.value = 5.0  # a Python float: weakly typed
        return x

    sj.cond(True, write, lambda x: x, jnp.float32(1.0))
    assert float(s.value) == 5.0
    assert s.value.dtype == jnp.float32 and not jax.typeof(s.value).weak_type


def test_cond_branch_error_is_all_or_nothing():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    before = s.value

    def bad(x):
        s.value = s.value * x
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sj.cond(True, bad, lambda x: x, jnp.float32(2.0))
    assert s.value is before and not has_tracer(s.value)

    def good(x):
        s.value = s.value * x
        return x

    sj.cond(True, good, lambda x: x, jnp.float32(2.0))
    np.testing.assert_allclose(s.value, [2.0, 2.0])


# ----------------------------------------------------------------------- switch


def _switch_model():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    k = sg.ParamState(jnp.float32(3.0), name="k")
    branches = [
        lambda x: _set(s, s.value + x) or x,
        lambda x: _set(s, s.value * k.value) or 2 * x,
        lambda x: -x,
    ]
    return s, k, branches


def _set(state, value):
    state.value = value


_SWITCH = _switch_model()
_REF_BRANCHES = [
    lambda s_, x: (x, s_ + x),
    lambda s_, x: (2 * x, s_ * 3.0),
    lambda s_, x: (-x, s_),
]
_REF_SWITCH = jax.jit(lambda i, s_, x: jax.lax.switch(i, _REF_BRANCHES, s_, x))


@SETTINGS
@given(indices=st.lists(st.integers(-3, 6), min_size=1, max_size=5))
def test_switch_matches_lax_switch_with_clamping(indices):
    s, k, branches = _SWITCH
    s.value = ref_s = jnp.ones(2)
    x = jnp.float32(1.5)
    for i in indices:
        out = sj.switch(i, branches, x)
        r_out, ref_s = _REF_SWITCH(i, ref_s, x)
        np.testing.assert_allclose(out, r_out)
        np.testing.assert_allclose(s.value, ref_s)


def test_switch_traced_index_inside_jit():
    s, k, branches = _switch_model()
    f = sj.jit(lambda i, x: sj.switch(i, branches, x))
    np.testing.assert_allclose(f(1, 2.0), 4.0)
    np.testing.assert_allclose(s.value, [3.0, 3.0])
    np.testing.assert_allclose(f(-5, 2.0), 2.0)
    np.testing.assert_allclose(s.value, [5.0, 5.0])
    np.testing.assert_allclose(f(9, 2.0), -2.0)
    np.testing.assert_allclose(s.value, [5.0, 5.0])


def test_switch_eager_calls_trace_the_branches_once():
    count = [0, 0]
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def a(x):
        count[0] += 1
        s.value = s.value + x
        return x

    def b(x):
        count[1] += 1
        return x

    branches = [a, b]
    for i in range(6):
        sj.switch(i % 2, branches, jnp.float32(1.0))
    assert count == [1, 1]
    assert float(s.value) == 3.0


def test_switch_argument_errors():
    with pytest.raises(ValueError, match="non-empty"):
        sj.switch(0, [], 1.0)
    with pytest.raises(TypeError, match="sequence of callables"):
        sj.switch(0, lambda x: x, 1.0)
    with pytest.raises(TypeError, match=r"branches\[1\] must be callable"):
        sj.switch(0, [lambda x: x, 3], 1.0)


def test_switch_branch_error_is_all_or_nothing():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    before = s.value

    def write(x):
        s.value = s.value + x
        return x

    def bad(x):
        raise ValueError("bad branch")

    with pytest.raises(ValueError, match="bad branch"):
        sj.switch(0, [write, bad], jnp.float32(1.0))
    assert s.value is before and not has_tracer(s.value)


def test_branch_write_without_read_does_not_freeze_the_other_branchs_read():
    # One branch only writes `s`; the other reads it. The read must stay an
    # input of the compiled function (not a constant of the first trace).
    s = sg.State(jnp.float32(1.0), name="s")
    t = sg.State(jnp.float32(0.0), name="t")

    def writes(x):
        s.value = x * 2.0
        return x

    def reads(x):
        t.value = s.value + x
        return x

    for value in (1.0, 10.0, -3.0):
        s.value = jnp.float32(value)
        sj.cond(False, writes, reads, 1.0)
        np.testing.assert_allclose(t.value, value + 1.0)
    sj.cond(True, writes, reads, 4.0)
    np.testing.assert_allclose(s.value, 8.0)
