"""``sd.LinearizeTransform`` (builder form of ``sd.linearize``): compared against JAX."""

from __future__ import annotations

import functools
import pathlib
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import stategraph as sg
import statejax as sj
from statediff._src import units_hook

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _ad_cases import (  # noqa: E402
    ARGNUMS,
    KINDS,
    SHAPES,
    Case,
    assert_tree_close,
    positions_of,
    rand,
    rand_like,
)

CASES = st.tuples(
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(ARGNUMS),
    st.booleans(),
    st.integers(0, 2**16),
)


@settings(max_examples=10, deadline=None)
@given(CASES)
def test_matches_jax_linearize(params):
    kind, a_shape, b_shape, x_shape, z_shape, argnums, use_states, seed = params
    case = Case(kind, a_shape, b_shape, seed)
    rng = case.rng
    x, z = rand(rng, x_shape), rand(rng, z_shape)
    positions = positions_of(argnums, use_states)
    t_args = tuple(rand_like(rng, (x, z)[p]) for p in positions)
    t_states = rand_like(rng, case.values()) if use_states else None
    fn = case.pure_of(positions, (x, z), use_states)
    primals = tuple((x, z)[p] for p in positions)
    if use_states:
        want_y, want_fn = jax.linearize(fn, case.values(), *primals)
        want = want_fn(t_states, *t_args)
    else:
        want_y, want_fn = jax.linearize(fn, *primals)
        want = want_fn(*t_args)
    lin = sd.LinearizeTransform(
        case.f, grad_states=case.grad_states if use_states else None, argnums=argnums
    )
    y, jvp_fn = lin(x, z)
    assert_tree_close(y, want_y)
    assert_tree_close(jvp_fn(*t_args, state_tangents=t_states), want)
    assert_tree_close(jvp_fn(*t_args, state_tangents=t_states), want)  # reusable
    inside = sj.jit(lambda x, z, t, ts: lin(x, z)[1](*t, state_tangents=ts))
    assert_tree_close(inside(x, z, t_args, t_states), want)
    out_y, out_fn = sj.jit(lin)(x, z)  # jvp_fn returned out of a compiled function
    assert_tree_close(out_fn(*t_args, state_tangents=t_states), want)
    assert float(case.count.value) == 3.0  # written back once per call
    assert case.traces <= 3


def test_default_is_jax_linearize_on_all_arguments():
    def f(x, p):
        return jnp.sin(x) * p["u"] + p["v"].sum()

    x, p = jnp.arange(3.0), {"u": jnp.array(2.0), "v": jnp.ones(4)}
    tx, tp = jnp.ones(3), {"u": jnp.array(0.5), "v": jnp.arange(4.0)}
    y, fn = sd.LinearizeTransform(f)(x, p)
    want_y, want_fn = jax.linearize(f, x, p)
    assert_tree_close(y, want_y)
    assert_tree_close(fn(tx, tp), want_fn(tx, tp))


def test_matches_sd_jvp():
    case = Case("nested", (3,), (2, 3), seed=4)
    x, z = jnp.ones(2), jnp.ones(3)
    ts = {"a": [jnp.arange(3.0)], "b": (jnp.ones((2, 3)),)}
    y, fn = sd.LinearizeTransform(case.f, grad_states=case.grad_states, argnums=1)(x, z)
    y2, ty2 = sd.JVPTransform(case.f, grad_states=case.grad_states, argnums=1)((x, z), (z,), ts)
    assert_tree_close((y, fn(z, state_tangents=ts)), (y2, ty2))


def test_missing_state_tangents_are_zeros():
    case = Case("dict", (3,), (2,), seed=1)
    y, fn = sd.LinearizeTransform(case.f, grad_states=case.grad_states)(jnp.ones(()), jnp.ones(2))
    ta = jnp.arange(3.0)
    full = fn(state_tangents={"a": ta, "b": jnp.zeros(2)})
    assert_tree_close(fn(state_tangents={"a": ta}), full)
    assert_tree_close(fn(state_tangents={"a": ta, "b": None}), full)
    assert float(fn()) == 0.0


def test_has_aux_and_write_back():
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def step(x):
        h.value = h.value * 0.5 + w.value * x
        return (h.value**2).sum(), {"h": h.value}

    y, fn, aux = sd.LinearizeTransform(step, grad_states=w, argnums=0, has_aux=True)(2.0)
    np.testing.assert_allclose(h.value, [2.0, 4.0])
    np.testing.assert_allclose(aux["h"], [2.0, 4.0])
    want = jax.jvp(lambda wv, x: ((wv * x) ** 2).sum(), (w.value, 2.0), (jnp.ones(2), 1.0))[1]
    np.testing.assert_allclose(fn(1.0, state_tangents=jnp.ones(2)), want, rtol=1e-6)
    np.testing.assert_allclose(h.value, [2.0, 4.0])


def test_nests_inside_grad_over_states():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.sum(jnp.sin(w.value * x))

    pure = lambda wv, x: jnp.sum(jnp.sin(wv * x))  # noqa: E731
    got = sd.grad(lambda: sd.LinearizeTransform(f, argnums=0)(2.0)[1](1.0), grad_states=w)()
    want = jax.grad(lambda wv: jax.jvp(lambda x: pure(wv, x), (2.0,), (1.0,))[1])(w.value)
    assert_tree_close(got, want)


def test_inside_vmap():
    case = Case("single", (3,), (2,), seed=3)
    xs, z = jnp.arange(4.0), jnp.ones(2)
    ta = jnp.ones(3)
    lin = sd.LinearizeTransform(case.f, grad_states=case.grad_states, argnums=0)
    got = sj.vmap(lambda x: lin(x, z)[1](1.0, state_tangents=ta))(xs)
    fn = case.pure_of((0,), (None, z), True)
    want = jax.vmap(lambda x: jax.jvp(fn, (case.values(), x), (ta, 1.0))[1])(xs)
    assert_tree_close(got, want)


def test_decorator_form():
    w = sg.ParamState(jnp.array(2.0), name="w")

    @functools.partial(sd.LinearizeTransform, argnums=0)
    def f(x):
        return w.value * x

    y, fn = f(3.0)
    assert float(y) == 6.0 and float(fn(1.0)) == 2.0


def test_unit_aware_delegates_to_backend(monkeypatch):
    seen = {}

    class Backend:
        def make(self, kind, func, **options):
            seen.update(kind=kind, options=options)
            return lambda *a: "made"

    monkeypatch.setattr(units_hook, "_BACKEND", [Backend()])
    assert sd.linearize(lambda x: x, 1.0, unit_aware=True) == "made"
    assert seen["kind"] == "linearize"


# ----------------------------------------------------------------------- errors
def test_errors():
    w = sg.ParamState(jnp.ones(2), name="w")

    def f(x, y):
        return w.value * x * y

    with pytest.raises(TypeError, match=r"grad_states.*is ndarray"):
        sd.LinearizeTransform(f, grad_states=np.ones(2))
    with pytest.raises(ValueError, match=r"argnums=\(1, 1\)"):
        sd.LinearizeTransform(f, argnums=(1, 1))
    with pytest.raises(ValueError, match=r"argnums=5 refers to positional argument 5"):
        sd.LinearizeTransform(f, argnums=5)(1.0, 2.0)
    y, fn = sd.LinearizeTransform(f, grad_states={"w": w}, argnums=(1,))(1.0, 2.0)
    with pytest.raises(ValueError, match=r"got 2 tangent\(s\), but 1 argument"):
        fn(1.0, 1.0)
    with pytest.raises(ValueError, match=r"positional argument 1 \(argnums=\(1,\)\) has shape"):
        fn(jnp.ones(3))
    with pytest.raises(ValueError, match=r"state ParamState\(name='w'.*shape \(5,\)"):
        fn(1.0, state_tangents={"w": jnp.ones(5)})
    with pytest.raises(TypeError, match="container shape of grad_states"):
        fn(1.0, state_tangents=[jnp.ones(2)])
    y, fn = sd.LinearizeTransform(f)(1.0, 2.0)
    with pytest.raises(TypeError, match="grad_states is None"):
        fn(1.0, 1.0, state_tangents=jnp.ones(2))
