"""statejax.jit: write-back, outside changes, decorator forms, AOT helpers, nesting.

Every result is compared with plain JAX on the equivalent pure function (the
state values passed as arguments), run under ``jax.jit``.
"""

from __future__ import annotations

import functools
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


def not_a_tracer(state):
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(state._value))


# ------------------------------------------------------------------ write-back
@SETTINGS
@given(
    n_states=st.integers(1, 5),
    shape=st.sampled_from([(), (2,), (2, 3)]),
    steps=st.integers(1, 6),
    container=st.sampled_from(["array", "dict", "tuple"]),
)
def test_written_states_are_written_back_after_every_call(n_states, shape, steps, container):
    def wrap(v):
        return {"array": v, "dict": {"v": v, "k": (v, v + 1)}, "tuple": (v, [v * 2])}[container]

    states = [
        sg.ShortTermState(wrap(jnp.full(shape, float(i))), name=f"h{i}") for i in range(n_states)
    ]
    w = sg.ParamState(jnp.ones(shape), name="w")

    @sj.jit
    def step(x):
        acc = 0.0
        for s in states:
            s.value = jax.tree.map(lambda v: 0.5 * v + w.value * x, s.value)
            acc = acc + sum(leaf.sum() for leaf in jax.tree.leaves(s.value))
        return acc

    @jax.jit
    def pure(values, w_value, x):
        new = [jax.tree.map(lambda v: 0.5 * v + w_value * x, v) for v in values]
        return sum(sum(leaf.sum() for leaf in jax.tree.leaves(v)) for v in new), new

    for i in range(steps):
        x = jnp.float32(i + 1)
        out_e, values_e = pure([s.value for s in states], w.value, x)
        assert_tree_equal(step(x), out_e)
        for s, v in zip(states, values_e, strict=True):
            assert_tree_equal(s.value, v)
    # First-read order: h0, then w (read while computing h0's new value), then the others.
    assert step.read_states(1.0) == [states[0], w, *states[1:]]
    assert [s.name for s in step.written_states(1.0)] == [s.name for s in states]


def test_state_changed_outside_between_calls_is_seen():
    w = sg.ParamState(jnp.ones(3), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    @sj.jit
    def step(x):
        h.value = h.value + w.value * x
        return h.value.sum()

    pure = jax.jit(lambda h_, w_, x: ((h_ + w_ * x).sum(), h_ + w_ * x))
    for i in range(4):
        w.value = jnp.arange(3.0) * i  # a read-only state changed outside
        if i == 2:
            h.value = jnp.full(3, -5.0)  # a written state changed outside
        out_e, h_e = pure(h.value, w.value, 2.0)
        assert_tree_equal(step(2.0), out_e)
        assert_tree_equal(h.value, h_e)


# ------------------------------------------------------------- decorator forms
def test_decorator_forms():
    s = sg.ShortTermState(jnp.zeros(2), name="s")

    @sj.jit
    def plain(x):
        s.value = s.value + x
        return x * 2

    @sj.jit()
    def called(x):
        s.value = s.value + x
        return x * 2

    @sj.jit(static_argnums=1)
    def with_static(x, n):
        s.value = s.value + x * n
        return x * n

    @sj.jit(static_argnames="n")
    def with_static_name(x, *, n):
        s.value = s.value + x * n
        return x * n

    x = jnp.ones(2)
    for fn in (plain, called):
        before = s.value
        assert_tree_equal(fn(x), jax.jit(lambda x: x * 2)(x))
        assert_tree_equal(s.value, before + x)
    times = jax.jit(lambda x, n: x * n, static_argnums=1)
    for n in (2, 3, 2):
        before = s.value
        assert_tree_equal(with_static(x, n), times(x, n))
        assert_tree_equal(s.value, before + x * n)
        before = s.value
        assert_tree_equal(with_static_name(x, n=n), times(x, n))
        assert_tree_equal(s.value, before + x * n)


@pytest.mark.parametrize("static", [{"static_argnums": 1}, {"static_argnames": "n"}])
def test_static_parameter_is_static_by_position_and_by_name(static):
    # As jax.jit: a static parameter may be passed positionally or by keyword.
    s = sg.ShortTermState(jnp.zeros(2), name="s")
    runs = []

    def body(x, n, scale=1.0):
        runs.append(n)
        for _ in range(n):
            s.value = s.value + x * scale
        return s.value.sum()

    def pure(s_value, x, n, scale=1.0):
        for _ in range(n):
            s_value = s_value + x * scale
        return s_value.sum(), s_value

    fn = sj.jit(body, **static)
    ref = jax.jit(pure, static_argnums=2)
    for args, kwargs in [((1.0, 3), {}), ((1.0,), {"n": 2}), ((1.0, 3), {"scale": 2.0})]:
        x, n = args[0], args[1] if len(args) > 1 else kwargs["n"]
        out_e, s_e = ref(s.value, x, n, kwargs.get("scale", 1.0))
        assert_tree_equal(fn(*args, **kwargs), out_e)
        assert_tree_equal(s.value, s_e)
    assert runs == [3, 2, 3]  # a new trace per static value and per way of passing


def test_unhashable_static_argument_is_named():
    fn = sj.jit(lambda x, n, *, mode: x * len(n), static_argnums=1, static_argnames="mode")
    with pytest.raises(ValueError, match=r"static positional argument 1 is list \[1, 2\]"):
        fn(1.0, [1, 2], mode="a")
    with pytest.raises(ValueError, match=r"static keyword argument 'mode' is dict"):
        fn(1.0, (1, 2), mode={})
    with pytest.raises(ValueError, match="hashable"):
        jax.jit(lambda x, n: x * len(n), static_argnums=1)(1.0, [1, 2])  # as jax.jit


def test_jitted_function_carries_the_api_and_the_wrapped_metadata():
    def my_step(x):
        """My doc."""
        return x

    fn = sj.jit(my_step)
    assert fn.__name__ == "my_step" and fn.__doc__ == "My doc."
    assert isinstance(fn.stateful, sj.StatefulFunction)
    for name in (
        "trace",
        "lower",
        "eval_shape",
        "pure",
        "jaxpr",
        "read_states",
        "written_states",
        "out_shapes",
        "clear_cache",
    ):
        assert callable(getattr(fn, name))


def test_extra_jit_keyword_arguments_are_passed_to_jax_jit():
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    @sj.jit(keep_unused=True, inline=True)
    def step(x, unused):
        h.value = h.value + x
        return x * 2

    out = step(jnp.ones(2), jnp.zeros(3))
    assert_tree_equal(out, jnp.full(2, 2.0))
    assert_tree_equal(h.value, jnp.ones(2))
    # keep_unused: the unused argument stays an input of the lowered program
    assert "tensor<3xf32>" in step.lower(jnp.ones(2), jnp.zeros(3)).as_text()
    pruned = sj.jit(step.stateful.fun).lower(jnp.ones(2), jnp.zeros(3)).as_text()
    assert "tensor<3xf32>" not in pruned


def test_donate_argnames_donates_by_name_or_position():
    # brainstate 0.5.4 / jax.jit meaning: the named parameter is donated
    # however it is passed (issue 9 replaced the former refusal).
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    def step(x, y):
        h.value = h.value + y
        return x + y

    for call in (lambda f, x, y: f(x, y), lambda f, x, y: f(x, y=y)):
        f = sj.jit(step, donate_argnames="x")
        x, y = jnp.ones(3), jnp.full(3, 2.0)
        assert_tree_equal(call(f, x, y), jnp.full(3, 3.0))
        assert x.is_deleted() and not y.is_deleted()


# ---------------------------------------------------------------------- methods
class Counter:
    def __init__(self, k):
        self.w = sg.ParamState(jnp.full(2, float(k)), name=f"w{k}")
        self.n = sg.ShortTermState(jnp.zeros(()), name=f"n{k}")

    @sj.jit(static_argnums=0)
    def step(self, x):
        self.n.value = self.n.value + 1
        return (self.w.value * x).sum() + self.n.value

    @functools.partial(sj.jit, static_argnums=(0, 2))
    def scaled(self, x, k):
        self.w.value = self.w.value * k
        return self.w.value * x


def test_methods_with_static_self():
    pure = jax.jit(lambda w, n, x: ((w * x).sum() + n + 1, n + 1))
    counters = [Counter(1), Counter(2)]
    for _ in range(3):
        for c in counters:  # two instances: two sets of states, alternating
            out_e, n_e = pure(c.w.value, c.n.value, 3.0)
            assert_tree_equal(c.step(3.0), out_e)
            assert_tree_equal(c.n.value, n_e)
    c = counters[0]
    before = c.w.value
    assert_tree_equal(c.scaled(2.0, 3), jax.jit(lambda w: w * 3 * 2.0)(before))
    assert_tree_equal(c.w.value, before * 3)


def test_bare_jit_on_a_method_binds_the_instance():
    # `self` is bound, not an argument: each instance gets its own compiled
    # function over its own states, and the instance is held weakly.
    class Model:
        def __init__(self, scale):
            self.w = sg.ParamState(jnp.full(2, scale), name="w")
            self.h = sg.ShortTermState(jnp.zeros(2), name="h")

        @sj.jit
        def __call__(self, x):
            self.h.value = self.h.value + self.w.value * x
            return self.h.value.sum()

    a, b = Model(1.0), Model(3.0)
    pure = jax.jit(lambda w, h, x: (h + w * x, (h + w * x).sum()))
    ha, hb = jnp.zeros(2), jnp.zeros(2)
    for x in (2.0, 0.5):
        ha, ya = pure(jnp.full(2, 1.0), ha, x)
        hb, yb = pure(jnp.full(2, 3.0), hb, x)
        np.testing.assert_allclose(a(x), ya)
        np.testing.assert_allclose(b(x), yb)
    np.testing.assert_allclose(a.h.value, ha)
    np.testing.assert_allclose(b.h.value, hb)
    ref = weakref.ref(a)
    del a
    gc.collect()
    assert ref() is None


def test_jit_on_a_method_with_static_self_still_works():
    class Model:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones(2), name="w")

        @functools.partial(sj.jit, static_argnums=0)
        def apply(self, x):
            return self.w.value * x

    m = Model()
    np.testing.assert_allclose(m.apply(2.0), jnp.full(2, 2.0))


# ----------------------------------------------------------------- AOT helpers
def _model():
    w = sg.ParamState({"k": jnp.ones((2, 3)), "b": jnp.zeros(3)}, name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    def fun(x, *, scale):
        h.value = h.value + x @ w.value["k"] + w.value["b"]
        return {"out": h.value * scale, "n": jnp.int32(3)}

    def pure(h_value, w_value, x, *, scale):
        new_h = h_value + x @ w_value["k"] + w_value["b"]
        return {"out": new_h * scale, "n": jnp.int32(3)}, new_h

    return w, h, fun, pure


def test_lower_reports_the_user_output_only():
    w, h, fun, pure = _model()
    fn = sj.jit(fun)
    x = jnp.ones(2)
    lowered = fn.lower(x, scale=2.0)
    expected = jax.jit(pure).lower(h.value, w.value, x, scale=2.0).out_info[0]
    assert lowered.out_info == expected
    assert "stablehlo" in lowered.as_text() or "module" in lowered.as_text()
    assert lowered.compile() is not None
    np.testing.assert_array_equal(h.value, jnp.zeros(3))


def test_eval_shape_reports_the_user_output_only():
    w, h, fun, pure = _model()
    fn = sj.jit(fun)
    x = jax.ShapeDtypeStruct((2,), jnp.float32)
    assert fn.eval_shape(x, scale=2.0) == jax.eval_shape(pure, h.value, w.value, x, scale=2.0)[0]
    np.testing.assert_array_equal(h.value, jnp.zeros(3))


def test_keyword_and_pytree_arguments_and_outputs():
    w, h, fun, pure = _model()
    fn = sj.jit(fun)
    ref = jax.jit(pure)
    for scale in (2.0, 3.0):
        out_e, h_e = ref(h.value, w.value, jnp.arange(2.0), scale=scale)
        assert_tree_equal(fn(jnp.arange(2.0), scale=scale), out_e)
        assert_tree_equal(h.value, h_e)

    @sj.jit
    def tree_fun(tree, *, extra):
        h.value = h.value + tree["a"][0] * tree["a"][1] + extra["e"]
        return [h.value, (tree["b"], {"c": tree["a"][0] + 1})]

    def tree_pure(h_value, tree, *, extra):
        new = h_value + tree["a"][0] * tree["a"][1] + extra["e"]
        return [new, (tree["b"], {"c": tree["a"][0] + 1})], new

    tree = {"a": (jnp.ones(3), jnp.arange(3.0)), "b": jnp.int32(7)}
    out_e, h_e = jax.jit(tree_pure)(h.value, tree, extra={"e": 1.0})
    assert_tree_equal(tree_fun(tree, extra={"e": 1.0}), out_e)
    assert_tree_equal(h.value, h_e)


def test_write_only_read_only_and_no_states():
    src = sg.ParamState(jnp.arange(3.0), name="src")
    dst = sg.ShortTermState(jnp.zeros(3), name="dst")

    @sj.jit
    def copy(x):
        dst.value = src.value * x  # dst is written before (and without) being read
        return dst.value.sum()

    out = copy(2.0)
    assert_tree_equal(out, jax.jit(lambda s, x: (s * x).sum())(src.value, 2.0))
    assert_tree_equal(dst.value, jax.jit(lambda s, x: s * x)(src.value, 2.0))
    assert copy.read_states(2.0) == [src]
    assert copy.written_states(2.0) == [dst]
    assert len(copy.jaxpr(2.0).in_avals) == 2  # x and src, no input for dst
    dst.value = jnp.full(3, 100.0)
    copy(1.0)
    assert_tree_equal(dst.value, src.value)  # the old value of dst plays no part

    @sj.jit
    def read_only(x):
        return src.value * x

    before = src.value
    assert_tree_equal(read_only(3.0), jax.jit(lambda s, x: s * x)(before, 3.0))
    assert src.value is before
    assert read_only.written_states(3.0) == []

    @sj.jit
    def stateless(x, y):
        return {"sum": x + y, "prod": x * y}

    x, y = jnp.arange(3.0), jnp.ones(3)
    assert_tree_equal(stateless(x, y), jax.jit(lambda x, y: {"sum": x + y, "prod": x * y})(x, y))
    assert stateless.read_states(x, y) == [] and stateless.written_states(x, y) == []


def test_pytree_valued_states():
    params = sg.ParamState({"w": jnp.ones((3, 2)), "b": (jnp.zeros(2), jnp.ones(()))}, name="p")
    hist = sg.ShortTermState([jnp.zeros(2), {"m": jnp.zeros(2)}], name="hist")

    @sj.jit
    def step(x):
        y = x @ params.value["w"] + params.value["b"][0] * params.value["b"][1]
        hist.value = [hist.value[0] + y, {"m": jnp.maximum(hist.value[1]["m"], y)}]
        params.value = {**params.value, "b": (params.value["b"][0] + 0.1, params.value["b"][1])}
        return y

    @jax.jit
    def pure(p, hst, x):
        y = x @ p["w"] + p["b"][0] * p["b"][1]
        new_h = [hst[0] + y, {"m": jnp.maximum(hst[1]["m"], y)}]
        new_p = {**p, "b": (p["b"][0] + 0.1, p["b"][1])}
        return y, new_h, new_p

    for i in range(3):
        x = jnp.arange(3.0) - i
        y_e, h_e, p_e = pure(params.value, hist.value, x)
        assert_tree_equal(step(x), y_e)
        assert_tree_equal(hist.value, h_e)
        assert_tree_equal(params.value, p_e)


def test_donation_keeps_results_and_read_only_states_usable():
    w = sg.ParamState(jnp.arange(3.0), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    @sj.jit(donate_states=True, donate_argnums=0)
    def step(x):
        h.value = h.value + w.value * x
        return x + 1

    pure = jax.jit(lambda h_, w_, x: (x + 1, h_ + w_ * x))
    for _ in range(3):
        x = jnp.ones(3)
        out_e, h_e = pure(h.value, w.value, x)
        assert_tree_equal(step(x), out_e)
        assert_tree_equal(h.value, h_e)
    # The read-only state is never donated: it is still usable.
    np.testing.assert_array_equal(np.asarray(w.value), np.arange(3.0))


def test_in_and_out_shardings():
    sharding = jax.sharding.SingleDeviceSharding(jax.devices()[0])
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    @sj.jit(in_shardings=(sharding, sharding), out_shardings=sharding)
    def step(x, y):
        h.value = h.value + x * y
        return x - y

    pure = jax.jit(lambda h_, x, y: (x - y, h_ + x * y))
    out_e, h_e = pure(h.value, jnp.ones(2), jnp.arange(2.0))
    out = step(jnp.ones(2), jnp.arange(2.0))
    assert_tree_equal(out, out_e)
    assert_tree_equal(h.value, h_e)
    assert out.sharding == sharding


# -------------------------------------------------------------------- nesting
def test_jit_inside_jit_matches_the_pure_program():
    w = sg.ParamState(jnp.array([1.0, -2.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    runs = []

    @sj.jit
    def inner(x):
        runs.append("inner")
        h.value = jnp.tanh(h.value + w.value * x)
        return h.value.sum()

    @sj.jit
    def outer(x):
        runs.append("outer")
        a = inner(x)
        b = inner(2 * x)  # sees the first inner call's write
        w.value = w.value * 0.5
        return a + b + h.value[0]

    def p_inner(h_, w_, x):
        new = jnp.tanh(h_ + w_ * x)
        return new.sum(), new

    @jax.jit
    def p_outer(h_, w_, x):
        a, h_ = p_inner(h_, w_, x)
        b, h_ = p_inner(h_, w_, 2 * x)
        return a + b + h_[0], h_, w_ * 0.5

    for x in (0.5, 0.25, 0.5):
        out_e, h_e, w_e = p_outer(h.value, w.value, x)
        assert_tree_equal(outer(x), out_e)
        assert_tree_equal(h.value, h_e)
        assert_tree_equal(w.value, w_e)
    assert runs == ["outer", "inner"]  # each body traced once, the inner one for both calls
    h_before = h.value
    out = inner(0.5)  # the inner function's own cache serves an eager call too
    assert runs == ["outer", "inner"]
    assert_tree_equal((out, h.value), jax.jit(p_inner)(h_before, w.value, 0.5))


def test_plain_jax_jit_writing_a_state_raises_and_leaves_it_unchanged():
    h = sg.ShortTermState(jnp.ones(2), name="h")
    before = h.value

    def write(x):
        h.value = h.value + x
        return x

    with pytest.raises(sg.TraceContextError, match="statejax.jit"):
        jax.jit(write)(1.0)
    assert h.value is before
    assert not_a_tracer(h)


def test_plain_jax_jit_may_read_a_state():
    w = sg.ParamState(jnp.arange(3.0), name="w")
    out = jax.jit(lambda x: w.value * x)(2.0)
    assert_tree_equal(out, jax.jit(lambda w_, x: w_ * x)(w.value, 2.0))

    @sj.jit
    def reads(x):
        return (w.value * x).sum()

    reads(1.0)
    expected = jax.jit(lambda w_, x: (w_ * x).sum() * 2)(w.value, 3.0)
    assert_tree_equal(jax.jit(lambda x: reads(x) * 2)(3.0), expected)
    grad = jax.grad(reads)(3.0)
    assert_tree_equal(grad, jax.grad(lambda x: (jnp.arange(3.0) * x).sum())(3.0))


@pytest.mark.parametrize("cached", [False, True])
def test_writing_jit_function_inside_plain_jax_jit_raises(cached):
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    g = sg.ShortTermState(jnp.zeros(2), name="g")

    @sj.jit
    def step(x):
        h.value = h.value + x
        g.value = g.value - x
        return h.value

    if cached:
        step(1.0)
    h_before, g_before = h.value, g.value
    with pytest.raises(sg.TraceContextError):
        jax.jit(step)(1.0)
    with pytest.raises(sg.TraceContextError):
        jax.grad(lambda x: step(x).sum())(1.0)
    assert h.value is h_before and g.value is g_before
    assert not_a_tracer(h) and not_a_tracer(g)
    step(1.0)  # still usable
    assert_tree_equal(h.value, h_before + 1.0)


def test_cond_basic():
    n = sg.ShortTermState(jnp.zeros(()), name="n")
    w = sg.ParamState(jnp.float32(3.0), name="w")

    def up(x):
        n.value = n.value + x * w.value
        return x

    def down(x):
        n.value = n.value - x
        return -x

    @jax.jit
    def pure(n_, w_, pred, x):
        return jax.lax.cond(pred, lambda: (x, n_ + x * w_), lambda: (-x, n_ - x))

    for pred, x in [(True, 2.0), (False, 5.0), (True, 1.0)]:
        out_e, n_e = pure(n.value, w.value, pred, jnp.float32(x))
        assert_tree_equal(sj.cond(pred, up, down, jnp.float32(x)), out_e)
        assert_tree_equal(n.value, n_e)

    @sj.jit
    def inside(pred, x):
        return sj.cond(pred, up, down, x)

    out_e, n_e = pure(n.value, w.value, False, jnp.float32(4.0))
    assert_tree_equal(inside(False, jnp.float32(4.0)), out_e)
    assert_tree_equal(n.value, n_e)
