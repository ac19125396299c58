"""``sd.VJPTransform`` (the builder form of ``sd.vjp``): compared against ``jax.vjp``."""

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


def _reference(case: Case, argnums, use_states, args, ct):
    """``jax.vjp`` on the pure function, laid out as the contract says."""
    positions = positions_of(argnums, use_states)
    fn = case.pure_of(positions, args, use_states)
    primals = tuple(args[p] for p in positions)
    if use_states:
        y, pull = jax.vjp(fn, case.values(), *primals)
    else:
        y, pull = jax.vjp(fn, *primals)
    cts = pull(ct)
    if not use_states:
        return y, cts[0] if isinstance(argnums, int) else cts
    if argnums is None:
        return y, cts[0]
    return y, (cts[0], cts[1] if isinstance(argnums, int) else tuple(cts[1:]))


@settings(max_examples=10, deadline=None)
@given(CASES)
def test_matches_jax_vjp(params):
    kind, a_shape, b_shape, x_shape, z_shape, argnums, use_states, seed = params
    case = Case(kind, a_shape, b_shape, seed)
    x, z = rand(case.rng, x_shape), rand(case.rng, z_shape)
    ct = rand(case.rng, x_shape)
    want_y, want = _reference(case, argnums, use_states, (x, z), ct)
    f_vjp = sd.VJPTransform(
        case.f, grad_states=case.grad_states if use_states else None, argnums=argnums
    )
    y, vjp_fn = f_vjp(x, z)
    assert_tree_close(y, want_y)
    assert_tree_close(vjp_fn(ct), want)
    assert_tree_close(vjp_fn(ct), want)  # reusable
    inside = sj.jit(lambda x, z, ct: f_vjp(x, z)[1](ct))
    assert_tree_close(inside(x, z, ct), want)
    out_y, out_fn = sj.jit(f_vjp)(x, z)  # vjp_fn returned out of a compiled function
    assert_tree_close(out_fn(ct), want)
    assert_tree_close(jax.jit(lambda fn, c: fn(c))(out_fn, ct), want)  # and passed into one
    assert float(case.count.value) == 3.0  # written back once per call
    assert case.traces <= 3


def test_default_is_jax_vjp_on_all_arguments():
    def f(x, p):
        return {"s": jnp.sin(x) * p["u"], "t": p["v"].sum()}

    x, p = jnp.arange(3.0), {"u": jnp.array(2.0), "v": jnp.ones(4)}
    ct = {"s": jnp.ones(3), "t": jnp.array(2.0)}
    y, fn = sd.VJPTransform(f)(x, p)
    want_y, want_fn = jax.vjp(f, x, p)
    assert_tree_close(y, want_y)
    assert_tree_close(fn(ct), want_fn(ct))


def test_layouts():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x, y):
        return w.value * x * y

    ct = jnp.ones(2)
    assert_tree_close(sd.VJPTransform(f, argnums=1)(2.0, 3.0)[1](ct), jnp.array(6.0, jnp.float32))
    gx, gy = sd.VJPTransform(f, argnums=(0, 1))(2.0, 3.0)[1](ct)
    assert float(gx) == 9.0 and float(gy) == 6.0
    var = sd.VJPTransform(f, grad_states={"w": w})(2.0, 3.0)[1](ct)
    assert list(var) == ["w"] and var["w"].tolist() == [6.0, 6.0]
    var, arg = sd.VJPTransform(f, grad_states=(w,), argnums=0)(2.0, 3.0)[1](ct)
    assert isinstance(var, tuple) and var[0].tolist() == [6.0, 6.0] and float(arg) == 9.0
    var, args = sd.VJPTransform(f, grad_states=w, argnums=(1,))(2.0, 3.0)[1](ct)
    assert var.tolist() == [6.0, 6.0] and isinstance(args, tuple) and float(args[0]) == 6.0


def test_keyword_arguments_are_constants():
    def f(x, scale=1.0):
        return x * scale

    y, fn = sd.VJPTransform(f, argnums=0)(2.0, scale=3.0)
    assert float(y) == 6.0 and float(fn(1.0)) == 3.0


def test_has_aux_and_write_back():
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def step(x):
        h.value = h.value * 0.5 + w.value * x
        return (h.value**2).sum(), {"h": h.value}

    y, fn, aux = sd.VJPTransform(step, grad_states=w, has_aux=True)(2.0)
    np.testing.assert_allclose(h.value, [2.0, 4.0])
    np.testing.assert_allclose(aux["h"], [2.0, 4.0])
    np.testing.assert_allclose(fn(1.0), [8.0, 16.0])  # d/dw sum((2w)^2) = 8w
    np.testing.assert_allclose(h.value, [2.0, 4.0])  # vjp_fn touches no state


def test_nests_inside_jacfwd_and_plain_jit():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.sum(jnp.sin(w.value * x))

    pure = lambda wv, x: jnp.sum(jnp.sin(wv * x))  # noqa: E731
    got = sd.jacfwd(lambda x: sd.VJPTransform(f, grad_states=w)(x)[1](1.0))(2.0)
    assert_tree_close(got, jax.jacfwd(lambda x: jax.grad(pure)(w.value, x))(2.0))
    got = jax.jit(lambda x: sd.VJPTransform(f, grad_states=w)(x)[1](1.0))(2.0)  # reads only: fine
    assert_tree_close(got, jax.grad(pure)(w.value, 2.0))


def test_inside_vmap():
    case = Case("dict", (3,), (2,), seed=3)
    xs, z = jnp.arange(4.0), jnp.ones(2)
    f_vjp = sd.VJPTransform(case.f, grad_states=case.grad_states, argnums=0)
    got = sj.vmap(lambda x: f_vjp(x, z)[1](1.0))(xs)
    fn = case.pure_of((0,), (None, z), True)
    want = jax.vmap(lambda x: jax.vjp(fn, case.values(), x)[1](1.0))(xs)
    assert_tree_close(got, want)


def test_decorator_form():
    w = sg.ParamState(jnp.array(2.0), name="w")

    @functools.partial(sd.VJPTransform, grad_states=w)
    def f(x):
        return w.value * x

    y, fn = f(3.0)
    assert float(y) == 6.0 and float(fn(1.0)) == 3.0


def test_unit_aware_delegates_to_backend(monkeypatch):
    seen = {}

    class Backend:
        def make(self, kind, func, **options):
            seen.update(kind=kind, options=options)
            return lambda *primals: ("made", primals)

    monkeypatch.setattr(units_hook, "_BACKEND", [Backend()])
    assert sd.vjp(lambda x: x, 2.0, unit_aware=True, has_aux=True) == ("made", (2.0,))
    assert seen == {
        "kind": "vjp",
        "options": dict(grad_states=None, argnums=0, has_aux=True, check_states=True),
    }


# ----------------------------------------------------------------------- errors
def test_errors_at_construction():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(TypeError, match=r"grad_states.*\[1\]"):
        sd.VJPTransform(lambda: 0.0, grad_states=[w, 1.0])
    with pytest.raises(ValueError, match=r"argnums=\(\)"):
        sd.VJPTransform(lambda x: x, argnums=())


def test_errors_at_call():
    w = sg.ParamState(jnp.ones(2), name="w")

    def f(x):
        return {"out": w.value * x}

    with pytest.raises(ValueError, match=r"argnums=\(0, 2\) refers to positional argument 2"):
        sd.VJPTransform(f, argnums=(0, 2))(1.0, 2.0)
    y, fn = sd.VJPTransform(f, grad_states=w)(2.0)
    with pytest.raises(ValueError, match=r"cotangent for the output\['out'\] has shape \(3,\)"):
        fn({"out": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"dtype int32"):
        fn({"out": jnp.ones(2, jnp.int32)})
    with pytest.raises(TypeError, match="cotangent passed to vjp_fn has tree structure"):
        fn(jnp.ones(2))
    with pytest.raises(TypeError, match="has_aux=True requires"):
        sd.VJPTransform(f, has_aux=True)(1.0)
    with pytest.raises(ValueError, match="never reads or writes"):
        sd.VJPTransform(lambda: 1.0, grad_states=w)()
    y, fn = sd.VJPTransform(lambda: 1.0, grad_states=w, check_states=False)()
    np.testing.assert_allclose(fn(1.0), [0.0, 0.0])
