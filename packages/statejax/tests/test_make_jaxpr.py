"""statejax.make_jaxpr: the jaxpr of a stateful function and its states, in brainstate's layout."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj

SETTINGS = settings(max_examples=8, deadline=None)


def assert_tree_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-6)


def evaluate(jaxpr, *leaves):
    return jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, *leaves)


def test_returns_the_jaxpr_and_the_read_then_write_only_states():
    w = sg.ParamState(jnp.arange(3.0), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    out = sg.ShortTermState(jnp.zeros(()), name="out")

    def fun(x):
        h.value = h.value + w.value * x  # h read first, then w
        out.value = h.value.sum()  # out written, never read
        return h.value * 2

    def pure(h_value, w_value, out_value, x):
        new_h = h_value + w_value * x
        return new_h * 2, new_h, w_value, new_h.sum()

    before = [s.value for s in (w, h, out)]
    jaxpr, states = sj.make_jaxpr(fun)(2.0)
    assert states == [h, w, out]
    # brainstate's layout. Inputs: x, then every state h, w, out. Outputs: result, then
    # every state's final value (return_only_write=False, the default).
    assert len(jaxpr.in_avals) == 1 + 3
    assert len(jaxpr.out_avals) == 1 + 3
    flat = evaluate(jaxpr, 2.0, h.value, w.value, out.value)
    assert_tree_equal(flat, list(jax.jit(pure)(h.value, w.value, out.value, 2.0)))
    assert all(
        s.value is v for s, v in zip((w, h, out), before, strict=True)
    )  # the states are untouched
    expected = jax.make_jaxpr(pure)(h.value, w.value, out.value, 2.0)
    assert jaxpr.out_avals == expected.out_avals
    assert sorted(map(str, jaxpr.in_avals)) == sorted(map(str, expected.in_avals))
    # return_only_write=True: the outputs are the result, then the written h and out.
    jaxpr, states = sj.make_jaxpr(fun, return_only_write=True)(2.0)
    assert states == [h, w, out] and len(jaxpr.out_avals) == 1 + 2
    flat = evaluate(jaxpr, 2.0, h.value, w.value, out.value)
    full = jax.jit(pure)(h.value, w.value, out.value, 2.0)
    assert_tree_equal(flat, [full[0], full[1], full[3]])


def test_return_shape_gives_the_user_output_shapes():
    w = sg.ParamState({"a": jnp.ones((2, 3)), "b": jnp.zeros(3)}, name="w")

    def fun(x):
        return {"y": x @ w.value["a"] + w.value["b"], "n": (x.sum(),)}

    jaxpr, states, shapes = sj.make_jaxpr(fun, return_shape=True)(jnp.ones(2))
    assert states == [w]
    assert shapes == jax.eval_shape(fun, jnp.ones(2))
    assert len(jaxpr.in_avals) == 1 + 2  # x, then the two leaves of w's value
    flat = evaluate(jaxpr, jnp.arange(2.0), *jax.tree.leaves(w.value))
    want = jax.tree.leaves(jax.jit(fun)(jnp.arange(2.0))) + jax.tree.leaves(w.value)
    assert_tree_equal(flat, want)  # w is read only: its value passes through


def test_static_arguments_and_kwargs():
    w = sg.ParamState(jnp.arange(3.0), name="w")

    def fun(x, n, *, mode):
        for _ in range(n):
            w.value = w.value * x
        return getattr(w.value, mode)()

    def pure(w_value, x, n, mode):
        for _ in range(n):
            w_value = w_value * x
        return getattr(w_value, mode)(), w_value

    for n, mode in [(1, "sum"), (3, "max")]:
        jaxpr, states = sj.make_jaxpr(fun, static_argnums=1, static_argnames="mode")(
            2.0, n, mode=mode
        )
        assert states == [w]
        flat = evaluate(jaxpr, 2.0, w.value)
        assert_tree_equal(flat, list(jax.jit(pure, static_argnums=(2, 3))(w.value, 2.0, n, mode)))


def test_function_without_states():
    jaxpr, states = sj.make_jaxpr(lambda x, y: (x * y, x + y))(jnp.ones(2), 3.0)
    assert states == []
    expected = jax.make_jaxpr(lambda x, y: (x * y, x + y))(jnp.ones(2), 3.0)
    assert jaxpr.in_avals == expected.in_avals and jaxpr.out_avals == expected.out_avals
    assert_tree_equal(
        evaluate(jaxpr, jnp.arange(2.0), 3.0), evaluate(expected, jnp.arange(2.0), 3.0)
    )


def test_abstract_arguments():
    h = sg.ShortTermState(jnp.zeros((2, 2)), name="h")

    def fun(x):
        h.value = h.value + x
        return h.value.sum()

    jaxpr, states = sj.make_jaxpr(fun)(jax.ShapeDtypeStruct((2, 2), jnp.float32))
    assert states == [h]
    assert [a.shape for a in jaxpr.in_avals] == [(2, 2), (2, 2)]
    x = jnp.arange(4.0).reshape(2, 2)
    flat = evaluate(jaxpr, x, h.value)
    assert_tree_equal(flat, list(jax.jit(lambda h_, x: ((h_ + x).sum(), h_ + x))(h.value, x)))


@SETTINGS
@given(
    n=st.integers(1, 5),
    modes=st.lists(st.sampled_from(["r", "w", "rw"]), min_size=5, max_size=5),
    order=st.permutations(range(5)),
    shape=st.sampled_from([(), (2,), (2, 3)]),
)
def test_states_in_first_access_order_and_the_jaxpr_is_the_pure_function(n, modes, order, shape):
    states = [sg.State(jnp.full(shape, float(i + 1)), name=f"s{i}") for i in range(n)]
    order = [i for i in order if i < n]
    modes = modes[:n]

    def fun(x):
        acc = x
        for i in order:
            if modes[i] == "w":
                states[i].value = x * i
            else:
                acc = acc + states[i].value
                if modes[i] == "rw":
                    states[i].value = states[i].value * 2 + x
        return acc

    def pure(values, x):
        values, acc = list(values), x
        for i in order:
            if modes[i] == "w":
                values[i] = x * i
            else:
                acc = acc + values[i]
                if modes[i] == "rw":
                    values[i] = values[i] * 2 + x
        return acc, values

    x = jnp.full(shape, 0.5, jnp.float32)
    jaxpr, got = sj.make_jaxpr(fun)(x)
    read = [states[i] for i in order if modes[i] != "w"]
    written = [states[i] for i in order if modes[i] != "r"]
    write_only = [states[i] for i in order if modes[i] == "w"]
    assert got == read + write_only
    flat = evaluate(jaxpr, x, *[s.value for s in got])
    out_e, values_e = jax.jit(pure)([s.value for s in states], x)
    assert_tree_equal(flat, [out_e, *[values_e[states.index(s)] for s in got]])
    jaxpr, got = sj.make_jaxpr(fun, return_only_write=True)(x)
    flat = evaluate(jaxpr, x, *[s.value for s in got])
    only = [s for s in got if any(s is w for w in written)]
    assert_tree_equal(flat, [out_e, *[values_e[states.index(s)] for s in only]])
