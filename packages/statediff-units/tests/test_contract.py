"""The 12-case return contract of jacfwd, jacrev, grad and hessian with units.

Each case runs the unit-aware transform on a model whose states and arguments
hold Quantities of different units (and one unitless state), and a plain
"twin" model on the mantissas under plain statediff (whose layout is JAX's).
Every block must then hold the twin's numbers with unit
``unit(output) / unit(input)`` (``/ unit(x_i) / unit(x_j)`` for a Hessian),
or be a plain array scaled by the unit's factor when that is dimensionless.

Every input and output has a distinct shape, so a block's shape tells which
output and input it belongs to.
"""

from __future__ import annotations

import itertools

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import statediff_units as sdu
import stategraph as sg

A0 = jnp.array([1.0, 2.0])
B0 = jnp.array(0.5)
C0 = jnp.arange(5.0) / 4
X0 = jnp.arange(1.0, 4.0)
Z0 = jnp.arange(1.0, 5.0) / 10

IN_UNITS = {"a": u.mV, "b": u.mS, "c": None, "x": u.ms, "z": u.volt}
IN_SHAPES = {"a": (2,), "b": (), "c": (5,), "x": (3,), "z": (4,)}
# a[:, None] * b * x[None, :] is in mV * mS * ms; a + z is in mV (z's volts are converted).
OUT_UNITS = {"i": u.mV * u.mS * u.ms, "v": u.mV, "n": None}
OUT_SHAPES = {"i": (2, 3), "v": (2, 4), "n": (5,)}
S_UNIT = u.mV**2 * u.mS * u.ms**2


def _is_q(x):
    return isinstance(x, u.Quantity)


def _ratio(out, *ins):
    unit = out
    for x in ins:
        if x is not None:
            unit = x**-1 if unit is None else unit / x
    return unit


def _check_block(got, ref, unit):
    """``got`` is ``ref`` (plain twin numbers) with ``unit`` attached."""
    ref = np.asarray(ref)
    if unit is None or unit.dim.is_dimensionless:
        scale = 1.0 if unit is None else float(unit.magnitude)
        assert not _is_q(got), f"a dimensionless block must be a plain array, got {got!r}"
        np.testing.assert_allclose(np.asarray(got), ref * scale, rtol=1e-5, atol=1e-6)
    else:
        assert _is_q(got), f"expected a Quantity in {unit}, got {got!r}"
        assert got.unit == unit, (got.unit, unit)
        np.testing.assert_allclose(np.asarray(got.mantissa), ref, rtol=1e-5, atol=1e-6)


def _compare(got, ref, unit_of_shape):
    got_leaves, got_tree = jax.tree.flatten(got, is_leaf=_is_q)
    ref_leaves, ref_tree = jax.tree.flatten(ref)
    assert got_tree == ref_tree, (got_tree, ref_tree)
    assert got_leaves, "no derivative blocks"
    for g, r in zip(got_leaves, ref_leaves, strict=True):
        _check_block(g, r, unit_of_shape[tuple(np.shape(r))])


def _jac_units():
    table = {}
    for (o, os), (k, ks) in itertools.product(OUT_SHAPES.items(), IN_SHAPES.items()):
        table[os + ks] = _ratio(OUT_UNITS[o], IN_UNITS[k])
    return table


def _grad_units():
    return {s: _ratio(S_UNIT, IN_UNITS[k]) for k, s in IN_SHAPES.items()}


def _hess_units():
    table = {}
    for (k, ks), (j, js) in itertools.product(IN_SHAPES.items(), repeat=2):
        unit = _ratio(S_UNIT, IN_UNITS[k], IN_UNITS[j])
        assert table.setdefault(ks + js, unit) == unit
    return table


def _models(units: bool):
    q = (lambda m, unit: m * unit) if units else (lambda m, unit: m)
    a = sg.ParamState(q(A0, u.mV), name="a")
    b = sg.ParamState(q(B0, u.mS), name="b")
    c = sg.ParamState(C0, name="c")
    k = 1 * u.mS * u.ms**2 if units else 1e6  # volts^2 into mV^2 when unitless

    def jac_f(x, z):
        zv = z if units else 1000.0 * z  # V -> mV
        i = a.value[:, None] * b.value * x[None, :]
        v = a.value[:, None] + zv[None, :]
        n = 2 * c.value * (1 + c.value)
        return {"i": i, "v": v, "n": n}

    def scalar_f(x, z):
        s = (a.value[:, None] ** 2 * b.value * x[None, :] ** 2).sum()
        return s * (1 + (c.value**2).sum()) + (z**2).sum() * k

    return {"a": a, "b": b, "c": c}, jac_f, scalar_f


def _with_aux(f, states):
    def g(x, z):
        return f(x, z), {"a": states["a"].value, "tag": 7}

    return g


def _args(units: bool):
    return (X0 * u.ms, Z0 * u.volt) if units else (X0, Z0)


# The 12 cases of the contract (grad_states none/given x argnums none/given x has_aux x
# return_value), plus an int argnums with a list of states and a tuple argnums alone.
CASES = [
    *itertools.product(
        [("none", None), ("dict", None), ("dict", (0, 1))], [False, True], [False, True]
    ),
    (("list", 1), False, True),
    (("list", 1), True, False),
    (("none", (0, 1)), False, False),
    (("none", (0, 1)), True, True),
]
IDS = [f"{gs}-{an}-aux{int(ha)}-val{int(rv)}" for (gs, an), ha, rv in CASES]


def _run(api_units, api_plain, use_scalar, case):
    (gs_kind, argnums), has_aux, return_value = case
    results = []
    for units, api in ((True, api_units), (False, api_plain)):
        states, jac_f, scalar_f = _models(units)
        f = scalar_f if use_scalar else jac_f
        if has_aux:
            f = _with_aux(f, states)
        gs = {"none": None, "dict": states, "list": [states["a"], states["c"], states["b"]]}
        results.append(
            api(
                f,
                grad_states=gs[gs_kind],
                argnums=argnums,
                has_aux=has_aux,
                return_value=return_value,
            )(*_args(units))
        )
    got, ref = results
    if not (has_aux or return_value):
        return got, ref, None, None
    assert isinstance(got, tuple) and len(got) == 1 + has_aux + return_value
    value = got[1] if return_value else None
    aux = got[-1] if has_aux else None
    return got[0], ref[0], value, aux


def _check_extras(value, aux, use_scalar):
    states, jac_f, scalar_f = _models(True)
    if value is not None:
        expected = (scalar_f if use_scalar else jac_f)(*_args(True))
        got_leaves = jax.tree.leaves(value, is_leaf=_is_q)
        for got, exp in zip(got_leaves, jax.tree.leaves(expected, is_leaf=_is_q), strict=True):
            assert type(got) is type(exp)
            if _is_q(exp):
                assert got.unit == exp.unit
                np.testing.assert_allclose(got.mantissa, exp.mantissa, rtol=1e-5)
            else:
                np.testing.assert_allclose(got, exp, rtol=1e-5)
    if aux is not None:
        assert aux["tag"] == 7 and aux["a"].unit == u.mV
        np.testing.assert_allclose(aux["a"].mantissa, A0)


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("name", ["jacfwd", "jacrev"])
def test_jacobian_blocks(name, case):
    grads, ref, value, aux = _run(getattr(sdu, name), getattr(sd, name), False, case)
    _compare(grads, ref, _jac_units())
    _check_extras(value, aux, False)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_grad_blocks(case):
    grads, ref, value, aux = _run(sdu.grad, sd.grad, True, case)
    _compare(grads, ref, _grad_units())
    _check_extras(value, aux, True)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_hessian_blocks(case):
    grads, ref, value, aux = _run(sdu.hessian, sd.hessian, True, case)
    _compare(grads, ref, _hess_units())
    _check_extras(value, aux, True)


def test_statediff_unit_aware_is_the_same_function():
    states, jac_f, _ = _models(True)
    via_sd = sd.jacfwd(jac_f, grad_states=states, unit_aware=True)(*_args(True))
    via_sdu = sdu.jacfwd(jac_f, grad_states=states)(*_args(True))
    sd_leaves = jax.tree.leaves(via_sd, is_leaf=_is_q)
    for p, q in zip(sd_leaves, jax.tree.leaves(via_sdu, is_leaf=_is_q), strict=True):
        assert type(p) is type(q)
        np.testing.assert_array_equal(u.get_mantissa(p), u.get_mantissa(q))


def test_spelled_out_units():
    states, jac_f, scalar_f = _models(True)
    jac = sdu.jacrev(jac_f, grad_states=states)(*_args(True))
    assert jac["i"]["a"].unit == u.mS * u.ms
    assert jac["i"]["b"].unit == u.mV * u.ms
    assert jac["n"]["a"].unit == u.mV**-1
    assert jac["i"]["c"].unit == u.mV * u.mS * u.ms
    assert not _is_q(jac["n"]["c"]) and not _is_q(jac["v"]["a"])  # mV / mV, plain / plain
    dv_dz = sdu.jacfwd(jac_f, argnums=1)(*_args(True))["v"]
    assert not _is_q(dv_dz)  # mV / V: dimensionless, scale applied: d(a + z)/dz = 1
    np.testing.assert_allclose(np.asarray(dv_dz).sum(axis=(1, 2)), [4.0, 4.0], rtol=1e-6)
    hess = sdu.hessian(scalar_f, grad_states=states["a"], argnums=0)(*_args(True))
    (h_aa, h_ax), (h_xa, h_xx) = hess
    assert h_aa.unit == u.mS * u.ms**2
    assert h_ax.unit == h_xa.unit == u.mV * u.mS * u.ms
    assert h_xx.unit == u.mV**2 * u.mS


def test_jacobian_alias_and_plain_inputs_mixed():
    # A function of a plain argument and a Quantity argument, no states.
    def f(t, k):
        return k * t * u.mV

    jac = sdu.jacobian(f, argnums=(0, 1))(jnp.array(2.0) * u.ms, jnp.array(3.0))
    assert jac[0].unit == u.mV
    assert jac[1].unit == u.mV * u.ms
    np.testing.assert_allclose([jac[0].mantissa, jac[1].mantissa], [3.0, 2.0])


def test_against_brainunit_autograd():
    import brainunit.autograd as bua

    def f(x, z):
        return {"p": x**2 * z, "q": jnp.sin(z / u.volt) * x}

    args = (jnp.array([1.0, 2.0]) * u.ms, jnp.array([0.3, 0.4]) * u.volt)
    for ours, theirs in ((sdu.jacfwd, bua.jacfwd), (sdu.jacrev, bua.jacrev)):
        got = ours(f, argnums=(0, 1))(*args)
        exp = theirs(f, argnums=(0, 1))(*args)
        gl, gt = jax.tree.flatten(got, is_leaf=_is_q)
        el, et = jax.tree.flatten(exp, is_leaf=_is_q)
        assert gt == et
        for g, e in zip(gl, el, strict=True):
            assert u.get_unit(g) == u.get_unit(e)
            np.testing.assert_allclose(u.get_mantissa(g), u.get_mantissa(e), rtol=1e-6)
    got = sdu.grad(lambda x: (x**3).sum())(args[0])
    exp = bua.grad(lambda x: (x**3).sum())(args[0])
    assert got.unit == exp.unit
    np.testing.assert_allclose(got.mantissa, exp.mantissa, rtol=1e-6)
    got = sdu.hessian(lambda x: (x**3).sum())(args[0])
    exp = bua.hessian(lambda x: (x**3).sum())(args[0])
    assert got.unit == exp.unit
    np.testing.assert_allclose(got.mantissa, exp.mantissa, rtol=1e-6)


UNITS = [None, u.mV, u.volt, u.mS, u.ms, u.uA / u.cm**2, u.mV / u.ms]


@settings(max_examples=10, deadline=None)
@given(
    x_unit=st.sampled_from(UNITS),
    w_unit=st.sampled_from(UNITS),
    values=st.lists(st.floats(-3, 3, width=32), min_size=3, max_size=3),
)
def test_property_unit_of_each_block(x_unit, w_unit, values):
    """For random units and values: numbers as plain JAX, units as unit arithmetic."""
    xm = jnp.array(values[:2], dtype=jnp.float32)
    wm = jnp.array(values[2], dtype=jnp.float32)

    def q(m, unit):
        return m if unit is None else m * unit

    w = sg.ParamState(q(wm, w_unit), name="w")

    def f(x):
        return {"lin": w.value * x, "sq": (x**2).sum()}

    jac_w, jac_x = sdu.jacfwd(f, grad_states=w, argnums=0)(q(xm, x_unit))
    ref = jax.jacfwd(lambda a, b: {"lin": a * b, "sq": (b**2).sum()}, (0, 1))(wm, xm)
    ref_w = {k: v[0] for k, v in ref.items()}
    ref_x = {k: v[1] for k, v in ref.items()}
    lin_unit = _ratio_units(w_unit, x_unit)
    sq_unit = _ratio_units(x_unit, x_unit)
    _check_block(jac_w["lin"], ref_w["lin"], _ratio(lin_unit, w_unit))
    _check_block(jac_x["lin"], ref_x["lin"], _ratio(lin_unit, x_unit))
    _check_block(jac_w["sq"], ref_w["sq"], _ratio(sq_unit, w_unit))
    _check_block(jac_x["sq"], ref_x["sq"], _ratio(sq_unit, x_unit))


def _ratio_units(a, b):
    """The unit of a product of values in units ``a`` and ``b`` (None: unitless)."""
    if a is None:
        return b
    return a if b is None else a * b


def test_allow_int_gives_float0_blocks_without_units():
    def f(x, n):
        return (x * n).sum()

    gx, gn = sdu.grad(f, argnums=(0, 1), allow_int=True)(jnp.ones(2) * u.mV, jnp.arange(2))
    assert not isinstance(gx, u.Quantity)  # mV / mV
    np.testing.assert_allclose(gx, [0.0, 1.0])
    assert gn.dtype == jax.dtypes.float0
