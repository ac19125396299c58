"""HiddenGroupState and HiddenTreeState: several hidden variables in one array."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg


def test_group_state_get_and_set_by_index_and_name():
    g = sg.HiddenGroupState(jnp.zeros((4, 3)), name="g")
    assert g.varshape == (4,) and g.num_state == 3
    assert g.name2index == {"0": 0, "1": 1, "2": 2}
    g.set_value({1: jnp.ones(4), "2": jnp.full(4, 2.0)})
    assert g.get_value(1).tolist() == [1.0] * 4
    assert g.get_value("2").tolist() == [2.0] * 4
    assert g.get_value(-1).tolist() == [2.0] * 4
    assert g.get_value(0).tolist() == [0.0] * 4
    g.set_value([jnp.full(4, 5.0), jnp.zeros(4), jnp.zeros(4)])
    assert g.value[:, 0].tolist() == [5.0] * 4


def test_group_state_set_value_is_one_recorded_write():
    g = sg.HiddenGroupState(jnp.zeros((2, 2)))
    with sg.StateTrace() as t:
        g.set_value({0: jnp.ones(2)})
    assert t.written_states == (g,)


def test_group_state_errors():
    with pytest.raises(ValueError, match="at least two dimensions.*f32\\[3\\]"):
        sg.HiddenGroupState(jnp.zeros(3), name="g")
    with pytest.raises(TypeError, match="single array"):
        sg.HiddenGroupState([jnp.zeros((2, 2))])
    g = sg.HiddenGroupState(jnp.zeros((2, 2)), name="g")
    with pytest.raises(IndexError, match="index 5 is out of range.*'g'"):
        g.get_value(5)
    with pytest.raises(KeyError, match="no variable named 'v'"):
        g.get_value("v")
    with pytest.raises(ValueError, match="must have shape \\(2,\\), got \\(3,\\)"):
        g.set_value({0: jnp.zeros(3)})
    with pytest.raises(TypeError, match="int index or str name"):
        g.get_value(1.0)
    assert g.value.tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_group_state_from_numpy():
    g = sg.HiddenGroupState(np.zeros((3, 2), np.float32))
    g.set_value({0: np.ones(3, np.float32)})
    assert g.get_value(0).tolist() == [1.0, 1.0, 1.0]


def test_tree_state_packs_a_dict_and_a_sequence():
    t = sg.HiddenTreeState({"v": jnp.zeros(3), "i": jnp.ones(3)}, name="t")
    assert t.value.shape == (3, 2) and t.num_state == 2 and t.varshape == (3,)
    assert t.name2index == {"v": 0, "i": 1}
    assert t.get_value("i").tolist() == [1.0] * 3
    t.set_value({"v": jnp.full(3, 4.0)})
    assert t.get_value(0).tolist() == [4.0] * 3 and t.get_value("i").tolist() == [1.0] * 3
    s = sg.HiddenTreeState([jnp.zeros(2), jnp.ones(2)])
    assert s.get_value("1").tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="same shape"):
        sg.HiddenTreeState({"a": jnp.zeros(2), "b": jnp.zeros(3)})
    assert isinstance(t, sg.HiddenGroupState) and isinstance(t, sg.HiddenState)


def test_tree_state_keeps_units():
    u = pytest.importorskip("brainunit")
    t = sg.HiddenTreeState({"v": jnp.zeros(2) * u.mV, "g": jnp.ones(2) * u.nS})
    assert not hasattr(t.value, "unit") or t.value.unit.is_unitless
    v = t.get_value("v")
    assert v.unit == u.mV
    t.set_value({"v": jnp.ones(2) * u.volt})
    assert t.get_value("v").to_decimal(u.mV).tolist() == [1000.0, 1000.0]
    with pytest.raises(TypeError, match="unit"):
        t.set_value({"g": jnp.ones(2)})
