"""The run-now calls' quick lookup (``weak_cache.quick_table``) and the cache's keys.

A call of ``sd.jvp`` / ``sd.vjp`` / ``sd.linearize`` with the default settings
finds its compiled call by the function's identity. These tests check that
such a hit gives what the long way gives (against plain JAX), that it never
outlives the function, that the settings it skips (``jax.disable_jit``, odd
flags) still take the long way, and that a dict of ``grad_states`` changed in
place is never answered from the old entry.
"""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
from statediff._src import weak_cache


def _tables() -> int:
    """The number of entries in all quick tables."""
    return sum(len(t) for t in weak_cache._QUICK.values())


@pytest.fixture(autouse=True)
def _fresh_cache():
    weak_cache.clear()
    yield
    weak_cache.clear()


def test_default_calls_hit_and_match_jax():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.sin(w.value * x)

    def pure(wv, x):
        return jnp.sin(wv * x)

    x, t = jnp.array([0.3, 0.7]), jnp.array([1.0, -1.0])
    for _ in range(3):
        y, ty = sd.jvp(f, (x,), (t,))
        want = jax.jvp(lambda x: pure(w.value, x), (x,), (t,))
        np.testing.assert_allclose(y, want[0], rtol=1e-6)
        np.testing.assert_allclose(ty, want[1], rtol=1e-6)
        y, fn = sd.vjp(f, x)
        y_ref, fn_ref = jax.vjp(lambda x: pure(w.value, x), x)
        np.testing.assert_allclose(y, y_ref, rtol=1e-6)
        np.testing.assert_allclose(fn(t), fn_ref(t)[0], rtol=1e-6)
        y, lin = sd.linearize(f, x)
        y_ref, lin_ref = jax.linearize(lambda x: pure(w.value, x), x)
        np.testing.assert_allclose(lin(t), lin_ref(t), rtol=1e-6)
    assert weak_cache.size() == 3 and _tables() == 3
    w.value = jnp.array([3.0, 4.0])  # a new value is read by the hit, not baked in
    _, ty = sd.jvp(f, (x,), (t,))
    np.testing.assert_allclose(ty, jax.jvp(lambda x: pure(w.value, x), (x,), (t,))[1], rtol=1e-6)


def test_dict_calls_match_jax():
    a = sg.ParamState(jnp.array([1.0, 2.0]), name="a")
    b = sg.ParamState(jnp.array([0.5, -1.0]), name="b")
    params = {"a": a, "b": b}

    def f(x):
        return jnp.tanh(a.value * x + b.value)

    def pure(p, x):
        return jnp.tanh(p["a"] * x + p["b"])

    x, ct = jnp.array([0.3, 0.7]), jnp.array([1.0, 2.0])
    for _ in range(3):
        y, fn = sd.vjp(f, x, grad_states=params, argnums=None)
        values = {k: s.value for k, s in params.items()}
        y_ref, fn_ref = jax.vjp(lambda p: pure(p, x), values)
        np.testing.assert_allclose(y, y_ref, rtol=1e-6)
        got, want = fn(ct), fn_ref(ct)[0]
        assert set(got) == {"a", "b"}
        for k in want:
            np.testing.assert_allclose(got[k], want[k], rtol=1e-6)
        tangents = {"a": jnp.ones(2), "b": jnp.zeros(2)}
        y, ty = sd.jvp(f, (x,), (jnp.zeros(2),), grad_states=params, state_tangents=tangents)
        _, ty_ref = jax.jvp(lambda p: pure(p, x), (values,), (tangents,))
        np.testing.assert_allclose(ty, ty_ref, rtol=1e-6)
    assert weak_cache.size() == 2 and _tables() == 0  # with grad_states: the keyed lookup


def test_dict_changed_in_place_is_not_answered_from_the_old_entry():
    a = sg.ParamState(jnp.array([1.0, 2.0]), name="a")
    b = sg.ParamState(jnp.array([3.0, 4.0]), name="b")
    c = sg.ParamState(jnp.array([5.0, 6.0]), name="c")

    def f(x):
        return (a.value * b.value * c.value * x).sum()

    def grads(gs):
        _, fn = sd.vjp(f, 2.0, grad_states=gs, argnums=None)
        return fn(jnp.ones(()))

    gs = {"a": a, "b": b}
    for _ in range(2):
        got = grads(gs)
    np.testing.assert_allclose(got["b"], a.value * c.value * 2.0)
    gs["b"] = c  # the same dict, another state under the same key
    np.testing.assert_allclose(grads(gs)["b"], a.value * b.value * 2.0)
    gs["c"] = b  # a new key
    assert set(grads(gs)) == {"a", "b", "c"}
    del gs["c"]
    gs = {"b": c, "a": a}  # the same states in another order: another entry, the same values
    got = grads(gs)
    assert set(got) == {"a", "b"}
    np.testing.assert_allclose(got["a"], b.value * c.value * 2.0)


def test_quick_entries_die_with_the_function_and_the_states():
    w = sg.ParamState(jnp.ones(3), name="w")
    v = sg.ParamState(jnp.ones(3), name="v")

    def f(x):
        return jnp.sum(w.value * v.value * x)  # noqa: F821 (deleted below, on purpose)

    for _ in range(2):
        sd.vjp(f, 2.0)
        sd.jvp(f, (2.0,), (1.0,))
        sd.linearize(f, 2.0)
        sd.vjp(f, 2.0, grad_states={"w": w})
    assert weak_cache.size() == 4 and _tables() == 3
    ref_f, ref_w, ref_v = weakref.ref(f), weakref.ref(w), weakref.ref(v)
    del f, w, v
    gc.collect()
    assert ref_f() is None and ref_w() is None and ref_v() is None
    assert weak_cache.size() == 0 and _tables() == 0


def test_a_dead_state_removes_its_entries():
    w = sg.ParamState(jnp.ones(3), name="w")

    def f(x):
        return jnp.sum(x * 2.0)

    def g(x):
        return jnp.sum(w.value * x)  # noqa: F821 (deleted below, on purpose)

    gs = {"w": w}
    sd.vjp(g, 1.0, grad_states=gs)
    with pytest.raises(ValueError, match="never reads or writes"):
        sd.vjp(f, 1.0, grad_states=gs)
    assert not isinstance(w.value, jax.core.Tracer)
    sd.vjp(f, 1.0)
    assert weak_cache.size() == 3  # f's failed transform is kept: its error came from its trace
    ref = weakref.ref(w)
    del gs, w, g
    gc.collect()
    assert ref() is None and weak_cache.size() == 1 and _tables() == 1  # f's own entry


def test_eviction_removes_quick_entries(monkeypatch):
    monkeypatch.setattr(weak_cache, "MAX_ENTRIES", 2)
    funs = [lambda x, k=k: x * k for k in range(6)]
    for f in funs:
        for _ in range(2):
            y, _ = sd.vjp(f, 1.5)
    assert weak_cache.size() == 2 and _tables() == 2
    for k, f in enumerate(funs):  # evicted functions are built again, with right results
        y, fn = sd.vjp(f, 1.5)
        assert float(y) == 1.5 * k and float(fn(1.0)) == k
    weak_cache.clear()
    assert _tables() == 0


def test_other_settings_take_the_long_way():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return w.value * x

    def aux(x):
        return w.value * x, x

    sd.jvp(f, (3.0,), (1.0,))
    sd.vjp(f, 3.0)
    # Flags equal to the defaults but not the same objects: the same answers.
    y, ty = sd.jvp(f, [3.0], [1.0], has_aux=0, check_states=1)
    np.testing.assert_allclose(ty, w.value)
    y, fn = sd.vjp(f, 3.0, argnums=np.int64(0), has_aux=np.False_)
    np.testing.assert_allclose(fn(jnp.ones(2)), 3.0)
    with pytest.raises(TypeError, match="primals must be a tuple"):
        sd.jvp(f, 3.0, (1.0,))
    with pytest.raises(ValueError, match="got 1 primal"):
        sd.jvp(f, (3.0,), (1.0, 2.0))
    with pytest.raises(ValueError, match="nothing to differentiate"):
        sd.vjp(f)
    # False and (0, True) equal 0 and (0, 1) as keys, but are not argnums.
    for bad in (False, (False,), [0, True], np.True_, (np.True_,)):
        with pytest.raises((TypeError, ValueError), match="argnums"):
            sd.vjp(f, 3.0, 1.0, argnums=bad)
    y, ty, a = sd.jvp(aux, (3.0,), (1.0,), has_aux=True)
    assert float(a) == 3.0


def test_array_argnums_next_to_a_cached_entry():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x, y):
        return jnp.sum(w.value * x * y)

    gs = {"w": w}
    sd.vjp(f, 1.0, 2.0, grad_states=gs, argnums=None)
    # An array as argnums is not hashable: built afresh, with the right answer.
    _, fn = sd.vjp(f, 1.0, 2.0, grad_states=gs, argnums=np.array([0, 1]))
    g_w, (g_x, g_y) = fn(jnp.ones(()))
    want = jax.grad(lambda wv, x, y: jnp.sum(wv * x * y), argnums=(0, 1, 2))(w.value, 1.0, 2.0)
    np.testing.assert_allclose(g_w["w"], want[0])
    np.testing.assert_allclose([g_x, g_y], want[1:])
    with pytest.raises(ValueError, match="argnums"):
        sd.vjp(f, 1.0, 2.0, grad_states=gs, argnums=np.array([0, 5]))
    assert not isinstance(w.value, jax.core.Tracer)


def test_disable_jit_runs_the_python_body_after_a_hit():
    calls = []
    w = sg.ParamState(jnp.array(2.0), name="w")

    def f(x):
        calls.append(1)
        return w.value * x

    for _ in range(2):
        sd.jvp(f, (1.0,), (1.0,))
        sd.vjp(f, 1.0)
        sd.linearize(f, 1.0)
        sd.vjp(f, 1.0, grad_states={"w": w})
    traced = len(calls)
    with jax.disable_jit():
        _, ty = sd.jvp(f, (1.0,), (1.0,))
        _, fn = sd.vjp(f, 1.0)
        _, lin = sd.linearize(f, 1.0)
        _, fn2 = sd.vjp(f, 1.0, grad_states={"w": w})
    assert len(calls) == traced + 4  # each ran the Python body
    assert float(ty) == 2.0 and float(fn(1.0)) == 2.0 and float(lin(1.0)) == 2.0
    assert float(fn2(1.0)[0]["w"]) == 1.0


def test_quick_hits_from_many_threads():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def work(k: int) -> None:
        def f(x):
            return w.value * x * k

        for _ in range(20):
            _, ty = sd.jvp(f, (1.0,), (1.0,))
            np.testing.assert_allclose(ty, w.value * k)
            _, fn = sd.vjp(f, 1.0, grad_states={"w": w}, argnums=None)
            np.testing.assert_allclose(fn(jnp.ones(2))["w"], k * jnp.ones(2))

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(1, 5)))  # re-raises a worker's error
    assert not isinstance(w.value, jax.core.Tracer)
    gc.collect()
    assert weak_cache.size() == 0 and _tables() == 0  # the threads' functions are gone
