"""Thread safety of statejax.jit: concurrent calls and racing first traces."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import jax
import jax.numpy as jnp
import numpy as np

import stategraph as sg
import statejax as sj

THREADS = 8
CALLS = 40


def counted(fun):
    lock = threading.Lock()

    def wrapper(*args, **kwargs):
        with lock:
            wrapper.runs += 1
        return fun(*args, **kwargs)

    wrapper.runs = 0
    return wrapper


def run_threads(work):
    barrier = threading.Barrier(THREADS, timeout=60)

    def start(t):
        barrier.wait()  # every thread makes its first call at the same time
        return work(t)

    with ThreadPoolExecutor(THREADS) as pool:
        return list(pool.map(start, range(THREADS)))


def close(a, b):
    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-5))


def test_concurrent_calls_reading_shared_params_give_correct_results():
    params = [sg.ParamState(jnp.arange(4.0) * (i + 1), name=f"p{i}") for i in range(3)]
    bias = sg.ParamState({"b": jnp.ones(4), "s": jnp.float32(0.5)}, name="bias")

    @counted
    def body(x):
        y = x
        for p in params:
            y = jnp.tanh(y * p.value + bias.value["b"])
        return y * bias.value["s"]

    fn = sj.jit(body)

    @jax.jit
    def pure(values, b, x):
        y = x
        for v in values:
            y = jnp.tanh(y * v + b["b"])
        return y * b["s"]

    p_values, b_value = [p.value for p in params], bias.value

    def work(t):
        ok = []
        for i in range(CALLS):
            # Two signatures per thread, values of its own.
            x = jnp.full((4,) if i % 2 else (3, 4), 0.01 * (t * CALLS + i), jnp.float32)
            ok.append(close(fn(x), pure(p_values, b_value, x)))
        return all(ok)

    assert all(run_threads(work))
    assert body.runs == 2
    assert all(p.value is v for p, v in zip(params, p_values, strict=True))


def test_racing_first_calls_trace_each_signature_once():
    w = sg.ParamState(jnp.ones(3), name="w")

    @counted
    def body(x):
        return (w.value * x).sum(axis=-1)

    fn = sj.jit(body)
    shapes = [(3,), (2, 3)]  # half the threads race on each signature

    def work(t):
        x = jnp.full(shapes[t % 2], float(t), jnp.float32)
        return close(fn(x), (np.ones(3) * float(t)).sum() * np.ones(shapes[t % 2][:-1]))

    assert all(run_threads(work))
    assert body.runs == 2


def test_concurrent_calls_writing_per_thread_states():
    # One function, one state per thread (chosen by a static argument): each
    # thread's plan differs, so the generated call is regenerated while the
    # other threads run it.
    states = [sg.ShortTermState(jnp.zeros(2), name=f"h{t}") for t in range(THREADS)]
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    @counted
    def body(x, t):
        states[t].value = 0.5 * states[t].value + w.value * x
        return states[t].value.sum()

    fn = sj.jit(body, static_argnums=1)
    step = jax.jit(lambda h, w_, x: 0.5 * h + w_ * x)

    def work(t):
        h, ok = jnp.zeros(2), []
        for i in range(CALLS):
            x = jnp.float32(t + i)
            h = step(h, w.value, x)
            ok.append(close(fn(x, t), h.sum()))
        return all(ok) and close(states[t].value, h)

    assert all(run_threads(work))
    assert body.runs == THREADS


def test_calls_while_another_thread_traces():
    # An open state trace in one thread must not disturb compiled calls in others.
    w = sg.ParamState(jnp.arange(3.0), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    @sj.jit
    def read(x):
        return w.value * x

    read(1.0)
    inside, done = threading.Event(), threading.Event()

    def tracer_thread():
        with sg.StateTrace() as trace:
            h.value = h.value + 1
            inside.set()
            done.wait(timeout=30)
        return trace.written_states == (h,)

    with ThreadPoolExecutor(1) as pool:
        traced = pool.submit(tracer_thread)
        assert inside.wait(timeout=30)
        results = [close(read(float(i)), np.arange(3.0) * i) for i in range(20)]
        done.set()
        assert traced.result()
    assert all(results)
    assert close(h.value, np.ones(3))
