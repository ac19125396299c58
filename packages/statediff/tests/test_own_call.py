"""A transform's own class, whose ``__call__`` is the compiled driver's call (``fast_call``).

Each check is against plain JAX on the equivalent pure function; the general
call's cases (``jax.disable_jit()``, ``debug_nan``) must still hold.
"""

from __future__ import annotations

import gc
import inspect
import weakref
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj


def _model():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.tanh(w.value * x)

    return w, f


def test_each_transform_has_its_own_class_named_as_the_class():
    w, f = _model()
    g1 = sd.vector_grad(f, grad_states=w)
    g2 = sd.vector_grad(f, grad_states=w)
    assert type(g1) is not type(g2)
    for g in (g1, g2):
        assert isinstance(g, sd.GradientTransform) and type(g).__name__ == "GradientTransform"
    assert list(inspect.signature(g1).parameters) == ["x"]


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "vector_grad", "hessian"])
def test_own_call_matches_jax(name):
    w, f = _model()
    x = jnp.array([0.3, -0.4])

    def pure(wv):
        out = jnp.tanh(wv * x)
        return jnp.sum(out**2) if name == "hessian" else out

    def fun(x):
        out = f(x)
        return jnp.sum(out**2) if name == "hessian" else out

    reference = {
        "jacfwd": jax.jacfwd(pure),
        "jacrev": jax.jacrev(pure),
        "vector_grad": jax.grad(lambda wv: jnp.sum(pure(wv))),
        "hessian": jax.hessian(pure),
    }[name]
    g = getattr(sd, name)(fun, grad_states=w)
    assert type(g) is not sd.GradientTransform
    for _ in range(3):
        np.testing.assert_allclose(g(x), reference(w.value), rtol=1e-5)
    w.value = jnp.array([0.5, 0.25])  # the next call reads the new value
    np.testing.assert_allclose(g(x), reference(w.value), rtol=1e-5)


def test_disable_jit_after_compiled_calls_runs_the_body():
    seen = []
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def loss(x):
        seen.append(type(x).__name__)
        return jnp.sum(w.value * x)

    g = sd.grad(loss, grad_states=w)
    x = jnp.array([3.0, 4.0])
    g(x)
    g(x)
    traced = len(seen)
    with jax.disable_jit():
        np.testing.assert_allclose(g(x), x)
        np.testing.assert_allclose(g(x), x)
    assert len(seen) == traced + 2  # the Python body ran on each call
    np.testing.assert_allclose(g(x), x)  # and the compiled call again afterwards
    assert len(seen) == traced + 2


def test_debug_nan_is_fixed_and_keeps_the_general_call():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def bad(x):
        return jnp.sum(jnp.sqrt(w.value - 5.0) * x)

    g = sd.grad(bad, grad_states=w, debug_nan=True)
    assert type(g) is sd.GradientTransform and g.debug_nan
    with pytest.raises(RuntimeError, match="NaN"):
        g(1.0)
    plain = sd.grad(bad, grad_states=w)
    with pytest.raises(AttributeError, match="debug_nan is fixed"):
        plain.debug_nan = True
    assert not plain.debug_nan
    assert bool(jnp.isnan(plain(1.0)).all())  # no check: NaN, as jax.grad gives


def test_own_class_and_transform_are_collected():
    w, f = _model()
    g = sd.vector_grad(f, grad_states=w)
    g(jnp.ones(2))
    refs = [weakref.ref(o) for o in (g, type(g), w, f)]
    del g, w, f
    gc.collect()
    assert all(r() is None for r in refs)


def test_own_call_from_many_threads():
    w, f = _model()
    g = sd.vector_grad(f, grad_states=w)
    want = jax.grad(lambda wv, x: jnp.sum(jnp.tanh(wv * x)))

    def work(k: int) -> None:
        x = jnp.full(2, 0.1 * (k + 1))
        for _ in range(20):
            np.testing.assert_allclose(g(x), want(w.value, x), rtol=1e-5)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(1, 5)))  # re-raises a worker's error
    assert not isinstance(w.value, jax.core.Tracer)


def test_under_sj_jit_the_body_is_traced_once_into_the_enclosing_trace():
    runs = []
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def loss(x):
        runs.append(1)
        return jnp.sum(jnp.sin(w.value * x))

    g = sd.grad(loss, grad_states=w)

    @sj.jit
    def step(x):
        w.value = w.value - 0.1 * g(x)
        return w.value

    pure_grad = jax.grad(lambda v, x: jnp.sum(jnp.sin(v * x)))
    wv = w.value
    for _ in range(3):
        x = jnp.array([0.5, -0.5])
        got = step(x)
        wv = wv - 0.1 * pure_grad(wv, x)
        np.testing.assert_allclose(got, wv, rtol=1e-6)
    assert len(runs) == 1  # one trace of step, straight through the transform's driver
    assert g._driver._lifted == {}
