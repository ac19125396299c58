"""sd.grad through sj.bounded_while_loop and sj.checkpointed_scan matches plain JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import stategraph as sg
import statejax as sj


def _unrolled_while(w, x, limit, max_steps):
    acc, v = 0.0, x
    for _ in range(max_steps):
        keep = v < limit
        acc = jnp.where(keep, acc + v, acc)
        v = jnp.where(keep, v * w, v)
    return v + acc


@settings(max_examples=6, deadline=None)
@given(st.floats(1.05, 1.6), st.floats(0.2, 3.0), st.integers(1, 30), st.sampled_from([2, 4, 16]))
def test_grad_bounded_while_loop_matches_unrolled_pure_function(w0, x0, max_steps, base):
    w = sg.ParamState(jnp.asarray(w0, jnp.float32), name="w")
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def body(v):
        acc.value = acc.value + v
        return v * w.value

    def loss(x):
        acc.value = jnp.zeros(())
        v = sj.bounded_while_loop(lambda v: v < 5.0, body, x, max_steps=max_steps, base=base)
        return v + acc.value

    x = jnp.asarray(x0, jnp.float32)
    grads, gx = sd.grad(loss, grad_states={"w": w}, argnums=0)(x)
    ref_w, ref_x = jax.grad(_unrolled_while, argnums=(0, 1))(w.value, x, 5.0, max_steps)
    np.testing.assert_allclose(grads["w"], ref_w, rtol=2e-5)
    np.testing.assert_allclose(gx, ref_x, rtol=2e-5)


def test_grad_bounded_while_loop_under_jit_and_vmap():
    w = sg.ParamState(jnp.asarray(1.3), name="w")

    def loss(x):
        return sj.bounded_while_loop(lambda v: v < 4.0, lambda v: v * w.value, x, max_steps=12)

    xs = jnp.array([0.5, 1.0, 3.9, 5.0])
    g = sj.jit(sj.vmap(sd.grad(loss, argnums=0)))(xs)
    ref = jax.vmap(jax.grad(lambda x: _unrolled_while(1.3, x, 4.0, 12) - _acc(1.3, x)))(xs)
    np.testing.assert_allclose(g, ref, rtol=2e-5)


def _acc(w, x):
    acc, v = 0.0, x
    for _ in range(12):
        keep = v < 4.0
        acc = jnp.where(keep, acc + v, acc)
        v = jnp.where(keep, v * w, v)
    return acc


@settings(max_examples=5, deadline=None)
@given(st.integers(1, 60), st.sampled_from([2, 3, 16]))
def test_grad_checkpointed_scan_matches_plain_scan(n, base):
    W = sg.ParamState(jnp.eye(3) * 0.8 + 0.05, name="W")
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    xs = jnp.sin(jnp.arange(n * 3, dtype=jnp.float32)).reshape(n, 3)

    def step(c, x):
        h.value = jnp.tanh(W.value @ h.value + x)
        return c + h.value.sum(), h.value

    def loss(xs):
        h.value = jnp.zeros(3)
        c, ys = sj.checkpointed_scan(step, 0.0, xs, base=base)
        return c + (ys**2).sum()

    def pure(Wv, xs):
        def st_(carry, x):
            c, hv = carry
            hv = jnp.tanh(Wv @ hv + x)
            return (c + hv.sum(), hv), hv

        (c, _), ys = jax.lax.scan(st_, (0.0, jnp.zeros(3)), xs)
        return c + (ys**2).sum()

    grads, gxs = sd.grad(loss, grad_states={"W": W}, argnums=0)(xs)
    ref_w, ref_x = jax.grad(pure, argnums=(0, 1))(W.value, xs)
    np.testing.assert_allclose(grads["W"], ref_w, rtol=2e-5, atol=1e-6)
    np.testing.assert_allclose(gxs, ref_x, rtol=2e-5, atol=1e-6)


def test_grad_checkpointed_for_loop_matches_for_loop():
    w = sg.ParamState(jnp.asarray(0.9), name="w")
    h = sg.ShortTermState(jnp.zeros(()), name="h")

    def f(x):
        h.value = jnp.sin(w.value * h.value + x)
        return h.value

    def loss(fn):
        def run(xs):
            h.value = jnp.zeros(())
            return fn(f, xs).sum()

        return run

    xs = jnp.linspace(0, 1, 50)
    g1 = sd.grad(loss(lambda f, xs: sj.checkpointed_for_loop(f, xs, base=4)), grad_states=w)(xs)
    g2 = sd.grad(loss(sj.for_loop), grad_states=w)(xs)
    np.testing.assert_allclose(g1, g2, rtol=1e-5)


def test_checkpointed_grad_memory_is_smaller_than_plain_scan():
    n, d = 2000, 32
    W = sg.ParamState(jnp.eye(d) * 0.5, name="W")
    h = sg.ShortTermState(jnp.zeros(d), name="h")

    def step(c, x):
        h.value = jnp.tanh(W.value @ h.value + x)
        return c + h.value.sum(), None

    def make(scan):
        def loss(xs):
            h.value = jnp.zeros(d)
            return scan(step, 0.0, xs)[0]

        return sd.grad(loss, grad_states={"W": W})

    xs = jnp.ones((n, d))

    def temp(fn):
        stats = sj.jit(fn).lower(xs).compile().memory_analysis()
        return None if stats is None else stats.temp_size_in_bytes

    plain = temp(make(sj.scan))
    ck = temp(make(sj.checkpointed_scan))
    if plain is not None and ck is not None:
        assert ck * 4 < plain


def test_grad_through_ifelse_map_and_checkify_nests():
    w = sg.ParamState(jnp.asarray(2.0), name="w")

    def loss(x):
        y = sj.ifelse([x > 0, x <= 0], [lambda: w.value * x**2, lambda: -w.value * x])
        z = sj.map(lambda t: jnp.sin(w.value * t), jnp.linspace(0, 1, 7), batch_size=3).sum()
        return y + z

    def pure(wv, x):
        y = jnp.where(x > 0, wv * x**2, -wv * x)
        return y + jnp.sin(wv * jnp.linspace(0, 1, 7)).sum()

    for x in (1.5, -0.5):
        g, gx = sd.grad(loss, grad_states={"w": w}, argnums=0)(jnp.asarray(x))
        rw, rx = jax.grad(pure, argnums=(0, 1))(2.0, x)
        np.testing.assert_allclose(g["w"], rw, rtol=1e-5)
        np.testing.assert_allclose(gx, rx, rtol=1e-5)
    err, g = sj.checkify(sd.grad(lambda x: jnp.log(x) * w.value, argnums=0), errors=sj.nan_checks)(
        jnp.asarray(2.0)
    )
    assert err.get() is None and float(g) == 1.0
