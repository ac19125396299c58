"""``sd.JVPTransform`` (the builder form of ``sd.jvp``): compared against ``jax.jvp``."""

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


def _reference(case: Case, argnums, use_states, args, t_args, t_states):
    positions = positions_of(argnums, use_states)
    fn = case.pure_of(positions, args, use_states)
    primals = tuple(args[p] for p in positions)
    if use_states:
        return jax.jvp(fn, (case.values(), *primals), (t_states, *t_args))
    return jax.jvp(fn, primals, tuple(t_args))


@settings(max_examples=10, deadline=None)
@given(CASES)
def test_matches_jax_jvp(params):
    kind, a_shape, b_shape, x_shape, z_shape, argnums, use_states, seed = params
    case = Case(kind, a_shape, b_shape, seed)
    rng = case.rng
    x, z = rand(rng, x_shape), rand(rng, z_shape)
    positions = positions_of(argnums, use_states)
    t_args = tuple(rand_like(rng, (x, z)[p]) for p in positions)
    t_states = rand_like(rng, case.values()) if use_states else None
    want = _reference(case, argnums, use_states, (x, z), t_args, t_states)
    f_jvp = sd.JVPTransform(
        case.f, grad_states=case.grad_states if use_states else None, argnums=argnums
    )
    got = f_jvp((x, z), t_args, t_states)
    assert_tree_close(got, want)
    jitted = sj.jit(lambda x, z, t, ts: f_jvp((x, z), t, ts))
    assert_tree_close(jitted(x, z, t_args, t_states), want)
    assert_tree_close(jitted(x, z, t_args, t_states), want)
    assert float(case.count.value) == 3.0  # written back once per call
    assert case.traces <= 3  # the body runs once per signature, not per call


def test_default_is_jax_jvp_on_all_arguments():
    def f(x, p):
        return jnp.sin(x) * p["u"] + p["v"].sum()

    x, p = jnp.arange(3.0), {"u": jnp.array(2.0), "v": jnp.ones(4)}
    tx, tp = jnp.ones(3), {"u": jnp.array(0.5), "v": jnp.arange(4.0)}
    assert_tree_close(sd.JVPTransform(f)((x, p), (tx, tp)), jax.jvp(f, (x, p), (tx, tp)))
    assert_tree_close(sd.JVPTransform(f)([x, p], [tx, tp]), jax.jvp(f, (x, p), (tx, tp)))


def test_argnums_not_differentiated_are_constants():
    def f(x, y):
        return x * y

    y, ty = sd.JVPTransform(f, argnums=1)((2.0, 3.0), (1.0,))
    assert float(y) == 6.0 and float(ty) == 2.0
    y, ty = sd.JVPTransform(f, argnums=(1, 0))((2.0, 3.0), (1.0, 10.0))
    assert float(ty) == 2.0 + 30.0


def test_missing_state_tangents_are_zeros():
    case = Case("dict", (3,), (2,), seed=1)
    x, z = jnp.ones(()), jnp.ones(2)
    f_jvp = sd.JVPTransform(case.f, grad_states=case.grad_states)
    ta = jnp.arange(3.0)
    full = f_jvp((x, z), (), {"a": ta, "b": jnp.zeros(2)})
    assert_tree_close(f_jvp((x, z), (), {"a": ta}), full)
    assert_tree_close(f_jvp((x, z), (), {"a": ta, "b": None}), full)
    y, ty = f_jvp((x, z))
    assert float(ty) == 0.0


def test_list_and_tuple_containers_are_interchangeable():
    case = Case("list", (3,), (2,), seed=2)
    f_jvp = sd.JVPTransform(case.f, grad_states=case.grad_states)
    ts = [jnp.ones(3), jnp.ones(2)]
    assert_tree_close(f_jvp((1.0, jnp.ones(2)), (), tuple(ts)), f_jvp((1.0, jnp.ones(2)), (), ts))


def test_pytree_state_value():
    p = sg.ParamState({"w": jnp.array([1.0, 2.0]), "b": jnp.array(0.5)}, name="p")

    def f(x):
        return p.value["w"] * x + p.value["b"]

    tp = {"w": jnp.array([1.0, 0.0]), "b": jnp.array(1.0)}
    got = sd.JVPTransform(f, grad_states=p)((3.0,), (), tp)
    want = jax.jvp(lambda v: v["w"] * 3.0 + v["b"], (p.value,), (tp,))
    assert_tree_close(got, want)


def test_has_aux_and_write_back():
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def step(x):
        h.value = h.value * 0.5 + w.value * x
        return (h.value**2).sum(), {"h": h.value}

    y, ty, aux = sd.JVPTransform(step, grad_states=w, has_aux=True)((2.0,), (), jnp.ones(2))
    np.testing.assert_allclose(h.value, [2.0, 4.0])  # primal value, written once
    np.testing.assert_allclose(aux["h"], [2.0, 4.0])
    want = jax.jvp(
        lambda wv: ((jnp.zeros(2) * 0.5 + wv * 2.0) ** 2).sum(), (w.value,), (jnp.ones(2),)
    )
    assert_tree_close((y, ty), want)


def test_written_grad_state_keeps_primal_value():
    w = sg.ParamState(jnp.array(3.0), name="w")

    def f():
        w.value = w.value * 2
        return w.value

    y, ty = sd.JVPTransform(f, grad_states=w)((), (), 1.0)
    assert float(y) == 6.0 and float(ty) == 2.0 and float(w.value) == 6.0


def test_integer_primals_take_float0_tangents_as_in_jax():
    def f(x, n):
        return x * n

    zero = np.zeros((), jax.dtypes.float0)
    assert_tree_close(sd.JVPTransform(f)((2.0, 3), (1.0, zero)), jax.jvp(f, (2.0, 3), (1.0, zero)))
    with pytest.raises(
        ValueError,
        match=r"positional argument 1 has shape \(\) and dtype float32.*"
        r"\(float0 here",
    ):
        sd.JVPTransform(f)((2.0, 3), (1.0, 1.0))


def test_nests_inside_grad():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.sum(jnp.sin(w.value * x))

    got = sd.grad(lambda x: sd.JVPTransform(f, grad_states=w)((x,), (), jnp.ones(2))[1])(2.0)
    pure = lambda wv, x: jnp.sum(jnp.sin(wv * x))  # noqa: E731
    want = jax.grad(lambda x: jax.jvp(lambda wv: pure(wv, x), (w.value,), (jnp.ones(2),))[1])(2.0)
    assert_tree_close(got, want)


def test_inside_vmap():
    case = Case("list", (3,), (2,), seed=3)
    xs, z = jnp.arange(4.0), jnp.ones(2)
    ts = [jnp.ones(3), jnp.ones(2)]
    f_jvp = sd.JVPTransform(case.f, grad_states=case.grad_states, argnums=0)
    got = sj.vmap(lambda x: f_jvp((x, z), (1.0,), ts))(xs)
    fn = case.pure_of((0,), (None, z), True)
    want = jax.vmap(lambda x: jax.jvp(fn, (case.values(), x), (ts, 1.0)))(xs)
    assert_tree_close(got, want)


def test_decorator_form():
    w = sg.ParamState(jnp.array(2.0), name="w")

    @functools.partial(sd.JVPTransform, grad_states=w, argnums=0)
    def f(x):
        return w.value * x

    assert isinstance(f, sd._src.jvp.JVPTransform)
    assert [float(v) for v in f((3.0,), (1.0,), 1.0)] == [6.0, 5.0]


def test_method_form():
    @jax.tree_util.register_static
    class Model:  # self is a leafless pytree, as the other transforms need
        def __init__(self):
            self.w = sg.ParamState(jnp.array(2.0), name="w")

        @functools.partial(sd.JVPTransform, argnums=1)
        def __call__(self, x):
            return self.w.value * x

    m = Model()
    assert [float(v) for v in m((3.0,), (1.0,))] == [6.0, 2.0]


def test_unit_aware_delegates_to_backend(monkeypatch):
    seen = {}

    class Backend:
        def make(self, kind, func, **options):
            seen.update(kind=kind, func=func, options=options)
            return lambda *a: "made"

    monkeypatch.setattr(units_hook, "_BACKEND", [Backend()])
    f = lambda x: x  # noqa: E731
    assert sd.jvp(f, (1.0,), (1.0,), unit_aware=True) == "made"
    assert seen["kind"] == "jvp" and seen["func"] is f
    want = dict(grad_states=None, argnums=None, has_aux=False, check_states=True)
    assert seen["options"] == want


# ----------------------------------------------------------------------- errors
def test_errors_at_construction():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(TypeError, match=r"grad_states.*\['b'\]"):
        sd.JVPTransform(lambda: 0.0, grad_states={"a": w, "b": w.value})
    with pytest.raises(ValueError, match=r"argnums=\(0, 0\)"):
        sd.JVPTransform(lambda x: x, argnums=(0, 0))
    with pytest.raises(ValueError, match="argnums=-1"):
        sd.JVPTransform(lambda x: x, argnums=-1)


def test_errors_at_call():
    w = sg.ParamState(jnp.ones(2), name="w")
    count = sg.ShortTermState(jnp.zeros(()), name="count")

    def f(x, y):
        count.value = count.value + 1
        return w.value * x * y

    f_jvp = sd.JVPTransform(f, grad_states={"w": w}, argnums=1)
    with pytest.raises(TypeError, match="primals must be a tuple"):
        f_jvp(1.0, (1.0,))
    with pytest.raises(ValueError, match=r"argnums=1 refers to positional argument 1"):
        f_jvp((1.0,), (1.0,))
    with pytest.raises(ValueError, match=r"got 2 tangent\(s\), but 1 argument"):
        f_jvp((1.0, 2.0), (1.0, 1.0))
    with pytest.raises(ValueError, match=r"positional argument 1 \(argnums=1\) has shape \(3,\)"):
        f_jvp((1.0, 2.0), (jnp.ones(3),))
    with pytest.raises(ValueError, match=r"state ParamState\(name='w'.*shape \(3,\)"):
        f_jvp((1.0, 2.0), (1.0,), {"w": jnp.ones(3)})
    with pytest.raises(ValueError, match=r"state ParamState\(name='w'.*dtype int32"):
        f_jvp((1.0, 2.0), (1.0,), {"w": jnp.ones(2, jnp.int32)})
    with pytest.raises(TypeError, match="container shape of grad_states"):
        f_jvp((1.0, 2.0), (1.0,), {"v": jnp.ones(2)})
    with pytest.raises(TypeError, match="tangents must be a tuple"):
        f_jvp((1.0, 2.0), 1.0)
    assert float(count.value) == 0.0  # all or nothing: no failed call wrote the state
    with pytest.raises(TypeError, match="grad_states is None"):
        sd.JVPTransform(f)((1.0, 2.0), (1.0, 1.0), [jnp.ones(2)])
    with pytest.raises(TypeError, match="has_aux=True requires"):
        sd.JVPTransform(f, has_aux=True)((1.0, 2.0), (1.0, 1.0))


def test_check_states():
    w = sg.ParamState(jnp.ones(2), name="w")
    unused = sg.ParamState(jnp.ones(2), name="unused")

    def f(x):
        return w.value * x

    with pytest.raises(ValueError, match="never reads or writes"):
        sd.JVPTransform(f, grad_states=[w, unused])((1.0,))
    y, ty = sd.JVPTransform(f, grad_states=[w, unused], check_states=False)(
        (1.0,), (), [None, jnp.ones(2)]
    )
    np.testing.assert_allclose(ty, [0.0, 0.0])
