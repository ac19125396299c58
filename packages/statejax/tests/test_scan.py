"""statejax.scan against jax.lax.scan."""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj
from stategraph.extend import has_tracer

SETTINGS = settings(max_examples=8, deadline=None)


_MODELS: dict = {}


def _scan_model(width):
    """One model per width, shared by the examples (the body is traced once per signature)."""
    if width not in _MODELS:
        h = sg.ShortTermState(jnp.zeros(width), name="h")
        w = sg.ParamState(jnp.linspace(0.1, 0.9, width), name="w")

        def f(c, x):
            h.value = jnp.tanh(w.value * h.value + x)
            return c + h.value.sum(), h.value * 2

        def ref(c, x):
            c0, h0 = c
            h1 = jnp.tanh(jnp.linspace(0.1, 0.9, width) * h0 + x)
            return (c0 + h1.sum(), h1), h1 * 2

        _MODELS[width] = h, w, f, ref
    return _MODELS[width]


@SETTINGS
@given(
    length=st.integers(0, 7),
    width=st.integers(1, 3),
    reverse=st.booleans(),
    unroll=st.sampled_from([1, 2, True]),
)
def test_scan_matches_lax_scan(length, width, reverse, unroll):
    h, w, f, ref = _scan_model(width)
    h.value = jnp.zeros(width)
    xs = jnp.arange(length * width, dtype=jnp.float32).reshape(length, width) / 7.0
    carry, ys = sj.scan(f, jnp.float32(0.0), xs, reverse=reverse, unroll=unroll)
    (r_c, r_h), r_ys = jax.lax.scan(
        ref, (jnp.float32(0.0), jnp.zeros(width)), xs, reverse=reverse, unroll=unroll
    )
    np.testing.assert_allclose(carry, r_c, rtol=1e-5)
    np.testing.assert_allclose(ys, r_ys, rtol=1e-5)
    np.testing.assert_allclose(h.value, r_h, rtol=1e-5)
    np.testing.assert_allclose(w.value, jnp.linspace(0.1, 0.9, width))


def test_scan_pytree_xs_and_none_ys():
    s = sg.ShortTermState({"a": jnp.zeros(2), "b": jnp.zeros(())}, name="s")
    xs = {"u": jnp.ones((4, 2)), "v": jnp.arange(4.0)}

    def f(c, x):
        s.value = {"a": s.value["a"] + x["u"], "b": s.value["b"] + x["v"]}
        return c, None

    c, ys = sj.scan(f, (), xs)
    assert c == () and ys is None
    np.testing.assert_allclose(s.value["a"], [4.0, 4.0])
    np.testing.assert_allclose(s.value["b"], 6.0)


def test_scan_xs_none_with_length_and_write_only_state():
    last = sg.ShortTermState(jnp.zeros(()), name="last")  # written, never read

    def f(c, _):
        last.value = c * 10
        return c + 1, c

    c, ys = sj.scan(f, jnp.float32(0.0), None, length=5)
    assert float(c) == 5.0 and ys.tolist() == [0, 1, 2, 3, 4]
    assert float(last.value) == 40.0


def test_scan_eager_calls_trace_once():
    calls = [0]
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def f(c, x):
        calls[0] += 1
        acc.value = acc.value + x
        return c, x

    xs = jnp.arange(3.0)
    for _ in range(6):
        sj.scan(f, jnp.float32(0.0), xs)
    assert calls[0] == 1
    assert float(acc.value) == 6 * 3.0


def test_scan_sees_state_changed_outside_between_calls():
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")
    k = sg.ParamState(jnp.float32(1.0), name="k")

    def f(c, x):
        acc.value = acc.value + k.value * x
        return c, None

    xs = jnp.ones(2)
    sj.scan(f, (), xs)
    k.value = jnp.float32(10.0)
    acc.value = jnp.float32(100.0)
    sj.scan(f, (), xs)
    assert float(acc.value) == 120.0


def test_scan_inside_jit_matches_eager():
    h = sg.ShortTermState(jnp.ones(3), name="h")

    def f(c, x):
        h.value = 0.9 * h.value + x
        return c + x, h.value.sum()

    xs = jnp.linspace(0, 1, 5)
    c1, ys1 = sj.jit(lambda xs: sj.scan(f, 0.0, xs))(xs)
    h1 = h.value
    h.value = jnp.ones(3)
    c2, ys2 = sj.scan(f, 0.0, xs)
    np.testing.assert_allclose(c1, c2)
    np.testing.assert_allclose(ys1, ys2)
    np.testing.assert_allclose(h1, h.value)


def test_weak_and_strong_state_types_in_the_carry():
    weak = sg.State(0.0, name="weak")
    strong = sg.State(jnp.float32(1.0), name="strong")

    def f(c, x):
        weak.value = weak.value + x  # weak in, strong out
        strong.value = 2.0  # strong in, weak (Python float) written
        return c, None

    sj.scan(f, (), jnp.ones(3, jnp.float32))
    assert float(weak.value) == 3.0 and weak.value.dtype == jnp.float32
    assert float(strong.value) == 2.0 and not jax.typeof(strong.value).weak_type


def test_scan_argument_errors():
    with pytest.raises(ValueError, match="pass length"):
        sj.scan(lambda c, x: (c, x), 0.0, None)
    with pytest.raises(ValueError, match=r"xs\['b'\] is a scalar"):
        sj.scan(lambda c, x: (c, x), 0.0, {"a": jnp.ones(2), "b": jnp.float32(1.0)})
    with pytest.raises(ValueError, match="different leading sizes"):
        sj.scan(lambda c, x: (c, x), 0.0, (jnp.ones(2), jnp.ones(3)))
    with pytest.raises(ValueError, match="length=4"):
        sj.scan(lambda c, x: (c, x), 0.0, jnp.ones(3), length=4)
    with pytest.raises(TypeError, match="pair"):
        sj.scan(lambda c, x: c, 0.0, jnp.ones(3))
    with pytest.raises(TypeError, match="callable"):
        sj.scan(3, 0.0, jnp.ones(3))


def test_scan_body_error_is_all_or_nothing():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    r = sg.ParamState(jnp.ones(2), name="r")
    before_s, before_r = s.value, r.value

    def f(c, x):
        s.value = s.value + r.value * x
        raise RuntimeError("inside scan")

    with pytest.raises(RuntimeError, match="inside scan"):
        sj.scan(f, 0.0, jnp.ones(3))
    assert s.value is before_s and r.value is before_r
    assert not has_tracer(s.value) and not has_tracer(r.value)


def test_states_passed_as_carry_are_rejected():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    with pytest.raises(TypeError, match="States must not be passed"):
        sj.scan(lambda c, x: (c, x), s, jnp.ones(3))


# jax.extend.core.subjaxprs is new in JAX 0.10; older JAX (down to the floor) has it in
# jax.core.
_subjaxprs = getattr(jax.extend.core, "subjaxprs", None) or jax.core.subjaxprs


def _find_eqns(jaxpr, name):
    found = [e for e in jaxpr.eqns if e.primitive.name == name]
    for sub in _subjaxprs(jaxpr):
        found += _find_eqns(sub, name)
    return found


def test_written_states_are_carried_and_read_only_states_are_invariant():
    h = sg.ShortTermState(jnp.zeros(3), name="h")
    w = sg.ParamState(jnp.ones(3), name="w")
    big = sg.ParamState(jnp.ones((4, 4)), name="big")

    def f(c, x):
        h.value = h.value * w.value + x + big.value.sum()
        return c + 1, None

    jaxpr, states = sj.make_jaxpr(lambda xs: sj.scan(f, jnp.int32(0), xs))(jnp.ones((5, 3)))
    (eqn,) = _find_eqns(jaxpr.jaxpr, "scan")
    carried = [v.aval.shape for v in eqn.invars[eqn.params["num_consts"] :]]
    assert eqn.params["num_carry"] == 2  # the user's carry and h
    assert carried[:2] == [(), (3,)]
    consts = [v.aval.shape for v in eqn.invars[: eqn.params["num_consts"]]]
    assert sorted(consts) == [(3,), (4, 4)]  # w and big: loop invariants
    assert {s.name for s in states} == {"h", "w", "big"}


def test_carry_type_error_from_jax_leaves_states_untouched():
    s = sg.ShortTermState(jnp.ones(2), name="s")
    before = s.value

    def f(c, x):
        s.value = s.value + x
        return jnp.ones(3), None  # the carry changes shape

    with pytest.raises(TypeError, match="carry"):
        sj.scan(f, jnp.ones(2), jnp.ones((4, 2)))
    assert s.value is before and not has_tracer(s.value)
