"""statejax.while_loop against jax.lax.while_loop."""

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


@SETTINGS
@given(limit=st.integers(0, 12), size=st.integers(1, 4))
def test_while_loop_matches_lax_while_loop(limit, size):
    total = sg.ShortTermState(jnp.zeros(size), name="total")
    steps = sg.ShortTermState(jnp.zeros((), jnp.int32), name="steps")
    rate = sg.ParamState(jnp.linspace(0.5, 1.5, size), name="rate")

    def cond(i):
        return steps.value < limit  # reads a carried state

    def body(i):
        total.value = total.value + rate.value * i
        steps.value = steps.value + 1
        return i + 1.0

    out = sj.while_loop(cond, body, jnp.float32(0.0))

    def ref_cond(c):
        return c[2] < limit

    def ref_body(c):
        i, t, n = c
        return i + 1.0, t + jnp.linspace(0.5, 1.5, size) * i, n + 1

    r_i, r_t, r_n = jax.lax.while_loop(
        ref_cond, ref_body, (jnp.float32(0.0), jnp.zeros(size), jnp.int32(0))
    )
    np.testing.assert_allclose(out, r_i)
    np.testing.assert_allclose(total.value, r_t, rtol=1e-6)
    assert int(steps.value) == int(r_n) == limit
    np.testing.assert_allclose(rate.value, jnp.linspace(0.5, 1.5, size))


def test_cond_fun_writing_a_state_is_an_error_naming_it():
    flag = sg.ShortTermState(jnp.zeros(()), name="flag")
    before = flag.value

    def cond(i):
        flag.value = flag.value + 1
        return i < 3

    with pytest.raises(ValueError, match=r"cond_fun must not write states.*'flag'.*body_fun"):
        sj.while_loop(cond, lambda i: i + 1, 0)
    assert flag.value is before and not has_tracer(flag.value)


def test_while_loop_eager_calls_trace_once():
    calls = {"cond": 0, "body": 0}
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def cond(i):
        calls["cond"] += 1
        return i < 4

    def body(i):
        calls["body"] += 1
        acc.value = acc.value + i
        return i + 1

    for _ in range(5):
        assert int(sj.while_loop(cond, body, jnp.int32(0))) == 4
    assert calls == {"cond": 1, "body": 1}
    assert float(acc.value) == 5 * 6.0


def test_while_loop_inside_jit_and_state_seen_fresh():
    acc = sg.ShortTermState(jnp.ones(()), name="acc")

    @sj.jit
    def run(n):
        def body(i):
            acc.value = acc.value * 2
            return i + 1

        return sj.while_loop(lambda i: i < n, body, 0)

    assert int(run(3)) == 3
    assert float(acc.value) == 8.0
    acc.value = jnp.float32(1.0)  # changed outside: the next call sees it
    run(2)
    assert float(acc.value) == 4.0


def test_weakly_typed_state_is_carried():
    s = sg.State(0.0, name="weak")  # Python float: weak float32

    def body(i):
        s.value = s.value + jnp.float32(0.5)
        return i + 1

    sj.while_loop(lambda i: i < 4, body, 0)
    assert float(s.value) == 2.0
    assert s.value.dtype == jnp.float32


def test_strong_state_written_python_float_keeps_type():
    s = sg.State(jnp.float32(3.0), name="strong")

    def body(i):
        s.value = 1.0
        return i + 1

    sj.while_loop(lambda i: i < 2, body, 0)
    assert float(s.value) == 1.0
    assert not jax.typeof(s.value).weak_type


def test_body_error_is_all_or_nothing():
    s = sg.ShortTermState(jnp.ones(3), name="s")
    before = s.value

    def body(i):
        s.value = s.value + 1
        raise KeyError("body failed")

    with pytest.raises(KeyError, match="body failed"):
        sj.while_loop(lambda i: i < 2, body, 0)
    assert s.value is before and not has_tracer(s.value)


def test_shape_change_in_body_raises_structure_error():
    s = sg.ShortTermState(jnp.ones(3), name="s")
    before = s.value

    def body(i):
        s.value = jnp.ones(4)
        return i + 1

    with pytest.raises(sg.errors.StateStructureError, match="'s'"):
        sj.while_loop(lambda i: i < 2, body, 0)
    assert s.value is before


def test_weakly_typed_init_val_promoted_by_a_strong_body():
    s = sg.State(1.0, name="s")

    def body(c):
        s.value = s.value * 2
        return c + jnp.float32(1.0)

    out = sj.while_loop(lambda c: c < 3, body, 0.0)
    r_out, r_s = jax.lax.while_loop(
        lambda c: c[0] < 3, lambda c: (c[0] + jnp.float32(1.0), c[1] * 2), (0.0, 1.0)
    )
    np.testing.assert_allclose(out, r_out)
    np.testing.assert_allclose(s.value, r_s)
