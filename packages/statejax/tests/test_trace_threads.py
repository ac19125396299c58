"""A trace in one thread is invisible to the others (issue 11).

While thread B traces a function that reads and writes states (held inside the trace by an
event), the main thread reads, writes, snapshots and calls compiled functions on the same
states. Plain JAX is the reference: a global array read by a function that another thread is
tracing stays an array, and nothing the other thread does undoes this thread's writes.
"""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj

TIMEOUT = 60


class Model:
    def __init__(self):
        self.w = sg.ParamState(jnp.arange(3.0), name="w")
        self.count = sg.ShortTermState(jnp.zeros(()), name="count")
        self.out = sg.ShortTermState(jnp.zeros(()), name="out")


def no_tracer(tree):
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(tree))


class Held:
    """Runs ``call`` in a thread whose trace stops inside the user's body until released."""

    def __init__(self):
        self.inside = threading.Event()
        self.release = threading.Event()
        self.result = None
        self.error = None

    def hold(self):
        self.inside.set()
        assert self.release.wait(TIMEOUT)

    def start(self, call):
        def run():
            try:
                self.result = call()
            except BaseException as err:  # reported by the test
                self.error = err

        self.thread = threading.Thread(target=run)
        self.thread.start()
        assert self.inside.wait(TIMEOUT)

    def finish(self):
        self.release.set()
        self.thread.join(TIMEOUT)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error
        return self.result


def check_other_thread_meanwhile(m, held, increment):
    """The main thread's view while ``held`` traces: arrays, snapshots, compiled calls."""
    w0, c0 = m.w.value, m.count.value
    assert isinstance(w0, jax.Array) and no_tracer(w0)
    assert np.array_equal(w0, jnp.arange(3.0))
    snap = sg.snapshot(m)
    assert no_tracer(snap)
    assert set(snap) == {"w", "count", "out"}
    # An eager write, then an already-compiled `+1`, while the other trace is open.
    m.count.value = c0 + 5.0
    assert float(increment()) == float(c0) + 6.0
    assert float(m.count.value) == float(c0) + 6.0
    assert no_tracer(m.count.value)


@pytest.mark.parametrize("kind", ["jit", "vmap_shared", "eval_shape", "cond"])
def test_trace_in_another_thread_is_invisible(kind):
    m = Model()

    @sj.jit
    def increment():
        m.count.value = m.count.value + 1.0
        return m.count.value

    increment()  # compiled now
    m.count.value = jnp.zeros(())
    held = Held()

    def body(x):
        y = (m.w.value * x).sum() + m.count.value
        m.w.value = m.w.value * 2.0  # a private write inside the trace
        held.hold()
        m.out.value = y
        return y

    if kind == "jit":
        call = lambda: sj.jit(body)(2.0)  # noqa: E731
    elif kind == "vmap_shared":
        call = lambda: sj.vmap(lambda x: body(x) * 0 + m.w.value.sum(), in_axes=None,  # noqa: E731
                               axis_size=2)(2.0)
    elif kind == "eval_shape":
        call = lambda: sj.eval_shape(body, 2.0)  # noqa: E731
    else:
        call = lambda: sj.cond(True, body, lambda x: x, 2.0)  # noqa: E731
    held.start(call)
    try:
        check_other_thread_meanwhile(m, held, increment)
    finally:
        result = held.finish()
    # The trace restored nothing it did not write: the main thread's 6.0 stands.
    if kind == "eval_shape":
        assert float(m.count.value) == 6.0 and np.array_equal(m.w.value, jnp.arange(3.0))
        return
    assert float(m.count.value) == 6.0
    # The run used the values current when it ran (as a jax.jit of the pure function would).
    if kind != "vmap_shared":
        assert float(result) == float((jnp.arange(3.0) * 2.0).sum() + 6.0)
    assert np.array_equal(m.w.value, jnp.arange(3.0) * 2.0)
    assert no_tracer(sg.snapshot(m))


def test_vmap_lane_swap_is_invisible_to_other_threads():
    h = sg.ShortTermState(jnp.arange(8.0).reshape(4, 2), name="h")
    seen = {}
    held = Held()

    def body(x):
        seen["lane"] = h.value.shape  # per-lane view, in the tracing thread only
        held.hold()
        h.value = h.value + x
        return h.value.sum()

    f = sj.vmap(body, in_states=h)
    held.start(lambda: f(jnp.ones(4)))
    try:
        value = h.value  # the main thread sees the whole batched array, never a placeholder
        assert isinstance(value, jax.Array) and value.shape == (4, 2)
        assert no_tracer(sg.snapshot({"h": h}))
        h.value = h.value * 10.0
    finally:
        out = held.finish()
    assert seen["lane"] == (2,)
    expected_h = jnp.arange(8.0).reshape(4, 2) * 10.0 + 1.0
    assert np.allclose(h.value, expected_h)
    assert np.allclose(out, expected_h.sum(axis=1))


def test_many_threads_read_write_while_others_trace():
    """Zero wrong results: readers/writers race with threads tracing fresh functions."""
    states = [sg.ShortTermState(jnp.full((), float(i)), name=f"s{i}") for i in range(4)]
    errors = []
    stop = threading.Event()

    def tracer_thread(t):
        try:
            for i in range(6):
                def body(x, i=i):
                    return sum(s.value for s in states) * x + i
                sj.jit(body)(1.0)
        except BaseException as err:
            errors.append(err)

    def rw_thread(t):
        s = states[t]
        try:
            own = float(s.value)
            while not stop.is_set():
                v = s.value
                if not isinstance(v, jax.Array) or isinstance(v, jax.core.Tracer):
                    errors.append(TypeError(f"saw {type(v).__name__}"))
                    return
                if float(v) != own:
                    errors.append(AssertionError(f"s{t}: {float(v)} != {own}"))
                    return
                own += 1.0
                s.value = jnp.full((), own)
        except BaseException as err:
            errors.append(err)

    rw = [threading.Thread(target=rw_thread, args=(t,)) for t in range(4)]
    tr = [threading.Thread(target=tracer_thread, args=(t,)) for t in range(2)]
    for th in rw + tr:
        th.start()
    for th in tr:
        th.join(TIMEOUT)
    stop.set()
    for th in rw:
        th.join(TIMEOUT)
    assert not errors, errors[:3]
