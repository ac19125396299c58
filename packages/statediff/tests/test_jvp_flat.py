"""The run-now ``sd.jvp`` without ``grad_states``: its compiled call takes the primals flat.

The cached transform of ``sd.jvp(f, primals, tangents)`` compiles a call of
``(*primals, *tangents)``, one positional argument each (see ``jvp._FlatJVP``).
These tests check it against ``jax.jvp`` of the pure function for every
number of primals (the quick tables hold 0 to 8; more take the cache's key),
that the settings it does not cover still take the general transform, and
that its errors and the states are as before.
"""

from __future__ import annotations

import gc
import inspect
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
from statediff._src import jvp as jvp_module
from statediff._src import weak_cache


@pytest.fixture(autouse=True)
def _fresh_cache():
    weak_cache.clear()
    yield
    weak_cache.clear()


@pytest.mark.parametrize("n", [0, 1, 2, 3, 9])
def test_flat_call_matches_jax_for_n_primals(n):
    w = sg.ParamState(jnp.array([0.5, -1.5]), name="w")
    count = sg.ShortTermState(jnp.zeros(()), name="count")

    def f(*xs):
        count.value = count.value + 1
        return jnp.sin(w.value * sum(xs, jnp.ones(2)))

    def pure(wv, *xs):
        return jnp.sin(wv * sum(xs, jnp.ones(2)))

    primals = tuple(jnp.array([0.1, 0.2]) * (i + 1) for i in range(n))
    tangents = tuple(jnp.array([1.0, -1.0]) / (i + 1) for i in range(n))
    for calls in range(1, 4):
        y, ty = sd.jvp(f, primals, tangents)
        want = jax.jvp(lambda *xs: pure(w.value, *xs), primals, tangents)
        np.testing.assert_allclose(y, want[0], rtol=1e-6)
        np.testing.assert_allclose(ty, want[1], rtol=1e-6)
        assert float(count.value) == calls  # the write lands once per call
    table = jvp_module._QUICK.get(n)
    assert (table is not None) == (n <= 8)
    if table is not None:
        assert len(table) == 1


def test_lists_and_has_aux_take_the_flat_transform_too():
    w = sg.ParamState(jnp.array([2.0, 3.0]), name="w")

    def f(x, y):
        return w.value * x * y, {"x": x}

    x, y = jnp.array([1.0, 2.0]), jnp.array([0.5, 0.25])
    tx, ty_ = jnp.ones(2), jnp.zeros(2)
    for _ in range(2):
        out, tan, aux = sd.jvp(f, [x, y], [tx, ty_], has_aux=True)
        want = jax.jvp(lambda x, y: w.value * x * y, (x, y), (tx, ty_))
        np.testing.assert_allclose(out, want[0])
        np.testing.assert_allclose(tan, want[1])
        np.testing.assert_allclose(aux["x"], x)
    assert weak_cache.size() == 1  # a list and a tuple of primals share the transform


def test_state_tangents_without_grad_states_still_raise_after_hits():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return w.value * x

    sd.jvp(f, (1.0,), (1.0,))
    sd.jvp(f, (1.0,), (1.0,))  # a quick hit
    before = w.value
    with pytest.raises(TypeError, match="state_tangents were given, but grad_states is None"):
        sd.jvp(f, (1.0,), (1.0,), state_tangents=jnp.ones(2))
    assert w.value is before


def test_errors_name_jvp_and_the_signature_is_kept():
    params = list(inspect.signature(sd.jvp).parameters)
    assert params == [
        "fun",
        "primals",
        "tangents",
        "has_aux",
        "grad_states",
        "state_tangents",
        "unit_aware",
        "check_states",
    ]

    def f(x, y):
        return x * y

    sd.jvp(f, (1.0, 2.0), (1.0, 0.0))
    with pytest.raises(ValueError, match=r"statediff.jvp: got 2 primal\(s\) but 1 tangent"):
        sd.jvp(f, (1.0, 2.0), (1.0,))
    with pytest.raises(ValueError, match="statediff.jvp"):  # a wrong tangent shape
        sd.jvp(f, (1.0, 2.0), (jnp.ones(3), 0.0))


def test_disable_jit_after_hits_runs_the_body():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    seen = []

    def f(x):
        seen.append(type(x).__name__)
        return jnp.cos(w.value * x)

    x, t = jnp.array([0.3, 0.4]), jnp.ones(2)
    sd.jvp(f, (x,), (t,))
    sd.jvp(f, (x,), (t,))
    traced = len(seen)
    with jax.disable_jit():
        y, ty = sd.jvp(f, (x,), (t,))
    assert len(seen) > traced
    want = jax.jvp(lambda x: jnp.cos(w.value * x), (x,), (t,))
    np.testing.assert_allclose(ty, want[1], rtol=1e-6)


def test_flat_entries_die_with_the_function():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return w.value * x

    sd.jvp(f, (1.0,), (1.0,))
    ref = weakref.ref(f)
    del f
    gc.collect()
    assert ref() is None
    assert weak_cache.size() == 0 and len(jvp_module._ONE) == 0
