"""A statediff trace in one thread is invisible to the others (issue 11)."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg
import statejax as sj

TIMEOUT = 60


def test_grad_traced_in_another_thread_leaves_states_arrays_for_this_one():
    w = sg.ParamState(jnp.arange(3.0), name="w")
    count = sg.ShortTermState(jnp.zeros(()), name="count")
    inside, release = threading.Event(), threading.Event()
    box = {}

    @sj.jit
    def increment():
        count.value = count.value + 1.0

    increment()
    count.value = jnp.zeros(())

    def loss(x):
        y = jnp.sum(w.value**2 * x)
        w.value = w.value * 0.0  # private write inside the trace, then kept after the call
        inside.set()
        assert release.wait(TIMEOUT)
        return y

    def run():
        try:
            box["g"] = sd.grad(loss, grad_states=w)(2.0)
        except BaseException as err:
            box["err"] = err

    thread = threading.Thread(target=run)
    thread.start()
    assert inside.wait(TIMEOUT)
    try:
        value = w.value
        assert isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer)
        snap = sg.snapshot({"w": w, "count": count})
        assert not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(snap))
        w.value = jnp.ones(3)  # this thread's write, before the traced call runs
        count.value = count.value + 5.0
        increment()
        assert float(count.value) == 6.0
    finally:
        release.set()
        thread.join(TIMEOUT)
    assert "err" not in box, box.get("err")
    # The gradient is taken at the value current when the call ran (plain JAX reference).
    expected = jax.grad(lambda wv: jnp.sum(wv**2 * 2.0))(jnp.ones(3))
    assert np.allclose(box["g"], expected)
    assert float(count.value) == 6.0
    assert np.array_equal(w.value, jnp.zeros(3))
