"""brainstate's StatefulFunction methods and ``sj.eval_shape(return_state_shapes=True)``.

Checked against plain JAX on the equivalent pure function (the states' values
as explicit arguments), with brainstate 0.5.4's layouts.
"""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj


def _model():
    a = sg.ParamState(jnp.ones(2), name="a")
    b = sg.ShortTermState(jnp.zeros(2), name="b")
    c = sg.State(jnp.array(3.0), name="c")

    def f(x, y=1.0):
        b.value = a.value * x + b.value
        c.value = 5.0 * y
        return b.value.sum(), {"x": x}

    def pure(av, bv, x, y=1.0):
        nb = av * x + bv
        return (nb.sum(), {"x": x}), (nb, 5.0 * y)

    return a, b, c, f, pure


def close(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want), (got, want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-6)


def test_queries():
    a, b, c, f, _ = _model()
    sf = sj.StatefulFunction(f)
    assert sf.make_jaxpr(2.0) is sf
    assert sf.get_states(2.0) == (a, b, c)
    assert sf.get_read_states(2.0) == (a,)  # read and never written
    assert sf.get_write_states(2.0) == (b, c)
    out_shapes, state_shapes = sf.get_out_shapes(2.0)
    assert out_shapes == sj.eval_shape(f, 2.0)
    assert state_shapes[0] is None
    assert state_shapes[1] == jax.ShapeDtypeStruct((2,), jnp.float32)
    assert state_shapes[2].shape == ()
    assert sf.get_out_treedef(2.0) == jax.tree.structure((out_shapes, state_shapes))
    assert a.value.tolist() == [1.0, 1.0] and b.value.tolist() == [0.0, 0.0]  # untouched


def test_get_jaxpr_is_the_pure_function_in_brainstates_layout():
    a, b, c, f, pure = _model()
    sf = sj.StatefulFunction(f)
    jaxpr = sf.get_jaxpr(2.0)
    # Inputs: x, then a, b, c; outputs: the two output leaves, then the written b, c.
    assert len(jaxpr.in_avals) == 1 + 3 and len(jaxpr.out_avals) == 2 + 2
    flat = jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, 2.0, a.value, b.value, c.value)
    (out, aux), (nb, nc) = pure(a.value, b.value, 2.0)
    close(flat, [out, aux["x"], nb, nc])


def test_compile_if_miss_false_raises_until_traced():
    _, _, _, f, _ = _model()
    sf = sj.StatefulFunction(f)
    with pytest.raises(ValueError, match="no trace is cached.*make_jaxpr"):
        sf.get_jaxpr(jnp.ones(2), compile_if_miss=False)
    for query in (sf.get_states, sf.get_out_shapes, sf.get_write_states):
        with pytest.raises(ValueError, match="compile_if_miss=True"):
            query(jnp.ones(2), compile_if_miss=False)
    sf.make_jaxpr(jnp.ones(2))
    assert len(sf.get_states(jnp.ones(2), compile_if_miss=False)) == 3
    sf.clear_cache()
    with pytest.raises(ValueError, match="no trace is cached"):
        sf.get_states(jnp.ones(2), compile_if_miss=False)


def test_arg_cache_key():
    _, _, _, f, _ = _model()
    sf = sj.StatefulFunction(f)
    k1, k2 = sf.get_arg_cache_key(1.0), sf.get_arg_cache_key(2.0)
    assert k1 == k2 and hash(k1) == hash(k2)
    assert sf.get_arg_cache_key(jnp.ones(3)) != k1
    assert sf.get_arg_cache_key(1.0, y=2.0) != k1
    assert len(sf._lifted) == 0  # compile_if_miss=False (the default) traces nothing
    sf.get_arg_cache_key(1.0, compile_if_miss=True)
    assert len(sf._lifted) == 1


def test_jaxpr_call_is_pure_and_composes_with_jax():
    a, b, c, f, pure = _model()
    sf = sj.StatefulFunction(f)
    vals = [jnp.full(2, 2.0), jnp.full(2, 0.5), jnp.array(0.0)]
    new, out = sf.jaxpr_call(vals, 3.0, y=2.0)
    want_out, (nb, nc) = pure(vals[0], vals[1], 3.0, 2.0)
    close(out, want_out)
    assert new[0] is None
    close(new[1:], (nb, nc))
    assert b.value.tolist() == [0.0, 0.0] and float(c.value) == 3.0  # no state changed
    # Differentiable like any pure function.
    g = jax.grad(lambda av: sf.jaxpr_call([av, vals[1], vals[2]], 3.0)[1][0])(vals[0])
    close(g, jax.grad(lambda av: pure(av, vals[1], 3.0)[0][0])(vals[0]))
    with pytest.raises(ValueError, match="got 2 state value.*3 state"):
        sf.jaxpr_call(vals[:2], 3.0)


def test_return_only_write_false_reports_every_state():
    a, b, c, f, pure = _model()

    sf = sj.StatefulFunction(f, return_only_write=False, name="f")
    assert sf.name == "f"
    vals = [jnp.full(2, 2.0), jnp.full(2, 0.5), jnp.array(0.0)]
    new, out = sf.jaxpr_call(vals, 3.0)
    close(new[0], vals[0])
    assert len(sf.get_jaxpr(3.0).out_avals) == 2 + 3
    assert sf.get_out_shapes(3.0)[1][0] == jax.ShapeDtypeStruct((2,), jnp.float32)


def test_jaxpr_call_auto_runs_and_writes_back():
    a, b, c, f, pure = _model()
    sf = sj.StatefulFunction(f)
    out = sf.jaxpr_call_auto(2.0)
    want_out, (nb, nc) = pure(a.value, jnp.zeros(2), 2.0)
    close(out, want_out)
    close((b.value, c.value), (nb, nc))


def test_layout_cache_dies_with_the_trace():
    from statejax._src import stateful_methods

    _, _, _, f, _ = _model()
    sf = sj.StatefulFunction(f)
    sf.get_jaxpr(2.0)
    lifted = sf.trace(2.0)
    assert lifted in stateful_methods._LAYOUTS
    ref = weakref.ref(lifted)
    del lifted
    sf.clear_cache()
    gc.collect()
    assert ref() is None


@settings(max_examples=8, deadline=None)
@given(st.sampled_from([(), (2,), (2, 3)]), st.booleans())
def test_eval_shape_with_state_shapes(shape, grow):
    w = sg.ParamState(jnp.ones(shape), name="w")
    h = sg.ShortTermState(jnp.zeros(shape), name="h")
    o = sg.ShortTermState(jnp.zeros(()), name="o")

    def f(x):
        h.value = h.value + w.value * x
        o.value = h.value.sum()
        return {"y": h.value * 2}

    before = [s.value for s in (w, h, o)]
    x = jax.ShapeDtypeStruct(shape, jnp.float32)
    shapes, out = sj.eval_shape(f, x, return_state_shapes=True)
    assert out == sj.eval_shape(f, x)
    assert out == jax.eval_shape(lambda wv, hv, x: {"y": (hv + wv * x) * 2}, w.value, h.value, x)
    assert list(shapes) == [h, w, o]
    assert shapes[w] == jax.ShapeDtypeStruct(shape, jnp.float32)
    assert shapes[h] == jax.ShapeDtypeStruct(shape, jnp.float32)
    assert shapes[o] == jax.ShapeDtypeStruct((), jnp.float32)
    assert all(s.value is v for s, v in zip((w, h, o), before, strict=True))


def test_make_jaxpr_return_shape_and_static_arguments():
    a, b, c, f, pure = _model()
    jaxpr, states, shapes = sj.make_jaxpr(f, static_argnames="y", return_shape=True)(2.0, y=3.0)
    assert states == [a, b, c]
    assert shapes[0].shape == () and shapes[1]["x"].shape == ()
    flat = jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, 2.0, a.value, b.value, c.value)
    (out, aux), (nb, nc) = pure(a.value, b.value, 2.0, 3.0)
    close(flat, [out, aux["x"], a.value, nb, nc])


def test_brainstate_constructor_options_not_provided():
    with pytest.raises(NotImplementedError, match="axis_env= is not provided"):
        sj.StatefulFunction(lambda x: x, axis_env=[("i", 2)])
    with pytest.raises(NotImplementedError, match="ir_optimizations= is not provided"):
        sj.StatefulFunction(lambda x: x, ir_optimizations="dce")
    with pytest.raises(TypeError):
        sj.StatefulFunction(lambda x: x, not_an_option=1)
