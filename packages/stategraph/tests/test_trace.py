"""StateTrace: recording reads and writes, nesting, exit order, structure checks."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stategraph as sg
from stategraph.extend import ACTIVE, open_traces

DTYPES = [np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_, np.complex64]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=1, max_side=3)


def make(n=3):
    return [sg.State(jnp.full((i + 1,), float(i)), name=f"s{i}") for i in range(n)]


# ------------------------------------------------------------------ recording
def test_records_reads_and_writes_in_first_access_order():
    a, b, c, d = make(4)
    with sg.StateTrace() as t:
        c.value  # read c
        b.value = b.value + 1  # read b, write b
        a.value = jnp.zeros(1)  # write a only
        c.value = c.value * 2  # c again: not duplicated
        b.value
    assert t.states == (c, b, a)
    assert t.read_states == (c, b)
    assert t.written_states == (b, a, c)
    assert d not in t.states
    assert t.was_read(c) and t.was_read(b) and not t.was_read(a)
    assert t.was_written(a) and t.was_written(c) and not t.was_written(d)


def test_records_are_public_tuples_that_survive_the_trace():
    (a,) = make(1)
    with sg.StateTrace() as t:
        a.value
        assert t.states == (a,)  # visible while open
    assert isinstance(t.states, tuple)
    assert isinstance(t.read_states, tuple)
    assert isinstance(t.written_states, tuple)
    a.value = jnp.ones(1)  # after exit nothing more is recorded
    assert t.written_states == ()


def test_empty_trace():
    with sg.StateTrace() as t:
        pass
    assert t.states == t.read_states == t.written_states == ()


def test_nothing_is_recorded_outside_traces():
    (a,) = make(1)
    t = sg.StateTrace()
    a.value
    a.value = jnp.ones(1)
    assert t.states == ()


def test_access_through_functions_and_containers_is_recorded():
    a, b = make(2)
    model = {"layers": [a, b]}

    def step():
        for s in model["layers"]:
            s.value = s.value + 1.0

    with sg.StateTrace() as t:
        step()
    assert t.states == (a, b)
    assert t.written_states == (a, b)


def test_is_open_and_repr():
    (a,) = make(1)
    t = sg.StateTrace()
    assert not t.is_open
    with t:
        assert t.is_open
        a.value
    assert not t.is_open
    assert repr(t) == "StateTrace(states=['s0'])"


# ------------------------------------------------------------------ nesting
def test_inner_accesses_are_seen_by_outer_traces():
    a, b, c = make(3)
    with sg.StateTrace() as outer:
        a.value
        with sg.StateTrace() as middle:
            b.value = b.value * 2
            with sg.StateTrace() as inner:
                c.value
        a.value = jnp.zeros(1)
    assert outer.states == (a, b, c)
    assert outer.read_states == (a, b, c)
    assert outer.written_states == (b, a)
    assert middle.states == (b, c)
    assert middle.written_states == (b,)
    assert inner.states == (c,)
    assert inner.written_states == ()


def test_state_created_inside_a_trace_is_local_to_it():
    with sg.StateTrace() as outer:
        local = sg.State(jnp.zeros(2), name="local")
        local.value = local.value + 1
        with sg.StateTrace() as inner:  # opened after the creation: records it
            local.value = local.value * 3
        local.value
    assert local not in outer.states
    assert outer.states == ()
    assert inner.states == (local,)
    assert inner.read_states == (local,)
    assert inner.written_states == (local,)


def test_state_created_before_the_trace_is_recorded():
    with sg.StateTrace():
        pass
    s = sg.State(1.0)
    with sg.StateTrace() as t:
        s.value
    assert t.states == (s,)


def test_state_created_in_an_inner_trace_is_not_recorded_by_any_open_trace():
    with sg.StateTrace() as outer, sg.StateTrace() as inner:
        s = sg.State(jnp.ones(2))
        s.value = s.value + 1
    assert outer.states == () and inner.states == ()


def test_nested_traces_with_open_traces():
    with sg.StateTrace() as outer:
        assert open_traces() == (outer,)
        with sg.StateTrace() as inner:
            assert open_traces() == (outer, inner)
        assert open_traces() == (outer,)
    assert open_traces() == ()


# ------------------------------------------------------------------ exit order
def test_exiting_out_of_order_raises_trace_order_error():
    outer, inner = sg.StateTrace(), sg.StateTrace()
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(sg.TraceOrderError) as info:
        outer.__exit__(None, None, None)
    msg = str(info.value)
    assert "innermost first" in msg
    assert "1 trace(s) entered after it" in msg
    assert "Fix: nest the `with` blocks" in msg
    # the inner trace can still be closed normally, and nothing stays open
    inner.__exit__(None, None, None)
    assert open_traces() == ()
    assert ACTIVE.count == 0


def test_out_of_order_exit_counts_every_inner_trace():
    traces = [sg.StateTrace() for _ in range(3)]
    for t in traces:
        t.__enter__()
    with pytest.raises(sg.TraceOrderError, match="2 trace"):
        traces[0].__exit__(None, None, None)
    traces[2].__exit__(None, None, None)
    traces[1].__exit__(None, None, None)
    assert open_traces() == ()


def test_a_trace_is_entered_only_once():
    t = sg.StateTrace()
    with t, pytest.raises(sg.TraceOrderError, match="entered only once.*it is open.*Fix"):
        t.__enter__()
    with pytest.raises(sg.TraceOrderError, match="already closed.*Fix: create a new StateTrace"):
        t.__enter__()


def test_exiting_a_trace_that_is_not_open():
    with pytest.raises(sg.TraceOrderError, match="not open"):
        sg.StateTrace().__exit__(None, None, None)


def test_an_exception_inside_the_block_closes_the_trace():
    (a,) = make(1)
    with pytest.raises(KeyError), sg.StateTrace() as t:
        a.value
        raise KeyError("boom")
    assert not t.is_open
    assert t.states == (a,)
    assert open_traces() == ()


def test_active_count_tracks_open_traces():
    assert ACTIVE.count == 0
    with sg.StateTrace():
        assert ACTIVE.count == 1
        with sg.StateTrace():
            assert ACTIVE.count == 2
        assert ACTIVE.count == 1
    assert ACTIVE.count == 0


# ------------------------------------------------------------------ structure
@pytest.mark.parametrize(
    ("new", "shown"),
    [
        (jnp.zeros(4), "f32[4]"),  # shape
        (jnp.zeros((3, 1)), "f32[3,1]"),  # rank
        (jnp.zeros(3, jnp.int32), "i32[3]"),  # dtype
        ([jnp.zeros(3)], "[f32[3]]"),  # tree structure
        ({"x": jnp.zeros(3)}, "{'x': f32[3]}"),
    ],
)
def test_structure_change_inside_a_trace_raises(new, shown):
    old = jnp.ones(3)
    w = sg.ParamState(old, name="w")
    with sg.StateTrace() as t:
        with pytest.raises(sg.StateStructureError) as info:
            w.value = new
        assert w.value is old  # the state keeps its old value
    msg = str(info.value)
    assert "ParamState 'w'" in msg
    assert "tree structure, shape and dtype" in msg
    assert "it was f32[3]" in msg
    assert f"the write gave {shown}" in msg
    assert "Fix:" in msg
    assert w.value is old
    assert t.written_states == ()


def test_structure_error_names_both_trees():
    w = sg.State({"a": jnp.zeros(2), "b": jnp.zeros(2)}, name="pair")
    with sg.StateTrace(), pytest.raises(sg.StateStructureError) as info:
        w.value = (jnp.zeros(2), jnp.zeros(2))
    msg = str(info.value)
    assert "State 'pair'" in msg
    assert "{'a': f32[2], 'b': f32[2]}" in msg
    assert "(f32[2], f32[2])" in msg
    assert "PyTreeDef({'a': *, 'b': *})" in msg
    assert "PyTreeDef((*, *))" in msg


def test_structure_error_for_unnamed_state_identifies_it():
    w = sg.State(jnp.zeros(2))
    with sg.StateTrace(), pytest.raises(sg.StateStructureError, match="State <unnamed at 0x"):
        w.value = jnp.zeros(3)


def test_structure_change_in_a_nested_trace_raises():
    w = sg.State(jnp.zeros(2), name="w")
    with sg.StateTrace(), sg.StateTrace(), pytest.raises(sg.StateStructureError, match="'w'"):
        w.value = jnp.zeros(5)
    assert w.value.shape == (2,)


def test_structure_change_outside_traces_is_allowed():
    w = sg.State(jnp.zeros(2), name="w")
    w.value = jnp.zeros((4, 4), jnp.int32)
    w.value = {"now": "a dict", "of": [1, 2]}
    w.value = 3.0
    assert w.value == 3.0


def test_same_structure_writes_inside_a_trace_are_allowed():
    w = sg.State({"a": jnp.zeros(2), "b": [jnp.zeros((), jnp.int32)]}, name="w")
    new = {"a": np.ones(2, np.float32), "b": [jnp.ones((), jnp.int32)]}
    with sg.StateTrace() as t:
        w.value = new
    assert w.value is new
    assert t.written_states == (w,)


def test_python_scalar_matches_a_scalar_array():
    s = sg.State(jnp.float32(0.0), name="s")
    with sg.StateTrace():
        s.value = 1.0
        s.value = jnp.asarray(2.0)
    assert float(s.value) == 2.0


@settings(max_examples=25, deadline=None)
@given(
    old_dtype=st.sampled_from(DTYPES),
    new_dtype=st.sampled_from(DTYPES),
    old_shape=shapes,
    new_shape=shapes,
)
def test_structure_change_detection_with_random_shapes_and_dtypes(
    old_dtype, new_dtype, old_shape, new_shape
):
    old = jnp.zeros(old_shape, old_dtype)
    new = jnp.ones(new_shape, new_dtype)
    s = sg.State(old, name="s")
    same = old.shape == new.shape and old.dtype == new.dtype
    with sg.StateTrace() as t:
        if same:
            s.value = new
        else:
            with pytest.raises(sg.StateStructureError, match="'s'"):
                s.value = new
    if same:
        assert s.value is new
        assert t.written_states == (s,)
    else:
        assert s.value is old
        assert t.written_states == ()
    # outside a trace the write always goes through
    s.value = new
    assert s.value is new


@settings(max_examples=25, deadline=None)
@given(
    old=st.lists(st.sampled_from([(2,), (3,), ()]), min_size=0, max_size=3),
    new=st.lists(st.sampled_from([(2,), (3,), ()]), min_size=0, max_size=3),
    as_tuple=st.booleans(),
)
def test_tree_structure_change_detection(old, new, as_tuple):
    old_value = [jnp.zeros(s) for s in old]
    new_value = [jnp.zeros(s) for s in new]
    if as_tuple:
        new_value = tuple(new_value)
    s = sg.State(old_value, name="s")
    same = not as_tuple and old == new  # a tuple is another tree node than a list
    with sg.StateTrace():
        if same:
            s.value = new_value
        else:
            with pytest.raises(sg.StateStructureError):
                s.value = new_value
    assert s.value is (new_value if same else old_value)


def test_reads_are_recorded_by_every_open_trace_once():
    (a,) = make(1)
    with sg.StateTrace() as outer:
        for _ in range(3):
            with sg.StateTrace() as inner:
                a.value
            assert inner.states == (a,)
    assert outer.states == (a,)


def test_read_inside_jit_is_recorded():
    w = sg.State(jnp.arange(3.0), name="w")
    with sg.StateTrace() as t:
        y = jax.jit(lambda x: x * w.value)(jnp.ones(3))
    np.testing.assert_allclose(y, np.arange(3.0))
    assert t.read_states == (w,)
