"""Registration with statediff, the decorator and method forms, caching and retracing."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import brainunit as u
import jax.numpy as jnp
import numpy as np

import statediff as sd
import statediff_units as sdu
import stategraph as sg
from statediff_units._src import backend


def test_entry_point_is_declared_and_loads_the_backend():
    entries = importlib.metadata.entry_points(group="statediff.units")
    values = [e.value for e in entries if e.dist and e.dist.name == "statediff-units"]
    assert values == ["statediff_units._src.backend:register"]
    # In a fresh interpreter that never imports statediff_units, statediff finds it alone.
    code = (
        "import sys, brainunit as u, statediff as sd\n"
        "assert 'statediff_units' not in sys.modules\n"
        "g = sd.grad(lambda x: (x ** 2).sum(), unit_aware=True)(u.math.ones(2) * u.mV)\n"
        "assert 'statediff_units' in sys.modules and g.unit == u.mV, g\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_register_is_idempotent():
    assert sdu.register() is sdu.register() is backend.BACKEND
    assert sd.units_backend() is backend.BACKEND
    assert isinstance(backend.BACKEND, sdu.UnitsBackend)
    expected = {"jacfwd", "jacrev", "jacobian", "grad", "vector_grad", "hessian"}
    assert expected <= set(backend.BACKEND.kinds)


def test_every_statediff_function_has_a_units_twin():
    for name in ("jacfwd", "jacrev", "jacobian", "grad", "vector_grad", "hessian"):
        assert callable(getattr(sdu, name))
    for name in ("jvp", "vjp", "linearize", "fwd_grad"):
        if hasattr(sd, name):
            assert name in backend.BACKEND.kinds and callable(getattr(sdu, name))


def test_decorator_factory_form():
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")

    @sdu.grad(grad_states={"w": w}, return_value=True)
    def energy(scale):
        return (w.value**2).sum() * scale

    grads, value = energy(2.0)
    assert grads["w"].unit == u.mV and value.unit == u.mV**2
    np.testing.assert_allclose(grads["w"].mantissa, [4.0, 8.0])

    @sd.jacfwd(unit_aware=True)
    def double(t):
        return 2 * t

    d = double(jnp.ones(2) * u.ms)  # ms / ms: a plain array
    assert not isinstance(d, u.Quantity)
    np.testing.assert_allclose(d, 2 * np.eye(2))


def test_body_traced_once_and_retraced_when_a_unit_changes():
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")
    runs = []

    def f(x):
        runs.append(1)
        return (w.value * x).sum()

    grad = sdu.grad(f, grad_states=w)
    for _ in range(3):
        g = grad(jnp.ones(2) * u.ms)
    assert g.unit == u.ms and len(runs) == 1
    grad(jnp.ones(2) * u.second)  # another unit of the argument: another signature
    assert len(runs) == 2
    w.value = w.value.in_unit(u.volt)  # the state's unit changed: retraced
    g = grad(jnp.ones(2) * u.ms)
    assert len(runs) == 3 and g.unit == u.ms
    out = sdu.grad(f, grad_states=w, return_value=True)(jnp.ones(2) * u.ms)[1]
    assert out.unit == u.volt * u.ms


def test_written_quantity_states_written_back_once_with_units():
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mS, name="w")
    v = sg.ShortTermState(jnp.zeros(2) * u.mV, name="v")

    def f(i):
        v.value = v.value + i / w.value
        return v.value.sum()

    g = sdu.grad(f, grad_states=w)(jnp.ones(2) * u.uA)
    assert g.unit == u.mV / u.mS
    np.testing.assert_allclose(g.mantissa, [-1.0, -0.25])
    assert v.value.unit == u.mV
    np.testing.assert_allclose(v.value.mantissa, [1.0, 0.5])


def test_plain_inputs_give_plain_results():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    g = sdu.grad(lambda: (w.value**2).sum(), grad_states=w)()
    assert not isinstance(g, u.Quantity)
    np.testing.assert_allclose(g, [2.0, 4.0])


def test_repr_names_unit_aware():
    def loss(x):
        return x

    assert "unit_aware=True" in repr(sdu.jacfwd(loss))
    assert "loss" in repr(sdu.jacfwd(loss))
