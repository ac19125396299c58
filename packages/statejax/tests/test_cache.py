"""The trace cache: once per signature, weak references to states, retraces.

The Python body of the user's function is counted: it must run once per
abstract signature (tree structure, shapes, dtypes and weak types of the
dynamic arguments; values of the static ones), and never serve a result
computed for other states or other state shapes.
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

SETTINGS = settings(max_examples=6, deadline=None)


def assert_tree_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-6)


def counted(fun):
    """Return ``fun`` wrapped to count its Python body executions in ``.runs``."""

    def wrapper(*args, **kwargs):
        wrapper.runs += 1
        return fun(*args, **kwargs)

    wrapper.runs = 0
    wrapper.__name__ = fun.__name__
    return wrapper


# -------------------------------------------------------- once per signature
ARGS = {
    "f32[3]": lambda: jnp.ones(3, jnp.float32),
    "f32[3] again": lambda: jnp.full(3, 2.0, jnp.float32),
    "f32[2,3]": lambda: jnp.ones((2, 3), jnp.float32),
    "i32[3]": lambda: jnp.ones(3, jnp.int32),
    "weak f32[]": lambda: 1.5,
    "strong f32[]": lambda: jnp.float32(1.5),
    "np f32[3]": lambda: np.ones(3, np.float32),
}
SIGNATURE = {  # names with the same abstract signature
    "f32[3]": "f32[3]",
    "f32[3] again": "f32[3]",
    "np f32[3]": "f32[3]",
    "f32[2,3]": "f32[2,3]",
    "i32[3]": "i32[3]",
    "weak f32[]": "weak f32[]",
    "strong f32[]": "strong f32[]",
}


@SETTINGS
@given(
    calls=st.lists(
        st.tuples(st.sampled_from(sorted(ARGS)), st.sampled_from([1, 2])), min_size=1, max_size=6
    )
)
def test_body_runs_once_per_signature(calls):
    h = sg.ShortTermState(jnp.zeros(()), name="h")

    @counted
    def body(x, n):
        h.value = h.value + (x * n).sum().astype(jnp.float32)
        return x * n

    fn = sj.jit(body, static_argnums=1)
    ref = jax.jit(
        lambda h_, x, n: (x * n, h_ + (x * n).sum().astype(jnp.float32)), static_argnums=2
    )
    seen = set()
    for name, n in calls:
        x = ARGS[name]()
        out_e, h_e = ref(h.value, x, n)
        assert_tree_equal(fn(x, n), out_e)
        assert_tree_equal(h.value, h_e)
        seen.add((SIGNATURE[name], n))
        assert body.runs == len(seen)


def test_new_shape_dtype_weak_type_and_static_value_each_trace_once_more():
    @counted
    def body(x, mode):
        return x * 2 if mode == "double" else x + 1

    fn = sj.jit(body, static_argnames="mode")
    fn(jnp.ones(3), mode="double")
    fn(jnp.zeros(3), mode="double")
    assert body.runs == 1
    fn(jnp.ones(4), mode="double")
    assert body.runs == 2  # shape
    fn(jnp.ones(4, jnp.int32), mode="double")
    assert body.runs == 3  # dtype
    fn(2.0, mode="double")
    fn(jnp.float32(2.0), mode="double")
    assert body.runs == 5  # weak type, then strong
    assert_tree_equal(fn(jnp.ones(3), mode="inc"), jnp.ones(3) + 1)
    assert body.runs == 6  # static value
    for x, mode in [
        (jnp.ones(3), "double"),
        (jnp.ones(4), "double"),
        (2.0, "double"),
        (jnp.ones(3), "inc"),
    ]:
        fn(x, mode=mode)
    assert body.runs == 6  # earlier signatures: no new run


def test_argument_tree_structure_is_part_of_the_signature():
    @counted
    def body(xs):
        return sum(xs)

    fn = sj.jit(body)
    fn((jnp.ones(2), jnp.ones(2)))
    fn([jnp.ones(2), jnp.ones(2)])
    fn((jnp.ones(2), jnp.ones(2), jnp.ones(2)))
    assert body.runs == 3
    fn((jnp.zeros(2), jnp.zeros(2)))
    assert body.runs == 3


def test_introspection_reuses_the_trace_of_a_call():
    w = sg.ParamState(jnp.ones(3), name="w")

    @counted
    def body(x):
        w.value = w.value * x
        return w.value.sum()

    fn = sj.jit(body)
    fn(2.0)
    lifted = fn.trace(2.0)
    assert fn.trace(3.0) is lifted
    fn.jaxpr(2.0), fn.read_states(2.0), fn.written_states(2.0), fn.out_shapes(2.0)
    fn.eval_shape(2.0), fn.lower(2.0), fn.pure([w.value], 2.0)
    assert body.runs == 1


def test_clear_cache_forces_a_retrace():
    w = sg.ParamState(jnp.ones(3), name="w")

    @counted
    def body(x):
        return w.value * x

    fn = sj.jit(body)
    fn(1.0)
    fn.clear_cache()
    assert_tree_equal(fn(2.0), jax.jit(lambda w_, x: w_ * x)(w.value, 2.0))
    assert body.runs == 2
    sf = sj.StatefulFunction(body)
    sf(1.0)
    sf.clear_cache()
    sf(1.0)
    assert body.runs == 4


def test_clear_cache_picks_up_a_swapped_state_still_alive_elsewhere():
    class Model:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones(2), name="w")

    m = Model()

    @counted
    def body(x):
        m.w.value = m.w.value + x
        return m.w.value

    fn = sj.jit(body)
    fn(1.0)
    old = m.w  # kept alive here: the swap is not detectable by weak reference
    m.w = sg.ParamState(jnp.full(2, 10.0), name="w2")
    fn.clear_cache()
    assert_tree_equal(fn(1.0), jnp.full(2, 11.0))
    assert_tree_equal(m.w.value, jnp.full(2, 11.0))
    assert_tree_equal(old.value, jnp.full(2, 2.0))
    assert body.runs == 2


# -------------------------------------------------------------- weak references
class Net:
    def __init__(self, k=0.0):
        self.h = sg.ShortTermState(jnp.full(2, k, jnp.float32), name="h")
        self.w = sg.ParamState(jnp.arange(2.0), name="w")


def test_cached_function_does_not_keep_a_dropped_state_alive():
    net = Net()

    def body(x):
        net.h.value = net.h.value + net.w.value * x
        return net.h.value.sum()

    fn = sj.jit(body)
    sf = sj.StatefulFunction(body)
    fn(1.0)
    sf(1.0)
    fn.jaxpr(1.0), sf.lower(1.0), fn.eval_shape(1.0)
    old_h = weakref.ref(net.h)
    old_w = weakref.ref(net.w)
    net.h = sg.ShortTermState(jnp.zeros(2), name="h2")
    net.w = sg.ParamState(jnp.ones(2), name="w2")
    gc.collect()
    assert old_h() is None and old_w() is None
    assert fn.read_states(1.0) == [net.h, net.w]  # and the cache moves on to the new ones


@pytest.mark.parametrize("kind", ["jit", "StatefulFunction"])
def test_call_after_a_used_state_was_collected_traces_again(kind):
    net = Net()

    @counted
    def body(x):
        net.h.value = net.h.value + net.w.value * x
        return net.h.value.sum()

    fn = sj.jit(body) if kind == "jit" else sj.StatefulFunction(body)
    ref = jax.jit(lambda h_, w_, x: ((h_ + w_ * x).sum(), h_ + w_ * x))
    fn(1.0)
    fn(1.0)
    assert body.runs == 1
    for i in range(3):
        dead = weakref.ref(net.h)
        net.h = sg.ShortTermState(jnp.full(2, 10.0 * i, jnp.float32), name=f"h{i}")
        gc.collect()
        assert dead() is None
        out_e, h_e = ref(net.h.value, net.w.value, 2.0)
        assert_tree_equal(fn(2.0), out_e)
        assert_tree_equal(net.h.value, h_e)
        assert body.runs == 2 + i
        assert fn.written_states(2.0) == [net.h]


def test_collected_write_only_state_causes_a_retrace():
    holder = {"out": sg.ShortTermState(jnp.zeros(2), name="out")}

    @counted
    def body(x):
        holder["out"].value = x * 2
        return x

    fn = sj.jit(body)
    fn(jnp.ones(2))
    holder["out"] = sg.ShortTermState(jnp.zeros(2), name="out2")
    gc.collect()
    fn(jnp.ones(2))
    assert body.runs == 2
    assert_tree_equal(holder["out"].value, jnp.full(2, 2.0))


# ------------------------------------------------------- states changed outside
@pytest.mark.parametrize("kind", ["jit", "StatefulFunction"])
def test_state_shape_or_dtype_changed_outside_retraces(kind):
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    @counted
    def body(x):
        h.value = h.value + x
        return h.value.sum()

    fn = sj.jit(body) if kind == "jit" else sj.StatefulFunction(body)
    ref = jax.jit(lambda h_, x: ((h_ + x).sum(), h_ + x))

    def check(x):
        out_e, h_e = ref(h.value, x)
        assert_tree_equal(fn(x), out_e)
        assert_tree_equal(h.value, h_e)

    check(1)
    assert body.runs == 1
    h.value = jnp.arange(4.0)  # new shape, written outside any trace (allowed)
    check(1)
    assert body.runs == 2
    h.value = jnp.arange(4, dtype=jnp.int32)  # new dtype
    check(1)
    assert body.runs == 3
    assert fn.out_shapes(1) == jax.ShapeDtypeStruct((), jnp.int32)
    h.value = jnp.full(2, 1.5)  # weakly typed f32[2]
    check(1)
    assert body.runs == 4
    h.value = jnp.zeros(2)  # back to the first signature: no new run
    check(1)
    h.value = jnp.arange(4.0)
    check(1)
    assert body.runs == 4


@pytest.mark.parametrize("kind", ["jit", "StatefulFunction"])
def test_state_tree_structure_changed_outside_retraces(kind):
    s = sg.State({"a": jnp.ones(2)}, name="s")

    @counted
    def body(x):
        s.value = jax.tree.map(lambda v: v * x, s.value)
        return sum(jax.tree.leaves(s.value))

    fn = sj.jit(body) if kind == "jit" else sj.StatefulFunction(body)

    def ref(value, x):
        new = jax.tree.map(lambda v: v * x, value)
        return sum(jax.tree.leaves(new)), new

    for value in [
        {"a": jnp.ones(2)},
        {"b": jnp.full(2, 3.0)},  # same leaves, another key
        (jnp.ones(2), jnp.arange(2.0)),
        [jnp.ones(2), jnp.arange(2.0)],  # same leaves, another container
        {"a": jnp.ones(2)},
    ]:
        s.value = value
        out_e, new_e = jax.jit(ref)(value, 2.0)
        assert_tree_equal(fn(2.0), out_e)
        assert_tree_equal(s.value, new_e)
    assert body.runs == 4


def test_signatures_touching_different_states_alternate_correctly():
    a = sg.ShortTermState(jnp.zeros(()), name="a")
    b = sg.ShortTermState(jnp.zeros(()), name="b")

    @counted
    def body(x):
        s = a if x.ndim == 1 else b
        s.value = s.value + x.sum()
        return x * 2

    fn = sj.jit(body)
    for i in range(4):
        assert_tree_equal(fn(jnp.full(2, float(i))), jnp.full(2, 2.0 * i))
        assert_tree_equal(fn(jnp.full((2, 2), float(i))), jnp.full((2, 2), 2.0 * i))
    assert_tree_equal(a.value, jnp.float32(2 * (0 + 1 + 2 + 3)))
    assert_tree_equal(b.value, jnp.float32(4 * (0 + 1 + 2 + 3)))
    assert body.runs == 2
