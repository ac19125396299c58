"""statejax.checkpoint / statejax.remat against jax.checkpoint."""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer

SETTINGS = settings(max_examples=6, deadline=None)

# jax.extend.core.subjaxprs is new in JAX 0.10; older JAX (down to the floor) has it in
# jax.core.
_subjaxprs = getattr(jax.extend.core, "subjaxprs", None) or jax.core.subjaxprs


def _eqns(jaxpr):
    """Every equation of a jaxpr, sub-jaxprs included."""
    yield from jaxpr.eqns
    for sub in _subjaxprs(jaxpr):
        yield from _eqns(sub)


def _remat_eqns(closed):
    return [e for e in _eqns(closed.jaxpr) if e.primitive.name in ("checkpoint", "remat2")]


_MODELS: dict = {}


def _shared_model(size):
    if size not in _MODELS:
        w, h, layer, ref = _layer_model(size)
        _MODELS[size] = w, h, sj.remat(layer), ref
    return _MODELS[size]


def _layer_model(size):
    w = sg.ParamState(jnp.linspace(0.5, 1.5, size), name="w")
    h = sg.ShortTermState(jnp.zeros(size), name="h")

    def layer(x):
        h.value = jnp.sin(w.value * x) + 0.5 * h.value
        return jnp.sum(h.value**2)

    def ref(w_, h_, x):
        h1 = jnp.sin(w_ * x) + 0.5 * h_
        return jnp.sum(h1**2), h1

    return w, h, layer, ref


@SETTINGS
@given(size=st.integers(1, 4), x=st.floats(-2, 2, width=32))
def test_remat_matches_plain_function_and_grad(size, x):
    w, h, f, ref = _shared_model(size)
    h.value = jnp.zeros(size)
    x = jnp.float32(x)
    out = f(x)
    r_out, r_h = ref(w.value, jnp.zeros(size), x)
    np.testing.assert_allclose(out, r_out, rtol=1e-5)
    np.testing.assert_allclose(h.value, r_h, rtol=1e-5)

    # Gradients through the pure function (state values in, written values out).
    names = [s.name for s in f.read_states(x)]
    assert sorted(names) == ["h", "w"]

    def pure_loss(w_val, x_):
        vals = {"w": w_val, "h": h.value}
        out_, _ = f.pure([vals[n] for n in names], x_)
        return out_

    def ref_loss(w_val, x_):
        return jax.checkpoint(lambda a, b, c: ref(a, b, c)[0])(w_val, h.value, x_)

    g = jax.grad(pure_loss, argnums=(0, 1))(w.value, x)
    r_g = jax.grad(ref_loss, argnums=(0, 1))(w.value, x)
    np.testing.assert_allclose(g[0], r_g[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(g[1], r_g[1], rtol=1e-5, atol=1e-6)


def test_checkpoint_appears_in_the_jaxpr_with_its_policy():
    w, h, layer, _ = _layer_model(3)
    policy = jax.checkpoint_policies.nothing_saveable
    f = sj.checkpoint(policy=policy, prevent_cse=False)(layer)
    jaxpr, states = sj.make_jaxpr(f)(jnp.float32(1.0))
    eqns = _remat_eqns(jaxpr)
    assert len(eqns) == 1
    assert eqns[0].params["policy"] is policy
    assert eqns[0].params["prevent_cse"] is False
    assert {s.name for s in states} == {"w", "h"}
    assert not has_tracer(h.value) and not has_tracer(w.value)


def test_decorator_forms():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.remat
    def a(x):
        s.value = s.value + x
        return 2 * x

    @sj.checkpoint(policy=jax.checkpoint_policies.dots_saveable)
    def b(x):
        s.value = s.value * x
        return x * x

    assert float(a(3.0)) == 6.0 and float(b(2.0)) == 4.0
    assert float(s.value) == 6.0
    assert sj.remat is sj.checkpoint
    assert a.__name__ == "a" and isinstance(a.stateful, sj.StatefulFunction)


def test_static_argnums():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    calls = [0]

    @sj.checkpoint(static_argnums=1)
    def power(x, n):
        calls[0] += 1
        assert isinstance(n, int)
        s.value = s.value * x**n
        return s.value.sum()

    np.testing.assert_allclose(power(2.0, 3), 16.0)
    np.testing.assert_allclose(power(2.0, 3), 128.0)
    np.testing.assert_allclose(power(2.0, 1), 256.0)
    assert calls[0] == 2  # one trace per static value


def test_eager_calls_trace_once():
    calls = [0]
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.remat
    def f(x):
        calls[0] += 1
        s.value = s.value + x
        return s.value

    for _ in range(5):
        f(jnp.float32(1.0))
    assert calls[0] == 1 and float(s.value) == 5.0


def test_error_is_all_or_nothing():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    before = s.value

    @sj.remat
    def f(x):
        s.value = s.value + x
        raise RuntimeError("remat body")

    with pytest.raises(RuntimeError, match="remat body"):
        f(1.0)
    assert s.value is before and not has_tracer(s.value)


def test_argument_errors():
    with pytest.raises(TypeError, match="callable"):
        sj.checkpoint(3)
    with pytest.raises(TypeError, match="policy"):
        sj.checkpoint(lambda x: x, policy="dots")


def test_signature_and_name_follow_the_function():
    import inspect

    def layer(x, scale=2.0):
        return x * scale

    f = sj.checkpoint(layer)
    assert f.__name__ == "layer"
    assert list(inspect.signature(f).parameters) == ["x", "scale"]
    assert float(f(1.5)) == 3.0
