"""stategraph's state kinds, hooks and random states under the statejax transforms."""

from __future__ import annotations

import gc

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer


@pytest.fixture(autouse=True)
def _drop_hooks():
    yield
    sg.clear_state_hooks()
    gc.collect()  # states kept alive by a caught exception's traceback drop their hooks


# ---------------------------------------------------------------- group states


def test_hidden_group_state_under_jit_matches_plain_jax():
    g = sg.HiddenGroupState(jnp.zeros((3, 2)), name="vw")

    @sj.jit
    def step(x):
        v, w = g.get_value(0), g.get_value(1)
        g.set_value({0: v + x, 1: w * 0.5 + v})
        return g.value.sum()

    def pure(value, x):
        v, w = value[..., 0], value[..., 1]
        new = jnp.stack([v + x, w * 0.5 + v], axis=-1)
        return new.sum(), new

    ref = jnp.zeros((3, 2))
    for i in range(3):
        x = jnp.arange(3.0) + i
        out = step(x)
        ref_out, ref = pure(ref, x)
        np.testing.assert_allclose(out, ref_out)
        np.testing.assert_allclose(g.value, ref)


def test_hidden_group_state_in_vmap_in_states():
    g = sg.HiddenGroupState(jnp.arange(8.0).reshape(4, 2))  # four lanes of two variables

    @sj.vmap(in_states=g)
    def step(x):
        g.set_value({1: g.get_value(0) * x})
        return g.get_value(1)

    x = jnp.arange(4.0)
    before = g.value
    out = step(x)
    expected = jax.vmap(lambda row, xi: row[0] * xi)(before, x)
    np.testing.assert_allclose(out, expected)
    np.testing.assert_allclose(g.value[:, 1], expected)
    np.testing.assert_allclose(g.value[:, 0], before[:, 0])


def test_hidden_tree_state_in_scan():
    t = sg.HiddenTreeState({"v": jnp.zeros(2), "i": jnp.ones(2)})

    def body(carry, x):
        t.set_value({"v": t.get_value("v") + t.get_value("i") * x})
        return carry + 1, t.get_value("v")

    _, ys = sj.scan(body, 0, jnp.arange(4.0))
    expected = jnp.cumsum(jnp.arange(4.0))[:, None] * jnp.ones(2)
    np.testing.assert_allclose(ys, expected)
    np.testing.assert_allclose(t.get_value("v"), expected[-1])


def test_fake_state_is_never_traced():
    f = sg.FakeState(jnp.ones(2))
    calls = []

    @sj.jit
    def g(x):
        calls.append(1)
        return x + f.value

    np.testing.assert_allclose(g(jnp.zeros(2)), jnp.ones(2))
    assert list(g.stateful.trace(jnp.zeros(2)).read_states) == []


# ----------------------------------------------------------------------- hooks


def test_hooks_run_at_trace_time_once_per_signature():
    w = sg.ParamState(jnp.zeros(2), name="w")
    seen = []
    h = w.register_hook("write_before", lambda ctx: seen.append(has_tracer(ctx.value)))

    @sj.jit
    def step(x):
        w.value = w.value + x

    step(jnp.ones(2))
    step(jnp.ones(2))
    assert seen == [True]  # traced once; the cached calls run no Python
    step(jnp.ones(3)[:2] * 1.0)  # same signature
    assert seen == [True]
    h.remove()


def test_a_clipping_hook_is_compiled_in():
    w = sg.ParamState(jnp.zeros(2), name="w")
    h = w.register_hook(
        "write_before",
        lambda ctx: setattr(ctx, "transformed_value", jnp.clip(ctx.transformed_value, -1, 1)),
    )

    @sj.jit
    def step(x):
        w.value = w.value + x

    for _ in range(3):
        step(jnp.array([0.6, -0.7]))
    np.testing.assert_allclose(w.value, [1.0, -1.0])
    h.remove()


@pytest.mark.parametrize("kind", ["write_before", "write_after", "read"])
def test_a_hook_exception_inside_a_transform_changes_no_state(kind):
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    b = sg.ShortTermState(jnp.ones(2), name="b")

    def boom(ctx):
        raise RuntimeError("refused")

    h = b.register_hook(kind, boom)

    @sj.jit
    def step(x):
        a.value = a.value + x
        b.value = b.value + x

    with pytest.raises(RuntimeError, match="refused"):
        step(jnp.ones(2))
    h.remove()
    np.testing.assert_allclose(a.value, jnp.zeros(2))
    np.testing.assert_allclose(b.value, jnp.ones(2))
    assert not has_tracer(a.value) and not has_tracer(b.value)


def test_a_cancelled_write_inside_vmap_changes_no_state():
    h_state = sg.ShortTermState(jnp.zeros((3, 2)))
    hook = h_state.register_hook("write_before", lambda ctx: setattr(ctx, "cancel", True))

    @sj.vmap(in_states=h_state)
    def step(x):
        h_state.value = h_state.value + x

    with pytest.raises(sg.HookCancellationError):
        step(jnp.ones(3))
    hook.remove()
    np.testing.assert_allclose(h_state.value, jnp.zeros((3, 2)))


# ---------------------------------------------------------------- random states


def test_random_under_jit_advances_and_matches_eager():
    rng = sg.RandomState(0)
    calls = []

    @sj.jit
    def draw():
        calls.append(1)
        return rng.normal(size=3)

    a, b = draw(), draw()
    assert not np.array_equal(a, b)
    assert len(calls) == 1  # nothing is retraced per call
    eager = sg.RandomState(0)
    np.testing.assert_array_equal(a, eager.normal(size=3))
    np.testing.assert_array_equal(b, eager.normal(size=3))
    np.testing.assert_array_equal(jax.random.key_data(rng.value), jax.random.key_data(eager.value))


def test_random_under_vmap_gives_each_lane_its_own_numbers():
    rng = sg.RandomState(0)
    k0 = rng.value

    @sj.vmap(in_axes=0)
    def noisy(x):
        return x + rng.normal(size=2)

    out = noisy(jnp.zeros((4, 2)))
    keys = jax.random.split(k0, 5)
    lanes = keys[1:]
    expected = jax.vmap(lambda k: jax.random.normal(jax.random.split(k)[1], (2,)))(lanes)
    np.testing.assert_allclose(out, expected)
    assert len({tuple(np.asarray(r)) for r in out}) == 4
    # The state advanced once.
    np.testing.assert_array_equal(jax.random.key_data(rng.value), jax.random.key_data(keys[0]))


def test_random_under_vmap_inside_jit_and_with_the_default_state():
    sg.random.seed(3)

    @sj.jit
    @sj.vmap(axis_size=3)
    def draw():
        return sg.random.uniform(size=())

    a, b = draw(), draw()
    assert a.shape == (3,) and len(set(np.asarray(a).tolist())) == 3
    assert not np.array_equal(a, b)


def test_random_advances_per_step_of_scan_and_for_loop():
    rng = sg.RandomState(5)

    def body(carry, _):
        return carry, rng.normal()

    _, ys = sj.scan(body, 0.0, None, length=4)
    eager = sg.RandomState(5)
    np.testing.assert_allclose(ys, jnp.stack([eager.normal() for _ in range(4)]))
    np.testing.assert_array_equal(jax.random.key_data(rng.value), jax.random.key_data(eager.value))

    rng.seed(5)
    out = sj.for_loop(lambda i: rng.uniform(), jnp.arange(3))
    eager.seed(5)
    np.testing.assert_allclose(out, jnp.stack([eager.uniform() for _ in range(3)]))


def test_declared_random_state_keeps_the_users_keys():
    rng = sg.RandomState(0)
    rng.self_assign_multi_keys(3)  # one key per lane, declared batched

    @sj.vmap(in_states=rng, axis_size=3)
    def draw():
        return rng.random()

    out = draw()
    assert out.shape == (3,)
    rng.restore_key()
    assert rng.value.shape == ()
