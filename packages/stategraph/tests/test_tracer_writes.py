"""Writes of JAX tracers: refused from transforms that do not manage states."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
from stategraph.extend import LiftTrace


def assert_concrete(state, expected):
    assert not isinstance(state.value, jax.core.Tracer)
    assert state.value is expected


def check_message(msg, label="ParamState 'w'"):
    assert label in msg
    assert "tracer" in msg
    assert "does not manage states" in msg
    assert "statejax" in msg and "statediff" in msg
    assert "Fix:" in msg


# ------------------------------------------------------------------ plain transforms
def test_write_from_plain_jit_raises_and_keeps_the_value():
    old = jnp.ones(3)
    w = sg.ParamState(old, name="w")

    @jax.jit
    def f(x):
        w.value = w.value * x
        return x

    with pytest.raises(sg.TraceContextError) as info:
        f(jnp.full(3, 2.0))
    check_message(str(info.value))
    assert "f32[3](traced)" in str(info.value)  # what was received
    assert_concrete(w, old)


def test_write_from_plain_vmap_raises_and_keeps_the_value():
    old = jnp.zeros(2)
    w = sg.ParamState(old, name="w")

    def f(x):
        w.value = x
        return x

    with pytest.raises(sg.TraceContextError) as info:
        jax.vmap(f)(jnp.ones((5, 2)))
    check_message(str(info.value))
    assert_concrete(w, old)


def test_write_from_plain_grad_raises_and_keeps_the_value():
    old = jnp.zeros(3)
    w = sg.ParamState(old, name="w")

    def loss(x):
        w.value = x * 2
        return jnp.sum(x**2)

    with pytest.raises(sg.TraceContextError) as info:
        jax.grad(loss)(jnp.ones(3))
    check_message(str(info.value))
    assert_concrete(w, old)


def test_write_from_plain_scan_raises():
    old = jnp.zeros(())
    h = sg.HiddenState(old, name="h")

    def body(carry, x):
        h.value = carry + x
        return carry + x, None

    with pytest.raises(sg.TraceContextError, match="HiddenState 'h'"):
        jax.lax.scan(body, jnp.zeros(()), jnp.arange(3.0))
    assert_concrete(h, old)


def test_write_of_a_pytree_holding_one_tracer_raises():
    old = {"a": jnp.zeros(2), "b": jnp.zeros(2)}
    s = sg.State(old, name="pair")

    @jax.jit
    def f(x):
        s.value = {"a": jnp.zeros(2), "b": x}
        return x

    with pytest.raises(sg.TraceContextError, match="State 'pair'"):
        f(jnp.ones(2))
    assert_concrete(s, old)


def test_write_from_jit_raises_even_inside_a_state_trace():
    # A plain StateTrace does not manage tracers: only LiftTrace does.
    old = jnp.ones(2)
    w = sg.ParamState(old, name="w")

    def f(x):
        with sg.StateTrace():
            w.value = x
        return x

    with pytest.raises(sg.TraceContextError):
        jax.jit(f)(jnp.ones(2))
    with sg.StateTrace(), pytest.raises(sg.TraceContextError):
        jax.jit(f)(jnp.ones(2))
    assert_concrete(w, old)


def test_unnamed_state_is_identified_in_the_message():
    s = sg.State(jnp.zeros(1))

    def f(x):
        s.value = x
        return x

    with pytest.raises(sg.TraceContextError, match="State <unnamed at 0x"):
        jax.jit(f)(jnp.ones(1))


def test_concrete_writes_inside_jit_are_allowed():
    # Writing a constant (not a tracer) leaks nothing.
    w = sg.State(jnp.zeros(2), name="w")
    const = np.ones(2, np.float32)

    @jax.jit
    def f(x):
        w.value = const
        return x

    f(jnp.ones(2))
    assert w.value is const


# ------------------------------------------------------------------ reads
def test_reads_inside_plain_jit_give_the_right_numbers():
    w = sg.ParamState(jnp.arange(4.0), name="w")
    b = sg.State({"b": jnp.full(4, 0.5)}, name="b")
    x = jnp.linspace(-1.0, 1.0, 4)

    def pure(x, w, b):
        return jnp.tanh(x * w + b["b"])

    got = jax.jit(lambda x: pure(x, w.value, b.value))(x)
    np.testing.assert_allclose(got, pure(x, w.value, b.value), rtol=1e-6)
    assert not isinstance(w.value, jax.core.Tracer)


def test_reads_inside_vmap_and_grad_give_the_right_numbers():
    w = sg.ParamState(jnp.array([1.0, 2.0, 3.0]), name="w")
    xs = jnp.arange(6.0).reshape(2, 3)
    np.testing.assert_allclose(jax.vmap(lambda x: x @ w.value)(xs), xs @ w.value)
    g = jax.grad(lambda x: jnp.sum(jnp.sin(x * w.value)))(xs[1])
    np.testing.assert_allclose(g, jnp.cos(xs[1] * w.value) * w.value, rtol=1e-6)


# ------------------------------------------------------------------ LiftTrace
def test_tracer_writes_are_allowed_inside_a_lift_trace():
    old = jnp.ones(3)
    w = sg.ParamState(old, name="w")

    def f(x):
        with LiftTrace() as t:
            w.value = w.value * x
            w.value = w.value + 1  # twice, still fine
        return t.output_values

    closed = jax.make_jaxpr(f)(2.0)
    assert_concrete(w, old)
    (out,) = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, 2.0, old)
    np.testing.assert_allclose(out, old * 2.0 + 1)


def test_tracer_writes_inside_a_nested_plain_vmap_are_refused():
    old = jnp.ones(3)
    w = sg.ParamState(old, name="w")

    def f(xs):
        with LiftTrace():

            def row(x):
                w.value = w.value * x
                return x

            jax.vmap(row)(xs)
        return xs

    with pytest.raises(sg.TraceContextError) as info:
        jax.make_jaxpr(f)(jnp.ones((4, 3)))
    check_message(str(info.value))
    assert_concrete(w, old)


def test_tracer_writes_inside_a_nested_plain_jit_are_refused():
    old = jnp.ones(3)
    w = sg.ParamState(old, name="w")

    def f(x):
        with LiftTrace():
            jax.jit(lambda y: setattr(w, "value", y))(x)
        return x

    with pytest.raises(sg.TraceContextError, match="ParamState 'w'"):
        jax.make_jaxpr(f)(jnp.ones(3))
    assert_concrete(w, old)


def test_reads_inside_a_nested_vmap_are_lifted():
    w = sg.ParamState(jnp.array([1.0, 2.0, 3.0]), name="w")

    def f(xs):
        with LiftTrace() as t:
            y = jax.vmap(lambda x: x * w.value)(xs)
        assert t.input_states == [w]
        return y

    xs = jnp.arange(6.0).reshape(2, 3)
    closed = jax.make_jaxpr(f)(xs)
    (got,) = jax.core.eval_jaxpr(closed.jaxpr, closed.consts, xs, w.value)
    np.testing.assert_allclose(got, xs * w.value)


def test_lift_trace_outside_a_staged_function_is_refused():
    with pytest.raises(TypeError, match=r"LiftTrace must be opened inside a function being staged"):
        with LiftTrace():
            pass


def test_lift_trace_inside_plain_vmap_is_refused():
    def f(x):
        with LiftTrace():
            pass
        return x

    with pytest.raises(TypeError, match=r"LiftTrace.*BatchTrace.*Fix"):
        jax.vmap(f)(jnp.ones(2))
