"""statejax.map: sequential and batched, against jax.lax.map."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj


@settings(max_examples=15, deadline=None)
@given(st.integers(1, 23), st.one_of(st.none(), st.integers(1, 30)))
def test_matches_lax_map(n, batch_size):
    scale = sg.ParamState(jnp.asarray(1.5), name="scale")
    xs = jnp.arange(n * 2, dtype=jnp.float32).reshape(n, 2)
    ys = jnp.arange(n, dtype=jnp.float32)

    def f(x, y):
        return {"a": x * scale.value + y, "b": (x**2).sum()}

    out = sj.map(f, xs, ys, batch_size=batch_size)
    ref = jax.lax.map(lambda a: {"a": a[0] * 1.5 + a[1], "b": (a[0] ** 2).sum()}, (xs, ys))
    np.testing.assert_allclose(out["a"], ref["a"], rtol=1e-6)
    np.testing.assert_allclose(out["b"], ref["b"], rtol=1e-6)


def test_sequential_map_carries_state_writes():
    seen = sg.ShortTermState(jnp.zeros(()), name="seen")

    def f(x):
        seen.value = seen.value + x
        return seen.value

    np.testing.assert_allclose(sj.map(f, jnp.arange(4.0)), jnp.cumsum(jnp.arange(4.0)))
    assert float(seen.value) == 6.0


def test_batched_map_rejects_writes_and_leaves_state():
    seen = sg.ShortTermState(jnp.zeros(()), name="seen")

    def f(x):
        seen.value = seen.value + x
        return x

    with pytest.raises(ValueError, match="must not write states.*seen"):
        sj.map(f, jnp.arange(4.0), batch_size=2)
    assert float(seen.value) == 0.0


def test_nested_in_jit_and_vmap_and_cached():
    calls = [0]

    def f(x):
        calls[0] += 1
        return x * 2

    xs = jnp.arange(10.0)
    for _ in range(3):
        np.testing.assert_allclose(sj.map(f, xs, batch_size=4), xs * 2)
    assert calls[0] <= 3  # traced once per signature (scan block, remainder, lane)
    n = calls[0]
    sj.map(f, xs, batch_size=4)
    assert calls[0] == n
    out = sj.jit(lambda v: sj.map(lambda x: x + v, xs, batch_size=3))(1.0)
    np.testing.assert_allclose(out, xs + 1)
    out = sj.vmap(lambda v: sj.map(lambda x: x * v, xs))(jnp.array([1.0, 2.0]))
    np.testing.assert_allclose(out, jnp.stack([xs, 2 * xs]))


def test_bad_inputs():
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sj.map(lambda x: x, jnp.ones(3), batch_size=0)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sj.map(lambda x: x, jnp.ones(3), batch_size=1.5)
    with pytest.raises(ValueError, match="different leading sizes"):
        sj.map(lambda x, y: x, jnp.ones(3), jnp.ones(4), batch_size=2)
    with pytest.raises(ValueError, match="at least one array"):
        sj.map(lambda: 1.0)
    with pytest.raises(TypeError, match="f must be callable"):
        sj.map(3, jnp.ones(3))


def test_batched_map_draws_independent_numbers_per_element():
    rng = sg.RandomState(0)
    before = rng.value
    out = sj.map(lambda x: x + rng.uniform(), jnp.zeros(6), batch_size=4)
    assert len(set(np.asarray(out).tolist())) == 6
    assert not np.array_equal(jax.random.key_data(rng.value), jax.random.key_data(before))
