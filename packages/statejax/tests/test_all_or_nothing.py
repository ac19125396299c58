"""All or nothing: a call that raises leaves every state exactly as it was.

If tracing or execution raises, every state holds its value from before the
call (the very same object), never a tracer, and the failed signature is not
cached: a later successful call works and matches plain JAX.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj

SETTINGS = settings(max_examples=6, deadline=None)


class Boom(Exception):
    pass


def assert_tree_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-6)


def holds_no_tracer(state):
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(state._value))


def assert_untouched(states, before):
    for s, v in zip(states, before, strict=True):
        assert s._value is v, f"{s!r} changed"
        assert holds_no_tracer(s)


def make_states(n):
    return [
        sg.ShortTermState({"v": jnp.full(2, float(i)), "c": jnp.int32(i)}, name=f"s{i}")
        for i in range(n)
    ]


def body_for(states, fail_at, flag):
    """Write every state in turn; raise after ``fail_at`` writes while ``flag[0]``."""
    runs = []

    def body(x):
        runs.append(1)
        total = x
        for i, s in enumerate(states):
            if flag[0] and i == fail_at:
                raise Boom(f"after {i} writes")
            s.value = {"v": s.value["v"] * 2 + x, "c": s.value["c"] + 1}
            total = total + s.value["v"].sum()
        if flag[0] and fail_at == len(states):
            raise Boom("after every write")
        return total

    def pure(values, x):
        new = [{"v": v["v"] * 2 + x, "c": v["c"] + 1} for v in values]
        return x + sum(v["v"].sum() for v in new), new

    return body, jax.jit(pure), runs


# ------------------------------------------------------------------- tracing
@SETTINGS
@given(n=st.integers(1, 4), data=st.data(), kind=st.sampled_from(["jit", "sf"]))
def test_tracing_error_restores_every_state_and_is_not_cached(n, data, kind):
    fail_at = data.draw(st.integers(0, n))
    states = make_states(n)
    flag = [True]
    body, pure, runs = body_for(states, fail_at, flag)
    fn = sj.jit(body) if kind == "jit" else sj.StatefulFunction(body)
    before = [s._value for s in states]
    for _ in range(2):  # failing twice: both times traced, both times restored
        with pytest.raises(Boom):
            fn(1.0)
        assert_untouched(states, before)
    assert len(runs) == 2
    flag[0] = False
    out_e, values_e = pure([s.value for s in states], 1.0)
    assert_tree_equal(fn(1.0), out_e)
    for s, v in zip(states, values_e, strict=True):
        assert_tree_equal(s.value, v)
    assert len(runs) == 3


def test_tracing_error_of_a_new_signature_on_the_compiled_path():
    # The function is compiled for f32[2]; a new shape is traced inside JAX's dispatch.
    states = make_states(2)
    flag = [False]
    body, pure, runs = body_for(states, 1, flag)
    fn = sj.jit(body)
    fn(jnp.ones(2))
    fn(jnp.ones(2))
    flag[0] = True
    before = [s._value for s in states]
    with pytest.raises(Boom):
        fn(jnp.float32(1.0))
    assert_untouched(states, before)
    flag[0] = False
    for x in (jnp.float32(1.0), jnp.ones(2)):
        out_e, values_e = pure([s.value for s in states], x)
        assert_tree_equal(fn(x), out_e)
        for s, v in zip(states, values_e, strict=True):
            assert_tree_equal(s.value, v)


def test_structure_error_in_a_later_write_undoes_the_earlier_writes():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    b = sg.ShortTermState(jnp.zeros(2), name="b")
    grow = [True]

    @sj.jit
    def step(x):
        a.value = a.value + x
        b.value = jnp.zeros(3) if grow[0] else b.value + 2 * x
        return x

    before = [a._value, b._value]
    with pytest.raises(sg.StateStructureError, match="'b'"):
        step(1.0)
    assert_untouched([a, b], before)
    grow[0] = False
    step(1.0)
    assert_tree_equal([a.value, b.value], [jnp.ones(2), jnp.full(2, 2.0)])


def test_refused_write_back_inside_a_state_trace_undoes_the_earlier_ones():
    # Inside an open StateTrace the write-back is checked; the write-only state
    # `out` was given another shape outside, so its write is refused: the write
    # of `a` before it must be undone.
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    out = sg.ShortTermState(jnp.zeros(2), name="out")

    @sj.jit
    def step(x):
        a.value = a.value + x
        out.value = x * jnp.ones(2)
        return x

    step(1.0)
    out.value = jnp.zeros(5)
    before = [a._value, out._value]
    with pytest.raises(sg.StateStructureError, match="'out'"):
        with sg.StateTrace():
            step(1.0)
    assert_untouched([a, out], before)
    step(1.0)  # outside any trace the write-only state simply takes the new value
    assert_tree_equal([a.value, out.value], [jnp.full(2, 2.0), jnp.ones(2)])


def test_type_error_from_the_body_is_not_swallowed():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    bad = [False]

    @sj.jit
    def step(x):
        a.value = a.value + x
        if bad[0]:
            raise TypeError("user bug")
        return x

    step(jnp.ones(2))
    bad[0] = True
    before = a._value
    with pytest.raises(TypeError, match="user bug"):
        step(jnp.float32(1.0))  # new signature, traced inside the compiled call
    assert_untouched([a], [before])


def test_error_in_a_nested_function_restores_the_outer_writes_too():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    b = sg.ShortTermState(jnp.ones(2), name="b")
    flag = [True]

    @sj.jit
    def inner(x):
        b.value = b.value * x
        if flag[0]:
            raise Boom("inner")
        return b.value

    @sj.jit
    def outer(x):
        a.value = a.value + x
        return inner(x) + a.value

    before = [a._value, b._value]
    with pytest.raises(Boom):
        outer(3.0)
    assert_untouched([a, b], before)
    flag[0] = False
    out_e = jax.jit(lambda a_, b_, x: (b_ * x + a_ + x, a_ + x, b_ * x))(a.value, b.value, 3.0)
    assert_tree_equal((outer(3.0), a.value, b.value), out_e)


# ----------------------------------------------------------------- execution
def test_execution_error_restores_every_state():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    w = sg.ParamState(jnp.ones(2), name="w")
    fail = [False]

    def check(x):
        if fail[0]:
            raise RuntimeError("failed at run time")

    @sj.jit
    def step(x):
        a.value = a.value + w.value * x
        jax.debug.callback(check, x)
        return a.value.sum()

    pure = jax.jit(lambda a_, w_, x: ((a_ + w_ * x).sum(), a_ + w_ * x))
    step(1.0)  # compiled and cached
    fail[0] = True
    before = [a._value, w._value]
    with pytest.raises(Exception, match="failed at run time"):
        step(2.0)
        jax.effects_barrier()
    assert_untouched([a, w], before)
    fail[0] = False
    out_e, a_e = pure(a.value, w.value, 2.0)
    assert_tree_equal(step(2.0), out_e)
    assert_tree_equal(a.value, a_e)


def test_plain_jit_write_is_refused_without_a_trace_of_it():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    before = a._value

    @jax.jit
    def leak(x):
        a.value = a.value + x
        return x

    with pytest.raises(sg.TraceContextError):
        leak(1.0)
    assert_untouched([a], [before])


# ------------------------------------------------------- states created inside
@pytest.mark.parametrize("kind", ["jit", "sf", "make_jaxpr"])
def test_states_created_inside_never_hold_a_tracer(kind):
    made = []

    def body(x):
        s = sg.ShortTermState(x * 2, name="local")
        made.append(s)
        return s.value + 1

    if kind == "jit":
        out = sj.jit(body)(jnp.arange(3.0))
        assert_tree_equal(out, jax.jit(lambda x: x * 2 + 1)(jnp.arange(3.0)))
    elif kind == "sf":
        sj.StatefulFunction(body).out_shapes(jnp.arange(3.0))
    else:
        sj.make_jaxpr(body)(jnp.arange(3.0))
    (s,) = made
    assert holds_no_tracer(s)
    with pytest.raises(sg.TraceContextError, match="created inside a traced function") as err:
        s.value
    assert "Fix:" in str(err.value)


def test_state_created_inside_a_failing_trace_holds_no_tracer():
    made = []

    @sj.jit
    def body(x):
        made.append(sg.ShortTermState(x * 2, name="local"))
        raise Boom("fail")

    with pytest.raises(Boom):
        body(1.0)
    (s,) = made
    assert holds_no_tracer(s)
    with pytest.raises(sg.TraceContextError):
        s.value
