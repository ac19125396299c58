"""statejax.checkpointed_scan / checkpointed_for_loop: same results as scan / for_loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from statejax._src.nested import level_sizes


@given(st.integers(0, 5000), st.integers(2, 32))
def test_level_sizes_cover_with_bounded_levels(n, base):
    sizes = level_sizes(n, base)
    assert int(np.prod(sizes)) >= n and all(s <= max(base, n if n <= base else 0) for s in sizes)
    assert len(sizes) <= max(1, int(np.ceil(np.log(max(n, 1)) / np.log(base) + 1e-9)))


def test_level_sizes_ten_thousand():
    assert level_sizes(10_000, 16) == [10, 10, 10, 10]


def _rnn_pure(w, xs):
    def step(carry, x):
        c, h = carry
        h = jnp.tanh(w * h + x)
        return (c + h.sum(), h), h * 2

    return jax.lax.scan(step, (0.0, jnp.zeros(3)), xs)


@settings(max_examples=12, deadline=None)
@given(st.integers(1, 70), st.sampled_from([2, 3, 16]))
def test_scan_matches_plain_scan_with_states(n, base):
    w = sg.ParamState(jnp.asarray(0.7), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    xs = jnp.sin(jnp.arange(n * 3, dtype=jnp.float32)).reshape(n, 3)

    def step(c, x):
        h.value = jnp.tanh(w.value * h.value + x)
        return c + h.value.sum(), h.value * 2

    c, ys = sj.checkpointed_scan(step, 0.0, xs, base=base)
    (rc, rh), rys = _rnn_pure(0.7, xs)
    np.testing.assert_allclose(c, rc, rtol=1e-5)
    np.testing.assert_allclose(ys, rys, rtol=1e-5)
    np.testing.assert_allclose(h.value, rh, rtol=1e-5)


def test_for_loop_matches_for_loop_and_jit_vmap_nesting():
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def f(x, y):
        acc.value = acc.value + x * y
        return acc.value

    xs, ys = jnp.arange(20.0), jnp.linspace(0, 1, 20)
    out = sj.checkpointed_for_loop(f, xs, ys, base=4)
    acc_ck = acc.value
    acc.value = jnp.zeros(())
    ref = sj.for_loop(f, xs, ys)
    np.testing.assert_allclose(out, ref)
    np.testing.assert_allclose(acc_ck, acc.value)
    jitted = sj.jit(lambda a, b: sj.checkpointed_for_loop(lambda x: x * a, b, base=3))
    np.testing.assert_allclose(jitted(2.0, xs), xs * 2)
    batched = sj.vmap(lambda r: sj.checkpointed_scan(lambda c, x: (c + x * r, c), 0.0, xs)[0])
    np.testing.assert_allclose(batched(jnp.array([1.0, 2.0])), [xs.sum(), 2 * xs.sum()])


def test_length_without_xs_and_jaxpr_is_nested_remat():
    c, ys = sj.checkpointed_scan(lambda c, _: (c + 1, c), 0, None, length=40, base=4)
    assert int(c) == 40 and ys.tolist() == list(range(40))
    jaxpr = jax.make_jaxpr(
        lambda xs: sj.checkpointed_scan(lambda c, x: (c + x, None), 0.0, xs, base=4)
    )(jnp.ones(64))
    text = str(jaxpr)
    assert text.count("checkpoint") + text.count("remat") >= 2


def test_eager_calls_are_cached():
    calls = [0]

    def step(c, x):
        calls[0] += 1
        return c + x, None

    for _ in range(4):
        sj.checkpointed_scan(step, 0.0, jnp.ones(30), base=4)
    assert calls[0] == 1


def test_failure_leaves_states_and_bad_inputs():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def bad(c, x):
        s.value = s.value + x
        return c  # not a pair

    with pytest.raises(TypeError, match="must return a pair"):
        sj.checkpointed_scan(bad, 0.0, jnp.ones(3))
    assert float(s.value) == 0.0
    with pytest.raises(ValueError, match="base must be"):
        sj.checkpointed_scan(lambda c, x: (c, x), 0.0, jnp.ones(3), base=1)
    with pytest.raises(TypeError, match="base must be"):
        sj.checkpointed_for_loop(lambda x: x, jnp.ones(3), base="16")
    with pytest.raises(ValueError, match="length=4 but"):
        sj.checkpointed_scan(lambda c, x: (c, x), 0.0, jnp.ones(3), length=4)
    with pytest.raises(TypeError, match="f must be callable"):
        sj.checkpointed_for_loop(3, jnp.ones(3))


def test_pbar_and_disable_jit(capsys):
    pytest.importorskip("tqdm")
    ys = sj.checkpointed_for_loop(lambda x: x + 1, jnp.zeros(9), base=3, pbar=3)
    jax.effects_barrier()
    assert "9/9" in capsys.readouterr().err
    np.testing.assert_allclose(ys, jnp.ones(9))
    seen = []
    with jax.disable_jit():
        c, _ = sj.checkpointed_scan(
            lambda c, x: (seen.append(float(x)) or c + x, None), 0.0, jnp.arange(3.0)
        )
    assert seen == [0.0, 1.0, 2.0] and float(c) == 3.0
