"""statejax.bounded_while_loop against plain JAX (forward; gradients are in statediff's tests)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj


def _ref(x, limit, max_steps):
    def cond(c):
        i, v = c
        return (v < limit) & (i < max_steps)

    return jax.lax.while_loop(cond, lambda c: (c[0] + 1, v_step(c[1])), (0, x))


def v_step(v):
    return v * 1.5 + 0.25


@settings(max_examples=20, deadline=None)
@given(st.floats(0.1, 50.0), st.integers(0, 40), st.sampled_from([2, 3, 16]))
def test_matches_plain_while_loop(x, max_steps, base):
    steps = sg.ShortTermState(jnp.zeros((), jnp.int32), name="steps")

    def body(v):
        steps.value = steps.value + 1
        return v_step(v)

    x = jnp.asarray(x, jnp.float32)
    out = sj.bounded_while_loop(lambda v: v < 100.0, body, x, max_steps=max_steps, base=base)
    n, ref = _ref(x, 100.0, max_steps)
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    assert int(steps.value) == int(n)


def test_cond_reads_states_and_read_only_states_are_invariant():
    limit = sg.ParamState(jnp.asarray(10.0), name="limit")
    out = sj.bounded_while_loop(lambda v: v < limit.value, lambda v: v + 3.0, 0.0, max_steps=100)
    assert float(out) == 12.0 and float(limit.value) == 10.0


def test_pytree_value_and_jit_and_cached():
    calls = [0]

    def body(c):
        calls[0] += 1
        return {"i": c["i"] + 1, "x": c["x"] * 2}

    run = sj.jit(lambda c: sj.bounded_while_loop(lambda c: c["i"] < 5, body, c, max_steps=8))
    out = run({"i": 0, "x": jnp.ones(2)})
    assert int(out["i"]) == 5
    np.testing.assert_allclose(out["x"], 32.0)

    def cond(c):
        return c["i"] < 5

    sj.bounded_while_loop(cond, body, {"i": 0, "x": jnp.ones(2)}, max_steps=8)
    n = calls[0]
    for _ in range(3):  # the same functions and signature: no new trace
        sj.bounded_while_loop(cond, body, {"i": 0, "x": jnp.ones(2)}, max_steps=8)
    assert calls[0] == n


def test_vmap_masks_each_lane():
    xs = jnp.array([1.0, 3.0, 10.0, 0.1])
    acc = sg.ShortTermState(jnp.zeros(4), name="acc")

    def body(v):
        acc.value = acc.value + 1.0
        return v * 2

    out = sj.vmap(
        lambda x: sj.bounded_while_loop(lambda v: v < 5.0, body, x, max_steps=20), in_states=acc
    )(xs)
    ref = jax.vmap(lambda x: _ref2(x))(xs)
    np.testing.assert_allclose(out, ref[1])
    np.testing.assert_allclose(acc.value, ref[0])


def _ref2(x):
    return jax.lax.while_loop(lambda c: c[1] < 5.0, lambda c: (c[0] + 1.0, c[1] * 2), (0.0, x))


def test_max_steps_bound_and_zero():
    assert float(sj.bounded_while_loop(lambda v: True, lambda v: v + 1, 0.0, max_steps=7)) == 7.0
    assert float(sj.bounded_while_loop(lambda v: True, lambda v: v + 1, 0.0, max_steps=0)) == 0.0


def test_failure_leaves_states_unchanged():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def body(v):
        s.value = s.value + 1
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sj.bounded_while_loop(lambda v: v < 3, body, 0.0, max_steps=4)
    assert float(s.value) == 0.0 and not isinstance(s.value, jax.core.Tracer)


def test_bad_inputs():
    with pytest.raises(TypeError, match="max_steps must be"):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: v, 0.0, max_steps=2.5)
    with pytest.raises(ValueError, match="non-negative"):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: v, 0.0, max_steps=-1)
    with pytest.raises(ValueError, match="base must be"):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: v, 0.0, max_steps=3, base=1)
    with pytest.raises(TypeError, match="cond_fun must be callable"):
        sj.bounded_while_loop(3, lambda v: v, 0.0, max_steps=3)
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def bad_cond(v):
        s.value = s.value + 1
        return v < 1

    with pytest.raises(ValueError, match="cond_fun must not write"):
        sj.bounded_while_loop(bad_cond, lambda v: v + 1, 0.0, max_steps=3)
    with pytest.raises(TypeError, match="boolean scalar"):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: v + 1, jnp.zeros(2), max_steps=3)
    with pytest.raises(TypeError, match="shapes it receives"):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: jnp.ones(3), 0.0, max_steps=3)
    with pytest.raises(TypeError):
        sj.bounded_while_loop(lambda v: v < 1, lambda v: v, 0.0)  # max_steps is required


def test_disable_jit_runs_in_python():
    seen = []

    def body(v):
        seen.append(float(v))
        return v + 1

    with jax.disable_jit():
        out = sj.bounded_while_loop(lambda v: v < 3, body, 0.0, max_steps=10)
    assert float(out) == 3.0 and seen == [0.0, 1.0, 2.0]
