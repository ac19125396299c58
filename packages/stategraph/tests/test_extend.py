"""stategraph.extend: LiftTrace, raw access, poisoning, counters, descriptions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stategraph as sg
from stategraph import extend
from stategraph.extend import (
    ACTIVE,
    LiftTrace,
    describe,
    has_tracer,
    is_poisoned,
    open_traces,
    poison,
    read_raw,
    structure_of,
    write_raw,
)


def run_jaxpr(closed, *args):
    flat = jax.tree.leaves(args)
    return jax.core.eval_jaxpr(closed.jaxpr, closed.consts, *flat)


def test_extend_all_is_sorted_and_complete():
    assert extend.__all__ == sorted(extend.__all__)
    for name in extend.__all__:
        assert hasattr(extend, name)


# ------------------------------------------------------------------ LiftTrace
def test_states_read_become_inputs_after_the_args_in_first_read_order():
    a = sg.ParamState(jnp.ones(2), name="a")
    b = sg.ParamState(jnp.arange(3.0), name="b")
    c = sg.State({"k": jnp.zeros((4,)), "m": jnp.ones((), jnp.int32)}, name="c")
    unused = sg.State(jnp.zeros(7), name="unused")
    values = {s.name: s.value for s in (a, b, c, unused)}
    box = {}

    def f(x, y):
        with LiftTrace() as t:
            z = x * jnp.sum(b.value)  # b first
            a.value = a.value + z  # then a
            c.value = {"k": c.value["k"] + y, "m": c.value["m"]}
            b.value  # read again: no new input
        box["t"] = t
        return z, t.output_values

    closed = jax.make_jaxpr(f)(1.0, jnp.ones(4))
    t = box["t"]
    # inputs: x, y, then b, a, and c's two leaves (dict leaves in key order)
    assert [tuple(v.shape) for v in closed.in_avals] == [(), (4,), (3,), (2,), (4,), ()]
    assert t.input_states == [b, a, c]
    assert t.input_values[0] is values["b"]
    assert t.input_values[1] is values["a"]
    assert t.input_values[2] is values["c"]
    assert t.read_states == (b, a, c)
    assert t.written_states == (a, c)
    assert unused not in t.states
    # every state holds its pre-trace value again (never a tracer)
    for s in (a, b, c, unused):
        assert s.value is values[s.name]
    assert not has_tracer([a.value, b.value, c.value])

    # the jaxpr is the pure function: (args, state values) -> (result, written values)
    x, y = 3.0, jnp.arange(4.0)
    got = run_jaxpr(closed, x, y, *t.input_values)
    z = x * jnp.sum(values["b"])
    want = jax.tree.leaves(
        (z, [values["a"] + z, {"k": values["c"]["k"] + y, "m": values["c"]["m"]}])
    )
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w)


def test_output_values_are_the_final_written_values():
    s = sg.State(jnp.zeros(2), name="s")
    box = {}

    def f(x):
        with LiftTrace() as t:
            s.value = s.value + x
            s.value = s.value * 10
        box["t"] = t
        return t.output_values

    closed = jax.make_jaxpr(f)(1.0)
    t = box["t"]
    assert len(t.output_values) == 1
    assert not has_tracer(s.value)
    (got,) = run_jaxpr(closed, 1.0, jnp.zeros(2))
    np.testing.assert_allclose(got, np.full(2, 10.0))


def test_write_only_state_is_not_an_input():
    old = jnp.zeros(2)
    s = sg.State(old, name="s")
    box = {}

    def f(x):
        with LiftTrace() as t:
            s.value = jnp.broadcast_to(x, (2,))
            s.value  # read after the write: the written tracer, not a new input
        box["t"] = t
        return t.output_values

    closed = jax.make_jaxpr(f)(1.0)
    assert len(closed.in_avals) == 1
    assert box["t"].input_states == []
    assert box["t"].written_states == (s,)
    assert s.value is old


def test_finish_returns_the_output_values_and_closes():
    s = sg.State(jnp.zeros(2), name="s")
    box = {}

    def f(x):
        t = LiftTrace()
        t.__enter__()
        s.value = s.value + x
        out = t.finish()
        box["open"] = t.is_open
        assert t.finish() is out  # idempotent
        return out

    jax.make_jaxpr(f)(1.0)
    assert box["open"] is False
    assert not has_tracer(s.value)


def test_an_exception_inside_the_block_restores_every_state():
    a = sg.State(jnp.ones(2), name="a")
    b = sg.State(jnp.ones(3), name="b")
    old_a, old_b = a.value, b.value

    def f(x):
        with LiftTrace():
            a.value = a.value * x
            b.value
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError, match="boom"):
        jax.make_jaxpr(f)(2.0)
    assert a.value is old_a
    assert b.value is old_b
    assert open_traces() == ()
    assert ACTIVE.count == 0


def test_a_state_error_inside_the_block_restores_every_state():
    a = sg.State(jnp.ones(2), name="a")
    old = a.value

    def f(x):
        with LiftTrace():
            a.value = a.value * x
            a.value = jnp.zeros(5)  # structure change: StateStructureError
        return x

    with pytest.raises(sg.StateStructureError, match="'a'"):
        jax.make_jaxpr(f)(2.0)
    assert a.value is old
    assert ACTIVE.count == 0


def test_lift_trace_records_like_a_state_trace_and_nests():
    a = sg.State(jnp.ones(2), name="a")
    b = sg.State(jnp.ones(2), name="b")
    box = {}

    def f(x):
        with sg.StateTrace() as outer, LiftTrace() as lift:
            assert open_traces() == (outer, lift)
            with sg.StateTrace() as inner:
                b.value = b.value * x
            a.value
        box.update(outer=outer, lift=lift, inner=inner)
        return lift.output_values

    jax.make_jaxpr(f)(2.0)
    assert box["outer"].states == (b, a)
    assert box["lift"].states == (b, a)
    assert box["lift"].input_states == [b, a]
    assert box["inner"].states == (b,)


def test_nested_lift_traces_in_nested_staging():
    w = sg.State(jnp.arange(3.0), name="w")
    old = w.value
    box = {}

    def inner(x):
        with LiftTrace() as t:
            w.value = w.value * x
        box["inner"] = t
        return t.output_values

    def outer(x):
        with LiftTrace() as t:
            inner_jaxpr = jax.make_jaxpr(inner)(x)
            box["inner_jaxpr"] = inner_jaxpr
            w.value = w.value + 1
        box["outer"] = t
        return t.output_values

    closed = jax.make_jaxpr(outer)(2.0)
    assert w.value is old
    assert box["outer"].input_states == [w]
    assert box["inner"].input_states == [w]
    (got,) = run_jaxpr(closed, 2.0, old)
    np.testing.assert_allclose(got, old + 1)


def test_lift_trace_counts_in_active_and_resets():
    seen = {}

    def f(x):
        with LiftTrace():
            seen["count"] = ACTIVE.count
        return x

    jax.make_jaxpr(f)(1.0)
    assert seen["count"] >= 1
    assert ACTIVE.count == 0


def test_a_non_array_value_cannot_be_lifted():
    bad = sg.State({"label": "text"}, name="label")
    other = sg.State(jnp.ones(2), name="other")
    old_bad, old_other = bad.value, other.value

    def f(x):
        with LiftTrace():
            other.value = other.value * x
            bad.value
        return x

    with pytest.raises(TypeError) as info:
        jax.make_jaxpr(f)(2.0)
    msg = str(info.value)
    assert "State 'label'" in msg
    assert "pytree of arrays" in msg
    assert "Fix: store JAX or NumPy arrays" in msg
    assert bad.value is old_bad
    assert other.value is old_other


float_arrays = st.sampled_from([np.float32, np.float16, np.int32]).flatmap(
    lambda d: hnp.arrays(
        d,
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
        elements=st.integers(-8, 8),
    )
)
array_trees = st.recursive(
    float_arrays,
    lambda c: st.one_of(
        st.lists(c, min_size=1, max_size=2),
        st.dictionaries(st.sampled_from("abc"), c, min_size=1, max_size=2),
    ),
    max_leaves=4,
)


@settings(max_examples=25, deadline=None)
@given(first=array_trees, second=array_trees)
def test_lifted_jaxpr_matches_the_pure_function(first, second):
    a = sg.State(first, name="a")
    b = sg.State(second, name="b")
    box = {}

    def pure(x, a_val, b_val):
        new_a = jax.tree.map(lambda v: v * 2 + x.astype(v.dtype), a_val)
        total = sum(jnp.sum(v.astype(jnp.float32)) for v in jax.tree.leaves(b_val))
        return total, new_a

    def f(x):
        with LiftTrace() as t:
            total, a.value = pure(x, a.value, b.value)
        box["t"] = t
        return total, t.output_values

    x = np.int32(3)
    closed = jax.make_jaxpr(f)(x)
    t = box["t"]
    assert t.input_states == [a, b]
    assert t.written_states == (a,)
    assert a.value is first and b.value is second
    n_in = 1 + len(jax.tree.leaves(first)) + len(jax.tree.leaves(second))
    assert len(closed.in_avals) == n_in
    got = run_jaxpr(closed, x, first, second)
    total, new_a = pure(x, first, second)
    want = jax.tree.leaves((total, [new_a]))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape and g.dtype == w.dtype
        np.testing.assert_allclose(np.asarray(g, np.float64), np.asarray(w, np.float64))


# ------------------------------------------------------------------ poisoning
def _create_inside(make):
    box = {}

    def f(x):
        with LiftTrace():
            box["states"] = make(x)
        return x

    jax.make_jaxpr(f)(jnp.ones(3))
    return box["states"]


def test_states_created_inside_holding_tracers_are_poisoned():
    traced, written, concrete = _create_inside(
        lambda x: (
            sg.HiddenState(x * 2, name="traced"),
            _written(sg.State(jnp.zeros(3), name="written"), x),
            sg.State(np.ones(2, np.float32), name="concrete"),  # jnp.ones would be traced
        )
    )
    assert is_poisoned(traced) and is_poisoned(written)
    assert not is_poisoned(concrete)
    np.testing.assert_array_equal(concrete.value, np.ones(2))
    for s in (traced, written):
        assert isinstance(s, sg.State)
        with pytest.raises(sg.TraceContextError) as info:
            s.value
        msg = str(info.value)
        assert repr(s.name) in msg
        assert "created inside a traced function" in msg
        assert "Fix: create the state outside the transform" in msg
        assert "write it a concrete value" in msg
    assert isinstance(traced, sg.HiddenState)
    assert type(traced).__name__ == "HiddenState"
    assert str(info.value).startswith("State 'written'")


def _written(state, x):
    state.value = x
    return state


def test_writing_a_concrete_value_unpoisons():
    (s,) = _create_inside(lambda x: (sg.ParamState(x, name="p"),))
    assert is_poisoned(s)
    s.value = jnp.full(3, 4.0)
    assert not is_poisoned(s)
    assert type(s) is sg.ParamState
    np.testing.assert_array_equal(s.value, np.full(3, 4.0))
    # an ordinary state again: recorded by traces
    with sg.StateTrace() as t:
        s.value = s.value + 1
    assert t.states == (s,)


def test_poisoned_repr_hides_the_dropped_tracer():
    (s,) = _create_inside(lambda x: (sg.State(x, name="local"),))
    text = repr(s)
    assert text.startswith("State(name='local'")
    assert "Tracer" not in text


def test_states_created_inside_are_poisoned_even_when_the_block_fails():
    box = {}

    def f(x):
        with LiftTrace():
            box["s"] = sg.State(x + 1, name="local")
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError):
        jax.make_jaxpr(f)(1.0)
    assert is_poisoned(box["s"])
    with pytest.raises(sg.TraceContextError, match="'local'"):
        box["s"].value


def test_poison_and_is_poisoned_by_hand():
    s = sg.LongTermState(jnp.ones(2), name="m")
    assert not is_poisoned(s)
    poison(s)
    poison(s)  # idempotent
    assert is_poisoned(s)
    assert isinstance(s, sg.LongTermState)
    with pytest.raises(sg.TraceContextError, match="LongTermState 'm'"):
        s.value
    s.value = jnp.zeros(2)
    assert not is_poisoned(s)
    assert type(s) is sg.LongTermState


def test_a_failed_write_keeps_the_state_poisoned():
    s = sg.State(jnp.ones(2), name="p")
    poison(s)

    def f(x):
        s.value = x
        return x

    with pytest.raises(sg.TraceContextError, match="does not manage states"):
        jax.jit(f)(jnp.ones(2))
    assert is_poisoned(s)
    with pytest.raises(sg.TraceContextError, match="created inside a traced function"):
        s.value


def test_writing_a_poisoned_state_inside_a_trace_unpoisons():
    # A poisoned state has no old value whose structure the write must keep.
    s = sg.State(jnp.ones(2), name="p")
    poison(s)
    new = jnp.zeros(3)
    with sg.StateTrace() as t:
        s.value = new
    assert not is_poisoned(s)
    assert s.value is new
    assert t.written_states == (s,)


def test_poisoned_class_is_shared_per_class():
    a, b = sg.ParamState(1.0), sg.ParamState(2.0)
    poison(a)
    poison(b)
    assert type(a) is type(b)
    assert type(a) is not sg.ParamState


# ------------------------------------------------------------------ raw access
def test_read_raw_and_write_raw_do_not_record():
    a = sg.State(jnp.ones(2), name="a")
    b = sg.State(jnp.zeros(3), name="b")
    with sg.StateTrace() as t:
        values = read_raw([a, b])
        write_raw([a, b], [jnp.ones(5), jnp.ones(1)])  # no structure check either
    assert values[0].shape == (2,) and values[1].shape == (3,)
    assert t.states == ()
    assert a.value.shape == (5,) and b.value.shape == (1,)


def test_read_raw_returns_the_held_objects_in_order():
    vals = [jnp.ones(1), {"x": np.zeros(2)}, 3.0]
    states = [sg.State(v) for v in vals]
    got = read_raw(states)
    assert isinstance(got, list)
    assert all(g is v for g, v in zip(got, vals, strict=True))
    assert read_raw([]) == []


def test_write_raw_needs_matching_lengths():
    a = sg.State(1.0)
    with pytest.raises(ValueError):
        write_raw([a], [1.0, 2.0])
    assert a.value == 1.0


def test_write_raw_does_not_check_tracers_or_hidden_rule():
    h = sg.HiddenState(jnp.zeros(2), name="h")
    write_raw([h], [{"not": "an array"}])
    assert h.value == {"not": "an array"}


# ------------------------------------------------------------------ counters
def test_open_traces_outermost_first():
    assert open_traces() == ()
    with sg.StateTrace() as a, sg.StateTrace() as b:
        assert open_traces() == (a, b)
        assert isinstance(open_traces(), tuple)
    assert open_traces() == ()


def test_active_count_returns_to_zero():
    assert ACTIVE.count == 0
    with sg.StateTrace(), sg.catch_new_states():
        assert ACTIVE.count == 2
    assert ACTIVE.count == 0
    with pytest.raises(ValueError), sg.StateTrace(), sg.catch_new_states("x"):
        raise ValueError
    assert ACTIVE.count == 0


# ------------------------------------------------------------------ descriptions
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (jnp.zeros((2, 3)), "f32[2,3]"),
        (np.zeros(3, np.int32), "i32[3]"),
        (jnp.zeros((), jnp.bool_), "bool[]"),
        (np.zeros(2, np.float16), "f16[2]"),
        (jnp.zeros(1, jnp.bfloat16), "bf16[1]"),
        (1.0, "f32[]"),
        (3, "i32[]"),
        (
            {"w": np.zeros((2, 3), np.float32), "b": np.zeros(3, np.float32)},
            "{'b': f32[3], 'w': f32[2,3]}",
        ),
        ([jnp.zeros(1), (jnp.zeros(2),)], "[f32[1], (f32[2],)]"),
        ("text", "str"),
    ],
)
def test_describe(value, text):
    assert describe(value) == text


def test_describe_and_has_tracer_on_tracers():
    seen = {}

    def f(x):
        seen["describe"] = describe({"x": x})
        seen["has"] = has_tracer([1.0, {"x": x}])
        return x

    jax.jit(f)(jnp.zeros((2, 2)))
    assert seen["describe"] == "{'x': f32[2,2](traced)}"
    assert seen["has"] is True
    assert has_tracer([1.0, jnp.zeros(2), np.zeros(1)]) is False
    assert has_tracer(1.0) is False


def test_structure_of():
    tree, leaves = structure_of({"a": jnp.zeros((2,)), "b": np.zeros((), np.int32)})
    assert tree == jax.tree.structure({"a": 0, "b": 0})
    assert leaves == (((2,), "float32"), ((), "int32"))
    assert structure_of(jnp.zeros(2)) == structure_of(np.zeros(2, np.float32))
    assert structure_of(jnp.zeros(2)) != structure_of(jnp.zeros(3))
    assert structure_of(jnp.zeros(2)) != structure_of(jnp.zeros(2, jnp.int32))
