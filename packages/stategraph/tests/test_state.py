"""State and its subclasses: values, names, metadata, repr, HiddenState's rule."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import stategraph as sg
from stategraph.extend import LiftTrace

STATE_CLASSES = [sg.State, sg.ParamState, sg.ShortTermState, sg.LongTermState, sg.HiddenState]
PYTREE_CLASSES = [sg.State, sg.ParamState, sg.ShortTermState, sg.LongTermState]

# dtypes that are their own canonical dtype with or without jax_enable_x64
DTYPES = [np.float32, np.float16, np.int32, np.int8, np.uint8, np.bool_, np.complex64]

shapes = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4)
np_arrays = st.sampled_from(DTYPES).flatmap(lambda d: hnp.arrays(d, shapes))
leaves = st.one_of(np_arrays, np_arrays.map(jnp.asarray))
keys = st.text("abcxyz", min_size=1, max_size=3)
pytrees = st.recursive(
    leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.lists(children, max_size=3).map(tuple),
        st.dictionaries(keys, children, max_size=3),
    ),
    max_leaves=6,
)


def assert_tree_equal(a, b):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        assert np.shape(x) == np.shape(y)
        assert np.asarray(x).dtype == np.asarray(y).dtype
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


# ------------------------------------------------------------------ basics
@pytest.mark.parametrize("cls", STATE_CLASSES)
def test_value_name_and_metadata(cls):
    x = jnp.arange(3.0)
    s = cls(x, name="s", tag="init", unit="mV")
    assert s.value is x
    assert s.name == "s"
    assert s.metadata == {"tag": {"init"}, "unit": "mV"}
    assert s.tag == {"init"}
    assert isinstance(s, sg.State)


@pytest.mark.parametrize("cls", STATE_CLASSES)
def test_defaults(cls):
    s = cls(jnp.zeros(2))
    assert s.name is None
    assert s.tag is None
    assert s.metadata == {}


def test_subclass_relations():
    assert issubclass(sg.HiddenState, sg.ShortTermState)
    for cls in (sg.ParamState, sg.ShortTermState, sg.LongTermState):
        assert issubclass(cls, sg.State)
    assert not issubclass(sg.ParamState, sg.ShortTermState)
    assert not issubclass(sg.LongTermState, sg.ShortTermState)


def test_value_write_replaces_the_value():
    s = sg.State(jnp.zeros(3), name="s")
    new = jnp.ones(3)
    s.value = new
    assert s.value is new
    s.value = s.value * 2
    np.testing.assert_array_equal(s.value, 2 * np.ones(3))


def test_name_and_tag_are_writable():
    s = sg.State(1.0)
    s.name = "renamed"
    s.tag = "group"
    assert s.name == "renamed"
    assert s.tag == {"group"}
    assert s.metadata["tag"] == {"group"}


def test_metadata_is_a_copy_of_the_keywords():
    meta = {"tag": "a"}
    s = sg.State(1.0, **meta)
    meta["tag"] = "b"
    assert s.tag == {"a"}


def test_states_are_identities_not_values():
    a, b = sg.State(jnp.ones(2)), sg.State(jnp.ones(2))
    assert a == a
    assert a != b
    assert len({a, b, a}) == 2
    # Not a pytree: a state is one leaf of a tree holding it.
    assert jax.tree.leaves([a, b]) == [a, b]


@pytest.mark.parametrize("cls", STATE_CLASSES)
@pytest.mark.parametrize("value", [jnp.zeros(3), np.zeros((2, 2)), 1.5, 3, True, np.float32(2.0)])
def test_array_like_values_are_accepted(cls, value):
    s = cls(value)
    assert s.value is value


def test_name_must_be_a_string():
    with pytest.raises(TypeError, match=r"ParamState\(name=\.\.\.\).*a str.*got int 3.*Fix"):
        sg.ParamState(jnp.zeros(2), name=3)


def test_value_cannot_be_a_state():
    inner = sg.State(1.0, name="inner")
    with pytest.raises(TypeError, match=r"cannot be another State.*inner.*Fix: store `other"):
        sg.State(inner, name="outer")
    outer = sg.State(2.0, name="outer")
    with pytest.raises(TypeError, match=r"State 'outer'.*cannot be another State"):
        outer.value = inner
    assert outer.value == 2.0


# ------------------------------------------------------------------ HiddenState
@pytest.mark.parametrize(
    ("value", "kind"),
    [
        ({"a": jnp.zeros(2)}, "dict"),
        ([jnp.zeros(2), jnp.ones(2)], "list"),
        ((jnp.zeros(2),), "tuple"),
        ("text", "str"),
        (None, "NoneType"),
    ],
)
def test_hidden_state_rejects_non_array_values(value, kind):
    with pytest.raises(TypeError) as info:
        sg.HiddenState(value, name="h")
    msg = str(info.value)
    assert "HiddenState 'h'" in msg
    assert "single array" in msg
    assert f"got {kind}" in msg
    assert "Fix: use ShortTermState" in msg


@pytest.mark.parametrize("bad", [{"a": jnp.zeros(2)}, [jnp.zeros(2)], (jnp.zeros(2),)])
def test_hidden_state_rejects_container_writes_and_keeps_its_value(bad):
    old = jnp.zeros(2)
    h = sg.HiddenState(old, name="h")
    with pytest.raises(TypeError, match=r"HiddenState 'h'.*single array"):
        h.value = bad
    assert h.value is old
    # also while a trace is open (the slow path)
    with sg.StateTrace(), pytest.raises(TypeError, match="single array"):
        h.value = bad
    assert h.value is old


def test_hidden_state_accepts_array_writes():
    h = sg.HiddenState(jnp.zeros((2, 3)), name="h")
    h.value = jnp.ones((2, 3))
    h.value = np.ones((4,))  # outside traces, a new shape is allowed
    assert h.value.shape == (4,)


def test_other_states_accept_pytrees():
    tree = {"w": jnp.ones((2, 2)), "b": [jnp.zeros(2), np.ones(1)]}
    for cls in PYTREE_CLASSES:
        assert cls(tree).value is tree


# ------------------------------------------------------------------ repr
@pytest.mark.parametrize("cls", STATE_CLASSES)
def test_repr_shows_class_name_shape_and_dtype(cls):
    r = repr(cls(jnp.zeros((2, 3), jnp.float32), name="w"))
    assert r == f"{cls.__name__}(name='w', value=f32[2,3])"


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (np.zeros(4, np.int32), "i32[4]"),
        (jnp.zeros((), jnp.bool_), "bool[]"),
        (np.zeros((1, 2), np.float16), "f16[1,2]"),
        (np.zeros(3, np.uint8), "u8[3]"),
        (jnp.zeros(2, jnp.complex64), "c64[2]"),
    ],
)
def test_repr_dtypes(value, shown):
    assert repr(sg.State(value)) == f"State(name=None, value={shown})"


def test_repr_of_a_pytree_value():
    s = sg.ShortTermState({"w": jnp.zeros((2, 3)), "b": jnp.zeros(3)}, name="layer")
    r = repr(s)
    assert r.startswith("ShortTermState(name='layer', value=")
    assert "'w': f32[2,3]" in r and "'b': f32[3]" in r
    # no array contents
    assert "0." not in r


def test_repr_never_shows_array_contents():
    r = repr(sg.State(jnp.arange(1000.0), name="big"))
    assert r == "State(name='big', value=f32[1000])"


def _assert_tracer_free(text):
    for bad in ("Tracer", "Traced<", "JaxprTrace", "BatchTrace", "ShapedArray"):
        assert bad not in text, text


def test_repr_of_a_state_holding_a_tracer_inside_a_lift_trace():
    w = sg.ParamState(jnp.zeros((2, 3)), name="w")
    seen = {}

    def f(x):
        with LiftTrace():
            w.value  # lifted: w now holds a tracer
            seen["read"] = repr(w)
            w.value = w.value * x
            seen["written"] = repr(w)
        return x

    jax.make_jaxpr(f)(2.0)
    for text in seen.values():
        assert text.startswith("ParamState(name='w', value=f32[2,3]")
        assert "traced" in text
        _assert_tracer_free(text)
    assert repr(w) == "ParamState(name='w', value=f32[2,3])"


def test_repr_of_a_state_created_with_a_tracer_inside_jit():
    seen = {}

    def f(x):
        seen["repr"] = repr(sg.HiddenState(x, name="tmp"))
        return x

    jax.jit(f)(jnp.zeros(5))
    assert seen["repr"].startswith("HiddenState(name='tmp', value=f32[5]")
    _assert_tracer_free(seen["repr"])


def test_repr_of_a_vmap_tracer():
    seen = {}

    def f(x):
        seen["repr"] = repr(sg.State(x, name="row"))
        return x

    jax.vmap(f)(jnp.zeros((4, 3)))
    assert "f32[3]" in seen["repr"]
    _assert_tracer_free(seen["repr"])


# ------------------------------------------------------------------ properties
@settings(max_examples=25, deadline=None)
@given(cls=st.sampled_from(PYTREE_CLASSES), first=pytrees, second=pytrees)
def test_value_round_trip_of_random_pytrees(cls, first, second):
    s = cls(first, name="s")
    assert s.value is first
    assert_tree_equal(s.value, first)
    s.value = second  # outside traces any structure may be written
    assert s.value is second
    text = repr(s)
    assert text.startswith(f"{cls.__name__}(name='s', value=")


@settings(max_examples=25, deadline=None)
@given(x=np_arrays)
def test_hidden_state_round_trip_of_random_arrays(x):
    h = sg.HiddenState(x, name="h")
    assert h.value is x
    y = jnp.asarray(x)
    h.value = y
    assert h.value is y
    dims = ",".join(str(d) for d in x.shape)
    assert f"[{dims}]" in repr(h)


@settings(max_examples=25, deadline=None)
@given(tree=pytrees)
def test_hidden_state_rejects_every_container(tree):
    wrapped = {"x": tree}
    with pytest.raises(TypeError, match="single array"):
        sg.HiddenState(wrapped)
