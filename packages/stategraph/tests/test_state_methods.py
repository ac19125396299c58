"""State methods with brainstate's semantics, set-valued tags, path names, sg.restore dtypes."""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
from stategraph.extend import state_label


def test_restore_value_sets_without_recording_a_write():
    s = sg.State(jnp.zeros(2), name="s")
    with sg.StateTrace() as t:
        s.restore_value(jnp.ones(2))
    assert t.written_states == ()
    assert t.read_states == (s,)
    assert s.value.tolist() == [1.0, 1.0]


def test_restore_value_refuses_another_tree_and_a_state():
    s = sg.State({"a": jnp.zeros(2)}, name="s")
    with pytest.raises(ValueError, match="restore_value.*'s'.*tree structure"):
        s.restore_value(jnp.zeros(2))
    with pytest.raises(TypeError, match="cannot be another State"):
        s.restore_value(sg.State(1.0))
    assert s.value["a"].tolist() == [0.0, 0.0]


def test_value_call_and_numel():
    s = sg.State({"w": jnp.ones((2, 3)), "b": jnp.arange(3.0)})
    out = s.value_call(lambda x: x + 1)
    assert out["w"].tolist() == (jnp.ones((2, 3)) + 1).tolist()
    assert s.numel() == 9
    assert sg.State(1.0).numel() == 1


def test_copy_is_a_new_identity_with_the_same_value_and_metadata():
    a = sg.ParamState(jnp.ones(2), name="a", tag="t", lr=0.1)
    h = a.register_hook("read", lambda ctx: None)
    b = a.copy()
    assert b is not a and type(b) is sg.ParamState
    assert b.name == "a" and b.tag == {"t"} and b.metadata["lr"] == 0.1
    assert not b.has_hooks()
    b.add_tag("u")
    assert a.tag == {"t"}  # the tag sets are not shared
    b.value = b.value * 3
    assert a.value.tolist() == [1.0, 1.0]
    h.remove()


def test_copy_from_takes_value_name_and_metadata_and_keeps_own_hooks():
    a, b = sg.State(1.0, name="a", k=1), sg.State(2.0, name="b", k=2)
    h = a.register_hook("write_after", lambda ctx: None)
    with sg.StateTrace() as t:
        a.copy_from(b)
    assert t.written_states == (a,)
    assert (a.value, a.name, a.metadata["k"]) == (2.0, "b", 2)
    assert a.has_hooks("write_after") and not b.has_hooks()
    h.remove()
    with pytest.raises(ValueError, match="copy_from.*ParamState"):
        a.copy_from(sg.ParamState(1.0))


def test_replace_returns_a_new_state():
    w = sg.ParamState(jnp.ones(2), name="w", lr=0.1)
    v = w.replace(jnp.zeros(3), lr=0.5, name="v", tag="x")
    assert v is not w and type(v) is sg.ParamState
    assert v.value.shape == (3,) and v.name == "v" and v.tag == {"x"} and v.metadata["lr"] == 0.5
    assert w.name == "w" and w.metadata["lr"] == 0.1 and w.value.shape == (2,)
    other = sg.ParamState(jnp.ones(1))
    assert w.replace(other) is other
    with pytest.raises(ValueError, match="replace"):
        w.replace(sg.ShortTermState(1.0))


def test_tags_are_sets_matched_by_the_filters():
    a = sg.State(1.0, tag="fast")
    b = sg.State(2.0, tag=["slow", "fast"])
    c = sg.State(3.0)
    c.add_tag("slow", "other")
    assert a.tag == {"fast"} and b.tag == {"slow", "fast"} and c.tag == {"slow", "other"}
    model = {"a": a, "b": b, "c": c}
    assert list(sg.states(model, "fast")) == ["a", "b"]
    assert list(sg.states(model, "slow")) == ["b", "c"]
    with pytest.raises(TypeError, match="tag must be a str"):
        sg.State(1.0, tag=3)


def test_stack_level_counts_open_traces_at_creation():
    assert sg.State(1.0).stack_level == 0
    with sg.StateTrace(), sg.StateTrace():
        s = sg.State(1.0)
    assert s.stack_level == 2
    s.decrease_stack_level()
    s.increase_stack_level()
    s.increase_stack_level()
    assert s.stack_level == 3


def test_treefy_state_roundtrip_through_jax_tree():
    w = sg.ParamState(jnp.ones(2), name="w", tag="p", lr=0.1)
    ref = w.to_state_ref()
    assert isinstance(ref, sg.TreefyState)
    assert ref.type is sg.ParamState and ref.name == "w"
    doubled = jax.tree.map(lambda x: x * 2, ref)
    assert jax.tree.structure(doubled) == jax.tree.structure(ref)
    new = doubled.to_state()
    assert type(new) is sg.ParamState and new.name == "w" and new.tag == {"p"}
    assert new.value.tolist() == [2.0, 2.0] and new.metadata["lr"] == 0.1
    w.update_from_ref(doubled)
    assert w.value.tolist() == [2.0, 2.0]
    out = jax.jit(lambda r: jax.tree.map(jnp.sin, r))(ref)
    assert isinstance(out, sg.TreefyState)
    assert np.allclose(out.value, np.sin(1.0))


def test_maybe_state_and_fake_state():
    assert sg.maybe_state(sg.State(2.0)) == 2.0
    assert sg.maybe_state(3) == 3
    f = sg.FakeState({"x": 1}, name="f")
    assert sg.maybe_state(f) == {"x": 1}
    with sg.StateTrace() as t:
        f.value = 5
        _ = f.value
    assert t.states == ()
    assert sg.states({"f": f}) == {}


def test_batch_and_delay_states_are_kinds():
    assert issubclass(sg.BatchState, sg.LongTermState)
    assert issubclass(sg.DelayState, sg.ShortTermState)
    m = {"x": sg.BatchState(jnp.zeros(3)), "d": sg.DelayState(jnp.zeros(2))}
    assert list(sg.states(m, sg.BatchState)) == ["x"]


def test_state_dict_manager():
    m = sg.StateDictManager(w=sg.ParamState(jnp.ones(2)), h=sg.ShortTermState(jnp.zeros(2)))
    params, rest = m.split_values(sg.ParamState)
    assert list(params) == ["w"] and list(rest) == ["h"]
    m.assign_values({"h": jnp.ones(2)}, {"w": jnp.zeros(2)})
    values = m.to_dict_values()
    assert values["h"].tolist() == [1.0, 1.0] and values["w"].tolist() == [0.0, 0.0]
    p, others = m.split(sg.ParamState)
    assert isinstance(p, sg.StateDictManager) and list(p) == ["w"] and list(others) == ["h"]
    assert list(m.subset(sg.ShortTermState)) == ["h"]
    with pytest.raises(TypeError, match="must be a State.*'z'"):
        m["z"] = 1.0
    with pytest.raises(KeyError, match="'q' names no state"):
        m.assign_values({"q": 1.0})
    assert list(sg.states(m)) == ["w", "h"]


# ------------------------------------------------------------------ path names
class MLP:
    def __init__(self):
        self.layers = [
            {"w": sg.ParamState(jnp.ones((2, 2))), "b": sg.ParamState(jnp.zeros(2))}
            for _ in range(2)
        ]
        self.out = sg.ParamState(jnp.ones(2), name="readout")


def test_states_gives_unnamed_states_their_path():
    m = MLP()
    found = sg.states(m)
    assert found["layers.1.b"].path == "layers.1.b"
    assert "path='layers.1.b'" in repr(m.layers[1]["b"])
    assert state_label(m.layers[0]["w"]) == "ParamState at 'layers.0.w'"
    # The explicit name comes first.
    assert m.out.path is None and state_label(m.out) == "ParamState 'readout'"
    # The first path found wins.
    sg.states(m.layers[1])
    assert m.layers[1]["b"].path == "layers.1.b"


def test_path_reaches_error_messages():
    m = MLP()
    sg.states(m)
    b = m.layers[1]["b"]
    with sg.StateTrace(), pytest.raises(sg.StateStructureError, match="'layers.1.b'"):
        b.value = jnp.zeros(5)


def test_path_is_not_a_strong_reference():
    s = sg.State(jnp.zeros(1))
    sg.states({"x": s})
    ref = weakref.ref(s)
    del s
    gc.collect()
    assert ref() is None


# ------------------------------------------------------------------- restore
def test_restore_refuses_another_dtype_and_changes_nothing():
    model = {"w": sg.ParamState(jnp.ones(2, jnp.float32)), "n": sg.State(jnp.zeros(2))}
    snap = {"w": np.zeros(2, np.float64), "n": np.ones(2, np.float32)}
    with pytest.raises(ValueError, match="'w' has dtype float64 but the state holds float32"):
        sg.restore(model, snap)
    assert model["w"].value.tolist() == [1.0, 1.0]
    assert model["n"].value.tolist() == [0.0, 0.0]
    sg.restore(model, {"w": np.zeros(2, np.float32), "n": np.ones(2, np.float32)})
    assert model["w"].value.tolist() == [0.0, 0.0]


def test_restore_of_a_snapshot_roundtrips():
    model = {"w": sg.ParamState(jnp.ones(2)), "i": sg.State(jnp.arange(3))}
    snap = sg.snapshot(model)
    model["w"].value = jnp.zeros(2)
    sg.restore(model, snap)
    assert model["w"].value.tolist() == [1.0, 1.0]
