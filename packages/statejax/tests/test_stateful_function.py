"""StatefulFunction: tracing, recorded states, the pure call and the stateful call.

Every result is compared with plain JAX on the equivalent pure function (the
state values passed as arguments), run under ``jax.jit``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj

SETTINGS = settings(max_examples=8, deadline=None)

DTYPES = (jnp.float32, jnp.int32, jnp.float16)
SHAPES = ((), (3,), (2, 3))


def assert_tree_equal(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape and a.dtype == e.dtype
        np.testing.assert_allclose(a, e, rtol=1e-3 if a.dtype == np.float16 else 1e-6)


# ------------------------------------------------------------------- random cases
@st.composite
def state_specs(draw, max_states=4):
    """Specs of states: (container, shape, dtype, mode) with mode in r / w / rw."""
    n = draw(st.integers(1, max_states))
    specs = []
    for _ in range(n):
        container = draw(st.sampled_from(["array", "dict", "tuple"]))
        shape = draw(st.sampled_from(SHAPES))
        dtype = draw(st.sampled_from(DTYPES))
        mode = draw(st.sampled_from(["r", "w", "rw"]))
        specs.append((container, shape, dtype, mode))
    order = draw(st.permutations(range(n)))
    return specs, list(order)


def make_value(container, shape, dtype, rng):
    def leaf(s):
        return jnp.asarray(rng.integers(-3, 4, size=s), dtype=dtype)

    if container == "array":
        return leaf(shape)
    if container == "dict":
        return {"a": leaf(shape), "b": leaf((2,))}
    return (leaf(shape), leaf(()))


def tree_sum(value):
    return sum(leaf.astype(jnp.float32).sum() for leaf in jax.tree.leaves(value))


class Case:
    """A stateful function over random states and its pure equivalent.

    The function accesses the states in ``order``: a read-only state is read,
    a write-only state is written (before any read) from ``x``, a read-write
    state is read and written.
    """

    def __init__(self, specs, order, seed):
        rng = np.random.default_rng(seed)
        self.specs = specs
        self.order = order
        self.states = [
            sg.State(make_value(c, s, d, rng), name=f"s{i}") for i, (c, s, d, _) in enumerate(specs)
        ]
        self.templates = [jax.eval_shape(lambda v: v, s.value) for s in self.states]
        self.runs = 0

    def step(self, i, value, x):
        """New value of state ``i`` (``value`` is None for a write-only state)."""
        total = x.sum()
        if value is None:
            return jax.tree.map(
                lambda t: jnp.full(t.shape, total).astype(t.dtype), self.templates[i]
            )
        return jax.tree.map(lambda leaf: leaf * 2 + total.astype(leaf.dtype), value)

    def fun(self, x, scale=1.0):
        self.runs += 1
        acc = x.sum() * scale
        for i in self.order:
            state, mode = self.states[i], self.specs[i][3]
            if mode == "w":
                state.value = self.step(i, None, x)
            else:
                acc = acc + tree_sum(state.value)
                if mode == "rw":
                    state.value = self.step(i, state.value, x)
        return {"acc": acc, "twice": (x * 2,)}

    def pure(self, values, x, scale=1.0):
        """``values`` indexed by state; returns (output, new values indexed by state)."""
        values = list(values)
        acc = x.sum() * scale
        for i in self.order:
            mode = self.specs[i][3]
            if mode == "w":
                values[i] = self.step(i, None, x)
            else:
                acc = acc + tree_sum(values[i])
                if mode == "rw":
                    values[i] = self.step(i, values[i], x)
        return {"acc": acc, "twice": (x * 2,)}, values

    def read(self):
        return [self.states[i] for i in self.order if self.specs[i][3] != "w"]

    def written(self):
        return [self.states[i] for i in self.order if self.specs[i][3] != "r"]

    def values(self):
        return [s.value for s in self.states]


def same_states(actual, expected):
    return len(actual) == len(expected) and all(
        a is e for a, e in zip(actual, expected, strict=True)
    )


# ------------------------------------------------------------- the stateful call
@SETTINGS
@given(case=state_specs(), seed=st.integers(0, 2**16), shape=st.sampled_from(SHAPES))
def test_call_matches_the_pure_function_and_writes_back(case, seed, shape):
    specs, order = case
    c = Case(specs, order, seed)
    sf = sj.StatefulFunction(c.fun)
    pure = jax.jit(c.pure)
    x = jnp.arange(np.prod(shape), dtype=jnp.float32).reshape(shape) / 4
    for _ in range(3):
        expected_out, expected_values = pure(c.values(), x)
        out = sf(x)
        assert_tree_equal(out, expected_out)
        for state, value in zip(c.states, expected_values, strict=True):
            assert_tree_equal(state.value, value)
    assert c.runs == 1


@SETTINGS
@given(case=state_specs(), seed=st.integers(0, 2**16))
def test_read_and_written_states_in_first_access_order(case, seed):
    specs, order = case
    c = Case(specs, order, seed)
    sf = sj.StatefulFunction(c.fun)
    x = jnp.ones(3)
    assert same_states(sf.read_states(x), c.read())
    assert same_states(sf.written_states(x), c.written())
    lifted = sf.trace(x)
    assert same_states(lifted.read_states, c.read())
    assert same_states(lifted.written_states, c.written())
    assert c.runs == 1


@SETTINGS
@given(case=state_specs(), seed=st.integers(0, 2**16))
def test_jaxpr_evaluates_to_the_pure_function(case, seed):
    specs, order = case
    c = Case(specs, order, seed)
    sf = sj.StatefulFunction(c.fun)
    x = jnp.linspace(-1.0, 1.0, 3)
    before = c.values()
    jaxpr = sf.jaxpr(x)
    # Inputs: argument leaves, then the leaves of the read states (first-read order).
    read_leaves = jax.tree.leaves([s.value for s in c.read()])
    assert len(jaxpr.in_avals) == 1 + len(read_leaves)
    flat = jax.core.eval_jaxpr(jaxpr.jaxpr, jaxpr.consts, x, *read_leaves)
    expected_out, expected_values = jax.jit(c.pure)(before, x)
    # Outputs: output leaves, then the leaves of the written states (first-write order).
    index = {id(s): i for i, s in enumerate(c.states)}
    written_expected = [expected_values[index[id(s)]] for s in c.written()]
    assert_tree_equal(flat, jax.tree.leaves((expected_out, written_expected)))
    # Tracing touches no state.
    for state, value in zip(c.states, before, strict=True):
        assert state.value is value


@SETTINGS
@given(case=state_specs(), seed=st.integers(0, 2**16), dtype=st.sampled_from(DTYPES))
def test_out_shapes_match_eval_shape_of_the_pure_function(case, seed, dtype):
    specs, order = case
    c = Case(specs, order, seed)
    sf = sj.StatefulFunction(c.fun)
    x = jnp.ones((2, 2), dtype)
    expected = jax.eval_shape(c.pure, c.values(), x)[0]
    assert sf.out_shapes(x) == expected
    assert sf.trace(x).out_shapes == expected
    assert sf.eval_shape(x) == expected


@SETTINGS
@given(case=state_specs(), seed=st.integers(0, 2**16))
def test_pure_call_touches_no_state(case, seed):
    specs, order = case
    c = Case(specs, order, seed)
    sf = sj.StatefulFunction(c.fun)
    x = jnp.arange(3.0)
    before = c.values()
    index = {id(s): i for i, s in enumerate(c.states)}
    read_values = [before[index[id(s)]] for s in sf.read_states(x)]
    # Other values than the states hold: the pure call must use these.
    read_values = [jax.tree.map(lambda v: v + 1, v) for v in read_values]
    out, written = sf.pure(read_values, x)
    given_values = list(before)
    for s, v in zip(sf.read_states(x), read_values, strict=True):
        given_values[index[id(s)]] = v
    expected_out, expected_values = jax.jit(c.pure)(given_values, x)
    assert_tree_equal(out, expected_out)
    assert_tree_equal(list(written), [expected_values[index[id(s)]] for s in c.written()])
    for state, value in zip(c.states, before, strict=True):
        assert state.value is value


def test_pure_composes_with_jax_transforms():
    w = sg.ParamState(jnp.array([1.0, 2.0, 3.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(3), name="h")

    def fun(x):
        h.value = jnp.tanh(h.value + w.value * x)
        return (h.value**2).sum()

    def pure(h_value, w_value, x):
        new_h = jnp.tanh(h_value + w_value * x)
        return (new_h**2).sum(), new_h

    sf = sj.StatefulFunction(fun)
    assert same_states(sf.read_states(0.5), [h, w])

    def via_sf(h_value, w_value, x):
        out, (new_h,) = sf.pure([h_value, w_value], x)
        return out, new_h

    args = (jnp.full(3, 0.1), w.value, 0.5)
    grad = jax.jit(jax.grad(lambda *a: via_sf(*a)[0], argnums=(0, 1, 2)))(*args)
    expected = jax.jit(jax.grad(lambda *a: pure(*a)[0], argnums=(0, 1, 2)))(*args)
    assert_tree_equal(grad, expected)
    batched = jax.vmap(via_sf, in_axes=(0, None, None))(jnp.ones((4, 3)), w.value, 0.5)
    assert_tree_equal(
        batched, jax.vmap(pure, in_axes=(0, None, None))(jnp.ones((4, 3)), w.value, 0.5)
    )
    np.testing.assert_array_equal(h.value, jnp.zeros(3))


def test_pure_with_static_and_keyword_arguments():
    w = sg.ParamState(jnp.arange(3.0), name="w")

    def fun(x, power, *, shift, mode="sum"):
        w.value = w.value**power + shift
        return getattr(w.value, mode)() * x

    def pure(w_value, x, power, shift, mode="sum"):
        new = w_value**power + shift
        return getattr(new, mode)() * x, new

    sf = sj.StatefulFunction(fun, static_argnums=1, static_argnames="mode")
    for power, mode in [(2, "sum"), (3, "max"), (2, "sum")]:
        out, (new,) = sf.pure([w.value], 2.0, power, shift=jnp.ones(3), mode=mode)
        e_out, e_new = jax.jit(pure, static_argnums=2, static_argnames="mode")(
            w.value, 2.0, power, jnp.ones(3), mode=mode
        )
        assert_tree_equal((out, new), (e_out, e_new))
        expected_w = e_new
        assert_tree_equal(sf(2.0, power, shift=jnp.ones(3), mode=mode), e_out)
        assert_tree_equal(w.value, expected_w)


def test_call_with_static_argnums_reading_states():
    # A static position is counted in the user's arguments, not after the state values.
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    b = sg.ParamState(jnp.ones(2), name="b")

    def fun(x, n, y):
        for _ in range(n):
            a.value = a.value + b.value * x + y
        return a.value.sum()

    def pure(a_value, b_value, x, n, y):
        for _ in range(n):
            a_value = a_value + b_value * x + y
        return a_value.sum(), a_value

    sf = sj.StatefulFunction(fun, static_argnums=(1,))
    ref = jax.jit(pure, static_argnums=3)
    for n in (1, 3, 1):
        e_out, e_a = ref(a.value, b.value, 2.0, n, 1.0)
        assert_tree_equal(sf(2.0, n, 1.0), e_out)
        assert_tree_equal(a.value, e_a)


def test_function_with_no_states():
    runs = []

    def fun(x, y):
        runs.append(1)
        return {"s": x + y, "p": x * y}

    sf = sj.StatefulFunction(fun)
    x, y = jnp.arange(3.0), jnp.ones(3)
    assert_tree_equal(sf(x, y), jax.jit(fun)(x, y))
    assert sf.read_states(x, y) == [] and sf.written_states(x, y) == []
    out, written = sf.pure([], x, y)
    assert written == ()
    assert_tree_equal(out, jax.jit(fun)(x, y))
    assert len(runs) == 2  # ours once, jax.jit's once


def test_abstract_arguments_share_the_signature_of_concrete_ones():
    w = sg.ParamState(jnp.ones(3), name="w")
    runs = []

    def fun(x):
        runs.append(1)
        w.value = w.value + x
        return w.value.sum()

    sf = sj.StatefulFunction(fun)
    spec = jax.ShapeDtypeStruct((3,), jnp.float32)
    assert sf.out_shapes(spec) == jax.ShapeDtypeStruct((), jnp.float32)
    assert same_states(sf.read_states(spec), [w])
    x = jnp.full(3, 2.0, jnp.float32)  # not weakly typed, as the spec
    out = sf(x)
    assert_tree_equal(out, jax.jit(lambda w_, x: (w_ + x).sum())(jnp.ones(3), x))
    assert len(runs) == 1


def test_method_through_the_descriptor_with_static_self():
    class Model:
        def __init__(self, k):
            self.w = sg.ParamState(jnp.full(2, float(k)), name=f"w{k}")

        def _step(self, x):
            self.w.value = self.w.value * x
            return self.w.value.sum()

        step = sj.StatefulFunction(_step, static_argnums=0)

    m1, m2 = Model(1), Model(2)
    for _ in range(2):
        for m in (m1, m2):
            before = m.w.value
            out = m.step(3.0)
            assert_tree_equal(out, jax.jit(lambda w: (w * 3.0).sum())(before))
            assert_tree_equal(m.w.value, before * 3.0)


# ------------------------------------------------------------------ wrong usage
def test_not_callable_is_a_type_error():
    with pytest.raises(TypeError, match="expected a callable"):
        sj.StatefulFunction(3)


@pytest.mark.parametrize("cached", [False, True])
def test_state_passed_as_positional_argument_names_its_index(cached):
    a = sg.ShortTermState(jnp.zeros(2), name="a")

    def fun(x, y):
        a.value = a.value + x
        return y

    sf = sj.StatefulFunction(fun)
    if cached:  # the compiled fast path must give the same error
        sf(1.0, 2.0)
    with pytest.raises(TypeError, match=r"positional argument 1 is ShortTermState\(name='a'"):
        sf(1.0, a)
    with pytest.raises(TypeError, match=r"positional argument 0\[1\]\['k'\] is ShortTermState"):
        sf((1.0, {"k": a}), 2.0)
    np.testing.assert_array_equal(a.value, jnp.full(2, 1.0 if cached else 0.0))


def test_state_passed_as_keyword_argument_names_it():
    a = sg.ShortTermState(jnp.zeros(2), name="a")
    sf = sj.StatefulFunction(lambda x, *, y: x + y)
    sf(1.0, y=2.0)
    with pytest.raises(TypeError, match=r"keyword argument 'y'\[0\] is ShortTermState"):
        sf(1.0, y=[a])
    with pytest.raises(TypeError, match="keyword argument 'y'"):
        sf.trace(1.0, y=a)


@pytest.mark.parametrize(
    ("output", "path"),
    [
        (lambda s, x: s, r"output is"),
        (lambda s, x: (x, s), r"output\[1\] is"),
        (lambda s, x: {"a": [x, s]}, r"output\['a'\]\[1\] is"),
    ],
)
def test_state_returned_names_the_output_path(output, path):
    a = sg.ShortTermState(jnp.zeros(2), name="a")

    def fun(x):
        a.value = a.value + x
        return output(a, x)

    sf = sj.StatefulFunction(fun)
    with pytest.raises(TypeError, match=path + r" ShortTermState\(name='a'"):
        sf(1.0)
    np.testing.assert_array_equal(a.value, jnp.zeros(2))
    assert not isinstance(a.value, jax.core.Tracer)


@pytest.mark.parametrize("cached", [False, True])
def test_non_array_argument_names_the_position_and_the_fix(cached):
    sf = sj.StatefulFunction(lambda x, y: x)
    if cached:
        sf(1.0, 2.0)
    with pytest.raises(TypeError, match=r"positional argument 1 is a object .*static_argnums=1"):
        sf(1.0, object())


# --------------------------------------------------------------- created states
def test_state_created_inside_is_poisoned_and_reading_it_explains_the_fix():
    made = []

    def fun(x):
        s = sg.State(x * 2, name="inner")
        s.value = s.value + 1  # read and written locally: not a state of the function
        made.append(s)
        return s.value

    sf = sj.StatefulFunction(fun)
    out = sf(jnp.arange(3.0))
    assert_tree_equal(out, jax.jit(lambda x: x * 2 + 1)(jnp.arange(3.0)))
    assert sf.read_states(jnp.arange(3.0)) == [] and sf.written_states(jnp.arange(3.0)) == []
    (s,) = made
    with pytest.raises(sg.TraceContextError, match="created inside a traced function") as err:
        s.value
    assert "Fix: create the state outside the transform" in str(err.value)
    assert not isinstance(s._value, jax.core.Tracer)
    s.value = jnp.ones(3)  # a concrete write makes it usable again
    np.testing.assert_array_equal(s.value, jnp.ones(3))


def test_state_created_inside_and_only_traced_holds_no_tracer():
    made = []

    def fun(x):
        made.append(sg.State(x + 1, name="tmp"))
        return x

    sj.StatefulFunction(fun).jaxpr(1.0)
    (s,) = made
    with pytest.raises(sg.TraceContextError):
        s.value


def test_call_inside_a_state_trace_records_its_states():
    w = sg.ParamState(jnp.ones(2), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    def fun(x):
        h.value = h.value + w.value * x
        return h.value

    sf = sj.StatefulFunction(fun)
    sf(1.0)  # cached: the fast path must still report the accesses
    with sg.StateTrace() as trace:
        out = sf(2.0)
    assert trace.read_states == (h, w)
    assert trace.written_states == (h,)
    assert_tree_equal(out, jnp.full(2, 3.0))
    assert_tree_equal(h.value, jnp.full(2, 3.0))


def test_repr_names_the_function():
    def my_step(x):
        return x

    sf = sj.StatefulFunction(my_step)
    sf(1.0)
    assert "my_step" in repr(sf) and "signatures=1" in repr(sf)
    assert sf.__name__ == "my_step"
