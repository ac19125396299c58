"""A transform of a function with plain positional parameters calls its driver directly.

The transform then has a subclass of its class whose ``__call__`` takes the
function's own parameters (``statediff._src.fast_call``); every behaviour of
the general call must hold through it.
"""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg


def _model():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def loss(x, y):
        return jnp.sum(w.value * x) * y

    return w, loss


def test_plain_call_matches_jax_by_position_and_keyword():
    w, loss = _model()
    g = sd.grad(loss, grad_states=w)
    assert isinstance(g, sd.GradientTransform) and type(g) is not sd.GradientTransform
    x = jnp.array([3.0, 4.0])
    want = jax.grad(lambda wv: jnp.sum(wv * x) * 2.0)(w.value)
    np.testing.assert_allclose(g(x, 2.0), want)
    np.testing.assert_allclose(g(x, y=2.0), want)
    np.testing.assert_allclose(g(y=2.0, x=x), want)
    with jax.disable_jit():  # the general call: the body runs op by op
        np.testing.assert_allclose(g(x, 2.0), want)


def test_plain_call_keeps_debug_nan_and_argnums_forms():
    w, loss = _model()

    def nan_grad(x, y):
        return jnp.sum(jnp.sqrt(w.value - 5.0)) * x * y

    bad = sd.grad(nan_grad, grad_states=w, debug_nan=True)
    with pytest.raises(RuntimeError, match="NaN"):
        bad(1.0, 1.0)
    g = sd.grad(loss, grad_states=w, argnums=1)  # argnums: the general (*args, **kwargs) call
    assert type(g) is sd.GradientTransform
    var, arg = g(jnp.ones(2), 2.0)
    np.testing.assert_allclose(var, jnp.full(2, 2.0))
    np.testing.assert_allclose(arg, 3.0)


def test_plain_call_errors_and_collection():
    w, loss = _model()
    g = sd.grad(loss, grad_states=w)
    with pytest.raises(TypeError, match="missing 1 required positional argument: 'y'"):
        g(jnp.ones(2))
    assert float(w.value[0]) == 1.0
    ref, wref = weakref.ref(g), weakref.ref(w)
    del g, w, loss
    gc.collect()
    assert ref() is None and wref() is None


def test_subclasses_keep_their_own_call():
    class Traced(sd.GradientTransform):
        calls = 0

        def __call__(self, *args, **kwargs):
            Traced.calls += 1
            return super().__call__(*args, **kwargs)

    w, loss = _model()
    t = Traced(loss, jax.grad, grad_states=w)
    assert type(t) is Traced
    t(jnp.ones(2), 1.0)
    assert Traced.calls == 1
