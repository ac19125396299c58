"""Nesting statediff transforms with themselves and with statejax, against plain JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj

W0 = jnp.array([0.5, -1.0, 2.0])
X0 = jnp.array(0.7)


def assert_tree_close(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert jnp.shape(a) == jnp.shape(e)
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def loss(wv, x):
    return (jnp.sin(wv * x) ** 2).sum() + (wv**3).sum() * x


@pytest.fixture
def model():
    """A weight, a call counter written by every call, and the stateful loss."""
    w = sg.ParamState(W0, name="w")
    count = sg.ShortTermState(jnp.zeros(()), name="count")
    calls = [0]

    def f(x):
        calls[0] += 1
        count.value = count.value + 1.0
        return loss(w.value, x)

    return w, count, calls, f


def test_jacfwd_of_grad_over_argument(model):
    w, count, calls, f = model
    outer = sd.jacfwd(sd.grad(f, grad_states=w), argnums=0)
    expected = jax.jit(jax.jacfwd(jax.grad(loss), argnums=1))(W0, X0)
    for i in range(2):
        assert_tree_close(outer(X0), expected)
        assert float(count.value) == i + 1.0  # written once per outer call
    assert calls[0] == 1


def test_jacfwd_of_grad_over_the_same_state_is_the_hessian(model):
    w, count, calls, f = model
    outer = sd.jacfwd(sd.grad(f, grad_states=w), grad_states=w, return_value=True)
    hess, grads = outer(X0)
    assert_tree_close(hess, jax.jit(jax.hessian(loss))(W0, X0))
    assert_tree_close(grads, jax.jit(jax.grad(loss))(W0, X0))
    assert_tree_close(hess, sd.hessian(f, grad_states=w)(X0))
    assert float(count.value) == 2.0


def test_grad_of_grad_and_jacrev_of_jacfwd(model):
    w, _, _, f = model
    d2 = sd.grad(sd.grad(f, argnums=0), argnums=0)(X0)
    assert_tree_close(d2, jax.jit(jax.grad(jax.grad(loss, argnums=1), argnums=1))(W0, X0))
    nested = sd.jacrev(sd.jacfwd(f, grad_states=[w]), argnums=0)(X0)
    reference = jax.jit(jax.jacrev(jax.jacfwd(lambda g, x: loss(g[0], x)), argnums=1))
    assert_tree_close(nested, reference([W0], X0))


def test_vmap_of_jacfwd():
    vmap = sj.vmap
    w = sg.ParamState(W0, name="w")
    core = lambda wv, x: {"a": jnp.sin(wv * x), "b": (wv * x).sum()}  # noqa: E731
    mapped = vmap(sd.jacfwd(lambda x: core(w.value, x), grad_states=w, argnums=0))
    xs = jnp.array([0.1, 0.2, 0.3, 0.4])
    expected = jax.jit(jax.vmap(jax.jacfwd(core, argnums=(0, 1)), in_axes=(None, 0)))(W0, xs)
    # statediff splits JAX's (output over (states, x)) layout into (var_grads, arg_grads)
    expected = (
        jax.tree.map(lambda t: t[0], expected, is_leaf=lambda t: isinstance(t, tuple)),
        jax.tree.map(lambda t: t[1], expected, is_leaf=lambda t: isinstance(t, tuple)),
    )
    assert_tree_close(mapped(xs), expected)


def test_jit_of_hessian(model):
    w, count, calls, f = model
    jitted = sj.jit(sd.hessian(f, grad_states={"w": w}, argnums=0, return_value=True))
    expected = jax.jit(jax.hessian(lambda g, x: loss(g["w"], x), argnums=(0, 1)))({"w": W0}, X0)
    for i in range(3):
        (var_h, arg_h), value = jitted(X0)
        assert_tree_close((var_h, arg_h), (expected[0], expected[1]))
        assert_tree_close(value, loss(W0, X0))
        assert float(count.value) == i + 1.0
    assert calls[0] == 1


def test_grad_inside_jit_writes_back(model):
    w, count, calls, f = model
    g = sd.grad(f, grad_states=w, return_value=True)

    @sj.jit
    def step(x, lr):
        grads, value = g(x)
        w.value = w.value - lr * grads
        return value

    ref_step = jax.jit(lambda wv, x: (wv - 0.1 * jax.grad(loss)(wv, x), loss(wv, x)))
    wv = W0
    for i in range(3):
        value = step(X0, 0.1)
        wv, expected = ref_step(wv, X0)
        assert_tree_close(value, expected)
        np.testing.assert_allclose(w.value, wv, rtol=1e-5)
        assert float(count.value) == i + 1.0
        assert not isinstance(w.value, jax.core.Tracer)
    assert calls[0] == 1


def test_jacfwd_over_scan():
    scan = sj.scan
    w = sg.ParamState(W0, name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    xs = jnp.arange(4.0)

    def body(wv, c, hv, xi):
        hv = hv * 0.5 + jnp.tanh(wv * c + xi)
        return c * 0.9 + hv.sum(), hv

    def run(x):
        def step(c, xi):
            c, h.value = body(w.value, c, h.value, xi)
            return c, h.value

        return scan(step, x, xs)

    def pure(wv, x, h0):
        def step(carry, xi):
            c, hv = carry
            c, hv = body(wv, c, hv, xi)
            return (c, hv), hv

        (c, hv), ys = jax.lax.scan(step, (x, h0), xs)
        return (c, ys), hv

    @jax.jit
    def reference(wv, x, h0):
        var_j = jax.jacfwd(lambda wv, x: pure(wv, x, h0)[0])(wv, x)
        arg_j = jax.jacfwd(lambda wv, x: pure(wv, x, h0)[0], argnums=1)(wv, x)
        (out, h_final) = pure(wv, x, h0)
        return ((var_j, arg_j), out), h_final

    transformed = sd.jacfwd(run, grad_states=w, argnums=0, return_value=True)
    h0 = jnp.zeros(3)
    for _ in range(2):  # the second call starts from the written-back h
        expected, h_final = reference(W0, X0, h0)
        assert_tree_close(transformed(X0), expected)
        np.testing.assert_allclose(h.value, h_final, rtol=1e-5)
        h0 = h_final


def test_grad_over_vmap_of_a_per_lane_state_that_is_written() -> None:
    """sd.grad of a loss that runs sj.vmap(in_states=h) writing h: h ends batched, not per lane."""
    w = sg.ParamState(jnp.array([0.5, -1.0, 2.0]), name="w")
    h = sg.HiddenState(jnp.zeros((4, 3)), name="h")
    xs = jnp.arange(12.0).reshape(4, 3) / 10

    def lane(x):
        h.value = jnp.tanh(w.value * x + h.value)
        return jnp.sum(h.value)

    def loss(xs):
        return jnp.mean(sj.vmap(lane, in_states=h)(xs))

    def pure(w, h0, xs):
        new = jnp.tanh(w * xs + h0)
        return jnp.mean(jnp.sum(new, axis=1)), new

    (ref_loss, ref_h), ref_g = jax.value_and_grad(pure, has_aux=True)(w.value, h.value, xs)
    g = sj.jit(sd.grad(loss, grad_states=w))(xs)
    np.testing.assert_allclose(g, ref_g, rtol=1e-6)
    np.testing.assert_allclose(h.value, ref_h, rtol=1e-6)
