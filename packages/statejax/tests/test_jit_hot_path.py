"""The ``sj.jit`` hot path: plans, memory, weak types, ``disable_jit``, brainstate surface."""

from __future__ import annotations

import gc
import inspect
import subprocess
import sys
import types
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


def assert_tree_equal(a, b):
    jax.tree.map(np.testing.assert_array_equal, a, b)


def counted(fun):
    def wrapper(*args, **kwargs):
        wrapper.runs += 1
        return fun(*args, **kwargs)

    wrapper.runs = 0
    return wrapper


class CompileCounter:
    def __init__(self):
        self.count = 0
        jax.monitoring.register_event_duration_secs_listener(self._on_event)

    def _on_event(self, event, duration, **kwargs):
        if "backend_compile" in event:
            self.count += 1


COMPILES = CompileCounter()


# ---------------------------------------------------------------- the object
def test_jit_returns_a_plain_function_with_the_users_signature():
    def step(x, y):
        return x + y

    f = sj.jit(step)
    assert type(f) is types.FunctionType
    assert list(inspect.signature(f).parameters) == ["x", "y"]
    assert f.origin_fun is step
    assert f.stateful_fun is f.stateful
    assert isinstance(f.stateful_fun, sj.StatefulFunction)
    assert_tree_equal(f(1.0, y=2.0), jnp.float32(3.0))


def test_bound_method_call_takes_the_methods_own_parameters():
    class Model:
        def __init__(self):
            self.h = sg.ShortTermState(jnp.zeros(2), name="h")

        def step(self, x, y):
            self.h.value = self.h.value + x * y
            return self.h.value.sum()

    m = Model()
    sf = sj.StatefulFunction(m.step)
    assert list(inspect.signature(sf._call).parameters) == ["x", "y"]
    for _ in range(2):  # the first call traces, the second runs the generated fast path
        out = sf(jnp.ones(2), y=2.0)
    assert_tree_equal(out, jnp.float32(8.0))
    assert_tree_equal(m.h.value, jnp.full(2, 4.0))


def test_compile_returns_the_compiled_pure_function():
    w = sg.ParamState(jnp.full(3, 2.0), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    @sj.jit
    def step(x):
        h.value = h.value + w.value * x
        return h.value.sum()

    x = jnp.ones(3)
    compiled = step.compile(x)
    assert_tree_equal(h.value, jnp.zeros(3))  # nothing ran
    read = step.read_states(x)
    out, new_h = compiled(*[s.value for s in read], x)
    pure = jax.jit(lambda w, h, x: ((h + w * x).sum(), h + w * x))
    ref_out, ref_h = pure(w.value, h.value, x)
    assert_tree_equal(out, ref_out)
    assert_tree_equal(new_h, ref_h)


def test_name_names_the_compiled_program():
    f = sj.jit(lambda x: x * 2, name="my_program")
    assert "my_program" in f.lower(1.0).as_text()
    assert_tree_equal(f(2.0), jnp.float32(4.0))


def test_disable_jit_runs_the_body_op_by_op():
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    seen = []

    @sj.jit
    def step(x):
        seen.append(isinstance(h.value, jax.core.Tracer))
        h.value = h.value + x
        return h.value.sum()

    step(jnp.ones(3))  # compiled: traced once
    with jax.disable_jit():
        out = step(jnp.ones(3))
        out = step(jnp.ones(3))
    assert seen == [True, False, False]
    assert_tree_equal(out, jnp.float32(9.0))
    assert_tree_equal(h.value, jnp.full(3, 3.0))
    assert_tree_equal(step(jnp.ones(3)), jnp.float32(12.0))  # compiled again, no retrace
    assert seen == [True, False, False]


# ------------------------------------------------------------ plans and memory
def test_two_plans_used_alternately_each_keep_their_fast_path():
    a = sg.ShortTermState(jnp.zeros(3), name="a")
    b = sg.ShortTermState(jnp.zeros(()), name="b")

    @counted
    def body(x):
        if x.ndim == 1:
            a.value = a.value + x
        else:
            b.value = b.value + 2 * x
        return x.sum()

    f = sj.jit(body)
    x1, x0 = jnp.ones(3), jnp.ones(())
    f(x1), f(x0)
    code, runs = f.__code__, body.runs
    sf = f.stateful
    slow_calls = []
    trace = sf.trace
    sf.trace = lambda *a, **k: (slow_calls.append(1), trace(*a, **k))[1]  # the slow path's entry
    for _ in range(5):
        f(x1), f(x0)
    assert f.__code__ is code  # nothing regenerated
    assert body.runs == runs  # nothing retraced
    assert slow_calls == []  # neither signature takes the slow path
    assert_tree_equal(a.value, jnp.full(3, 6.0))
    assert_tree_equal(b.value, jnp.float32(12.0))


def _live_bytes():
    return sum(x.nbytes for x in jax.live_arrays())


def test_rebuilding_a_model_releases_the_replaced_plans():
    class Model:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones((64, 64)), name="w")
            self.const = jnp.full((256, 256), 2.0)  # closed over by the trace

    holder = {}

    @sj.jit
    def step(x):
        m = holder["m"]
        return (m.w.value @ x).sum() * m.const.sum()

    x = jnp.ones(64)
    holder["m"] = Model()
    step(x)
    gc.collect()
    base = _live_bytes()
    refs = []
    for _ in range(30):
        refs.append(weakref.ref(holder["m"].w))
        holder["m"] = Model()
        np.testing.assert_allclose(step(x), 64 * 64 * 2.0 * 256 * 256, rtol=1e-6)
    gc.collect()
    assert all(r() is None for r in refs[1:])
    assert _live_bytes() <= base + 256 * 256 * 4  # one model alive, as before
    plan = step.trace(x).plan
    ref_jitted = weakref.ref(plan.jitted)
    del plan
    step.clear_cache()
    holder.clear()
    gc.collect()
    assert ref_jitted() is None
    assert _live_bytes() < base


def test_clear_cache_drops_the_generated_names():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.jit
    def step(x):
        s.value = s.value + x
        return s.value

    step(1.0)
    names = [k for k in step.__globals__ if k.startswith("_sj_p")]
    assert names
    step.clear_cache()
    assert not [k for k in step.__globals__ if k.startswith("_sj_p")]
    step(1.0)
    assert_tree_equal(s.value, jnp.float32(2.0))


# ------------------------------------------------------------------ weak types
def test_weak_typed_states_compile_once_and_become_strong():
    v = sg.ShortTermState(jnp.full(5, 0.0), name="v")
    tau = sg.ParamState(jnp.asarray(10.0), name="tau")
    assert v.value.weak_type and tau.value.weak_type

    @sj.jit
    def step(x):
        v.value = v.value + (x - v.value) / tau.value
        return v.value.sum()

    @jax.jit
    def pure(v, tau, x):
        v = v + (x - v) / tau
        return v.sum(), v

    x = jnp.arange(5.0)
    rv, rtau = jnp.zeros(5, jnp.float32), jnp.float32(10.0)
    out = step(x)  # first call: the one compile
    ref, rv = pure(rv, rtau, x)
    before = COMPILES.count
    for _ in range(3):
        out = step(x)
        ref, rv = pure(rv, rtau, x)
    assert COMPILES.count == before  # the second call did not compile again
    v2 = sg.ShortTermState(jnp.full(7, 0.0))

    @sj.jit
    def step2(x):
        v2.value = v2.value + x
        return v2.value

    x7 = jnp.ones(7)
    before = COMPILES.count
    for _ in range(3):
        step2(x7)
    assert COMPILES.count - before <= 1
    assert not v.value.weak_type and not tau.value.weak_type and not v2.value.weak_type
    assert v.value.dtype == jnp.float32 and tau.value.dtype == jnp.float32
    rv2 = jnp.zeros(5)
    for _ in range(4):
        _, rv2 = pure(rv2, rtau, x)
    np.testing.assert_allclose(v.value, rv2, rtol=1e-6)
    np.testing.assert_allclose(out, ref, rtol=1e-6)


# --------------------------------------------------------------------- import
@pytest.mark.parametrize("module", ["stategraph", "statejax"])
def test_import_starts_no_backend(module):
    code = (
        f"import {module}\n"
        "from jax._src import xla_bridge\n"
        "assert not xla_bridge._backends, 'a backend started at import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
