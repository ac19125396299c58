"""catch_new_states: collecting (and tagging) the states created in a block."""

from __future__ import annotations

import jax.numpy as jnp
import pytest

import stategraph as sg
from stategraph.extend import ACTIVE


def test_collects_the_new_states_in_creation_order():
    before = sg.State(jnp.zeros(1), name="before")
    with sg.catch_new_states() as new:
        a = sg.ParamState(jnp.zeros(2), name="a")
        b = sg.HiddenState(jnp.zeros(3), name="b")
        before.value = jnp.ones(1)  # using an old state does not collect it
        c = sg.LongTermState({"x": jnp.ones(2)}, name="c")
    after = sg.State(jnp.zeros(1), name="after")
    assert isinstance(new, sg.NewStates)
    assert new.states == [a, b, c]
    assert list(new) == [a, b, c]
    assert len(new) == 3
    assert before not in new.states and after not in new.states


def test_without_a_tag_no_tag_is_set():
    with sg.catch_new_states() as new:
        a = sg.State(1.0)
    assert new.tag is None
    assert a.tag is None
    assert "tag" not in a.metadata


def test_with_a_tag_the_new_states_get_it():
    with sg.catch_new_states("init") as new:
        a = sg.State(jnp.zeros(2))
        b = sg.ParamState(jnp.ones(3))
    assert new.tag == "init"
    assert a.tag == {"init"} and b.tag == {"init"}
    # the tag then selects them in an object graph
    model = {"a": a, "b": b, "other": sg.State(0.0)}
    assert sg.states(model, "init") == {"a": a, "b": b}


def test_an_explicit_tag_is_kept():
    with sg.catch_new_states("init"):
        a = sg.State(1.0, tag="mine")
    assert a.tag == {"mine"}


def test_states_created_in_helpers_and_objects_are_caught():
    class Layer:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones((2, 2)), name="w")
            self.h = sg.HiddenState(jnp.zeros(2), name="h")

    with sg.catch_new_states("layer") as new:
        layers = [Layer() for _ in range(2)]
    assert new.states == [layers[0].w, layers[0].h, layers[1].w, layers[1].h]
    assert all(s.tag == {"layer"} for s in new)


def test_nested_catchers_both_collect_and_the_inner_tag_wins():
    with sg.catch_new_states("outer") as outer:
        a = sg.State(1.0)
        with sg.catch_new_states("inner") as inner:
            b = sg.State(2.0)
        c = sg.State(3.0)
    assert outer.states == [a, b, c]
    assert inner.states == [b]
    assert a.tag == {"outer"} and c.tag == {"outer"}
    assert b.tag == {"inner"}


def test_untagged_inner_catcher_keeps_the_outer_tag():
    with sg.catch_new_states("outer"), sg.catch_new_states() as inner:
        b = sg.State(2.0)
    assert inner.states == [b]
    assert b.tag == {"outer"}


def test_catcher_inside_a_trace():
    with sg.StateTrace() as t, sg.catch_new_states("t") as new:
        s = sg.State(jnp.zeros(2))
        s.value = s.value + 1
    assert new.states == [s]
    assert t.states == ()  # created inside the trace: local to it


def test_an_exception_closes_the_catcher():
    with pytest.raises(RuntimeError), sg.catch_new_states("x") as new:
        a = sg.State(1.0)
        raise RuntimeError
    assert new.states == [a]
    b = sg.State(2.0)
    assert b not in new.states
    assert b.tag is None
    assert ACTIVE.count == 0


@pytest.mark.parametrize("bad", [3, b"bytes", ["x"], sg.ParamState])
def test_tag_must_be_a_string(bad):
    with pytest.raises(TypeError, match=r"catch_new_states\(tag=\.\.\.\).*must be a str or None"):
        with sg.catch_new_states(bad):
            pass
    assert ACTIVE.count == 0


def test_repr():
    with sg.catch_new_states("init") as new:
        sg.State(jnp.zeros(2), name="a")
    assert repr(new) == "NewStates(tag='init', states=[State(name='a', value=f32[2])])"
