"""Written states: written back once per call with their primal values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg

W0 = jnp.array([0.5, -1.0, 2.0])
C0 = jnp.array([1.5, 0.7, -0.2])

# name -> (statediff transform, plain-JAX reference, scalar output?)
TRANSFORMS = {
    "jacfwd": (sd.jacfwd, jax.jacfwd, False),
    "jacrev": (sd.jacrev, jax.jacrev, False),
    "jacobian": (sd.jacobian, jax.jacrev, False),
    "grad": (sd.grad, jax.grad, True),
    "vector_grad": (sd.vector_grad, None, False),
    "hessian": (sd.hessian, jax.hessian, True),
}
NAMES = list(TRANSFORMS)


def reference(name, pure, argnums=0, has_aux=False):
    """Plain-JAX reference of a transform (vector_grad: grad of the summed output)."""
    jax_t = TRANSFORMS[name][1]
    if jax_t is not None:
        return jax.jit(jax_t(pure, argnums=argnums, has_aux=has_aux))

    def summed(*args):
        out = pure(*args)
        y, aux = out if has_aux else (out, None)
        return (y.sum(), aux) if has_aux else y.sum()

    return jax.jit(jax.grad(summed, argnums=argnums, has_aux=has_aux))


def assert_tree_close(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert jnp.shape(a) == jnp.shape(e)
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def concrete(state):
    value = state.value
    assert not isinstance(value, jax.core.Tracer), f"{state!r} holds a tracer"
    return value


@pytest.mark.parametrize("name", NAMES)
def test_written_states_get_their_primal_values_once_per_call(name):
    sd_t, _, scalar = TRANSFORMS[name]
    w = sg.ParamState(W0, name="w")
    c = sg.ParamState(C0, name="c")  # read only: a constant
    h = sg.ShortTermState(jnp.zeros(3), name="h")  # written only
    count = sg.ShortTermState(jnp.array(0, jnp.int32), name="count")  # read and written
    trace_h = sg.ShortTermState(jnp.zeros(()), name="trace_h")

    def core(wv, cv, hv_trace, x):
        hv = jnp.sin(wv) * x + cv
        out = hv * hv
        return (out.sum() if scalar else out), hv, hv_trace + hv.sum()

    def f(x):
        out, h.value, trace_h.value = core(w.value, c.value, trace_h.value, x)
        count.value = count.value + 1
        return out, {"h": h.value, "count": count.value}

    t = sd_t(f, grad_states=w, argnums=0, has_aux=True, return_value=True)
    # the derivatives: the same as JAX on the pure function, other states as constants
    ref = reference(name, lambda wv, x: core(wv, C0, 0.0, x)[0], argnums=(0, 1))
    expected_trace = 0.0
    for i, x in enumerate([jnp.array(1.5), jnp.array(-0.5), jnp.array(1.5)]):
        (var_grads, arg_grads), value, aux = t(x)
        assert_tree_close((var_grads, arg_grads), ref(W0, x))
        # the written states hold the primal values, written once per call
        hv = jnp.sin(W0) * x + C0
        expected_trace += float(hv.sum())
        np.testing.assert_allclose(concrete(h), hv, rtol=1e-6)
        np.testing.assert_allclose(concrete(trace_h), expected_trace, rtol=1e-5)
        assert concrete(count).dtype == jnp.int32 and int(count.value) == i + 1
        assert_tree_close(value, core(W0, C0, expected_trace - float(hv.sum()), x)[0])
        assert_tree_close(aux, {"h": hv, "count": jnp.array(i + 1)})
        # a state that is only read keeps its very object
        assert w.value is not None and np.array_equal(w.value, W0)
        assert c.value is C0


@pytest.mark.parametrize("name", NAMES)
def test_grad_state_read_then_overwritten_is_differentiated_at_entry(name):
    sd_t, _, scalar = TRANSFORMS[name]
    w = sg.ParamState(W0, name="w")

    def core(wv, x):
        new = wv * wv + x  # the value written back
        out = jnp.sin(new) * wv
        return (out.sum() if scalar else out), new

    def f(x):
        out, w.value = core(w.value, x)
        return out

    t = sd_t(f, grad_states={"w": w}, argnums=0)
    ref = reference(name, lambda g, x: core(g["w"], x)[0], argnums=(0, 1))
    entry = W0
    for x in [jnp.array(0.3), jnp.array(-0.2)]:
        assert_tree_close(t(x), ref({"w": entry}, x))
        entry = core(entry, x)[1]
        np.testing.assert_allclose(concrete(w), entry, rtol=1e-6)


def test_read_write_read_of_a_grad_state():
    """Only the value at entry is an input: later reads see the written value."""
    w = sg.ParamState(W0, name="w")

    def f():
        a = w.value
        w.value = a * a
        return (a + w.value).sum()

    g = sd.grad(f, grad_states=w)()
    np.testing.assert_allclose(g, 1.0 + 2.0 * W0, rtol=1e-6)
    np.testing.assert_allclose(concrete(w), W0 * W0)


def test_state_written_before_read_does_not_depend_on_its_entry_value():
    w = sg.ParamState(W0, name="w")

    def f(x):
        w.value = x * 2.0
        return jnp.sin(w.value)

    var_grads, arg_grads = sd.jacfwd(f, grad_states=w, argnums=0)(jnp.array([0.1, 0.2, 0.3]))
    np.testing.assert_array_equal(var_grads, jnp.zeros((3, 3)))
    x = jnp.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(arg_grads, jax.jacfwd(lambda x: jnp.sin(2.0 * x))(x), rtol=1e-6)
    np.testing.assert_allclose(concrete(w), x * 2.0)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "hessian"])
def test_written_value_is_not_batched_by_the_transform(name):
    """jacfwd/jacrev/hessian map over basis vectors; the written value is the primal one."""
    sd_t, _, scalar = TRANSFORMS[name]
    w = sg.ParamState(W0, name="w")
    h = sg.HiddenState(jnp.zeros(3), name="h")
    log = sg.ShortTermState(jnp.zeros((2, 3)), name="log")

    def f():
        h.value = jnp.tanh(w.value)
        log.value = jnp.stack([log.value[1], h.value])
        return (h.value**2).sum() if scalar else h.value**2

    t = sd_t(f, grad_states=w)
    t()
    t()
    np.testing.assert_allclose(concrete(h), jnp.tanh(W0), rtol=1e-6)
    np.testing.assert_allclose(concrete(log), jnp.stack([jnp.tanh(W0)] * 2), rtol=1e-6)
    assert h.value.shape == (3,) and log.value.shape == (2, 3)


def test_states_are_inputs_of_the_compiled_function_not_captured_constants():
    """Changing a state between calls changes the result, without a retrace."""
    w = sg.ParamState(W0, name="w")
    c = sg.ParamState(C0, name="c")
    calls = []

    def f(x):
        calls.append(1)
        return jnp.sin(w.value * x) * c.value

    t = sd.jacrev(f, grad_states=w, argnums=0)
    pure = lambda wv, cv, x: jnp.sin(wv * x) * cv  # noqa: E731
    for wv, cv in [(W0, C0), (W0 + 1.0, C0), (W0 + 1.0, -C0)]:
        w.value, c.value = wv, cv
        assert_tree_close(t(0.7), jax.jacrev(pure, argnums=(0, 2))(wv, cv, 0.7))
    assert len(calls) == 1


def test_decorated_method_writes_its_model_states():
    class Counter:
        def __init__(self):
            self.w = sg.ParamState(W0, name="w")
            self.n = sg.ShortTermState(jnp.zeros(()), name="n")
            self.loss_grad = sd.grad(self.loss, grad_states=self.w, return_value=True)

        def loss(self, x):
            self.n.value = self.n.value + 1.0
            return ((self.w.value - x) ** 2).sum()

    m = Counter()
    for i in range(3):
        g, value = m.loss_grad(1.0)
        np.testing.assert_allclose(g, 2.0 * (W0 - 1.0), rtol=1e-6)
        np.testing.assert_allclose(value, ((W0 - 1.0) ** 2).sum(), rtol=1e-6)
        assert float(concrete(m.n)) == i + 1.0
