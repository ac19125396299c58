"""LiftTrace keeps its tracers private to its thread (issue 11)."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import pytest

import stategraph as sg
from stategraph.extend import LiftTrace, private_values, read_raw, write_raw

TIMEOUT = 60


def test_lift_trace_never_stores_tracers_in_the_state():
    w = sg.State(jnp.ones(2), name="w")
    seen = {}

    def f(x):
        with LiftTrace() as t:
            w.value = w.value * x
            seen["inside"] = read_raw([w])[0]
            seen["shared"] = w._value  # the shared slot is never touched
        return t.output_values

    jax.make_jaxpr(f)(2.0)
    assert isinstance(seen["inside"], jax.core.Tracer)
    assert seen["shared"] is not None and not isinstance(seen["shared"], jax.core.Tracer)
    assert float(w.value[0]) == 1.0


def test_other_threads_writes_survive_a_trace_that_read_the_state():
    s = sg.State(jnp.zeros(()), name="s")
    inside, release = threading.Event(), threading.Event()

    def f(x):
        with LiftTrace():
            y = s.value + x
            s.value = y  # private to the tracing thread
            inside.set()
            assert release.wait(TIMEOUT)
        return y

    thread = threading.Thread(target=lambda: jax.make_jaxpr(f)(1.0))
    thread.start()
    assert inside.wait(TIMEOUT)
    try:
        assert not isinstance(s.value, jax.core.Tracer)
        s.value = jnp.full((), 6.0)
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert float(s.value) == 6.0  # the trace restored nothing it did not write


def test_private_values_show_values_to_this_thread_only():
    a = sg.State(jnp.ones(3), name="a")
    other = {}
    entered, done = threading.Event(), threading.Event()

    def look():
        assert entered.wait(TIMEOUT)
        other["value"] = a.value
        done.set()

    thread = threading.Thread(target=look)
    thread.start()
    with private_values([a], [jax.ShapeDtypeStruct((), jnp.float32)]):
        assert isinstance(a.value, jax.ShapeDtypeStruct)
        write_raw([a], [jnp.zeros(())])
        assert a.value.shape == ()
        entered.set()
        assert done.wait(TIMEOUT)
    thread.join(TIMEOUT)
    assert other["value"].shape == (3,)
    assert a.value.shape == (3,)


def test_private_values_needs_one_value_per_state():
    with pytest.raises(ValueError, match="private_values: got 1 state"):
        with private_values([sg.State(1.0)], []):
            pass
