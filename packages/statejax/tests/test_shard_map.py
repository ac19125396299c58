"""statejax.shard_map: per-shard stateful functions, checked against jax.shard_map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import AxisType
from jax.sharding import PartitionSpec as P
from multihost import assert_close

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer

pytestmark = pytest.mark.skipif(
    jax.device_count() < 8,
    reason="needs 8 devices (run with XLA_FLAGS=--xla_force_host_platform_device_count=8)",
)


def mesh1():
    return jax.make_mesh((8,), ("x",), axis_types=(AxisType.Auto,))


def mesh2():
    return jax.make_mesh((4, 2), ("x", "y"), axis_types=(AxisType.Auto, AxisType.Auto))




def test_replicated_and_sharded_states_match_jax_shard_map():
    mesh = mesh1()
    total = sg.ShortTermState(jnp.zeros(2), name="total")  # replicated (default)
    shard = sg.ShortTermState(jnp.arange(16.0), name="shard")  # sharded over x
    scale = sg.ParamState(jnp.array([1.0, 2.0]), name="scale")  # replicated, read only

    def f(a, r):
        shard.value = shard.value * 0.5 + a
        part = jax.lax.psum(a.reshape(-1, 2).sum(0) * r * scale.value, "x")
        total.value = total.value + part
        return part + r, a * 2

    def pure(a, r, total, shard, scale):
        shard = shard * 0.5 + a
        part = jax.lax.psum(a.reshape(-1, 2).sum(0) * r * scale, "x")
        return (part + r, a * 2), total + part, shard

    specs = dict(mesh=mesh, in_specs=(P("x"), P()), out_specs=(P(), P("x")))
    g = sj.shard_map(f, **specs, state_in_specs={shard: P("x")})
    ref = jax.jit(
        jax.shard_map(
            pure,
            mesh=mesh,
            in_specs=(P("x"), P(), P(), P("x"), P()),
            out_specs=((P(), P("x")), P(), P("x")),
        )
    )
    a = jnp.arange(16.0) / 3
    r = jnp.array([1.0, -1.0])
    tv, sv = total.value, shard.value
    for _ in range(3):
        want_out, tv, sv = ref(a, r, tv, sv, scale.value)
        assert_close(g(a, r), want_out)
        assert_close((total.value, shard.value), (tv, sv))
    assert not has_tracer((total.value, shard.value, scale.value))


def test_two_axis_mesh_and_pytree_state_with_prefix_spec():
    mesh = mesh2()
    st_ = sg.ShortTermState({"m": jnp.ones((8, 4)), "v": jnp.zeros((8, 4))}, name="st")
    count = sg.ShortTermState(jnp.zeros((), jnp.int32), name="count")

    def f(x):
        v = st_.value
        m = v["m"] * 0.9 + x
        st_.value = {"m": m, "v": v["v"] + jax.lax.psum(m, "y")}
        count.value = count.value + 1
        return jax.lax.psum(m.sum(), ("x", "y"))

    def pure(x, s, c):
        m = s["m"] * 0.9 + x
        s = {"m": m, "v": s["v"] + jax.lax.psum(m, "y")}
        return jax.lax.psum(m.sum(), ("x", "y")), s, c + 1

    g = sj.shard_map(
        f, mesh=mesh, in_specs=P("x", "y"), out_specs=P(), state_in_specs={st_: P("x", "y")}
    )
    ref = jax.jit(
        jax.shard_map(
            pure,
            mesh=mesh,
            in_specs=(P("x", "y"), P("x", "y"), P()),
            out_specs=(P(), P("x", "y"), P()),
        )
    )
    x = jnp.arange(32.0).reshape(8, 4) / 10
    sv, cv = st_.value, count.value
    for _ in range(2):
        want, sv, cv = ref(x, sv, cv)
        assert_close(g(x), want)
        assert_close((st_.value, count.value), (sv, cv))


def test_state_out_specs_alone_sets_both_sides():
    mesh = mesh1()
    rec = sg.ShortTermState(jnp.zeros(8), name="rec")

    @sj.shard_map(mesh=mesh, in_specs=P("x"), out_specs=P(), state_out_specs={rec: P("x")})
    def f(x):
        rec.value = rec.value + x * jax.lax.axis_index("x")
        return jax.lax.psum(x.sum(), "x")

    out = f(jnp.ones(8))
    assert float(out) == 8.0
    assert_close(rec.value, jnp.arange(8.0))


def test_different_in_and_out_specs_with_the_same_block_shape():
    mesh = mesh2()
    s0 = jnp.arange(16.0)
    s = sg.ShortTermState(s0, name="s")

    @sj.shard_map(
        mesh=mesh,
        in_specs=P(),
        out_specs=P(),
        state_in_specs={s: P(("x", "y"))},
        state_out_specs={s: P(("y", "x"))},
    )
    def permute(c):
        s.value = s.value * c
        return c

    permute(jnp.array(2.0))
    want = jax.jit(
        jax.shard_map(
            lambda c, s: s * c,
            mesh=mesh,
            in_specs=(P(), P(("x", "y"))),
            out_specs=P(("y", "x")),
        )
    )(jnp.array(2.0), s0)
    assert_close(s.value, want)


def test_in_and_out_specs_with_different_block_shapes_are_refused():
    mesh = mesh1()
    s = sg.ShortTermState(jnp.arange(8.0), name="gathered")
    before = s.value

    def gather(dummy):
        s.value = jax.lax.all_gather(s.value, "x", tiled=True)
        return dummy

    g = sj.shard_map(
        gather,
        mesh=mesh,
        in_specs=P(),
        out_specs=P(),
        state_in_specs={s: P("x")},
        state_out_specs={s: P()},
    )
    with pytest.raises(ValueError, match=r"gathered.*\(1,\).*\(8,\)"):
        g(jnp.zeros(()))
    assert s.value is before


def test_per_shard_write_to_replicated_state_raises_and_leaves_it_unchanged():
    mesh = mesh1()
    acc = sg.ShortTermState(jnp.zeros(2), name="acc")
    before = acc.value

    def f(x):
        acc.value = acc.value + x
        return x

    with pytest.raises(ValueError, match=r"acc.*state_out_specs"):
        sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P("x"))(jnp.ones(16))
    assert acc.value is before
    with pytest.raises(ValueError, match="acc"):
        sj.jit(sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P("x")))(jnp.ones(16))
    assert acc.value is before
    assert not has_tracer(acc.value)

    def g(x):
        acc.value = acc.value + jax.lax.psum(x, "x")  # replicated: fine
        return x

    sj.shard_map(g, mesh=mesh, in_specs=P("x"), out_specs=P("x"))(jnp.ones(16))
    assert_close(acc.value, jnp.full(2, 8.0))


def test_check_vma_false_matches_jax():
    mesh = mesh1()
    s = sg.ShortTermState(jnp.zeros(2), name="s")

    def f(x):
        s.value = s.value + jax.lax.psum(x, "x")
        return x * s.value

    out = sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P("x"), check_vma=False)(
        jnp.arange(16.0)
    )

    def pure(x, s):
        s = s + jax.lax.psum(x, "x")
        return x * s, s

    want_out, want_s = jax.jit(
        jax.shard_map(
            pure, mesh=mesh, in_specs=(P("x"), P()), out_specs=(P("x"), P()), check_vma=False
        )
    )(jnp.arange(16.0), jnp.zeros(2))
    assert_close((out, s.value), (want_out, want_s))


def test_eager_calls_traced_once_and_nesting_in_jit():
    mesh = mesh1()
    calls = []
    h = sg.ShortTermState(jnp.zeros(16), name="h")

    def f(x):
        calls.append(1)
        h.value = h.value + x
        return jax.lax.psum(x.sum(), "x")

    g = sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P(), state_in_specs={h: P("x")})
    for _ in range(3):
        g(jnp.ones(16))
    assert len(calls) == 1
    assert_close(h.value, jnp.full(16, 3.0))

    jg = sj.jit(g)
    for _ in range(2):
        assert float(jg(jnp.ones(16))) == 16.0
    assert_close(h.value, jnp.full(16, 5.0))
    assert len(calls) == 1


def test_shard_map_of_a_jitted_function():
    mesh = mesh1()
    w = sg.ParamState(jnp.ones(2), name="w")
    h = sg.ShortTermState(jnp.zeros(16), name="h")

    @sj.jit
    def f(x):
        h.value = h.value + x * 2
        return x * w.value.sum()

    g = sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P("x"), state_in_specs={h: P("x")})
    assert_close(g(jnp.ones(16)), jnp.full(16, 2.0))
    assert_close(h.value, jnp.full(16, 2.0))
    # and the jitted function still works on its own
    assert_close(f(jnp.ones(16)), jnp.full(16, 2.0))
    assert_close(h.value, jnp.full(16, 4.0))


def test_jitted_helper_called_inside_shard_map_after_a_direct_call():
    mesh = mesh1()
    w = sg.ParamState(jnp.ones(2), name="w")
    helper = sj.jit(lambda x: x * w.value)
    helper(jnp.ones(2))  # caches a trace without varying axes
    g = sj.shard_map(lambda x: helper(x), mesh=mesh, in_specs=P("x"), out_specs=P("x"))
    assert_close(g(jnp.ones(16)), jnp.ones(16))


def test_vmap_inside_shard_map():
    mesh = mesh1()
    h = sg.ShortTermState(jnp.zeros((16, 3)), name="h")

    def lane(x):
        h.value = h.value + x
        return h.value.sum()

    def f(x):
        return sj.vmap(lane, in_states=h)(x)

    g = sj.shard_map(f, mesh=mesh, in_specs=P("x"), out_specs=P("x"), state_in_specs={h: P("x")})
    x = jnp.arange(48.0).reshape(16, 3)
    assert_close(g(x), x.sum(1))
    assert_close(h.value, x)


def test_bad_arguments():
    mesh = mesh1()
    s = sg.State(jnp.zeros(8))
    with pytest.raises(TypeError, match="out_specs"):
        sj.shard_map(lambda x: x, mesh=mesh, in_specs=P())
    with pytest.raises(TypeError, match="in_specs"):
        sj.shard_map(lambda x: x, mesh=mesh, out_specs=P())
    with pytest.raises(TypeError, match="state_in_specs"):
        sj.shard_map(lambda x: x, mesh=mesh, in_specs=P(), out_specs=P(), state_in_specs=[s])
    with pytest.raises(TypeError, match="keys"):
        sj.shard_map(lambda x: x, mesh=mesh, in_specs=P(), out_specs=P(), state_in_specs={1: P()})
    g = sj.shard_map(lambda x, y: x, mesh=mesh, in_specs=(P(),), out_specs=P())
    with pytest.raises(ValueError, match="one entry per"):
        g(jnp.ones(8), jnp.ones(8))
    with pytest.raises(TypeError, match="keyword"):
        g(jnp.ones(8), y=jnp.ones(8))


@settings(max_examples=6, deadline=None)
@given(
    per_shard=st.integers(1, 3),
    sharded=st.booleans(),
    shape=st.sampled_from([(8,), (4, 2)]),
)
def test_property_matches_jax_shard_map(per_shard, sharded, shape):
    mesh = jax.make_mesh(shape, ("x", "y")[: len(shape)], axis_types=(AxisType.Auto,) * len(shape))
    first = "x"
    n = shape[0] * per_shard
    spec = P(first) if sharded else P()
    s0 = jnp.linspace(-1.0, 1.0, n)
    s = sg.ShortTermState(s0, name="s")

    def f(x):
        s.value = jnp.cos(s.value) + x
        return jax.lax.pmax(s.value.max(), first)

    def pure(x, s):
        s = jnp.cos(s) + x
        return jax.lax.pmax(s.max(), first), s

    x = jnp.arange(n, dtype=jnp.float32) / n
    got = sj.shard_map(f, mesh=mesh, in_specs=spec, out_specs=P(), state_in_specs={s: spec})(x)
    want, want_s = jax.jit(
        jax.shard_map(pure, mesh=mesh, in_specs=(spec, spec), out_specs=(P(), spec))
    )(x, s0)
    assert_close((got, s.value), (want, want_s))
