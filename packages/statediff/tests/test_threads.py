"""One transform object called from many threads at once."""

from __future__ import annotations

import threading

import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg
from stategraph.extend import open_traces

N_THREADS = 8
W0 = jnp.array([0.5, -1.0, 2.0])


def loss(wv, x):
    return (jnp.sin(wv) ** 2).sum() * (x**2).sum() + (wv * x.sum()).sum()


def run_threads(target):
    """Start every thread at once (a barrier), join them, re-raise the first error."""
    barrier = threading.Barrier(N_THREADS)
    errors: list[BaseException] = []

    def worker(i):
        try:
            barrier.wait()
            target(i)
            assert open_traces() == (), "a state trace leaked in this thread"
        except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(N_THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    if errors:
        raise errors[0]


def test_one_grad_object_from_eight_threads():
    w = sg.ParamState(W0, name="w")
    calls = []

    def f(x):
        calls.append(1)
        return loss(w.value, x)

    g = sd.grad(f, grad_states=w, argnums=0, return_value=True)
    # per-thread inputs; two shapes, so two signatures are traced concurrently
    inputs = [jnp.arange(3 + i % 2, dtype=jnp.float32) * 0.1 * (i + 1) for i in range(N_THREADS)]
    reference = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
    expected = [reference(W0, x) for x in inputs]
    results: dict[int, list] = {}

    def call(i):
        results[i] = [g(inputs[i]) for _ in range(3)]

    run_threads(call)
    for i in range(N_THREADS):
        value, grads = expected[i]
        for (var_grads, arg_grads), got_value in results[i]:
            np.testing.assert_allclose(var_grads, grads[0], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(arg_grads, grads[1], rtol=1e-5, atol=1e-6)
            np.testing.assert_allclose(got_value, value, rtol=1e-5, atol=1e-6)
    assert len(calls) == 2  # traced once per signature, never per call or per thread
    np.testing.assert_array_equal(w.value, W0)


def test_per_thread_states_with_one_jacfwd_object():
    """Each thread writes its own state through the same transform object."""
    w = sg.ParamState(W0, name="w")
    outs = [sg.ShortTermState(jnp.zeros(3), name=f"out{i}") for i in range(N_THREADS)]

    def f(x, i_onehot):
        y = jnp.tanh(w.value * x)
        return y, i_onehot

    jac = sd.jacfwd(f, grad_states=w, has_aux=True)
    reference = jax.jit(jax.jacfwd(lambda wv, x: jnp.tanh(wv * x)))

    def call(i):
        x = jnp.float32(0.1 * (i + 1))
        for _ in range(3):
            jac_w, aux = jac(x, jnp.float32(i))
            outs[i].value = jnp.diag(jac_w)
            assert int(aux) == i

    run_threads(call)
    for i in range(N_THREADS):
        expected = reference(W0, jnp.float32(0.1 * (i + 1)))
        np.testing.assert_allclose(outs[i].value, jnp.diag(expected), rtol=1e-5, atol=1e-6)
