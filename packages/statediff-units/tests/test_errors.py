"""Errors: Quantities without unit_aware, brainunit's unit errors with a note, bad kinds."""

from __future__ import annotations

import brainunit as u
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import statediff_units as sdu
import stategraph as sg
import statejax as sj

TRANSFORMS = ["jacfwd", "jacrev", "jacobian", "grad", "vector_grad", "hessian"]


def _scalar(x):
    return (x**2).sum()


# ------------------------------------------------------------ unit_aware=False


@pytest.mark.parametrize("name", TRANSFORMS)
def test_quantity_state_without_unit_aware(name):
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w_mv")
    api = getattr(sd, name)
    with pytest.raises(TypeError, match=r"w_mv.*Quantity.*unit_aware=True"):
        api(lambda: _scalar(w.value.mantissa), grad_states=w)()
    assert w.value.unit == u.mV  # untouched


@pytest.mark.parametrize("name", TRANSFORMS)
def test_quantity_argument_without_unit_aware(name):
    api = getattr(sd, name)
    with pytest.raises(TypeError, match=r"positional argument 1.*Quantity.*unit_aware=True"):
        api(lambda a, x: _scalar(x.mantissa) * a, argnums=1)(2.0, jnp.ones(2) * u.ms)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_quantity_output_without_unit_aware(name):
    api = getattr(sd, name)
    with pytest.raises(TypeError, match=r"value.*Quantity.*unit_aware=True"):
        api(lambda x: _scalar(x) * u.mV)(jnp.ones(2))


def test_quantity_nested_in_a_state_without_unit_aware():
    p = sg.ParamState({"g": jnp.ones(2) * u.mS, "e": jnp.zeros(2)}, name="params")
    with pytest.raises(TypeError, match=r"params.*\['g'\].*unit_aware=True"):
        sd.grad(lambda: p.value["e"].sum(), grad_states=p)()


def test_sdu_functions_can_turn_units_off():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    g = sdu.grad(lambda: _scalar(w.value), grad_states=w, unit_aware=False)()
    np.testing.assert_allclose(g, [2.0, 4.0])
    with pytest.raises(TypeError, match="unit_aware=True"):
        sdu.grad(lambda x: _scalar(x), unit_aware=False)(jnp.ones(2) * u.mV)


# ------------------------------------------------------------ unit errors + note


def test_unit_mismatch_propagates_with_note_naming_the_state():
    v = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="v")
    t = sg.ParamState(jnp.array(1.0) * u.ms, name="t")

    def bad():
        return (v.value + t.value).sum()  # mV + ms

    with pytest.raises(u.UnitMismatchError) as info:
        sd.grad(bad, grad_states={"volts": v, "time": t}, unit_aware=True)()
    err = info.value
    assert type(err) is u.UnitMismatchError  # brainunit's own error, unchanged
    assert "mV" in str(err) and "ms" in str(err)
    note = "\n".join(err.__notes__)
    assert "statediff.grad(..., unit_aware=True)" in note
    assert "grad_states['volts']" in note and "'v'" in note
    assert "grad_states['time']" in note and "'t'" in note
    assert v.value.unit == u.mV and t.value.unit == u.ms


def test_unit_mismatch_note_names_the_argument():
    def bad(i, r):
        return i * r + 1.0 * u.mV  # A * ohm is a voltage: fine

    def worse(i, r):
        return i * r + 1.0 * u.ms  # a voltage plus a time

    assert sdu.jacfwd(bad, argnums=(0, 1))(2.0 * u.amp, 3.0 * u.ohm)[0].unit == u.ohm
    with pytest.raises(u.UnitMismatchError) as info:
        sdu.jacfwd(worse, argnums=(0, 1))(2.0 * u.amp, 3.0 * u.ohm)
    note = "\n".join(info.value.__notes__)
    assert "positional argument 0 (argnums=(0, 1))" in note
    assert "positional argument 1 (argnums=(0, 1))" in note


def test_dimension_mismatch_propagates_with_note():
    w = sg.ParamState(jnp.array(1.0) * u.mV, name="w")

    def check(x):
        u.fail_for_dimension_mismatch(w.value, x, "w and x differ")
        return w.value * x

    with pytest.raises(u.DimensionMismatchError, match="w and x differ") as info:
        sdu.jacrev(check, grad_states=w)(2.0 * u.ms)
    assert any("state ParamState(name='w'" in n for n in info.value.__notes__)


def test_unit_error_inside_jit_gets_the_note_and_no_state_changes():
    w = sg.ParamState(jnp.array([1.0, 2.0]) * u.mV, name="w")
    count = sg.ShortTermState(jnp.array(0.0) * u.ms, name="count")

    def bad(x):
        count.value = count.value + 1.0 * u.ms
        return (w.value * x).sum() + count.value

    f = sj.jit(sd.grad(bad, grad_states=w, unit_aware=True))
    with pytest.raises(u.UnitMismatchError) as info:
        f(jnp.ones(2))
    assert any("grad_states" in n and "'w'" in n for n in info.value.__notes__)
    assert count.value.unit == u.ms and float(count.value.mantissa) == 0.0


def test_vector_grad_of_mixed_units_is_a_unit_error():
    with pytest.raises(u.UnitMismatchError, match="one unit") as info:
        sdu.vector_grad(lambda t: {"p": t**2, "q": t})(jnp.ones(2) * u.ms)
    assert any("vector_grad" in n for n in info.value.__notes__)
    g = sdu.vector_grad(lambda t: {"p": t**2, "q": t * (1.0 * u.ms)})(jnp.ones(2) * u.ms)
    assert g.unit == u.ms


def test_integer_quantity_is_refused_like_integers():
    with pytest.raises(TypeError, match="integer"):
        sdu.grad(lambda x: (x * 1.0).sum())(jnp.arange(3) * u.mV)


def test_backend_refuses_unknown_kinds():
    backend = sd.units_backend()
    with pytest.raises(ValueError, match="no unit-aware version of statediff.nope"):
        backend.make("nope", lambda x: x)


def test_has_aux_without_pair_keeps_statediff_message():
    with pytest.raises(TypeError, match="has_aux=True requires the function to return a pair"):
        sdu.grad(lambda x: (x**2).sum() * u.mV, has_aux=True)(jnp.ones(2))
