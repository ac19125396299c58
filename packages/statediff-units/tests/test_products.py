"""Unit-aware jvp, vjp, linearize and fwd_grad, against plain JAX on the mantissas."""

from __future__ import annotations

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import statediff_units as sdu
import stategraph as sg
import statejax as sj

pytestmark = pytest.mark.skipif(
    not all(hasattr(sd, k) for k in ("jvp", "vjp", "linearize", "fwd_grad")),
    reason="statediff has no jvp/vjp/linearize/fwd_grad yet",
)

G0 = jnp.array([1.0, 2.0])  # mS
V0 = jnp.array([3.0, -4.0])  # mV
E0 = jnp.array(-60.0)  # mV


def _model():
    g = sg.ParamState(G0 * u.mS, name="g")
    e = sg.ParamState(E0 * u.mV, name="e")
    calls = sg.ShortTermState(jnp.array(0.0) * u.ms, name="calls")

    def current(v):
        calls.value = calls.value + 1.0 * u.ms
        return {"i": g.value * (v - e.value), "p": (g.value * (v - e.value) ** 2).sum()}

    return g, e, calls, current


def _plain(gm, em, vm):
    return {"i": gm * (vm - em), "p": (gm * (vm - em) ** 2).sum()}


def _assert_q(x, unit, mantissa, rtol=1e-5):
    assert isinstance(x, u.Quantity), repr(x)
    assert x.unit == unit, (x.unit, unit)
    np.testing.assert_allclose(np.asarray(x.mantissa), np.asarray(mantissa), rtol=rtol)


# -------------------------------------------------------------------------- jvp


def test_jvp_tangents_in_primal_units():
    g, e, calls, current = _model()
    tg, tv = jnp.array([0.5, -1.0]), jnp.array([2.0, 1.0])
    y, ty = sdu.jvp(current, grad_states={"g": g}, argnums=0)(
        (V0 * u.mV,), (tv * u.mV,), state_tangents={"g": tg * u.mS}
    )
    y_ref, ty_ref = jax.jvp(lambda gm, vm: _plain(gm, E0, vm), (G0, V0), (tg, tv))
    _assert_q(y["i"], u.mS * u.mV, y_ref["i"])
    _assert_q(ty["i"], u.mS * u.mV, ty_ref["i"])
    _assert_q(ty["p"], u.mS * u.mV**2, ty_ref["p"])
    _assert_q(calls.value, u.ms, 1.0)  # written back once, with its unit


def test_jvp_converts_scales_and_accepts_rates():
    g, e, calls, current = _model()
    tv = jnp.array([2.0, 1.0])
    # a tangent in volts for a primal in mV: converted (x 1000)
    _, ty = sdu.jvp(current, argnums=0)((V0 * u.mV,), (tv * 1e-3 * u.volt,))
    _, ty_ref = jax.jvp(lambda vm: _plain(G0, E0, vm), (V0,), (tv,))
    np.testing.assert_allclose(ty["i"].to_decimal(u.uA), ty_ref["i"], rtol=1e-5)
    # rates: every tangent in its primal's unit per ms -> output tangent per ms
    _, ty = sdu.jvp(current, grad_states=e, argnums=0)(
        (V0 * u.mV,), (tv * u.mV / u.ms,), state_tangents=jnp.array(1.0) * u.mV / u.ms
    )
    _, ty_ref = jax.jvp(lambda em, vm: _plain(G0, em, vm), (E0, V0), (jnp.array(1.0), tv))
    np.testing.assert_allclose(ty["i"].to_decimal(u.uA / u.ms), ty_ref["i"], rtol=1e-5)


def test_jvp_default_all_arguments_and_missing_state_tangents():
    g, e, calls, current = _model()

    def two(v, k):
        return current(v)["i"] * k

    y, ty = sdu.jvp(two)((V0 * u.mV, jnp.array(2.0)), (jnp.ones(2) * u.mV, jnp.array(0.0)))
    _assert_q(ty, u.mS * u.mV, 2.0 * G0)
    # a dict of states with a key missing: zero tangent for it
    _, ty = sdu.jvp(current, grad_states={"g": g, "e": e})(
        (V0 * u.mV,), (), state_tangents={"e": jnp.array(1.0) * u.mV}
    )
    _assert_q(ty["i"], u.mS * u.mV, -G0)


def test_jvp_inconsistent_tangent_units_raise_with_note():
    g, e, calls, current = _model()
    with pytest.raises(u.UnitMismatchError, match="inconsistent") as info:
        sdu.jvp(current, grad_states=e, argnums=0)(
            (V0 * u.mV,), (jnp.ones(2) * u.mV,), state_tangents=jnp.array(1.0) * u.mS
        )
    assert any("statediff.jvp(..., unit_aware=True)" in n for n in info.value.__notes__)
    _assert_q(calls.value, u.ms, 0.0)  # nothing written


def test_jvp_shape_errors_name_the_input():
    g, e, calls, current = _model()
    with pytest.raises(ValueError, match="positional argument 0"):
        sdu.jvp(current, argnums=0)((V0 * u.mV,), (jnp.ones(3) * u.mV,))
    with pytest.raises(TypeError, match="tangents must be a tuple"):
        sdu.jvp(current, argnums=0)((V0 * u.mV,), jnp.ones(2) * u.mV)


def test_jvp_has_aux_and_jit():
    g, e, calls, current = _model()

    def with_aux(v):
        out = current(v)
        return out["i"], {"e": e.value}

    f = sj.jit(lambda v, t: sdu.jvp(with_aux, argnums=0, has_aux=True)((v,), (t,)))
    y, ty, aux = f(V0 * u.mV, jnp.ones(2) * u.mV)
    _assert_q(ty, u.mS * u.mV, G0)
    _assert_q(aux["e"], u.mV, E0)
    f(V0 * u.mV, jnp.ones(2) * u.mV)
    _assert_q(calls.value, u.ms, 2.0)


# -------------------------------------------------------------------------- vjp


def test_vjp_plain_cotangent_gives_gradient_units():
    g, e, calls, current = _model()
    y, vjp_fn = sdu.vjp(lambda v: current(v)["p"], grad_states={"g": g, "e": e}, argnums=0)(
        V0 * u.mV
    )
    (dvar, dv) = vjp_fn(jnp.array(1.0))
    ref = jax.grad(lambda gm, em, vm: _plain(gm, em, vm)["p"], argnums=(0, 1, 2))(G0, E0, V0)
    p_unit = u.mS * u.mV**2
    _assert_q(y, p_unit, _plain(G0, E0, V0)["p"])
    _assert_q(dvar["g"], p_unit / u.mS, ref[0])
    _assert_q(dvar["e"], p_unit / u.mV, ref[1])
    _assert_q(dv, p_unit / u.mV, ref[2])
    # the same via grad
    grads = sdu.grad(lambda v: current(v)["p"], grad_states={"g": g, "e": e}, argnums=0)(V0 * u.mV)
    for a, b in zip(jax.tree.leaves((dvar, dv)), jax.tree.leaves(grads), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_vjp_cotangent_with_units_and_conversions():
    g, e, calls, current = _model()
    y, vjp_fn = sdu.vjp(lambda v: current(v)["i"], argnums=0)(V0 * u.mV)
    ct = jnp.array([1.0, 2.0])
    dv = vjp_fn(ct * u.mV)  # Q = mV * uA
    _, pull = jax.vjp(lambda vm: _plain(G0, E0, vm)["i"], V0)
    _assert_q(dv, u.mV * u.mS * u.mV / u.mV, pull(ct)[0])
    dv_volts = vjp_fn(ct * 1e-3 * u.volt)  # same cotangent, other scale
    np.testing.assert_allclose(dv_volts.to_decimal(u.mS * u.mV), pull(ct)[0], rtol=1e-5)


def test_vjp_mixed_output_units_need_consistent_cotangents():
    g, e, calls, current = _model()
    y, vjp_fn = sdu.vjp(current, grad_states=g)(V0 * u.mV)
    with pytest.raises(u.UnitMismatchError, match="cotangents' units are inconsistent"):
        vjp_fn({"i": jnp.ones(2), "p": jnp.array(1.0)})
    # cotangents that make c * y agree: i in uA, p in uA * mV -> c_p in 1 / mV
    dg = vjp_fn({"i": jnp.ones(2), "p": jnp.array(1.0) / u.mV})
    _, pull = jax.vjp(lambda gm: _plain(gm, E0, V0), G0)
    ref = pull({"i": jnp.ones(2), "p": jnp.array(1.0)})[0]
    _assert_q(dg, u.mS * u.mV / u.mS, ref)


def test_vjp_fn_through_jit_and_structure_errors():
    g, e, calls, current = _model()
    y, vjp_fn = sj.jit(sdu.vjp(lambda v: current(v)["i"], grad_states=g))(V0 * u.mV)
    dg = jax.jit(lambda f, c: f(c))(vjp_fn, jnp.ones(2))
    _assert_q(dg, u.mV, V0 - E0)
    with pytest.raises(TypeError, match="tree structure"):
        vjp_fn({"i": jnp.ones(2)})
    with pytest.raises(ValueError, match="shape"):
        vjp_fn(jnp.ones(3))


# -------------------------------------------------------------------- linearize


def test_linearize_matches_jvp():
    g, e, calls, current = _model()
    y, jvp_fn = sdu.linearize(current, grad_states=[g], argnums=0)(V0 * u.mV)
    tv, tg = jnp.array([1.0, -1.0]), jnp.array([0.5, 0.25])
    ty = jvp_fn(tv * u.mV, state_tangents=[tg * u.mS])
    _, ty_ref = jax.jvp(lambda gm, vm: _plain(gm, E0, vm), (G0, V0), (tg, tv))
    _assert_q(ty["i"], u.mS * u.mV, ty_ref["i"])
    _assert_q(ty["p"], u.mS * u.mV**2, ty_ref["p"])
    ty_rate = jvp_fn(tv * u.mV / u.ms)
    _, ty_ref = jax.jvp(lambda vm: _plain(G0, E0, vm), (V0,), (tv,))
    np.testing.assert_allclose(ty_rate["i"].to_decimal(u.uA / u.ms), ty_ref["i"], rtol=1e-5)
    with pytest.raises(u.UnitMismatchError, match="inconsistent"):
        jvp_fn(tv * u.mV, state_tangents=[tg * u.mV])
    _assert_q(calls.value, u.ms, 1.0)


# --------------------------------------------------------------------- fwd_grad


def test_fwd_grad_estimates_with_gradient_units():
    g, e, calls, current = _model()
    est = sdu.fwd_grad(
        lambda v: current(v)["p"], grad_states=g, tangent_size=4000, key=jax.random.key(3)
    )
    got = est(V0 * u.mV)
    exact = sdu.grad(lambda v: current(v)["p"], grad_states=g)(V0 * u.mV)
    assert got.unit == exact.unit == u.mV**2
    np.testing.assert_allclose(got.mantissa, exact.mantissa, rtol=0.15)
    assert est.key_state is not None
