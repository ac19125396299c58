"""States holding brainunit Quantities under every statejax transform.

Each test runs a small stateful computation on Quantity-valued states, checks
the result against the same computation on plain mantissas, and checks that
every written state still holds a Quantity of its unit (and dtype, shape)
after write-back. Transforms not present in this statejax are skipped.
"""

from __future__ import annotations

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff_units as sdu
import stategraph as sg
import statejax as sj


def _assert_q(value, unit, mantissa):
    assert isinstance(value, u.Quantity), f"expected a Quantity in {unit}, got {value!r}"
    assert value.unit == unit, (value.unit, unit)
    np.testing.assert_allclose(np.asarray(value.mantissa), np.asarray(mantissa), rtol=1e-6)


def _neuron():
    v = sg.ShortTermState(jnp.full(3, -65.0) * u.mV, name="v")
    g = sg.ParamState(jnp.array([0.1, 0.2, 0.3]) * u.mS, name="g")
    return v, g


def _dv(v, g, i_ext):
    # dv = (i_ext - g * (v - E)) * dt / C with E = -65 mV, dt = 0.1 ms, C = 1 uF
    return (i_ext - g * (v - (-65.0 * u.mV))) * (0.1 * u.ms) / (1.0 * u.uF)


def _dv_plain(v, g, i_ext):
    return (i_ext - g * (v + 65.0)) * 0.1  # mS * mV = uA; uA * ms / uF = mV


def test_jit_writes_back_quantities():
    v, g = _neuron()

    @sj.jit
    def step(i_ext):
        v.value = v.value + _dv(v.value, g.value, i_ext)
        return v.value.sum()

    out = step(1.0 * u.uA)
    out = step(1.0 * u.uA)  # the cached path
    expected = jnp.full(3, -65.0)
    for _ in range(2):
        expected = expected + _dv_plain(expected, g.value.mantissa, 1.0)
    _assert_q(v.value, u.mV, expected)
    _assert_q(out, u.mV, expected.sum())
    _assert_q(g.value, u.mS, [0.1, 0.2, 0.3])


def test_jit_state_changes_unit_scale_outside_retraces():
    v, g = _neuron()

    @sj.jit
    def read():
        return v.value * 2

    _assert_q(read(), u.mV, jnp.full(3, -130.0))
    v.value = v.value.in_unit(u.volt)
    _assert_q(read(), u.volt, jnp.full(3, -0.13))


def test_vmap_shared_and_batched_quantity_states():
    v, g = _neuron()
    total = sg.ShortTermState(jnp.array(0.0) * u.nA, name="total")
    h = sg.ShortTermState(jnp.zeros((4, 3)) * u.mV, name="h")  # one row per lane

    @sj.vmap(in_states=h)
    def lane(i_ext):
        h.value = h.value + _dv(v.value, g.value, i_ext)
        total.value = total.value + 1.0 * u.nA  # same in every lane
        return h.value.sum()

    i_ext = jnp.arange(4.0) * u.uA
    out = lane(i_ext)
    rows = jnp.stack([_dv_plain(jnp.full(3, -65.0), g.value.mantissa, i) for i in range(4)])
    _assert_q(h.value, u.mV, rows)
    _assert_q(out, u.mV, rows.sum(axis=1))
    _assert_q(total.value, u.nA, 1.0)
    _assert_q(v.value, u.mV, jnp.full(3, -65.0))


def test_scan_carries_quantity_states():
    v, g = _neuron()

    def body(n, i_ext):
        v.value = v.value + _dv(v.value, g.value, i_ext)
        return n + 1, v.value[0]

    n, trace = sj.scan(body, 0, jnp.array([1.0, 2.0, 3.0]) * u.uA)
    expected, rows = jnp.full(3, -65.0), []
    for i in (1.0, 2.0, 3.0):
        expected = expected + _dv_plain(expected, g.value.mantissa, i)
        rows.append(expected[0])
    assert int(n) == 3
    _assert_q(trace, u.mV, rows)
    _assert_q(v.value, u.mV, expected)


def test_for_loop_carries_quantity_states():
    v, g = _neuron()

    def body(i_ext):
        v.value = v.value + _dv(v.value, g.value, i_ext)
        return v.value

    trace = sj.for_loop(body, jnp.ones(5) * u.uA)
    expected, rows = jnp.full(3, -65.0), []
    for _ in range(5):
        expected = expected + _dv_plain(expected, g.value.mantissa, 1.0)
        rows.append(expected)
    _assert_q(trace, u.mV, jnp.stack(rows))
    _assert_q(v.value, u.mV, expected)


# reset_reads=False: a branch that writes a state without reading it (this once made the other
# branch's read a constant; fixed in stategraph's LiftTrace).
@pytest.mark.parametrize("reset_reads", [True, False])
def test_cond_writes_quantity_states_in_either_branch(reset_reads):
    v, g = _neuron()

    def spike(x):
        if reset_reads:
            v.value = v.value * 0 + jnp.full(3, -70.0) * u.mV  # reset
        else:
            v.value = jnp.full(3, -70.0) * u.mV  # reset, writing only
        return x

    def integrate(x):
        v.value = v.value + x
        return x * 2

    out = sj.cond(True, spike, integrate, 1.0 * u.mV)
    _assert_q(out, u.mV, 1.0)
    _assert_q(v.value, u.mV, jnp.full(3, -70.0))
    out = sj.cond(False, spike, integrate, 1.0 * u.mV)
    _assert_q(out, u.mV, 2.0)
    _assert_q(v.value, u.mV, jnp.full(3, -69.0))


def test_cond_branch_writing_another_scale_of_the_same_unit():
    v, _ = _neuron()

    def in_volts(x):
        v.value = (v.value + x).in_unit(u.volt)  # same dimension, other scale
        return x

    def keep(x):
        return x

    with pytest.raises(Exception):  # noqa: B017 - statejax refuses the structure change
        sj.cond(True, in_volts, keep, 1.0 * u.mV)
    _assert_q(v.value, u.mV, jnp.full(3, -65.0))


def test_switch_writes_quantity_states():
    v, _ = _neuron()
    branches = [lambda x: x, lambda x: _set(v, v.value + x), lambda x: _set(v, v.value - x)]
    sj.switch(1, branches, jnp.array(2.0) * u.mV)
    _assert_q(v.value, u.mV, jnp.full(3, -63.0))
    sj.switch(2, branches, jnp.array(1.0) * u.mV)
    _assert_q(v.value, u.mV, jnp.full(3, -64.0))


def _set(state, value):
    state.value = value
    return value[0]


def test_while_loop_carries_quantity_states():
    v, g = _neuron()

    def keep_going(n):
        return v.value[0] < -60.0 * u.mV

    def body(n):
        v.value = v.value + 1.5 * u.mV
        return n + 1

    n = sj.while_loop(keep_going, body, 0)
    assert int(n) == 4
    _assert_q(v.value, u.mV, jnp.full(3, -59.0))


def test_remat_under_grad_with_quantity_states():
    v, g = _neuron()

    @sj.remat
    def block(i_ext):
        v.value = v.value + _dv(v.value, g.value, i_ext)
        return v.value

    def loss(i_ext):
        return block(i_ext).sum()

    dl_dg = sdu.grad(loss, grad_states=g)(1.0 * u.uA)
    # d/dg sum(v + (i - g (v - E)) dt / C) at v = E: -(v - E) dt / C = 0 per element
    _assert_q(dl_dg, u.mV / u.mS, jnp.zeros(3))
    _assert_q(v.value, u.mV, -65.0 + _dv_plain(jnp.full(3, -65.0), g.value.mantissa, 1.0))


def test_jit_of_unit_aware_grad_writes_back_and_caches():
    v, g = _neuron()

    def loss(i_ext):
        v.value = v.value + _dv(v.value, g.value, i_ext)
        v.value = v.value + _dv(v.value, g.value, i_ext)
        return (v.value**2).sum()

    f = sj.jit(sdu.grad(loss, grad_states={"g": g}, return_value=True))
    grads, value = f(1.0 * u.uA)
    _assert_q(v.value, u.mV, -65.0 + 2 * 0.1 - 0.1 * g.value.mantissa * 0.1)
    assert value.unit == u.mV**2 and grads["g"].unit == u.mV**2 / u.mS

    def plain(gm):
        vm = jnp.full(3, -65.0)
        vm = vm + _dv_plain(vm, gm, 1.0)
        vm = vm + _dv_plain(vm, gm, 1.0)
        return (vm**2).sum()

    np.testing.assert_allclose(grads["g"].mantissa, jax.grad(plain)(g.value.mantissa), rtol=1e-5)
    grads2, _ = f(1.0 * u.uA)  # cached call, new starting v
    assert grads2["g"].unit == u.mV**2 / u.mS
    assert v.value.unit == u.mV


def test_vmap_of_unit_aware_jacfwd_per_example():
    g = sg.ParamState(jnp.array([0.1, 0.2]) * u.mS, name="g")

    def current(v):
        return (g.value * v).sum()

    per_example = sj.vmap(sdu.jacfwd(current, grad_states=g))(jnp.arange(6.0).reshape(3, 2) * u.mV)
    _assert_q(per_example, u.mV, jnp.arange(6.0).reshape(3, 2))


def test_unit_aware_jacfwd_through_for_loop():
    v, g = _neuron()

    def final_v(i_ext):
        sj.for_loop(lambda i: _step(v, g, i), jnp.ones(4) * i_ext)
        return v.value

    jac = sdu.jacfwd(final_v, grad_states=g)(1.0 * u.uA)

    def plain(gm):
        vm = jnp.full(3, -65.0)
        for _ in range(4):
            vm = vm + _dv_plain(vm, gm, 1.0)
        return vm

    _assert_q(jac, u.mV / u.mS, jax.jacfwd(plain)(jnp.array([0.1, 0.2, 0.3])))
    assert v.value.unit == u.mV


def _step(v, g, i_ext):
    v.value = v.value + _dv(v.value, g.value, i_ext)
