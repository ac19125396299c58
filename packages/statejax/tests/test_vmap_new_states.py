"""statejax.vmap_new_states: states created inside the function get a batch axis."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


class Cell:
    def __init__(self, n):
        self.n = n
        self.w = sg.ParamState(jnp.ones(n), name="w")

    def init_state(self, scale=1.0):
        self.h = sg.HiddenState(jnp.zeros(self.n) + scale, name="h")
        self.c = sg.ShortTermState(jnp.zeros(()), name="c")

    def step(self, x):
        self.h.value = jnp.tanh(self.w.value * self.h.value + x)
        self.c.value = self.c.value + 1
        return self.h.value.sum()


def test_init_state_with_axis_size_then_batched_steps_match_plain_jax():
    cell = Cell(3)
    sj.vmap_new_states(cell.init_state, axis_size=5)()
    assert cell.h.value.shape == (5, 3) and cell.c.value.shape == (5,)
    xs = jnp.arange(15.0).reshape(5, 3) / 10
    out = sj.vmap(cell.step, in_states=[cell.h, cell.c])(xs)
    ref_h = jnp.tanh(jnp.ones(3) * jnp.ones((5, 3)) + xs)
    np.testing.assert_allclose(cell.h.value, ref_h, rtol=1e-6)
    np.testing.assert_allclose(out, ref_h.sum(1), rtol=1e-6)
    np.testing.assert_allclose(cell.c.value, jnp.ones(5))


def test_mapped_argument_and_per_lane_values_and_fresh_states_each_call():
    made = []

    @sj.vmap_new_states(in_axes=0)
    def build(x):
        s = sg.ShortTermState(jnp.zeros(()), name="s")
        made.append(s)
        s.value = s.value + x * 2
        return s.value + 1

    out = build(jnp.arange(4.0))
    np.testing.assert_allclose(out, jnp.arange(4.0) * 2 + 1)
    np.testing.assert_allclose(made[0].value, jnp.arange(4.0) * 2)
    build(jnp.arange(4.0))
    assert len(made) == 2 and made[0] is not made[1]


def test_state_tag_and_state_to_exclude():
    cell = Cell(2)
    sj.vmap_new_states(
        cell.init_state, axis_size=3, state_tag="init", state_to_exclude=lambda name, s: name == "c"
    )()
    assert cell.h.value.shape == (3, 2) and cell.c.value.shape == ()
    assert set(sg.states(cell, "init")) == {"h", "c"}


def test_excluded_state_with_lane_dependent_value_is_a_clear_error():
    def init(x):
        sg.ShortTermState(x, name="bad")

    with pytest.raises(ValueError, match="excluded new state.*'bad'"):
        sj.vmap_new_states(init, state_to_exclude=sg.ShortTermState)(jnp.arange(3.0))


def test_existing_states_are_shared_and_per_lane_writes_are_errors():
    total = sg.ShortTermState(jnp.zeros(()), name="total")

    def init(x):
        total.value = total.value + 1.0  # lane-independent: fine
        sg.ShortTermState(x, name="new")

    sj.vmap_new_states(init)(jnp.arange(3.0))
    assert float(total.value) == 1.0

    def bad(x):
        total.value = total.value + x
        sg.ShortTermState(x)

    with pytest.raises(ValueError, match="differs across the 3 lanes"):
        sj.vmap_new_states(bad)(jnp.arange(3.0))
    assert float(total.value) == 1.0


def test_inside_jit():
    @sj.jit
    def run(x):
        box = {}

        def init():
            box["s"] = sg.ShortTermState(jnp.zeros(2) + x, name="s")

        sj.vmap_new_states(init, axis_size=4)()
        return box["s"].value.sum()

    assert float(run(1.0)) == 8.0


def test_bad_inputs():
    s = sg.ShortTermState(jnp.zeros(3))
    with pytest.raises(ValueError, match="in_states and out_states are not supported"):
        sj.vmap_new_states(lambda: None, in_states=s)
    with pytest.raises(ValueError, match="axis_size must be a positive int"):
        sj.vmap_new_states(lambda: None, axis_size=0)
    with pytest.raises(TypeError, match="state_to_exclude must be"):
        sj.vmap_new_states(lambda: None, state_to_exclude=3)
    with pytest.raises(TypeError, match="expected a callable"):
        sj.vmap_new_states(3)
    with pytest.raises(ValueError, match="batch size is unknown"):
        sj.vmap_new_states(lambda: sg.State(jnp.zeros(2)))()
    with pytest.raises(ValueError, match="spmd_axis_name"):
        sj.vmap_new_states(lambda: None, spmd_axis_name="x")
    assert jax.tree.leaves(s.value)[0].shape == (3,)
