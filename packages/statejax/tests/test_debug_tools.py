"""statejax.unvmap, debug_nan, debug_nan_if, breakpoint_if, named_call, named_scope."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


@pytest.mark.parametrize("op,ref", [("any", jnp.any), ("all", jnp.all), ("max", jnp.max)])
def test_unvmap_reductions_match_the_whole_array(op, ref):
    xs = jnp.array([[0.0, 3.0], [1.0, 2.0], [5.0, -1.0]])
    vals = xs if op == "max" else xs > 0.5
    out = jax.vmap(lambda v: sj.unvmap(v, op=op))(vals)
    np.testing.assert_array_equal(out, jnp.broadcast_to(ref(vals), (3,)))
    out = jax.jit(jax.vmap(jax.vmap(lambda v: sj.unvmap(v, op=op))))(vals)
    np.testing.assert_array_equal(out, jnp.broadcast_to(ref(vals), (3, 2)))
    np.testing.assert_array_equal(sj.unvmap(vals, op=op), ref(vals))


def test_unvmap_none_and_sj_vmap_and_bad_op():
    xs = jnp.arange(3.0)
    out = sj.vmap(lambda v: sj.unvmap(v, op="none"))(xs)
    np.testing.assert_array_equal(out, jnp.broadcast_to(xs, (3, 3)))
    with pytest.raises(ValueError, match="op must be"):
        sj.unvmap(xs, op="foo")
    with pytest.raises(TypeError, match="one array"):
        sj.unvmap({"a": xs, "b": xs})


def test_debug_nan_eager_names_outputs_and_states_and_writes_nothing():
    s = sg.ShortTermState(jnp.ones(2), name="s")

    def f(x):
        s.value = s.value + jnp.log(x)
        return x * 2

    assert sj.debug_nan(f, jnp.ones(2)) is None
    assert float(s.value[0]) == 1.0
    with pytest.raises(RuntimeError, match=r"(?s)\[fwd\].*primitive: log.*ShortTermState 's'"):
        sj.debug_nan(f, jnp.array([-1.0, 1.0]), phase="fwd")
    np.testing.assert_allclose(s.value, [1.0, 1.0])
    sj.debug_nan(lambda x: jnp.where(x > 0, jnp.log(jnp.abs(x)), 0.0), jnp.array([-1.0, 1.0]))


def test_debug_nan_inside_jit_and_vmap():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.jit
    def run(x):
        s.value = s.value + 1
        sj.debug_nan(jnp.sqrt, x)
        return x

    run(jnp.ones(2))
    assert float(s.value) == 1.0
    with pytest.raises(RuntimeError, match="NaN/Inf detected"):
        jax.block_until_ready(run(jnp.array([-1.0, 1.0])))
    assert float(s.value) == 1.0
    f = sj.jit(sj.vmap(lambda x: sj.debug_nan_if(x < 0, jnp.log, x)))
    f(jnp.ones(3))
    with pytest.raises(RuntimeError, match="NaN/Inf detected"):
        jax.block_until_ready(f(jnp.array([1.0, -1.0])))


def test_debug_nan_if_and_bad_inputs():
    sj.debug_nan_if(False, jnp.log, jnp.array([-1.0]))
    with pytest.raises(RuntimeError, match="NaN/Inf"):
        sj.debug_nan_if(jnp.array([False, True]), jnp.log, jnp.array([-1.0]))
    with pytest.raises(TypeError, match="fn must be callable"):
        sj.debug_nan(3, 1.0)
    with pytest.raises(TypeError, match="phase must be a str"):
        sj.debug_nan(jnp.log, 1.0, phase=3)


# jax.debug.breakpoint's own tracing flattens a generator (a JAX-internal deprecation warning).
@pytest.mark.filterwarnings("ignore:Python iterable type:DeprecationWarning")
def test_breakpoint_if(monkeypatch):
    hits = []
    monkeypatch.setattr(jax.debug, "breakpoint", lambda **kw: hits.append(kw))
    sj.breakpoint_if(jnp.asarray(False))
    sj.breakpoint_if(jnp.array([False, True]), num_frames=2)
    assert hits == [{"num_frames": 2}]
    with pytest.raises(TypeError, match="unknown keyword"):
        sj.breakpoint_if(True, nope=1)
    monkeypatch.undo()
    jaxpr = jax.make_jaxpr(lambda x: sj.breakpoint_if(x > 0))(1.0)
    assert "cond" in str(jaxpr)


def test_named_call_names_equations_and_keeps_states():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.named_call(name="block")
    def block(x):
        s.value = s.value + x
        return jnp.sin(x)

    jaxpr, _ = sj.make_jaxpr(lambda x: jnp.cos(x) + block(x))(1.0)
    stacks = {str(e.source_info.name_stack) for e in jaxpr.eqns}
    assert "block" in stacks
    assert float(block(2.0)) == pytest.approx(np.sin(2.0)) and float(s.value) == 2.0
    assert sj.named_call(block).__name__ == "block"
    with pytest.raises(TypeError, match="name must be"):
        sj.named_call(lambda x: x, name="")


def test_named_scope_is_jit_with_a_name_and_static_args():
    calls = [0]

    @sj.named_scope("power", static_argnums=1)
    def power(x, n):
        calls[0] += 1
        return x**n

    assert float(power(2.0, 3)) == 8.0 and float(power(3.0, 3)) == 27.0 and calls[0] == 1
    assert "power" in power.lower(2.0, 3).as_text()

    @sj.named_scope("scaled", static_argnums=lambda *a, **k: (1,))
    def scaled(x, n):
        return x * n

    assert float(scaled(2.0, 4)) == 8.0

    class M:
        def __init__(self):
            self.w = sg.ParamState(jnp.asarray(3.0), name="w")

        @sj.named_scope("compute")
        def compute(self, x):
            return x * self.w.value

    assert float(M().compute(2.0)) == 6.0
    with pytest.raises(TypeError, match="name must be"):
        sj.named_scope(3)
