"""statejax.vmap: batching stateful functions, checked against jax.vmap on the pure function."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer


def assert_close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(np.asarray(x), np.asarray(y), 1e-6), a, b)


def no_tracers(*states):
    for s in states:
        assert not has_tracer(s.value), s


# --------------------------------------------------------------------------- basics
def test_matches_jax_vmap_on_the_pure_function():
    w = sg.ParamState(jnp.arange(3.0) + 1.0, name="w")  # shared, read only
    h = sg.ShortTermState(jnp.ones((4, 3)), name="h")  # batched
    n = sg.ShortTermState(jnp.zeros(()), name="n")  # shared, lane-invariant write

    def f(x):
        h.value = 0.5 * h.value + w.value * x
        n.value = n.value + 1.0
        return (h.value**2).sum()

    def pure(x, w, h, n):
        h = 0.5 * h + w * x
        return (h**2).sum(), h, n + 1.0

    x = jnp.linspace(0.0, 1.0, 12).reshape(4, 3)
    w0, h0, n0 = w.value, h.value, n.value
    want = jax.vmap(pure, in_axes=(0, None, 0, None), out_axes=(0, 0, None))(x, w0, h0, n0)
    got = sj.vmap(f, in_states=h)(x)
    assert_close((got, h.value, n.value), want)
    assert_close(w.value, w0)
    no_tracers(w, h, n)


def test_decorator_factory_and_in_axes_tuple():
    s = sg.State(jnp.zeros(()), name="s")

    @sj.vmap(in_axes=(None, 1))
    def f(a, x):
        s.value = s.value + a  # a is not mapped: the same in every lane
        return a * x.sum()

    x = jnp.arange(6.0).reshape(2, 3)
    out = f(2.0, x)
    assert_close(out, jax.vmap(lambda a, x: a * x.sum(), in_axes=(None, 1))(2.0, x))
    assert float(s.value) == 2.0


def test_out_axes_and_negative_in_axes():
    h = sg.State(jnp.zeros((2, 5)), name="h")

    def f(x):
        h.value = h.value + x.sum()
        return x * 2, x.sum()

    x = jnp.arange(10.0).reshape(2, 5)
    out = sj.vmap(f, in_axes=-1, out_axes=(1, 0), in_states={1: h})(x)

    def pure(x, h):
        return (x * 2, x.sum()), h + x.sum()

    (want_out, want_h) = jax.vmap(pure, in_axes=(-1, 1), out_axes=((1, 0), 1))(x, jnp.zeros((2, 5)))
    assert_close(out, want_out)
    assert_close(h.value, want_h)


def test_keyword_arguments_are_mapped_over_axis_0():
    def f(x, *, y):
        return x + y

    x = jnp.arange(3.0)
    y = jnp.arange(3.0) * 10
    assert_close(sj.vmap(f)(x, y=y), x + y)


def test_pytree_arguments_and_state_values():
    st_ = sg.ShortTermState({"a": jnp.zeros((3, 2)), "b": jnp.ones(3)}, name="tree")

    def f(inp):
        v = st_.value
        st_.value = {"a": v["a"] + inp["x"], "b": v["b"] * 2}
        return {"sum": inp["x"].sum() + v["b"]}

    inp = {"x": jnp.arange(6.0).reshape(3, 2)}
    out = sj.vmap(f, in_states=st_)(inp)

    def pure(inp, v):
        return {"sum": inp["x"].sum() + v["b"]}, {"a": v["a"] + inp["x"], "b": v["b"] * 2}

    want_out, want_v = jax.vmap(pure)(inp, {"a": jnp.zeros((3, 2)), "b": jnp.ones(3)})
    assert_close(out, want_out)
    assert_close(st_.value, want_v)


def test_axis_name_collectives():
    h = sg.State(jnp.arange(4.0), name="h")
    total = sg.State(jnp.zeros(()), name="total")

    def f(x):
        s = jax.lax.psum(x, "i")
        h.value = h.value + s
        total.value = s  # a psum is the same in every lane: a shared state may hold it
        return x / s

    x = jnp.arange(4.0) + 1.0
    out = sj.vmap(f, axis_name="i", in_states=h)(x)
    assert_close(out, jax.vmap(lambda x: x / jax.lax.psum(x, "i"), axis_name="i")(x))
    assert_close(h.value, jnp.arange(4.0) + 10.0)
    assert float(total.value) == 10.0

    def g(x):
        total.value = x * jax.lax.psum(x, "i")  # per lane
        return x

    with pytest.raises(ValueError, match="total"):
        sj.vmap(g, axis_name="i")(x)
    assert float(total.value) == 10.0


def test_axis_size_with_nothing_mapped():
    n = sg.State(jnp.zeros(()), name="n")

    def f():
        n.value = n.value + 1.0
        return jnp.ones(2)

    out = sj.vmap(f, axis_size=3)()
    assert out.shape == (3, 2)
    assert float(n.value) == 1.0
    with pytest.raises(ValueError, match="axis_size"):
        sj.vmap(f)()


def test_batch_size_from_in_states_alone():
    h = sg.State(jnp.arange(5.0), name="h")

    @sj.vmap(in_axes=None, in_states=h)
    def f(c):
        h.value = h.value * c
        return h.value + 1.0

    assert_close(f(2.0), jnp.arange(5.0) * 2 + 1)
    assert_close(h.value, jnp.arange(5.0) * 2)


# ------------------------------------------------------------------ declared states
def test_written_in_state_is_written_back_batched_and_read_only_in_state_unchanged():
    a = sg.State(jnp.arange(3.0), name="a")  # in_states, read only
    b = sg.State(jnp.zeros(3), name="b")  # in_states, written

    @sj.vmap(in_states=[a, b])
    def f(x):
        b.value = a.value * x
        return a.value

    out = f(jnp.full(3, 2.0))
    assert_close(out, jnp.arange(3.0))
    assert_close(a.value, jnp.arange(3.0))
    assert_close(b.value, jnp.arange(3.0) * 2)


def test_out_states_only_is_split_and_stacked_along_its_axis():
    rec = sg.State(jnp.zeros((2, 4)), name="rec")

    @sj.vmap(out_states={1: rec})
    def f(x):
        rec.value = rec.value + x  # each lane sees its column
        return x

    x = jnp.arange(8.0).reshape(4, 2)
    f(x)
    assert_close(rec.value, x.T)
    f(x)
    assert_close(rec.value, 2 * x.T)


def test_different_in_and_out_axes_keep_the_shape():
    sq = sg.State(jnp.arange(9.0).reshape(3, 3), name="sq")

    @sj.vmap(in_states={0: sq}, out_states={1: sq})
    def transpose_like(x):
        sq.value = sq.value + 0 * x
        return x

    transpose_like(jnp.zeros(3))
    assert_close(sq.value, jnp.arange(9.0).reshape(3, 3).T)

    rect = sg.State(jnp.zeros((3, 2)), name="rect")
    with pytest.raises(ValueError, match="rect"):
        sj.vmap(
            lambda x: setattr(rect, "value", rect.value + x) or x,
            in_states={0: rect},
            out_states={1: rect},
        )(jnp.zeros(3))
    assert rect.value.shape == (3, 2)


def test_states_as_dict_of_names_means_axis_0():
    h1 = sg.State(jnp.zeros(2), name="h1")
    h2 = sg.State(jnp.zeros(2), name="h2")

    @sj.vmap(in_states={"h1": h1, "h2": h2})
    def f(x):
        h1.value = h1.value + x
        h2.value = h2.value - x
        return x

    f(jnp.array([1.0, 2.0]))
    assert_close(h1.value, jnp.array([1.0, 2.0]))
    assert_close(h2.value, -jnp.array([1.0, 2.0]))


def test_declared_state_without_the_batch_axis_is_a_clear_error():
    h = sg.State(jnp.zeros((5, 2)), name="hidden")
    with pytest.raises(ValueError, match=r"hidden.*: 5|same size"):
        sj.vmap(lambda x: h.value + x, in_states=h)(jnp.zeros((3, 2)))
    scalar = sg.State(jnp.zeros(()), name="scalar")
    with pytest.raises(ValueError, match="scalar.*rank 0"):
        sj.vmap(lambda x: scalar.value + x, in_states=scalar)(jnp.zeros(3))
    no_tracers(h, scalar)


def test_bad_state_specs():
    s = sg.State(jnp.zeros(3))
    with pytest.raises(TypeError, match="in_states"):
        sj.vmap(lambda x: x, in_states=3)
    with pytest.raises(TypeError, match="States only"):
        sj.vmap(lambda x: x, in_states=[s, 1])
    with pytest.raises(ValueError, match="two axes"):
        sj.vmap(lambda x: x, in_states={0: s, 1: [s]})
    with pytest.raises(ValueError, match="in_axes"):
        sj.vmap(lambda x: x, in_axes=(0, 0))(jnp.zeros(3))
    with pytest.raises(TypeError, match="callable"):
        sj.vmap(3)


# ------------------------------------------------------------- undeclared per-lane writes
def test_per_lane_write_to_undeclared_state_raises_and_leaves_it_unchanged():
    acc = sg.ShortTermState(jnp.zeros(3), name="acc")
    before = acc.value

    def f(x):
        acc.value = acc.value + x
        return x

    with pytest.raises(ValueError, match=r"acc.*out_states"):
        sj.vmap(f)(jnp.ones((4, 3)))
    assert acc.value is before
    no_tracers(acc)
    # Under an enclosing jit too: nothing changes, no tracer is left behind.
    with pytest.raises(ValueError, match="acc"):
        sj.jit(sj.vmap(f))(jnp.ones((4, 3)))
    assert acc.value is before
    no_tracers(acc)


def test_per_lane_write_is_fine_once_declared():
    acc = sg.ShortTermState(jnp.zeros((4, 3)), name="acc")

    def f(x):
        acc.value = acc.value + x
        return x

    sj.vmap(f, out_states=acc)(jnp.ones((4, 3)))
    assert_close(acc.value, jnp.ones((4, 3)))


def test_lane_invariant_write_to_undeclared_state_is_allowed():
    c = sg.ShortTermState(jnp.zeros(()), name="c")
    k = sg.ParamState(jnp.array(3.0), name="k")

    def f(x):
        c.value = k.value * 2  # depends on a shared state only
        return x * c.value

    out = sj.vmap(f)(jnp.arange(3.0))
    assert_close(out, jnp.arange(3.0) * 6)
    assert float(c.value) == 6.0


# -------------------------------------------------------------------- caching, eager
def test_eager_calls_are_compiled_and_traced_once_per_signature():
    calls = []
    h = sg.ShortTermState(jnp.zeros((4, 2)), name="h")

    @sj.vmap(in_states=h)
    def f(x):
        calls.append(1)
        h.value = h.value + x
        return h.value.sum()

    for _ in range(5):
        f(jnp.ones((4, 2)))
    assert len(calls) == 1
    assert_close(h.value, 5 * jnp.ones((4, 2)))
    # a new batch size keeps the per-lane signature: no new Python trace
    h.value = jnp.zeros((6, 2))
    f(jnp.ones((6, 2)))
    assert len(calls) == 1
    assert_close(h.value, jnp.ones((6, 2)))
    # a new per-lane shape is a new signature
    h.value = jnp.zeros((6, 3))
    f(jnp.ones((6, 3)))
    assert len(calls) == 2
    assert_close(h.value, jnp.ones((6, 3)))


def test_states_read_after_outside_change_are_seen():
    w = sg.ParamState(jnp.ones(2), name="w")
    f = sj.vmap(lambda x: x * w.value)
    assert_close(f(jnp.ones((3, 2))), jnp.ones((3, 2)))
    w.value = jnp.full(2, 5.0)
    assert_close(f(jnp.ones((3, 2))), 5 * jnp.ones((3, 2)))


def test_exception_in_function_leaves_states_unchanged():
    h = sg.ShortTermState(jnp.zeros((3, 2)), name="h")
    before = h.value

    def f(x):
        h.value = h.value + x
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        sj.vmap(f, in_states=h)(jnp.ones((3, 2)))
    assert h.value is before
    no_tracers(h)


def test_methods_of_the_returned_function():
    h = sg.ShortTermState(jnp.zeros((3, 2)), name="h")

    @sj.vmap(in_states=h)
    def f(x):
        h.value = h.value + x
        return x.sum()

    x = jax.ShapeDtypeStruct((3, 2), jnp.float32)
    assert f.eval_shape(x).shape == (3,)
    assert f.written_states(x) == [h]
    assert isinstance(f.stateful, sj.StatefulFunction)


# ------------------------------------------------------------------------ nesting
def _model():
    w = sg.ParamState(jnp.array([1.0, -2.0]), name="w")
    h = sg.ShortTermState(jnp.zeros((3, 2)), name="h")

    def f(x):
        h.value = jnp.tanh(h.value * w.value + x)
        return h.value.sum()

    def pure(x, w, h):
        h = jnp.tanh(h * w + x)
        return h.sum(), h

    return w, h, f, pure


def test_jit_of_vmap_and_vmap_of_jit_match_pure():
    x = jnp.linspace(-1, 1, 6).reshape(3, 2)
    for wrap in (
        lambda f, h: sj.jit(sj.vmap(f, in_states=h)),
        lambda f, h: sj.vmap(sj.jit(f), in_states=h),
    ):
        w, h, f, pure = _model()
        g = wrap(f, h)
        hv = h.value
        for _ in range(3):
            want_out, hv = jax.vmap(pure, in_axes=(0, None, 0))(x, w.value, hv)
            assert_close(g(x), want_out)
            assert_close(h.value, hv)
        no_tracers(w, h)


def test_vmap_of_jit_keeps_the_jitted_function_usable_directly():
    w, h, f, pure = _model()
    jf = sj.jit(f)
    x = jnp.linspace(0.0, 1.0, 6).reshape(3, 2)
    sj.vmap(jf, in_states=h)(x)
    hv = h.value
    # the jitted function, called directly on the whole (batched) state, still works
    want_out, want_h = pure(x, w.value, hv)
    assert_close(jf(x), want_out)
    assert_close(h.value, want_h)
    # and the vmapped one again
    want_out, want_h = jax.vmap(pure, in_axes=(0, None, 0))(x, w.value, h.value)
    assert_close(sj.vmap(jf, in_states=h)(x), want_out)
    assert_close(h.value, want_h)


def test_vmap_of_vmap():
    h = sg.ShortTermState(jnp.zeros((2, 3)), name="h")
    shared = sg.ParamState(jnp.array(0.5), name="shared")

    def f(x):
        h.value = h.value * shared.value + x
        return h.value

    x = jnp.arange(6.0).reshape(2, 3)
    inner = sj.vmap(f, in_states={0: h})  # over the last (per outer lane) axis
    outer = sj.vmap(inner, in_states={0: h})
    out = outer(x)

    def pure(x, h, s):
        h = h * s + x
        return h, h

    want_out, want_h = jax.vmap(jax.vmap(pure, in_axes=(0, 0, None)), in_axes=(0, 0, None))(
        x, jnp.zeros((2, 3)), 0.5
    )
    assert_close(out, want_out)
    assert_close(h.value, want_h)


def test_vmap_of_vmap_with_axis_names():
    x = jnp.arange(6.0).reshape(2, 3)
    f = lambda x: x / jax.lax.psum(x, "inner") + jax.lax.psum(x, "outer")  # noqa: E731
    got = sj.vmap(sj.vmap(f, axis_name="inner"), axis_name="outer")(x)
    want = jax.vmap(jax.vmap(f, axis_name="inner"), axis_name="outer")(x)
    assert_close(got, want)


def test_per_lane_write_of_inner_vmap_is_checked_at_each_level():
    # Batched over the outer lanes only: fine for the inner vmap, an error for the outer.
    s = sg.State(jnp.zeros(()), name="s")

    def f(a, b):
        s.value = a
        return b

    inner = sj.vmap(f, in_axes=(None, 0))
    with pytest.raises(ValueError, match="'s'"):
        sj.vmap(inner, in_axes=(0, 0))(jnp.arange(2.0), jnp.ones((2, 3)))
    assert float(s.value) == 0.0
    sj.vmap(inner, in_axes=(None, 0))(jnp.array(4.0), jnp.ones((2, 3)))
    assert float(s.value) == 4.0


def test_vmap_with_cond_inside():
    n = sg.ShortTermState(jnp.zeros(4), name="n")

    def f(x):
        return sj.cond(x > 0, lambda v: n.value + v, lambda v: n.value - v, x)

    def g(x):
        n.value = f(x)
        return n.value

    out = sj.vmap(g, in_states=n)(jnp.array([1.0, -2.0, 3.0, -4.0]))
    assert_close(out, jnp.array([1.0, 2.0, 3.0, 4.0]))
    assert_close(n.value, out)


def test_vmap_inside_scan():
    h = sg.ShortTermState(jnp.zeros((3, 2)), name="h")

    step = sj.vmap(lambda x: setattr(h, "value", h.value * 0.5 + x) or h.value.sum(), in_states=h)

    def body(carry, x):
        return carry + step(x).sum(), carry

    xs = jnp.arange(24.0).reshape(4, 3, 2)
    carry, ys = sj.scan(body, jnp.zeros(()), xs)

    def pure_body(c, x):
        c, hv = c
        hv = hv * 0.5 + x
        return (c + hv.sum(), hv), c

    (want_c, want_h), want_ys = jax.lax.scan(pure_body, (jnp.zeros(()), jnp.zeros((3, 2))), xs)
    assert_close(carry, want_c)
    assert_close(ys, want_ys)
    assert_close(h.value, want_h)


def test_scan_inside_vmap():
    h = sg.ShortTermState(jnp.zeros((3,)), name="h")

    def body(c, x):
        h.value = h.value + x
        return c + h.value, None

    def f(xs):
        c, _ = sj.scan(body, jnp.zeros(()), xs)
        return c

    xs = jnp.arange(12.0).reshape(3, 4)
    out = sj.vmap(f, in_states=h)(xs)

    def pure(xs, hv):
        def b(carry, x):
            c, hv = carry
            hv = hv + x
            return (c + hv, hv), None

        (c, hv), _ = jax.lax.scan(b, (jnp.zeros(()), hv), xs)
        return c, hv

    want_out, want_h = jax.vmap(pure)(xs, jnp.zeros(3))
    assert_close(out, want_out)
    assert_close(h.value, want_h)


# ----------------------------------------------------------------------- properties
@settings(max_examples=8, deadline=None)
@given(
    batch=st.integers(1, 5),
    feat=st.integers(1, 3),
    x_axis=st.sampled_from([0, 1, -1]),
    h_axis=st.sampled_from([0, 1]),
    out_axis=st.sampled_from([0, 1]),
)
def test_property_matches_jax_vmap(batch, feat, x_axis, h_axis, out_axis):
    rng = np.random.default_rng(batch * 100 + feat)
    x = jnp.asarray(rng.normal(size=(batch, feat)).astype(np.float32))
    x = jnp.moveaxis(x, 0, x_axis)
    h0 = jnp.asarray(rng.normal(size=(batch, feat)).astype(np.float32))
    h0 = jnp.moveaxis(h0, 0, h_axis)
    w0 = jnp.asarray(rng.normal(size=(feat,)).astype(np.float32))
    h = sg.ShortTermState(h0, name="h")
    w = sg.ParamState(w0, name="w")

    def f(x):
        h.value = jnp.sin(h.value) * w.value + x
        return jnp.stack([h.value.sum(), (x * w.value).sum()])

    def pure(x, h, w):
        h = jnp.sin(h) * w + x
        return jnp.stack([h.sum(), (x * w).sum()]), h

    want_out, want_h = jax.vmap(pure, in_axes=(x_axis, h_axis, None), out_axes=(out_axis, h_axis))(
        x, h0, w0
    )
    got = sj.vmap(f, in_axes=x_axis, out_axes=out_axis, in_states={h_axis: h})(x)
    assert_close(got, want_out)
    assert_close(h.value, want_h)
    assert_close(w.value, w0)
