"""``sd.fwd_grad``: against a pure-JAX re-implementation, and unbiasedness."""

from __future__ import annotations

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
from _ad_cases import KINDS, SHAPES, Case, assert_tree_close, rand  # noqa: E402


def reference(fn, primals, key, tangent_size, n_calls):
    """Pure JAX forward-gradient estimates of ``fn`` at ``primals`` for calls 0..n-1."""
    out = []
    for _ in range(n_calls):
        key, sub = jax.random.split(key)
        leaves, tree = jax.tree.flatten(primals)
        keys = jax.random.split(sub, len(leaves))
        vs = jax.tree.unflatten(
            tree,
            [
                jax.random.normal(k, (tangent_size, *jnp.shape(x)), jnp.result_type(x))
                for k, x in zip(keys, leaves, strict=True)
            ],
        )
        ds = jax.vmap(lambda v: jax.jvp(fn, primals, v)[1])(vs)
        mean = lambda v, d=ds: jnp.tensordot(d, v, axes=(0, 0)) / tangent_size  # noqa: E731
        out.append(jax.tree.map(mean, vs))
    return out


def layout(g, use_states, argnums):
    """Lay a tuple over ``(states?, *args)`` out as ``sd.grad`` does."""
    if not use_states:
        return g[0] if argnums is None or isinstance(argnums, int) else tuple(g)
    if argnums is None:
        return g[0]
    return g[0], g[1] if isinstance(argnums, int) else tuple(g[1:])


def _positions(argnums, use_states):
    if argnums is None:
        return () if use_states else (0,)
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


@settings(max_examples=5, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from([None, 0, (1, 0)]),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_matches_pure_jax(kind, a_shape, b_shape, z_shape, argnums, use_states, seed):
    case = Case(kind, a_shape, b_shape, seed)
    x, z = rand(case.rng, (2,)), rand(case.rng, z_shape)
    positions = _positions(argnums, use_states)
    pure = case.pure_of(positions, (x, z), use_states)
    primals = ((case.values(),) if use_states else ()) + tuple((x, z)[p] for p in positions)
    key = jax.random.key(seed)
    want = reference(lambda *p: pure(*p).sum(), primals, key, 5, 2)
    options = dict(
        grad_states=case.grad_states if use_states else None,
        argnums=argnums,
        tangent_size=5,
        key=key,
    )
    est = sd.fwd_grad(lambda x, z: case.f(x, z).sum(), **options)
    jitted = sj.jit(sd.fwd_grad(lambda x, z: case.f(x, z).sum(), **options))
    for n in range(2):
        expected = layout(want[n], use_states, argnums)
        assert_tree_close(est(x, z), expected, rtol=1e-4, atol=1e-5)
        assert_tree_close(jitted(x, z), expected, rtol=1e-4, atol=1e-5)
    assert float(case.count.value) == 4.0  # written back once per call


def test_unbiased():
    w = sg.ParamState(jnp.array([0.5, -1.0, 2.0]), name="w")

    def loss(x):
        return jnp.sum(jnp.sin(w.value * x) + w.value**2) * x.sum()

    x = jnp.array([1.0, 0.3, -0.7])
    g_w, g_x = sd.fwd_grad(loss, grad_states=w, argnums=0, tangent_size=2000)(x)
    t_w, t_x = sd.grad(loss, grad_states=w, argnums=0)(x)
    scale = float(jnp.sqrt(jnp.sum(t_w**2) + jnp.sum(t_x**2)))
    np.testing.assert_allclose(g_w, t_w, atol=0.12 * scale)
    np.testing.assert_allclose(g_x, t_x, atol=0.12 * scale)


def test_deterministic_and_advancing():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    loss = lambda: jnp.sum(jnp.cos(w.value))  # noqa: E731
    e1 = sd.fwd_grad(loss, grad_states=w, key=jax.random.key(7))
    e2 = sd.fwd_grad(loss, grad_states=w, key=7)
    first, second = e1(), e1()
    np.testing.assert_array_equal(first, e2())
    np.testing.assert_array_equal(second, e2())
    assert not np.array_equal(first, second)  # fresh directions every call
    d0 = sd.fwd_grad(loss, grad_states=w)  # key=None is seed 0
    np.testing.assert_array_equal(d0(), sd.fwd_grad(loss, grad_states=w, key=0)())


def test_raw_key_and_user_key_state():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    loss = lambda: jnp.sum(w.value**3)  # noqa: E731
    raw = jax.random.PRNGKey(3)
    want = reference(lambda v: jnp.sum(v**3), (w.value,), raw, 3, 2)
    est = sd.fwd_grad(loss, grad_states=w, tangent_size=3, key=raw)
    for n in range(2):
        np.testing.assert_allclose(est(), want[n][0], rtol=1e-5)
    rng = sg.ShortTermState(raw, name="rng")
    shared = sd.fwd_grad(loss, grad_states=w, tangent_size=3, key=rng)
    assert shared.key_state is rng
    np.testing.assert_allclose(shared(), want[0][0], rtol=1e-5)
    np.testing.assert_array_equal(rng.value, jax.random.split(raw)[0])  # advanced in place


def test_user_state_holding_typed_key():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    rng = sg.ShortTermState(jax.random.key(3), name="rng")
    sd.fwd_grad(lambda: jnp.sum(w.value**3), grad_states=w, key=rng)()


@pytest.mark.parametrize("use_states", [False, True])
@pytest.mark.parametrize("argnums", [None, 1, (0, 1)])
@pytest.mark.parametrize(("has_aux", "return_value"), [(False, False), (True, True)])
def test_contract_matches_grad(use_states, argnums, has_aux, return_value):
    w = sg.ParamState({"a": jnp.ones(2), "b": jnp.ones(())}, name="w")

    def loss(x, y):
        value = jnp.sum(w.value["a"] * x) * w.value["b"] + y
        return (value, {"aux": x}) if has_aux else value

    options = dict(
        grad_states=[w] if use_states else None,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
    )
    args = (jnp.ones(2), jnp.array(1.0))
    got = sd.fwd_grad(loss, **options)(*args)
    want = sd.grad(loss, **options)(*args)
    assert jax.tree.structure(got) == jax.tree.structure(want)
    for g, t in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert g.shape == t.shape and g.dtype == t.dtype


def test_has_aux_return_value_and_write_back():
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def step(x):
        h.value = h.value * 0.5 + w.value * x
        return (h.value**2).sum(), h.value

    g, value, aux = sd.fwd_grad(step, grad_states=w, has_aux=True, return_value=True)(2.0)
    np.testing.assert_allclose(h.value, [2.0, 4.0])
    np.testing.assert_allclose(aux, [2.0, 4.0])
    assert float(value) == 20.0 and g.shape == (2,)


def test_inside_vmap_lanes_share_directions():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    est = sd.fwd_grad(lambda x: jnp.sum(w.value * x), grad_states=w, tangent_size=4, key=5)
    xs = jnp.array([[1.0, 1.0], [2.0, 2.0]])
    got = sj.vmap(est)(xs)
    want = [
        reference(lambda v, x=x: jnp.sum(v * x), (w.value,), jax.random.key(5), 4, 1)[0][0]
        for x in xs
    ]
    np.testing.assert_allclose(got, jnp.stack(want), rtol=1e-5)


def test_decorator_and_unit_aware(monkeypatch):
    w = sg.ParamState(jnp.array(2.0), name="w")

    @sd.fwd_grad(grad_states=w, tangent_size=2)
    def loss():
        return w.value**2

    assert loss().shape == ()
    seen = {}

    class Backend:
        def make(self, kind, func, **options):
            seen.update(kind=kind, options=options)
            return "made"

    monkeypatch.setattr(units_hook, "_BACKEND", [Backend()])
    assert sd.fwd_grad(lambda x: x, unit_aware=True, tangent_size=3) == "made"
    assert seen["kind"] == "fwd_grad" and seen["options"]["tangent_size"] == 3


def test_errors():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(TypeError, match=r"grad_states"):
        sd.fwd_grad(lambda: 0.0, grad_states=(w, "w"))
    with pytest.raises(ValueError, match=r"argnums=\(0, True\)"):
        sd.fwd_grad(lambda x: x, argnums=(0, True))
    with pytest.raises(ValueError, match="tangent_size must be a positive int"):
        sd.fwd_grad(lambda x: x, tangent_size=0)
    with pytest.raises(ValueError, match="tangent_size must be a positive int"):
        sd.fwd_grad(lambda x: x, tangent_size=True)
    with pytest.raises(TypeError, match="key must be"):
        sd.fwd_grad(lambda x: x, key="seed")
    with pytest.raises(TypeError, match="must return a real scalar"):
        sd.fwd_grad(lambda x: w.value * x)(1.0)
    with pytest.raises(TypeError, match="dtype int32"):
        sd.fwd_grad(lambda x: x.sum() * 1.0)(jnp.ones(2, jnp.int32))
    with pytest.raises(ValueError, match="refers to positional argument 1"):
        sd.fwd_grad(lambda x: x, argnums=1)(1.0)
