"""``sgd_step``: unit-checked, all-or-nothing gradient steps on Quantity states."""

from __future__ import annotations

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff_units as sdu
import stategraph as sg
import statejax as sj


def _params():
    g = sg.ParamState(jnp.array([1.0, 2.0]) * u.mS, name="g")
    e = sg.ParamState(jnp.array(-60.0) * u.mV, name="e")
    return g, e


def _current(g, e):
    # i = g * (v - e) at v = -65 mV: in uA
    return g.value * (-65.0 * u.mV - e.value)


def _loss(g, e):
    return (_current(g, e) ** 2).sum()  # uA^2


def test_step_matches_plain_arithmetic_and_keeps_units():
    g, e = _params()
    grads = sdu.grad(lambda: _loss(g, e), grad_states={"g": g, "e": e})()
    # uA^2 / mS and uA^2 / mV: lr must be mS^2 / uA^2 and mV^2 / uA^2
    lr = {"g": 0.01 * u.mS**2 / u.uA**2, "e": 0.1 * u.mV**2 / u.uA**2}
    g0, e0 = g.value.mantissa, e.value.mantissa
    sdu.sgd_step({"g": g, "e": e}, grads, lr)
    assert g.value.unit == u.mS and e.value.unit == u.mV
    assert g.value.dtype == jnp.float32

    def plain(gm, em):
        return ((gm * (-65.0 - em)) ** 2).sum()

    dg, de = jax.grad(plain, argnums=(0, 1))(g0, e0)
    np.testing.assert_allclose(g.value.mantissa, g0 - 0.01 * dg, rtol=1e-6)
    np.testing.assert_allclose(e.value.mantissa, e0 - 0.1 * de, rtol=1e-6)


def test_scale_difference_is_converted():
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")
    sdu.sgd_step(w, jnp.array([1.0, 1.0]) * u.volt, 0.001)  # 1 mV per step
    assert w.value.unit == u.mV
    np.testing.assert_allclose(w.value.mantissa, [0.0, 1.0], rtol=1e-6)


def test_plain_states_and_dimensionless_updates():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    sdu.sgd_step([w], [jnp.array([1.0, 2.0]) * u.mV], [0.5 / u.mV])
    assert not isinstance(w.value, u.Quantity)
    np.testing.assert_allclose(w.value, [0.5, 1.0])


def test_wrong_lr_unit_names_state_and_units_and_changes_nothing():
    g, e = _params()
    grads = sdu.grad(lambda: _loss(g, e), grad_states={"g": g, "e": e})()
    before = (g.value, e.value)
    lr = {"g": 0.01 * u.mS**2 / u.uA**2, "e": 0.1}  # e's lr lacks its unit
    with pytest.raises(u.UnitMismatchError) as info:
        sdu.sgd_step({"g": g, "e": e}, grads, lr)
    msg = str(info.value)
    assert "'e'" in msg and "mV" in msg and "unit(param) / unit(grad)" in msg
    assert "No state was changed" in msg
    assert g.value is before[0] and e.value is before[1]  # g (checked first) is untouched


def test_single_lr_for_all_states_must_fit_each():
    a = sg.ParamState(jnp.ones(2) * u.mV, name="a")
    b = sg.ParamState(jnp.ones(2) * u.ms, name="b")
    with pytest.raises(u.UnitMismatchError, match="'b'"):
        sdu.sgd_step([a, b], [jnp.ones(2) * u.mV, jnp.ones(2) * u.mV], 0.1)
    np.testing.assert_allclose(a.value.mantissa, [1.0, 1.0])


def test_shape_and_structure_errors():
    w = sg.ParamState(jnp.ones(2) * u.mV, name="w")
    with pytest.raises(ValueError, match="shape"):
        sdu.sgd_step(w, jnp.ones((3, 2)) * u.mV, 0.1)
    with pytest.raises(ValueError, match="structure of params"):
        sdu.sgd_step([w], {"w": jnp.ones(2) * u.mV}, 0.1)
    with pytest.raises(ValueError, match="gradient of state"):
        sdu.sgd_step(w, {"x": jnp.ones(2) * u.mV}, 0.1)
    with pytest.raises(TypeError, match="container of States"):
        sdu.sgd_step([w.value], [jnp.ones(2) * u.mV], 0.1)
    np.testing.assert_allclose(w.value.mantissa, [1.0, 1.0])


def test_pytree_valued_state():
    p = sg.ParamState({"g": jnp.ones(2) * u.mS, "k": jnp.array(3.0)}, name="p")
    sdu.sgd_step(p, {"g": jnp.ones(2) * u.mS, "k": jnp.array(1.0)}, 0.5)
    assert p.value["g"].unit == u.mS
    np.testing.assert_allclose(p.value["g"].mantissa, [0.5, 0.5])
    np.testing.assert_allclose(p.value["k"], 2.5)


def test_training_loop_inside_jit():
    g, e = _params()
    lr = {"g": 1e-3 * u.mS**2 / u.uA**2, "e": 1e-2 * u.mV**2 / u.uA**2}
    grad_fn = sdu.grad(lambda: _loss(g, e), grad_states={"g": g, "e": e}, return_value=True)

    @sj.jit
    def train_step():
        grads, loss = grad_fn()
        sdu.sgd_step({"g": g, "e": e}, grads, lr)
        return loss

    losses = [float(train_step().mantissa) for _ in range(5)]
    assert losses == sorted(losses, reverse=True) and losses[-1] < losses[0]
    assert g.value.unit == u.mS and e.value.unit == u.mV
