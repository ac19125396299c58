"""The control-flow transforms nested in each other and in sj.jit, against plain JAX."""

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

SETTINGS = settings(max_examples=6, deadline=None)


def close(a, b):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------ jit(scan)


@SETTINGS
@given(length=st.integers(1, 6), inner=st.integers(1, 4))
def test_jit_of_scan_of_scan(length, inner):
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    n = sg.ShortTermState(jnp.zeros((), jnp.int32), name="n")
    xs = jnp.linspace(0.0, 1.0, length * inner * 2).reshape(length, inner, 2)

    def inner_step(c, x):
        h.value = 0.5 * h.value + x
        n.value = n.value + 1
        return c + h.value.sum(), None

    def outer_step(c, row):
        c2, _ = sj.scan(inner_step, c, row)
        return c2, h.value

    run = sj.jit(lambda xs: sj.scan(outer_step, jnp.float32(0.0), xs))
    c, ys = run(xs)

    def r_inner(carry, x):
        c0, h0, n0 = carry
        h1 = 0.5 * h0 + x
        return (c0 + h1.sum(), h1, n0 + 1), None

    def r_outer(carry, row):
        carry, _ = jax.lax.scan(r_inner, carry, row)
        return carry, carry[1]

    (r_c, r_h, r_n), r_ys = jax.lax.scan(
        r_outer, (jnp.float32(0.0), jnp.zeros(2), jnp.int32(0)), xs
    )
    close(c, r_c)
    close(ys, r_ys)
    close(h.value, r_h)
    assert int(n.value) == int(r_n) == length * inner


# --------------------------------------------------------------- scan in cond


def test_scan_inside_cond_inside_jit():
    acc = sg.ShortTermState(jnp.zeros(3), name="acc")
    k = sg.ParamState(jnp.array([1.0, 2.0, 3.0]), name="k")

    def step(c, x):
        acc.value = acc.value + k.value * x
        return c + x, acc.value.sum()

    def loop(xs):
        c, ys = sj.scan(step, jnp.float32(0.0), xs)
        return c + ys.sum()

    def skip(xs):
        acc.value = -acc.value
        return xs.sum()

    f = sj.jit(lambda p, xs: sj.cond(p, loop, skip, xs))
    xs = jnp.arange(4.0)

    def r_loop(a, xs):
        def body(carry, x):
            c, a = carry
            a = a + jnp.array([1.0, 2.0, 3.0]) * x
            return (c + x, a), a.sum()

        (c, a), ys = jax.lax.scan(body, (jnp.float32(0.0), a), xs)
        return c + ys.sum(), a

    def r_skip(a, xs):
        return xs.sum(), -a

    r_acc = jnp.zeros(3)
    for p in (True, False, True):
        out = f(p, xs)
        r_out, r_acc = jax.lax.cond(p, r_loop, r_skip, r_acc, xs)
        close(out, r_out)
        close(acc.value, r_acc)


# ---------------------------------------------------------- cond in while_loop


def test_while_loop_with_cond_and_switch_inside():
    x = sg.ShortTermState(jnp.float32(27.0), name="x")
    steps = sg.ShortTermState(jnp.zeros((), jnp.int32), name="steps")

    def half(_):
        x.value = x.value / 2

    def triple(_):
        x.value = 3 * x.value + 1

    def body(i):
        sj.cond(x.value % 2 == 0, half, triple, None)
        steps.value = steps.value + sj.switch(i % 3, [lambda: 1, lambda: 2, lambda: 3])
        return i + 1

    out = sj.jit(lambda: sj.while_loop(lambda i: x.value != 1, body, jnp.int32(0)))()

    def r_body(c):
        i, xv, s = c
        xv = jax.lax.cond(xv % 2 == 0, lambda v: v / 2, lambda v: 3 * v + 1, xv)
        s = s + jax.lax.switch(i % 3, [lambda: 1, lambda: 2, lambda: 3])
        return i + 1, xv, s

    r_i, r_x, r_s = jax.lax.while_loop(
        lambda c: c[1] != 1, r_body, (jnp.int32(0), jnp.float32(27.0), jnp.int32(0))
    )
    assert int(out) == int(r_i) == 111
    close(x.value, r_x)
    assert int(steps.value) == int(r_s)


# ------------------------------------------------------- checkpoint in scan


def test_checkpoint_inside_scan_and_grad_of_pure_function():
    w = sg.ParamState(jnp.array([0.3, -0.7]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    @sj.checkpoint
    def cell(x):
        h.value = jnp.tanh(w.value * h.value + x)
        return (h.value**2).sum()

    def step(c, x):
        return c + cell(x), None

    @sj.jit
    def loss(xs):
        c, _ = sj.scan(step, jnp.float32(0.0), xs)
        return c

    xs = jnp.linspace(-1, 1, 10).reshape(5, 2)
    out = loss(xs)

    def r_loss(w_, h0, xs):
        @jax.checkpoint
        def r_cell(h_, x):
            h1 = jnp.tanh(w_ * h_ + x)
            return (h1**2).sum(), h1

        def r_step(carry, x):
            c, h_ = carry
            y, h1 = r_cell(h_, x)
            return (c + y, h1), None

        (c, h_), _ = jax.lax.scan(r_step, (jnp.float32(0.0), h0), xs)
        return c, h_

    r_out, r_h = r_loss(jnp.array([0.3, -0.7]), jnp.zeros(2), xs)
    close(out, r_out)
    close(h.value, r_h)

    # The pure function of the whole program is differentiable like the reference.
    lifted = loss.trace(xs)
    assert "remat" in str(lifted.jaxpr)
    names = [s.name for s in lifted.read_states]
    h0 = jnp.zeros(2)

    def pure(w_val):
        vals = {"w": w_val, "h": h0}
        return loss.pure([vals[n] for n in names], xs)[0]

    close(
        jax.grad(pure)(w.value),
        jax.grad(lambda w_: r_loss(w_, h0, xs)[0])(w.value),
    )


# -------------------------------------------------------- jit in a scan body


def test_jit_inside_scan_body_and_for_loop_inside_while():
    s = sg.ShortTermState(jnp.zeros(()), name="s")
    calls = [0]

    @sj.jit
    def bump(x):
        calls[0] += 1
        s.value = s.value + x
        return s.value

    ys = sj.for_loop(bump, jnp.arange(5.0))
    close(ys, jnp.cumsum(jnp.arange(5.0)))

    def body(i):
        sj.for_loop(bump, jnp.ones(3))
        return i + 1

    sj.while_loop(lambda i: i < 2, body, 0)
    close(s.value, 10.0 + 6.0)
    # bump traced once for its own signature (scalar float32).
    assert calls[0] == 1


# ------------------------------------------------------------- scan in remat


def test_remat_containing_scan_inside_jit():
    acc = sg.ShortTermState(jnp.ones(()), name="acc")

    @sj.remat
    def block(xs):
        def step(c, x):
            acc.value = acc.value * x
            return c + acc.value, None

        c, _ = sj.scan(step, jnp.float32(0.0), xs)
        return c

    xs = jnp.array([1.0, 2.0, 0.5, 3.0])
    out = sj.jit(block)(xs)

    def r_block(a, xs):
        def step(carry, x):
            c, a = carry
            a = a * x
            return (c + a, a), None

        (c, a), _ = jax.lax.scan(step, (jnp.float32(0.0), a), xs)
        return c, a

    r_out, r_acc = jax.checkpoint(r_block)(jnp.float32(1.0), xs)
    close(out, r_out)
    close(acc.value, r_acc)


def test_switch_inside_scan_with_traced_index():
    s = sg.ShortTermState(jnp.zeros(2), name="s")

    branches = [
        lambda x: _write(s, s.value + x),
        lambda x: _write(s, s.value * 2),
        lambda x: _write(s, s.value - 1),
    ]

    def step(c, i):
        sj.switch(i, branches, jnp.float32(1.0))
        return c, s.value.sum()

    idx = jnp.array([0, 1, 5, -2, 0, 1])
    _, ys = sj.scan(step, (), idx)

    def r_step(sv, i):
        sv = jax.lax.switch(i, [lambda v: v + 1.0, lambda v: v * 2, lambda v: v - 1], sv)
        return sv, sv.sum()

    r_s, r_ys = jax.lax.scan(r_step, jnp.zeros(2), idx)
    close(ys, r_ys)
    close(s.value, r_s)


def _write(state, value):
    state.value = value
    return value.sum()


# --------------------------------------------------------------- same function


def test_same_body_used_eagerly_and_nested_stays_consistent():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def step(c, x):
        s.value = s.value + x
        return c, None

    xs = jnp.ones(3)
    sj.scan(step, (), xs)
    sj.jit(lambda xs: sj.scan(step, (), xs))(xs)
    sj.cond(True, lambda xs: sj.scan(step, (), xs), lambda xs: ((), None), xs)
    close(s.value, 9.0)


def test_deep_error_is_all_or_nothing():
    a = sg.ShortTermState(jnp.ones(2), name="a")
    b = sg.ShortTermState(jnp.ones(()), name="b")
    before = (a.value, b.value)

    def step(c, x):
        a.value = a.value + x
        b.value = b.value * 2
        if x.shape == ():
            raise RuntimeError("deep failure")
        return c, None

    @sj.jit
    def run(xs):
        b.value = b.value + 1
        return sj.cond(True, lambda xs: sj.scan(step, (), xs), lambda xs: ((), None), xs)

    with pytest.raises(RuntimeError, match="deep failure"):
        run(jnp.ones(3))
    assert a.value is before[0] and b.value is before[1]
    assert not has_tracer(a.value) and not has_tracer(b.value)
