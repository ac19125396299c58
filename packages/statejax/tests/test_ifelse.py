"""statejax.ifelse against a plain-JAX reference."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj


def _pure_grade(a, count):
    idx = jnp.where(a > 5, 0, jnp.where(a > 0, 1, 2))
    out = jnp.array([2.0, 1.0, 0.0])[idx]
    return out, count + jnp.where(idx == 0, 1.0, 0.0) + jnp.where(idx == 2, -1.0, 0.0)


def _make():
    count = sg.ShortTermState(jnp.zeros(()), name="count")

    def big(a):
        count.value = count.value + 1
        return jnp.asarray(2.0)

    def small(a):
        count.value = count.value - 1
        return jnp.asarray(0.0)

    def grade(a):
        return sj.ifelse(
            [a > 5, (a > 0) & (a <= 5), a <= 0], [big, lambda a: jnp.asarray(1.0), small], a
        )

    return count, grade


@settings(max_examples=15, deadline=None)
@given(st.floats(-10, 10, allow_nan=False))
def test_matches_plain_jax_eager_and_jit(a):
    count, grade = _make()
    out = grade(jnp.asarray(a, jnp.float32))
    ref, ref_count = _pure_grade(jnp.asarray(a, jnp.float32), 0.0)
    assert float(out) == float(ref) and float(count.value) == float(ref_count)
    out = sj.jit(grade)(jnp.asarray(a, jnp.float32))
    assert float(out) == float(ref) and float(count.value) == 2 * float(ref_count)


def test_vmap_selects_per_lane():
    xs = jnp.array([7.0, 2.0, -3.0, 6.0])
    out = sj.vmap(lambda a: sj.ifelse([a > 5, a <= 5], [lambda: a * 2, lambda: -a]))(xs)
    np.testing.assert_allclose(out, jnp.where(xs > 5, xs * 2, -xs))


def test_array_conditions_and_first_true_wins_without_check():
    assert float(sj.ifelse(jnp.array([False, True]), [lambda x: x, lambda x: 2 * x], 3.0)) == 6.0
    assert float(sj.ifelse([True, True], [lambda: 1.0, lambda: 2.0], check_cond=False)) == 1.0
    assert float(sj.ifelse([False, False], [lambda: 1.0, lambda: 2.0], check_cond=False)) == 2.0


def test_check_cond_eager_and_compiled_leaves_states_unchanged():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def inc():
        s.value = s.value + 1
        return 1.0

    with pytest.raises(ValueError, match="exactly one condition"):
        sj.ifelse([True, True], [inc, inc])
    assert float(s.value) == 0.0

    @sj.jit
    def run(a):
        s.value = s.value + 10
        return sj.ifelse([a > 0, a > 1], [inc, inc])

    assert float(run(0.5)) == 1.0 and float(s.value) == 11.0
    with pytest.raises(RuntimeError, match="exactly one condition"):
        jax.block_until_ready(run(2.0))
    assert float(s.value) == 11.0


def test_bad_inputs():
    with pytest.raises(ValueError, match="number of conditions"):
        sj.ifelse([True], [lambda: 1.0, lambda: 2.0])
    with pytest.raises(ValueError, match="at least two branches"):
        sj.ifelse([True], [lambda: 1.0])
    with pytest.raises(TypeError, match=r"branches\[1\] must be callable"):
        sj.ifelse([True, False], [lambda: 1.0, 3])
    with pytest.raises(TypeError, match="sequence of callables"):
        sj.ifelse([True, False], lambda: 1.0)
    with pytest.raises(ValueError, match="must be a scalar"):
        sj.ifelse([jnp.ones(2) > 0, False], [lambda: 1.0, lambda: 2.0])
    with pytest.raises(TypeError, match="booleans"):
        sj.ifelse(jnp.array([0.5, 0.2]), [lambda: 1.0, lambda: 2.0])


def test_disable_jit_runs_the_branch_in_python():
    seen = []

    def branch(x):
        seen.append(float(x))  # concrete under disable_jit
        return x

    with jax.disable_jit():
        assert float(sj.ifelse([True, False], [branch, lambda x: -x], 3.0)) == 3.0
    assert seen == [3.0]
