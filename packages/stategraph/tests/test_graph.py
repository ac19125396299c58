"""Object graphs: sg.states, filters, snapshot and restore."""

from __future__ import annotations

import dataclasses
import pickle
from collections import OrderedDict, namedtuple

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stategraph as sg

DTYPES = [np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_, np.complex64]
shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
np_arrays = st.sampled_from(DTYPES).flatmap(lambda d: hnp.arrays(d, shapes))
leaves = st.one_of(np_arrays, np_arrays.map(jnp.asarray))
keys = st.text("abcxyz", min_size=1, max_size=3)
pytrees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(keys, children, max_size=3),
    ),
    max_leaves=5,
)


class Plain:
    def __init__(self, **attrs):
        for k, v in attrs.items():
            setattr(self, k, v)


class Slotted:
    __slots__ = ("w", "b", "missing")

    def __init__(self, w, b):
        self.w = w
        self.b = b  # "missing" is never set


class SlottedChild(Slotted):
    __slots__ = ("extra",)

    def __init__(self, w, b, extra):
        super().__init__(w, b)
        self.extra = extra


@dataclasses.dataclass
class DC:
    w: sg.State
    b: sg.State
    name: str = "dc"


@dataclasses.dataclass(frozen=True, slots=True)
class FrozenSlots:
    w: sg.State
    layers: tuple


Pair = namedtuple("Pair", ["left", "right"])


def f32(*shape, fill=0.0):
    return jnp.full(shape, fill, jnp.float32)


def assert_tree_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ walking
def test_plain_object_attributes():
    w, b = sg.ParamState(f32(2)), sg.State(f32(3))
    obj = Plain(w=w, n=3, text="hi", arr=np.zeros(2), fn=len, b=b)
    found = sg.states(obj)
    assert found == {"w": w, "b": b}
    assert list(found) == ["w", "b"]  # attribute order


def test_nested_objects_lists_tuples_dicts():
    s = [sg.State(f32(i + 1), name=f"s{i}") for i in range(6)]
    model = Plain(
        encoder=Plain(w=s[0], layers=[Plain(w=s[1]), Plain(w=s[2])]),
        heads=(s[3], {"mu": s[4], "sigma": [s[5]]}),
    )
    found = sg.states(model)
    assert found == {
        "encoder.w": s[0],
        "encoder.layers.0.w": s[1],
        "encoder.layers.1.w": s[2],
        "heads.0": s[3],
        "heads.1.mu": s[4],
        "heads.1.sigma.0": s[5],
    }
    assert list(found) == [
        "encoder.w",
        "encoder.layers.0.w",
        "encoder.layers.1.w",
        "heads.0",
        "heads.1.mu",
        "heads.1.sigma.0",
    ]


def test_root_state_and_root_containers():
    s = sg.State(1.0)
    assert sg.states(s) == {"": s}
    assert sg.states([s]) == {"0": s}
    assert sg.states({"k": s}) == {"k": s}
    assert sg.states(OrderedDict(k=s)) == {"k": s}
    assert sg.states(None) == {}
    assert sg.states(42) == {}
    assert sg.states([]) == {}


def test_dataclasses():
    w, b = sg.ParamState(f32(2)), sg.State(f32(1))
    assert sg.states(DC(w=w, b=b)) == {"w": w, "b": b}
    inner = sg.State(f32(3))
    frozen = FrozenSlots(w=w, layers=(DC(w=inner, b=b),))
    assert sg.states(frozen) == {"w": w, "layers.0.w": inner, "layers.0.b": b}


def test_objects_with_slots():
    w, b, e = sg.State(f32(1)), sg.State(f32(2)), sg.State(f32(3))
    assert sg.states(Slotted(w, b)) == {"w": w, "b": b}
    found = sg.states(SlottedChild(w, b, e))
    assert found == {"w": w, "b": b, "extra": e}


def test_namedtuples_use_indices():
    left, right = sg.State(1.0), sg.State(2.0)
    assert sg.states(Pair(left, right)) == {"0": left, "1": right}


def test_non_string_dict_keys_become_strings():
    a, b = sg.State(1.0), sg.State(2.0)
    assert sg.states({0: a, ("x", 1): b}) == {"0": a, "('x', 1)": b}


def test_sets_are_not_walked():
    a = sg.State(1.0)
    assert sg.states({"s": {a}}) == {}


def test_order_is_deterministic():
    def build():
        s = [sg.State(float(i)) for i in range(5)]
        return Plain(z=s[0], a={"y": s[1], "b": s[2]}, m=[s[3], Plain(q=s[4])])

    paths = [list(sg.states(build())) for _ in range(3)]
    assert paths[0] == paths[1] == paths[2] == ["z", "a.y", "a.b", "m.0", "m.1.q"]


def test_a_state_reachable_twice_is_reported_once_under_the_first_path():
    shared = sg.ParamState(f32(2), name="shared")
    other = sg.State(f32(1))
    model = Plain(first=[shared], second=Plain(again=shared, other=other), third={"x": shared})
    found = sg.states(model)
    assert found == {"first.0": shared, "second.other": other}
    assert list(found.values()).count(shared) == 1


def test_shared_sub_objects_are_safe():
    leaf = Plain(w=sg.State(1.0))
    found = sg.states([leaf, leaf, Plain(inner=leaf)])
    assert list(found) == ["0.w"]


def test_cycles_are_safe():
    a = Plain(w=sg.State(f32(1)))
    b = Plain(v=sg.State(f32(2)), back=a)
    a.next = b
    a.me = a
    loop: list = []
    loop.append(loop)
    loop.append(a)
    d: dict = {}
    d["self"] = d
    d["obj"] = a
    assert list(sg.states(a)) == ["w", "next.v"]
    assert list(sg.states(loop)) == ["1.w", "1.next.v"]
    assert list(sg.states(d)) == ["obj.w", "obj.next.v"]


def test_modules_classes_and_functions_are_not_walked():
    import math

    s = sg.State(1.0)

    class Holder:
        attr = sg.State(2.0)  # class attribute: not an instance attribute

    obj = Plain(mod=math, cls=Holder, fn=lambda: s, method=Plain().__init__, s=s)
    assert sg.states(obj) == {"s": s}


# ------------------------------------------------------------------ filters
def _filter_model():
    w = sg.ParamState(f32(2), name="w", tag="enc")
    b = sg.ParamState(f32(2), name="b", tag="dec")
    h = sg.HiddenState(f32(3), name="h", tag="enc")
    m = sg.LongTermState(f32(1), name="m")
    return Plain(enc=Plain(w=w, h=h), dec=Plain(b=b), stats=m), (w, b, h, m)


def test_filter_by_class():
    model, (w, b, h, m) = _filter_model()
    assert sg.states(model, sg.ParamState) == {"enc.w": w, "dec.b": b}
    assert sg.states(model, sg.ShortTermState) == {"enc.h": h}  # subclasses match
    assert sg.states(model, sg.State) == sg.states(model)
    assert sg.states(model, sg.LongTermState) == {"stats": m}


def test_filter_by_tag():
    model, (w, b, h, m) = _filter_model()
    assert sg.states(model, "enc") == {"enc.w": w, "enc.h": h}
    assert sg.states(model, "nothing") == {}


def test_filter_by_predicate_gets_path_and_state():
    model, (w, b, h, m) = _filter_model()
    calls = []

    def pred(path, state):
        calls.append((path, state))
        return path.startswith("enc")

    assert sg.states(model, pred) == {"enc.w": w, "enc.h": h}
    assert calls == [("enc.w", w), ("enc.h", h), ("dec.b", b), ("stats", m)]


def test_several_filters_and_together():
    model, (w, b, h, m) = _filter_model()
    assert sg.states(model, sg.ParamState, "enc") == {"enc.w": w}
    assert sg.states(model, "enc", sg.ParamState) == {"enc.w": w}
    assert sg.states(model, sg.ParamState, lambda p, s: s.name == "b") == {"dec.b": b}
    assert sg.states(model, sg.HiddenState, "dec") == {}


@pytest.mark.parametrize("bad", [42, None, 1.5, ["enc"], b"enc"])
def test_bad_filter_values_raise_type_error(bad):
    model, _ = _filter_model()
    with pytest.raises(TypeError) as info:
        sg.states(model, bad)
    msg = str(info.value)
    assert "sg.states" in msg
    assert "State subclass, a tag string or a function (path, state) -> bool" in msg
    assert f"got {type(bad).__name__}" in msg


@pytest.mark.parametrize("bad", [int, dict, np.ndarray])
def test_non_state_class_filter_raises_type_error(bad):
    with pytest.raises(TypeError) as info:
        sg.states({}, bad)
    msg = str(info.value)
    assert "must be a State subclass" in msg
    assert f"got {bad.__name__}" in msg
    assert "Fix: pass e.g. sg.ParamState" in msg


def test_bad_filter_is_reported_even_with_good_ones():
    model, _ = _filter_model()
    with pytest.raises(TypeError):
        sg.states(model, sg.ParamState, 3)
    with pytest.raises(TypeError):
        sg.snapshot(model, 3)
    with pytest.raises(TypeError):
        sg.restore(model, {}, 3)


# ------------------------------------------------------------------ snapshot / restore
def test_snapshot_is_a_plain_dict_of_values():
    model, (w, b, h, m) = _filter_model()
    snap = sg.snapshot(model)
    assert type(snap) is dict
    assert list(snap) == ["enc.w", "enc.h", "dec.b", "stats"]
    assert snap["enc.w"] is w.value
    assert not any(isinstance(v, sg.State) for v in snap.values())
    assert sg.snapshot(model, sg.ParamState) == {"enc.w": w.value, "dec.b": b.value}
    # picklable (no State objects inside)
    again = pickle.loads(pickle.dumps(snap))
    np.testing.assert_array_equal(again["enc.h"], h.value)


def test_restore_puts_values_back():
    model, (w, b, h, m) = _filter_model()
    snap = sg.snapshot(model)
    for s in (w, b, h, m):
        s.value = s.value + 7
    assert sg.restore(model, snap) is None
    for path, s in sg.states(model).items():
        assert s.value is snap[path]


def test_restore_with_filters():
    model, (w, b, h, m) = _filter_model()
    snap = sg.snapshot(model, sg.ParamState)
    old_h = h.value
    w.value = w.value + 1
    h.value = h.value + 1
    sg.restore(model, snap, sg.ParamState)
    assert w.value is snap["enc.w"]
    assert h.value is not old_h  # not part of the filtered snapshot


def test_restore_into_a_fresh_object_of_the_same_structure():
    model, _ = _filter_model()
    snap = {k: v + 1 for k, v in sg.snapshot(model).items()}
    fresh, _ = _filter_model()
    sg.restore(fresh, snap)
    for path, s in sg.states(fresh).items():
        assert s.value is snap[path]


def _values(model):
    return {p: s.value for p, s in sg.states(model).items()}


def _assert_unchanged(model, before):
    after = _values(model)
    assert after.keys() == before.keys()
    for k in before:
        assert after[k] is before[k], k


def test_restore_missing_entry_changes_nothing():
    model, _ = _filter_model()
    snap = {k: v + 1 for k, v in sg.snapshot(model).items()}
    del snap["dec.b"]
    before = _values(model)
    with pytest.raises(ValueError) as info:
        sg.restore(model, snap)
    msg = str(info.value)
    assert "sg.restore" in msg
    assert "missing entries for states ['dec.b']" in msg
    assert "Nothing was changed" in msg
    assert "Fix:" in msg
    _assert_unchanged(model, before)


def test_restore_extra_entry_changes_nothing():
    model, _ = _filter_model()
    snap = {k: v + 1 for k, v in sg.snapshot(model).items()}
    snap["enc.extra"] = f32(2)
    before = _values(model)
    with pytest.raises(ValueError, match=r"entries \['enc.extra'\] match no state.*Nothing was"):
        sg.restore(model, snap)
    _assert_unchanged(model, before)


@pytest.mark.parametrize(
    ("bad", "shown"),
    [
        (jnp.zeros(5), "f32[5]"),
        (jnp.zeros(2, jnp.int32), "i32[2]"),
        (jnp.zeros((2, 1)), "f32[2,1]"),
        ([jnp.zeros(2)], "[f32[2]]"),
    ],
)
def test_restore_mis_shaped_or_mis_typed_entry_changes_nothing(bad, shown):
    model, _ = _filter_model()
    snap = {k: v + 1 for k, v in sg.snapshot(model).items()}
    snap["enc.w"] = bad  # the last problem; earlier entries are fine
    before = _values(model)
    with pytest.raises(ValueError) as info:
        sg.restore(model, snap)
    msg = str(info.value)
    assert f"'enc.w' is {shown} but the state holds f32[2]" in msg
    assert "Nothing was changed" in msg
    _assert_unchanged(model, before)


def test_restore_reports_every_problem_at_once():
    model, _ = _filter_model()
    snap = sg.snapshot(model)
    del snap["stats"]
    snap["bogus"] = 1.0
    snap["dec.b"] = jnp.zeros(9)
    with pytest.raises(ValueError) as info:
        sg.restore(model, snap)
    msg = str(info.value)
    assert "['stats']" in msg and "['bogus']" in msg and "'dec.b' is f32[9]" in msg


@pytest.mark.parametrize("bad", [[1.0], "snap", None, 3])
def test_restore_needs_a_mapping(bad):
    model, _ = _filter_model()
    with pytest.raises(TypeError, match="sg.restore: the snapshot must be a mapping"):
        sg.restore(model, bad)


def test_restore_inside_a_trace_is_recorded_as_writes():
    model, (w, b, h, m) = _filter_model()
    snap = sg.snapshot(model)
    with sg.StateTrace() as t:
        sg.restore(model, snap)
    assert set(t.written_states) == {w, b, h, m}


# ------------------------------------------------------------------ properties
def _build(spec, made):
    """Build a nested container from a spec, with a fresh State at each leaf."""
    kind, payload = spec
    if kind == "state":
        s = sg.State(np.zeros(1, np.float32))
        made.append(s)
        return s
    if kind == "list":
        return [_build(c, made) for c in payload]
    if kind == "tuple":
        return tuple(_build(c, made) for c in payload)
    if kind == "dict":
        return {k: _build(c, made) for k, c in payload}
    return Plain(**{k: _build(c, made) for k, c in payload})


def _expected_paths(spec, prefix=()):
    kind, payload = spec
    if kind == "state":
        return [".".join(prefix)]
    if kind in ("list", "tuple"):
        items = [(str(i), c) for i, c in enumerate(payload)]
    else:
        items = list(payload)
    out = []
    for k, c in items:
        out += _expected_paths(c, (*prefix, k))
    return out


names = st.text("abcdefgh", min_size=1, max_size=4)
specs = st.recursive(
    st.just(("state", None)),
    lambda children: st.one_of(
        st.tuples(st.just("list"), st.lists(children, max_size=3)),
        st.tuples(st.just("tuple"), st.lists(children, max_size=3)),
        st.tuples(
            st.sampled_from(["dict", "object"]),
            st.lists(st.tuples(names, children), max_size=3, unique_by=lambda kv: kv[0]),
        ),
    ),
    max_leaves=8,
)


@settings(max_examples=25, deadline=None)
@given(spec=specs)
def test_paths_of_random_object_graphs(spec):
    made: list = []
    root = _build(spec, made)
    found = sg.states(root)
    assert list(found) == _expected_paths(spec)
    assert list(found.values()) == made
    # putting the whole graph twice in a list reports each state once
    twice = sg.states([root, root])
    assert list(twice.values()) == made


@settings(max_examples=25, deadline=None)
@given(values=st.lists(pytrees, min_size=1, max_size=4))
def test_snapshot_restore_round_trip_of_random_pytrees(values):
    model = Plain(layers=[Plain(s=sg.State(v)) for v in values], extra={"t": sg.State(values[0])})
    snap = sg.snapshot(model)
    assert list(snap) == [f"layers.{i}.s" for i in range(len(values))] + ["extra.t"]
    # overwrite every state with a same-structure value, then restore
    for s in sg.states(model).values():
        s.value = jax.tree.map(lambda x: np.ones_like(np.asarray(x)), s.value)
    sg.restore(model, snap)
    for path, s in sg.states(model).items():
        assert s.value is snap[path]
    assert_tree_equal(model.layers[0].s.value, values[0])
    assert_tree_equal(model.extra["t"].value, values[0])


@settings(max_examples=25, deadline=None)
@given(
    old_dtype=st.sampled_from(DTYPES),
    new_dtype=st.sampled_from(DTYPES),
    old_shape=shapes,
    new_shape=shapes,
)
def test_restore_detects_random_shape_and_dtype_mismatches(
    old_dtype, new_dtype, old_shape, new_shape
):
    a = sg.State(jnp.zeros(old_shape, old_dtype), name="a")
    keep = sg.State(jnp.zeros(2), name="keep")
    model = {"keep": keep, "a": a}
    new = jnp.ones(new_shape, new_dtype)
    snap = {"keep": jnp.ones(2), "a": new}
    before = _values(model)
    if new.shape == a.value.shape and new.dtype == a.value.dtype:
        sg.restore(model, snap)
        assert a.value is new
        assert keep.value is snap["keep"]
    else:
        with pytest.raises(ValueError, match="'a' is .* but the state holds"):
            sg.restore(model, snap)
        _assert_unchanged(model, before)
