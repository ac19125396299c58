"""Errors of the core transforms: bad arguments, misuse, and all-or-nothing failures."""

from __future__ import annotations

import importlib.metadata

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
from statediff._src import units_hook
from stategraph.extend import describe

TRANSFORMS = {
    "jacfwd": sd.jacfwd,
    "jacrev": sd.jacrev,
    "jacobian": sd.jacobian,
    "grad": sd.grad,
    "vector_grad": sd.vector_grad,
    "hessian": sd.hessian,
}
NAMES = list(TRANSFORMS)
# The name each transform uses in its messages (jacobian is jacrev).
API = {name: f"statediff.{'jacrev' if name == 'jacobian' else name}" for name in NAMES}
SCALAR_OUTPUT = {"grad", "hessian"}


def snapshot(*states):
    return [(s, s.value) for s in states]


def assert_unchanged(snap):
    """Every state holds exactly the object it held before, and never a tracer."""
    for state, before in snap:
        assert not isinstance(state.value, jax.core.Tracer)
        assert state.value is before, f"{state!r} was changed by a failing call"


@pytest.fixture
def states():
    return (
        sg.ParamState(jnp.array([1.0, -2.0, 0.5]), name="w"),
        sg.ShortTermState(jnp.zeros(3), name="h"),
    )


def writing_fn(states, name):
    """Writes ``h``, reads ``w``; scalar output for grad/hessian, vector otherwise."""
    w, h = states

    def f(x, y):
        h.value = w.value * x + y
        out = h.value**2
        return out.sum() if name in SCALAR_OUTPUT else out

    return f


# --------------------------------------------------------------- grad_states
@pytest.mark.parametrize(
    ("bad", "where"),
    [
        (lambda w: w.value, "grad_states"),
        (lambda w: [w, w.value], "[1]"),
        (lambda w: {"a": {"b": 3.0}, "w": w}, "['a']['b']"),
        (lambda w: (w, [None, "w"]), "[1][1]"),
    ],
    ids=["array", "list", "nested-dict", "nested-str"],
)
@pytest.mark.parametrize("name", NAMES)
def test_non_state_in_grad_states_is_a_type_error_at_construction(states, name, bad, where):
    w = states[0]
    with pytest.raises(TypeError, match="grad_states") as info:
        TRANSFORMS[name](lambda x: w.value * x, grad_states=bad(w))
    msg = str(info.value)
    assert msg.startswith(API[name])
    assert where in msg


def test_non_state_in_grad_states_of_gradient_transform(states):
    with pytest.raises(TypeError, match=r"\['w'\]"):
        sd.GradientTransform(lambda x: x, jax.jacfwd, grad_states={"w": 1.0})


@pytest.mark.parametrize("empty", [[], {}, ()], ids=["list", "dict", "tuple"])
def test_grad_states_without_any_state(empty):
    with pytest.raises(ValueError, match="holds no State"):
        sd.jacfwd(lambda x: x, grad_states=empty)


@pytest.mark.parametrize("name", NAMES)
def test_a_state_listed_twice_in_grad_states(states, name):
    w = states[0]
    with pytest.raises(ValueError, match="twice") as info:
        TRANSFORMS[name](lambda: w.value, grad_states={"a": w, "b": [states[1], w]})
    assert "name='w'" in str(info.value)
    assert "['a']" in str(info.value) and "['b'][1]" in str(info.value)


def test_non_callable_is_a_type_error():
    with pytest.raises(TypeError, match="expected a callable"):
        sd.jacfwd(3.0)
    with pytest.raises(TypeError, match="expected a callable"):
        sd.GradientTransform("f", jax.jacfwd)


# ------------------------------------------------------------------- argnums
BAD_ARGNUMS = [-1, True, (0, -2), (0, True), (), (1, 1), (0, 1.0)]


@pytest.mark.parametrize("argnums", BAD_ARGNUMS, ids=repr)
@pytest.mark.parametrize("with_states", [False, True], ids=["args-only", "with-states"])
@pytest.mark.parametrize("name", NAMES)
def test_invalid_argnums_quote_the_users_own_spelling(states, name, with_states, argnums):
    kwargs = {"grad_states": states[0]} if with_states else {}
    with pytest.raises(ValueError, match="argnums") as info:
        TRANSFORMS[name](lambda x, y: x * y, argnums=argnums, **kwargs)
    assert f"argnums={argnums!r}" in str(info.value)
    assert str(info.value).startswith(API[name])


def test_argnums_of_the_wrong_type():
    with pytest.raises(TypeError, match="argnums"):
        sd.grad(lambda x: x, argnums=1.5)
    with pytest.raises(ValueError, match="argnums='0'"):
        sd.grad(lambda x: x, argnums="0")


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_argnums_with_grad_states_quote_the_users_argnums(states, name):
    f = writing_fn(states, name)
    snap = snapshot(*states)
    with pytest.raises(ValueError, match="argnums") as info:
        TRANSFORMS[name](f, grad_states=states[0], argnums=(0, 5))(1.0, jnp.ones(3))
    msg = str(info.value)
    assert "(0, 5)" in msg and "positional argument 5" in msg
    assert "6" not in msg, "the internally shifted position leaked into the message"
    assert_unchanged(snap)


@pytest.mark.parametrize("name", NAMES)
def test_out_of_range_argnums_without_grad_states(states, name):
    f = writing_fn(states, name)
    snap = snapshot(*states)
    with pytest.raises(ValueError, match=r"argnums=2\b") as info:
        TRANSFORMS[name](f, argnums=2)(1.0, jnp.ones(3))
    assert "3" not in str(info.value)
    assert_unchanged(snap)


def test_default_argnums_are_quoted_as_the_default(states):
    """With grad_states=None the user wrote no argnums: the message says 0 is the default."""
    f = writing_fn(states, "jacfwd")
    with pytest.raises(ValueError, match=r"argnums=0 \(the default\)"):
        sd.jacfwd(f)()
    with pytest.raises(TypeError, match=r"positional argument 0 \(argnums=0 \(the default\)\)"):
        sd.jacfwd(f)(jnp.array(1), jnp.ones(3))


# ------------------------------------------------------------------- has_aux
def _returns(kind, value):
    return {
        "array": value,
        "triple": (value, value, value),
        "dict": {"a": value, "b": value},
        "single": (value,),
    }[kind]


@pytest.mark.parametrize("kind", ["array", "triple", "dict", "single"])
@pytest.mark.parametrize("name", NAMES)
def test_has_aux_without_a_pair_is_a_type_error(states, name, kind):
    w, h = states

    def f(x):
        h.value = w.value * x
        out = (h.value**2).sum() if name in SCALAR_OUTPUT else h.value
        return _returns(kind, out)

    snap = snapshot(*states)
    with pytest.raises(TypeError, match="has_aux=True") as info:
        TRANSFORMS[name](f, grad_states=w, has_aux=True)(2.0)
    # The output is described in plain words (shapes and containers), never as a PyTreeDef.
    assert "PyTreeDef" not in str(info.value)
    shown = describe(jax.eval_shape(lambda: _returns(kind, jnp.zeros(
        () if name in SCALAR_OUTPUT else (3,)))))
    assert f"returned {shown}" in str(info.value)
    assert_unchanged(snap)


def test_has_aux_accepts_a_list_pair(states):
    w = states[0]
    grads, aux = sd.grad(lambda x: [(w.value * x).sum(), x], grad_states=w, has_aux=True)(2.0)
    np.testing.assert_allclose(grads, jnp.full(3, 2.0))
    np.testing.assert_allclose(aux, 2.0)


# ------------------------------------------------------------ integer inputs
@pytest.mark.parametrize("name", NAMES)
def test_integer_argument_is_a_type_error(states, name):
    f = writing_fn(states, name)
    snap = snapshot(*states)
    with pytest.raises(TypeError, match="int32") as info:
        TRANSFORMS[name](f, argnums=1)(1.0, jnp.array([1, 2, 3]))
    assert "positional argument 1" in str(info.value)
    assert_unchanged(snap)


@pytest.mark.parametrize("name", NAMES)
def test_integer_grad_state_is_a_type_error(name):
    n = sg.ParamState(jnp.array([1, 2, 3]), name="count")
    snap = snapshot(n)

    def f(x):
        out = n.value * x
        return out.sum() if name in SCALAR_OUTPUT else out

    with pytest.raises(TypeError, match="int32") as info:
        TRANSFORMS[name](f, grad_states=n)(2.0)
    assert "count" in str(info.value)
    assert_unchanged(snap)


@pytest.mark.parametrize("name", ["jacrev", "grad"])
def test_allow_int_matches_jax(states, name):
    w = states[0]
    k = jnp.array([1, 2, 3])

    def pure(wv, x, k):
        out = wv * x * k
        return out.sum() if name == "grad" else out

    sd_t, jax_t = {"jacrev": (sd.jacrev, jax.jacrev), "grad": (sd.grad, jax.grad)}[name]
    got = sd_t(lambda x, k: pure(w.value, x, k), grad_states=w, argnums=(0, 1), allow_int=True)(
        2.0, k
    )
    var = jax_t(pure, argnums=0)(w.value, 2.0, k)
    args = jax_t(pure, argnums=(1, 2), allow_int=True)(w.value, 2.0, k)
    assert jax.tree.structure(got) == jax.tree.structure((var, args))
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves((var, args)), strict=True):
        assert a.dtype == e.dtype and a.shape == e.shape
        if e.dtype != jax.dtypes.float0:
            np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def test_complex_input_needs_holomorphic(states):
    c = sg.ParamState(jnp.array([1.0 + 2.0j, -0.5j]), name="c")
    with pytest.raises(TypeError, match="holomorphic=True") as info:
        sd.jacfwd(lambda: c.value**2, grad_states=c)()
    assert "'c'" in str(info.value) and "complex64" in str(info.value)
    got = sd.jacfwd(lambda: c.value**2, grad_states=c, holomorphic=True)()
    np.testing.assert_allclose(got, jax.jacfwd(lambda v: v**2, holomorphic=True)(c.value))


# --------------------------------------------------------------- check_states
@pytest.mark.parametrize("name", NAMES)
def test_untouched_grad_state_is_a_value_error(states, name):
    unused = sg.ParamState(jnp.ones(2), name="unused")
    f = writing_fn(states, name)
    snap = snapshot(*states, unused)
    with pytest.raises(ValueError, match="never reads or writes") as info:
        TRANSFORMS[name](f, grad_states=[states[0], unused])(2.0, jnp.ones(3))
    msg = str(info.value)
    assert "name='unused'" in msg
    assert "touched" in msg and "name='w'" in msg and "name='h'" in msg
    assert "check_states=False" in msg
    assert_unchanged(snap)


@pytest.mark.parametrize("name", ["jacfwd", "grad", "hessian"])
def test_untouched_grad_state_with_check_states_false_gives_zeros(states, name):
    unused = sg.ParamState(jnp.ones(2), name="unused")
    w = states[0]
    f = writing_fn(states, name)

    def pure(gs, x, y):
        out = (gs["w"] * x + y) ** 2
        return out.sum() if name in SCALAR_OUTPUT else out

    sd_t = TRANSFORMS[name]
    got = sd_t(f, grad_states={"w": w, "unused": unused}, check_states=False)(2.0, jnp.ones(3))
    jax_t = {"jacfwd": jax.jacfwd, "grad": jax.grad, "hessian": jax.hessian}[name]
    expected = jax_t(pure)({"w": w.value, "unused": unused.value}, 2.0, jnp.ones(3))
    assert jax.tree.structure(got) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(got), jax.tree.leaves(expected), strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)
    if name == "grad":
        np.testing.assert_array_equal(got["unused"], jnp.zeros(2))


def test_a_state_only_written_counts_as_touched():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        w.value = x * 3.0
        return (w.value**2).sum()

    g = sd.grad(f, grad_states=w, argnums=0)(jnp.array([1.0, -1.0]))
    np.testing.assert_array_equal(g[0], jnp.zeros(2))  # the entry value is never used
    np.testing.assert_allclose(g[1], 18.0 * jnp.array([1.0, -1.0]))
    np.testing.assert_allclose(w.value, jnp.array([3.0, -3.0]))


# ------------------------------------------------------------- all or nothing
@pytest.mark.parametrize("name", NAMES)
def test_exception_in_the_body_leaves_states_unchanged(states, name):
    w, h = states
    other = sg.LongTermState(jnp.arange(3.0), name="other")

    def f(x):
        h.value = w.value * x
        other.value = other.value + h.value
        if x.ndim == 1:
            raise RuntimeError("boom")
        out = h.value + other.value
        return out.sum() if name in SCALAR_OUTPUT else out

    t = TRANSFORMS[name](f, grad_states=[w, other], argnums=0)
    snap = snapshot(w, h, other)
    with pytest.raises(RuntimeError, match="boom"):
        t(jnp.ones(3))
    assert_unchanged(snap)


@pytest.mark.parametrize("name", ["grad", "jacrev"])
def test_jax_rejecting_the_output_leaves_states_unchanged(states, name):
    w, h = states

    def f(x):
        h.value = w.value * x
        if name == "grad":
            return h.value  # a vector: grad needs a scalar
        return (h.value > 0).astype(jnp.int32)  # jacrev needs a real-valued output

    snap = snapshot(*states)
    with pytest.raises(TypeError):
        TRANSFORMS[name](f, grad_states=w)(2.0)
    assert_unchanged(snap)


def test_failing_call_after_successful_ones(states):
    """A later failing signature does not undo or corrupt the earlier write-backs."""
    w, h = states
    f = writing_fn(states, "jacfwd")
    t = sd.jacfwd(f, grad_states=w)
    t(2.0, jnp.ones(3))
    np.testing.assert_allclose(h.value, w.value * 2.0 + 1.0)
    snap = snapshot(w, h)
    with pytest.raises(TypeError):
        t(2.0, jnp.ones(4))  # shape mismatch while tracing the new signature
    assert_unchanged(snap)
    t(3.0, jnp.ones(3))  # the cached signature still works
    np.testing.assert_allclose(h.value, w.value * 3.0 + 1.0)


# ----------------------------------------------------------------- units
@pytest.fixture
def no_units_backend(monkeypatch):
    """Simulate an environment without statediff-units (it may be installed here)."""
    monkeypatch.setattr(units_hook, "_BACKEND", [])
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [])


@pytest.mark.parametrize("name", NAMES)
def test_unit_aware_without_statediff_units(no_units_backend, states, name):
    w = states[0]
    with pytest.raises(sd.UnitsNotInstalledError) as info:
        TRANSFORMS[name](lambda x: w.value * x, grad_states=w, unit_aware=True)
    assert isinstance(info.value, ImportError)
    assert "pip install statediff-units" in str(info.value)
    assert f"{API[name]}(" in str(info.value)
    # The decorator-factory form fails the same way once it gets the function.
    decorator = TRANSFORMS[name](grad_states=w, unit_aware=True)
    with pytest.raises(sd.UnitsNotInstalledError, match="pip install statediff-units"):
        decorator(lambda x: w.value * x)


def test_units_backend_registry_loads_entry_points_once(no_units_backend, monkeypatch):
    calls = []

    class Backend:
        def make(self, kind, func, **options):
            calls.append(kind)
            return func

    class Entry:
        def load(self):
            sd.register_units_backend(Backend())

    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **kw: [Entry()])
    f = lambda x: x  # noqa: E731
    assert sd.jacrev(f, unit_aware=True) is f
    assert calls == ["jacrev"]
    with pytest.raises(TypeError, match="make"):
        sd.register_units_backend(object())


class TestQuantities:
    """A brainunit Quantity reaching a derivative without unit_aware=True."""

    @pytest.fixture(autouse=True)
    def _brainunit(self):
        self.u = pytest.importorskip("brainunit")

    @pytest.mark.parametrize("name", NAMES)
    def test_quantity_in_a_grad_state(self, name):
        q = sg.ParamState(jnp.array([1.0, 2.0]) * self.u.mV, name="voltage")
        snap = snapshot(q)

        def f(x):
            out = q.value.mantissa * x
            return out.sum() if name in SCALAR_OUTPUT else out

        with pytest.raises(TypeError, match="unit_aware=True") as info:
            TRANSFORMS[name](f, grad_states=q)(2.0)
        assert "voltage" in str(info.value)
        assert_unchanged(snap)

    @pytest.mark.parametrize("name", NAMES)
    def test_quantity_as_a_differentiated_argument(self, states, name):
        w = states[0]

        def f(x, t):
            out = w.value * x * t["dt"].mantissa
            return out.sum() if name in SCALAR_OUTPUT else out

        t = {"dt": jnp.array(0.1) * self.u.ms}
        with pytest.raises(TypeError, match="unit_aware=True") as info:
            TRANSFORMS[name](f, grad_states=w, argnums=1)(2.0, t)
        msg = str(info.value)
        assert "positional argument 1" in msg and "['dt']" in msg and "argnums=1" in msg

    @pytest.mark.parametrize("name", ["jacfwd", "grad"])
    def test_quantity_as_the_value(self, states, name):
        w, h = states

        def f(x):
            h.value = w.value * x
            out = (w.value * x).sum() if name in SCALAR_OUTPUT else w.value * x
            return out * self.u.mV

        snap = snapshot(w, h)
        with pytest.raises(TypeError, match="unit_aware=True") as info:
            TRANSFORMS[name](f, grad_states=w)(2.0)
        assert "value" in str(info.value)
        assert_unchanged(snap)
