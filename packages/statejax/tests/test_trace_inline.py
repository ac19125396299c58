"""``StatefulFunction(..., trace_inline=True)``: run straight in an enclosing stateful trace.

Such a function, called while a stateful transform traces, runs as a plain
function would: its reads and writes are the enclosing trace's, and it keeps
no jaxpr of its own. Eagerly it is an ordinary compiled stateful call. Each
result is checked against the pure function in plain JAX.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


def _model():
    w = sg.ParamState(jnp.array([1.0, -2.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    runs = []

    def step(x):
        runs.append(1)
        h.value = jnp.tanh(w.value * x + h.value)
        return h.value.sum()

    return w, h, step, runs


def _pure(wv, hv, x):
    new = jnp.tanh(wv * x + hv)
    return new.sum(), new


def test_inline_under_jit_matches_jax_and_keeps_no_jaxpr():
    w, h, step, runs = _model()
    inner = sj.StatefulFunction(step, trace_inline=True)

    @sj.jit
    def outer(x):
        return inner(x) + inner(2.0 * x)

    hv = h.value
    for i in range(3):
        x = jnp.array([0.1 * i, 0.3])
        got = outer(x)
        a, hv = _pure(w.value, hv, x)
        b, hv = _pure(w.value, hv, 2.0 * x)
        np.testing.assert_allclose(got, a + b, rtol=1e-6)
        np.testing.assert_allclose(h.value, hv, rtol=1e-6)
    assert len(runs) == 2  # traced once, within outer's one trace: two calls
    assert inner._lifted == {}  # no jaxpr of its own
    assert outer.written_states(jnp.ones(2)) == [h]


def test_inline_under_vmap_and_scan():
    w, h, step, runs = _model()
    inner = sj.StatefulFunction(step, trace_inline=True)

    def body(carry, x):
        return carry + inner(x), None

    xs = jnp.arange(6.0).reshape(3, 2) * 0.1
    total, _ = sj.scan(body, jnp.zeros(()), xs)
    hv, want = jnp.zeros(2), 0.0
    for x in xs:
        out, hv = _pure(w.value, hv, x)
        want = want + out
    np.testing.assert_allclose(total, want, rtol=1e-6)
    np.testing.assert_allclose(h.value, hv, rtol=1e-6)

    def read_only(x):
        return (w.value * x).sum()

    batched = sj.vmap(sj.StatefulFunction(read_only, trace_inline=True))
    np.testing.assert_allclose(batched(xs), jax.vmap(lambda x: (w.value * x).sum())(xs))


def test_inline_eager_is_the_compiled_call():
    w, h, step, runs = _model()
    inner = sj.StatefulFunction(step, trace_inline=True)
    x = jnp.array([0.5, 0.25])
    hv = h.value
    for _ in range(3):
        got = inner(x)
        want, hv = _pure(w.value, hv, x)
        np.testing.assert_allclose(got, want, rtol=1e-6)
    assert len(runs) == 1  # traced once, then compiled calls


def test_inline_errors_leave_states_alone():
    w, h, step, runs = _model()

    def bad(x):
        h.value = h.value + x
        raise ValueError("boom")

    inner = sj.StatefulFunction(bad, trace_inline=True)

    @sj.jit
    def outer(x):
        return inner(x)

    before = h.value
    with pytest.raises(ValueError, match="boom"):
        outer(jnp.ones(2))
    assert h.value is before and not isinstance(h.value, jax.core.Tracer)


def test_inline_is_off_with_jit_options():
    _, _, step, _ = _model()
    assert not sj.StatefulFunction(step, trace_inline=True, donate_states=True)._trace_inline
    assert sj.StatefulFunction(step, trace_inline=True)._trace_inline
