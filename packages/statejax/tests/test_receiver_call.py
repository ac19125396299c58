"""``StatefulFunction.receiver_call``: the compiled call as a class's ``__call__``.

The view takes the instance first and ignores it; it must behave exactly as
the stateful function's own call (checked against the pure function in plain
JAX), follow every change of plan, let go of everything with the function,
and be safe to call from many threads.
"""

from __future__ import annotations

import gc
import inspect
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


def _counter_class(sf: sj.StatefulFunction) -> type:
    call = sf.receiver_call("Counter.__call__")
    assert call is not None
    return type("Counter", (), {"__call__": call})


def test_view_matches_the_pure_function_and_writes_states():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    def step(x, y):
        h.value = jnp.tanh(w.value * x + h.value) * y
        return h.value.sum()

    @jax.jit
    def pure(wv, hv, x, y):
        new = jnp.tanh(wv * x + hv) * y
        return new.sum(), new

    sf = sj.StatefulFunction(step)
    obj = _counter_class(sf)()
    hv = h.value
    for i in range(4):
        x = jnp.array([0.1 * i, 0.2])
        out = obj(x, 2.0) if i % 2 else sf(x, 2.0)  # the view and the function take turns
        want, hv = pure(w.value, hv, x, 2.0)
        np.testing.assert_allclose(out, want, rtol=1e-6)
        np.testing.assert_allclose(h.value, hv, rtol=1e-6)
    assert list(inspect.signature(obj).parameters) == ["x", "y"]


def test_view_follows_plan_changes_and_clear_cache():
    a = sg.ParamState(jnp.array(2.0), name="a")
    b = sg.ParamState(jnp.array(3.0), name="b")
    use = {"state": a}

    def f(x):
        return use["state"].value * x

    sf = sj.StatefulFunction(f)
    sf(1.0)  # a plan exists before the view is made
    obj = _counter_class(sf)()
    assert float(obj(2.0)) == 4.0
    use["state"] = b
    sf.clear_cache()  # rebinding needs a new trace, as for the function itself
    assert float(obj(2.0)) == 6.0
    assert float(obj(jnp.ones(3))[0]) == 3.0  # another signature
    a.value = jnp.array(10.0)
    use["state"] = a
    sf.clear_cache()
    assert float(obj(2.0)) == 20.0


def test_view_errors_name_the_class_and_leave_states_alone():
    s = sg.ShortTermState(jnp.array(1.0), name="s")

    def f(x):
        s.value = s.value + x
        return s.value

    sf = sj.StatefulFunction(f)
    obj = _counter_class(sf)()
    obj(1.0)
    with pytest.raises(TypeError, match=r"Counter.__call__\(\) takes 2 positional arguments"):
        obj(1.0, 2.0)
    with pytest.raises(TypeError):
        obj(s)  # a State as an argument: the function's own clear error
    assert float(s.value) == 2.0 and not isinstance(s.value, jax.core.Tracer)


def test_no_view_without_a_plain_signature():
    def with_default(x, y=1.0):
        return x * y

    def variadic(*xs):
        return sum(xs)

    assert sj.StatefulFunction(with_default).receiver_call() is None
    assert sj.StatefulFunction(variadic).receiver_call() is None
    assert sj.StatefulFunction(lambda x, n: x * n, static_argnums=1).receiver_call() is None


def test_view_under_disable_jit_runs_the_python_body():
    calls = []
    s = sg.ShortTermState(jnp.array(0.0), name="s")

    def f(x):
        calls.append(float(x) if jax.config.jax_disable_jit else None)
        s.value = s.value + x
        return s.value

    sf = sj.StatefulFunction(f)
    obj = _counter_class(sf)()
    obj(1.0)
    obj(1.0)
    with jax.disable_jit():
        assert float(obj(2.0)) == 4.0
    assert calls[-1] == 2.0 and float(s.value) == 4.0


def test_view_and_function_are_collected():
    s = sg.ShortTermState(jnp.array(0.0), name="s")

    def f(x):
        s.value = s.value + x  # noqa: F821 (deleted below, on purpose)
        return s.value  # noqa: F821

    sf = sj.StatefulFunction(f)
    cls = _counter_class(sf)
    cls()(1.0)
    refs = [weakref.ref(o) for o in (sf, cls, f, s)]
    del sf, cls, f, s
    gc.collect()
    assert all(r() is None for r in refs)


def test_view_from_many_threads():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def f(x):
        s.value = s.value + x
        return s.value

    sf = sj.StatefulFunction(f)
    obj = _counter_class(sf)()
    obj(0.0)
    lock = threading.Lock()

    def work(_: int) -> None:
        for _ in range(50):
            with lock:  # the increments are serialised; the calls' machinery is not
                obj(1.0)
            assert not isinstance(s.value, jax.core.Tracer)

    with ThreadPoolExecutor(4) as pool:
        list(pool.map(work, range(1, 5)))  # re-raises a worker's error
    assert float(s.value) == 200.0
