"""statediff's run-now ``vjp`` / ``jvp`` / ``linearize`` with ``unit_aware=True``."""

from __future__ import annotations

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg


def test_run_now_products_carry_units():
    g = sg.ParamState(jnp.array([1.0, 2.0]) * u.mS, name="g")

    def current(v):
        return g.value * v

    i, vjp_fn = sd.vjp(current, 3.0 * u.mV, grad_states={"g": g}, unit_aware=True)
    dg, dv = vjp_fn(jnp.ones(2))
    want_g, want_v = jax.vjp(lambda gm, vm: gm * vm, jnp.array([1.0, 2.0]), 3.0)[1](jnp.ones(2))
    assert dg["g"].unit == u.mV and dv.unit == u.mS
    np.testing.assert_allclose(dg["g"].mantissa, want_g)
    np.testing.assert_allclose(dv.mantissa, want_v)

    y, ty = sd.jvp(current, (3.0 * u.mV,), (1.0 * u.mV,), unit_aware=True)
    assert ty.unit == y.unit
    np.testing.assert_allclose(ty.to_decimal(u.uA), [1.0, 2.0])

    y, jvp_fn = sd.linearize(lambda t: t**2, 3.0 * u.ms, unit_aware=True)
    out = jvp_fn(1.0 * u.ms)
    assert out.unit == u.ms**2 and float(out.mantissa) == 6.0
