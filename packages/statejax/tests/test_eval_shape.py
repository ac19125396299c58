"""statejax.eval_shape: output shapes of stateful functions, no state changes, no tracers."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from stategraph.errors import TraceContextError
from stategraph.extend import has_tracer, is_poisoned


def shapes(tree):
    return jax.tree.map(lambda s: (tuple(s.shape), np.dtype(s.dtype)), tree)


def assert_concrete(*states):
    for s in states:
        assert not has_tracer(s.value), s
        for leaf in jax.tree.leaves(s.value):
            assert isinstance(leaf, (jax.Array, np.ndarray, float, int)), type(leaf)


def test_matches_jax_eval_shape_and_changes_nothing():
    w = sg.ParamState(jnp.ones((3, 4)), name="w")
    b = sg.ParamState(jnp.zeros(4), name="b")
    count = sg.ShortTermState(jnp.zeros((), jnp.int32), name="count")

    def f(x, *, scale):
        count.value = count.value + 1
        w.value = w.value * scale
        y = x @ w.value + b.value
        return {"y": y, "mean": y.mean(axis=0), "n": count.value}

    def pure(x, w, b, count, scale):
        y = x @ (w * scale) + b
        return {"y": y, "mean": y.mean(axis=0), "n": count + 1}

    x = jnp.ones((5, 3))
    before = [w.value, b.value, count.value]
    got = sj.eval_shape(f, x, scale=2.0)
    want = jax.eval_shape(pure, x, w.value, b.value, count.value, 2.0)
    assert shapes(got) == shapes(want)
    assert all(isinstance(s, jax.ShapeDtypeStruct) for s in jax.tree.leaves(got))
    assert [w.value, b.value, count.value] == before  # the same objects: nothing was written
    assert_concrete(w, b, count)


def test_shape_dtype_struct_arguments():
    w = sg.ParamState(jnp.ones((3, 2), jnp.float16), name="w")
    out = sj.eval_shape(lambda x: x @ w.value, jax.ShapeDtypeStruct((7, 3), jnp.float16))
    assert out.shape == (7, 2) and out.dtype == jnp.float16
    assert_concrete(w)


def test_new_states_created_inside_are_poisoned_not_tracer_holding():
    made = []

    def f(x):
        s = sg.ShortTermState(jnp.zeros_like(x) + x, name="made")
        made.append(s)
        host = sg.State(np.ones(2), name="host")  # concrete value: stays as it is
        made.append(host)
        return s.value * 2

    out = sj.eval_shape(f, jnp.ones(3))
    assert out.shape == (3,)
    s, host = made
    assert is_poisoned(s)
    assert not has_tracer(s._value)
    with pytest.raises(TraceContextError, match="made"):
        s.value
    s.value = jnp.ones(3)  # a write un-poisons it
    assert not is_poisoned(s)
    assert not is_poisoned(host)
    np.testing.assert_array_equal(host.value, np.ones(2))


def test_written_states_stay_unchanged_even_with_new_shapes_inside():
    h = sg.ShortTermState(jnp.arange(3.0), name="h")

    def f(x):
        h.value = jnp.sin(h.value) + x
        h.value = h.value * 2
        return h.value[:2]

    assert sj.eval_shape(f, 1.0).shape == (2,)
    np.testing.assert_array_equal(h.value, jnp.arange(3.0))
    assert_concrete(h)


def test_errors_propagate_and_leave_states_unchanged():
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    before = h.value

    def f(x):
        h.value = h.value + x
        return x @ jnp.ones((4, 4))  # shape error

    with pytest.raises(TypeError):
        sj.eval_shape(f, jnp.ones(3))
    assert h.value is before
    with pytest.raises(TypeError, match="callable"):
        sj.eval_shape(3, 1.0)


def test_states_passed_as_arguments_are_refused():
    s = sg.State(jnp.zeros(2), name="s")
    with pytest.raises(TypeError, match="States must not be passed"):
        sj.eval_shape(lambda a: a, s)


def test_stateful_transforms_and_nesting():
    h = sg.ShortTermState(jnp.zeros((4, 3)), name="h")
    step = sj.vmap(lambda x: setattr(h, "value", h.value + x) or h.value.sum(), in_states=h)
    assert sj.eval_shape(step, jnp.ones((4, 3))).shape == (4,)
    assert sj.eval_shape(sj.jit(lambda x: h.value * x), 2.0).shape == (4, 3)
    assert_concrete(h)
    np.testing.assert_array_equal(h.value, np.zeros((4, 3)))

    # inside a jitted function: a trace-time query, nothing leaks
    @sj.jit
    def g(x):
        s = sj.eval_shape(lambda y: h.value @ y, x)
        h.value = h.value + 1
        return jnp.zeros(s.shape)

    assert g(jnp.ones(3)).shape == (4,)
    np.testing.assert_array_equal(h.value, np.ones((4, 3)))
    assert_concrete(h)


def test_python_body_is_traced_once_per_signature():
    calls = []
    w = sg.ParamState(jnp.ones(2), name="w")

    def f(x):
        calls.append(1)
        return x * w.value

    for _ in range(3):
        sj.eval_shape(f, jnp.ones(2))
    assert len(calls) == 1
    sj.eval_shape(f, jnp.ones((3, 2)))
    assert len(calls) == 2


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(1, 4),
    m=st.integers(1, 4),
    dtype=st.sampled_from([jnp.float32, jnp.int32, jnp.float16]),
)
def test_property_matches_jax_eval_shape(n, m, dtype):
    w = sg.ParamState(jnp.ones((m, 2), dtype), name="w")

    def f(x):
        w.value = w.value + 1
        return (x @ w.value, x.sum(axis=0))

    x = jax.ShapeDtypeStruct((n, m), dtype)
    got = sj.eval_shape(f, x)
    want = jax.eval_shape(lambda x, w: (x @ (w + 1), x.sum(axis=0)), x, w.value)
    assert shapes(got) == shapes(want)
    assert_concrete(w)
