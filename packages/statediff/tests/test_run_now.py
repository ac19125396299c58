"""The run-now ``sd.vjp`` / ``sd.jvp`` / ``sd.linearize`` (brainstate's and JAX's conventions).

Each case is checked against ``jax.vjp`` / ``jax.jvp`` / ``jax.linearize`` on
the equivalent pure function, laid out as brainstate 0.5.4 lays its results
out (``vjp_fn`` with the default ``argnums=0`` returns the bare cotangent of
the first primal).
"""

from __future__ import annotations

import gc
import pathlib
import sys
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import stategraph as sg
import statejax as sj
from statediff._src import weak_cache
from statediff._src.vjp import _build as vjp_build

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from _ad_cases import KINDS, SHAPES, Case, assert_tree_close, rand, rand_like  # noqa: E402

VJP_ARGNUMS = [0, 1, -1, (0,), (1, 0), (0, 1), None]


def _vjp_reference(case, argnums, use_states, args, ct):
    """brainstate's layout of ``jax.vjp`` on the pure function."""
    n = len(args)
    if argnums is None:
        positions = ()
    else:
        items = (argnums,) if isinstance(argnums, int) else argnums
        positions = tuple(i % n for i in items)
    fn = case.pure_of(positions, args, use_states)
    primals = tuple(args[p] for p in positions)
    if use_states:
        y, pull = jax.vjp(fn, case.values(), *primals)
    else:
        y, pull = jax.vjp(fn, *primals)
    cts = pull(ct)
    arg_cts = cts[1:] if use_states else cts
    arg = arg_cts[0] if isinstance(argnums, int) else tuple(arg_cts)
    if not use_states:
        return y, arg
    if argnums is None:
        return y, cts[0]
    return y, (cts[0], arg)


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.sampled_from(VJP_ARGNUMS),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_vjp_matches_jax(kind, a_shape, b_shape, x_shape, argnums, use_states, seed):
    if argnums is None and not use_states:
        return  # nothing to differentiate: tested below
    case = Case(kind, a_shape, b_shape, seed)
    x, z = rand(case.rng, x_shape), rand(case.rng, (3,))
    ct = rand(case.rng, x_shape)
    want_y, want = _vjp_reference(case, argnums, use_states, (x, z), ct)
    gs = case.grad_states if use_states else None
    y, vjp_fn = sd.vjp(case.f, x, z, grad_states=gs, argnums=argnums)
    assert_tree_close(y, want_y)
    assert_tree_close(vjp_fn(ct), want)
    assert_tree_close(vjp_fn(ct), want)  # reusable
    y, vjp_fn = sd.vjp(case.f, x, z, grad_states=gs, argnums=argnums)  # cached transform
    assert_tree_close(vjp_fn(ct), want)
    inside = sj.jit(lambda x, z, ct: sd.vjp(case.f, x, z, grad_states=gs, argnums=argnums)[1](ct))
    assert_tree_close(inside(x, z, ct), want)
    assert float(case.count.value) == 3.0  # written back once per call
    assert case.traces <= 3  # traced once per signature, not per call


def test_vjp_default_argnums_is_the_bare_first_cotangent():
    def f(x, y):
        return jnp.sin(x) * y

    x, y = jnp.arange(3.0), jnp.array(2.0)
    out, vjp_fn = sd.vjp(f, x, y)
    want_out, want_fn = jax.vjp(f, x, y)
    assert_tree_close(out, want_out)
    assert_tree_close(vjp_fn(jnp.ones(3)), want_fn(jnp.ones(3))[0])  # not JAX's 1-tuple
    gx, gy = sd.vjp(f, x, y, argnums=(0, 1))[1](jnp.ones(3))
    assert_tree_close((gx, gy), want_fn(jnp.ones(3)))


def test_vjp_states_only():
    w = sg.ParamState(jnp.array([[1.0, 2.0], [3.0, 4.0]]), name="w")
    b = sg.ParamState(jnp.zeros(2), name="b")
    x = jnp.array([1.0, 1.0])

    def loss():
        return jnp.sum((x @ w.value + b.value) ** 2)

    def pure(wv, bv):
        return jnp.sum((x @ wv + bv) ** 2)

    out, vjp_fn = sd.vjp(loss, grad_states=[w, b])
    want = jax.grad(pure, argnums=(0, 1))(w.value, b.value)
    got = vjp_fn(1.0)
    assert isinstance(got, list)
    assert_tree_close(tuple(got), want)
    # argnums=None with primals: states only too.
    out, vjp_fn = sd.vjp(lambda s: loss() * s, 2.0, grad_states=w, argnums=None)
    assert_tree_close(vjp_fn(1.0), 2.0 * want[0])


def test_vjp_has_aux_and_write_back():
    counter = sg.ShortTermState(jnp.array(0.0), name="counter")

    def f(x):
        counter.value = counter.value + 1.0
        return jnp.sum(x**2), {"mean": jnp.mean(x)}

    x = jnp.array([1.0, 2.0])
    out, vjp_fn, aux = sd.vjp(f, x, has_aux=True)
    assert float(aux["mean"]) == 1.5 and float(out) == 5.0
    assert_tree_close(vjp_fn(1.0), 2 * x)
    assert float(counter.value) == 1.0


def test_vjp_full_jacobian_by_vmapping_the_pullback():
    def f(x):
        return jnp.array([jnp.sum(x), jnp.sum(x**2)])

    x = jnp.array([1.0, 2.0, 3.0])
    _, vjp_fn = sd.vjp(f, x)
    assert_tree_close(jax.vmap(vjp_fn)(jnp.eye(2)), jax.jacrev(f)(x))


def test_vjp_errors():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(ValueError, match=r"statediff.vjp: nothing to differentiate"):
        sd.vjp(lambda: 1.0)
    with pytest.raises(ValueError, match=r"statediff.vjp: nothing to differentiate.*argnums=None"):
        sd.vjp(lambda x: x, 1.0, argnums=None)
    with pytest.raises(ValueError, match=r"argnums=2 refers to positional argument 2"):
        sd.vjp(lambda x, y: x * y, 1.0, 2.0, argnums=2)
    with pytest.raises(ValueError, match=r"argnums=\(0, -3\) refers to positional argument -3"):
        sd.vjp(lambda x, y: x * y, 1.0, 2.0, argnums=(0, -3))
    with pytest.raises(ValueError, match="repeats a position"):
        sd.vjp(lambda x, y: x * y, 1.0, 2.0, argnums=(1, -1))
    with pytest.raises(TypeError, match=r"statediff.vjp: grad_states.*\[1\]"):
        sd.vjp(lambda: w.value.sum(), grad_states=[w, 1.0])
    with pytest.raises(ValueError, match="never reads or writes"):
        sd.vjp(lambda: 1.0, grad_states=w)
    with pytest.raises(TypeError, match="expected a callable"):
        sd.vjp(3.0, 1.0)


def test_vjp_failure_leaves_states_unchanged():
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    before = h.value

    def f(x):
        h.value = h.value + x
        return h.value.sum()  # not a pair

    with pytest.raises(TypeError, match="has_aux=True requires"):
        sd.vjp(f, 1.0, has_aux=True)
    assert h.value is before and not isinstance(h.value, jax.core.Tracer)


# ------------------------------------------------------- keyword arguments
def test_grad_states_transform_takes_keywords_and_argnums_keep_them_constant():
    """Without argnums the compiled call takes the target's parameters (by position or
    keyword, the same result); with argnums a keyword argument is not differentiated."""
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def loss(x, y):
        return jnp.sum(w.value * x * y)

    g = sd.grad(loss, grad_states=w)
    want = jax.grad(lambda wv, x, y: jnp.sum(wv * x * y))(w.value, 3.0, 2.0)
    for _ in range(2):
        assert_tree_close(g(3.0, 2.0), want)
        assert_tree_close(g(3.0, y=2.0), want)
        assert_tree_close(g(x=3.0, y=2.0), want)
    ga = sd.grad(loss, argnums=0)
    assert_tree_close(ga(3.0, y=2.0), jax.grad(lambda x, y: jnp.sum(w.value * x * y))(3.0, 2.0))
    with pytest.raises((TypeError, ValueError)):
        ga(x=3.0, y=2.0)  # as jax.grad: argnums=0 names a positional argument


# ---------------------------------------------------------------- the cache
def test_cache_holds_function_and_states_weakly():
    weak_cache.clear()
    w = sg.ParamState(jnp.ones(3), name="w")

    def f(x):
        return (w.value * x).sum()  # noqa: F821 (w is deleted below, on purpose)

    for _ in range(3):
        sd.vjp(f, 2.0, grad_states=w)
    assert weak_cache.size() == 1
    ref_f, ref_w = weakref.ref(f), weakref.ref(w)
    del f, w
    gc.collect()
    assert ref_f() is None and ref_w() is None
    assert weak_cache.size() == 0


def test_cache_of_bound_methods_holds_the_object_weakly():
    weak_cache.clear()

    class Model:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones(2), name="w")

        def loss(self, x):
            return (self.w.value * x).sum()

    m = Model()
    for _ in range(3):
        _, fn = sd.vjp(m.loss, 2.0, grad_states=m.w)
        assert_tree_close(fn(1.0), (jnp.full(2, 2.0), jnp.array(2.0, jnp.float32)))
    assert weak_cache.size() == 1
    ref = weakref.ref(m)
    del m, fn
    gc.collect()
    assert ref() is None and weak_cache.size() == 0


def test_cache_keys_containers_by_their_states():
    """A dict / list / nested container of grad_states hits one entry; another state misses."""
    weak_cache.clear()
    a = sg.ParamState(jnp.ones(2), name="a")
    b = sg.ParamState(jnp.full(2, 2.0), name="b")

    def f(x):
        return (a.value * b.value * x).sum()

    forms = [{"a": a, "b": b}, [a, b], (a, b), {"g": {"a": a}, "b": [b]}]
    for gs in forms:
        for _ in range(3):
            _, fn = sd.vjp(f, 3.0, grad_states=gs, argnums=None)
        ga, gb = jax.grad(lambda av, bv: (av * bv * 3.0).sum(), argnums=(0, 1))(a.value, b.value)
        want = {id(a): ga, id(b): gb}
        order = jax.tree.leaves(gs, is_leaf=lambda v: isinstance(v, sg.State))
        assert_tree_close(jax.tree.leaves(fn(1.0)), [want[id(s)] for s in order])
    assert weak_cache.size() == len(forms)
    # The same container object holding another state (mutated in place) is another entry.
    c = sg.ParamState(jnp.full(2, 5.0), name="c")
    gs = {"a": a, "b": b}
    sd.vjp(f, 3.0, grad_states=gs, argnums=None)
    gs["b"] = c
    with pytest.raises(ValueError, match="never reads or writes"):
        sd.vjp(f, 3.0, grad_states=gs, argnums=None)
    assert a.value.shape == (2,) and not isinstance(b.value, jax.core.Tracer)


def test_cache_is_bounded(monkeypatch):
    weak_cache.clear()
    monkeypatch.setattr(weak_cache, "MAX_ENTRIES", 4)
    funs = [lambda x, k=k: x * k for k in range(10)]
    for f in funs:
        sd.linearize(f, 1.0)
    assert weak_cache.size() == 4


def test_cache_evicts_the_least_recently_used(monkeypatch):
    weak_cache.clear()
    monkeypatch.setattr(weak_cache, "MAX_ENTRIES", 2)
    f1, f2, f3 = (lambda x: x * 1.0), (lambda x: x * 2.0), (lambda x: x * 3.0)
    options = (None, False, True)
    kept = weak_cache.cached(vjp_build, "vjp", f1, None, options)
    weak_cache.cached(vjp_build, "vjp", f2, None, options)
    assert weak_cache.cached(vjp_build, "vjp", f1, None, options) is kept  # f1 used last
    weak_cache.cached(vjp_build, "vjp", f3, None, options)  # evicts f2, not f1
    assert weak_cache.size() == 2
    assert weak_cache.cached(vjp_build, "vjp", f1, None, options) is kept
    # Every entry used since the last sweep: the newest entry still stays.
    weak_cache.cached(vjp_build, "vjp", f3, None, options)
    newest = weak_cache.cached(vjp_build, "vjp", f2, None, options)
    assert weak_cache.size() == 2
    assert weak_cache.cached(vjp_build, "vjp", f2, None, options) is newest


class _Annotation:
    pass


def test_run_now_signature_holds_nothing_of_the_user_and_keeps_python_errors():
    """The cached transform takes the function's positional parameters (not its annotations)."""
    weak_cache.clear()
    note = _Annotation()

    def f(x, y):
        return x * y

    f.__annotations__["x"] = note  # an annotation that is an object, not a string

    y, fn = sd.vjp(f, 2.0, 3.0, argnums=(0, 1))
    assert_tree_close(fn(1.0), (jnp.array(3.0), jnp.array(2.0)))
    with pytest.raises(TypeError, match=r"f\(\) missing 1 required positional argument"):
        sd.vjp(f, 2.0)
    with pytest.raises(TypeError, match=r"takes 2 positional arguments but 3 were given"):
        sd.linearize(f, 2.0, 3.0, 4.0)
    ref = weakref.ref(note)
    f.__annotations__.clear()
    del note
    gc.collect()
    assert ref() is None

    # Defaults, *args and keyword-only parameters keep the general signature.
    def g(x, *rest, scale=2.0):
        return x * scale + sum(rest)

    assert_tree_close(sd.linearize(g, 1.0, 2.0)[1](1.0, 1.0), jnp.array(3.0))
    assert_tree_close(sd.vjp(g, 1.0)[1](1.0), jnp.array(2.0))


# -------------------------------------------------------------------- jvp
@settings(max_examples=10, deadline=None)
@given(
    st.sampled_from(KINDS),
    st.sampled_from(SHAPES),
    st.sampled_from(SHAPES),
    st.booleans(),
    st.integers(0, 2**16),
)
def test_jvp_matches_jax(kind, a_shape, x_shape, use_states, seed):
    case = Case(kind, a_shape, (2,), seed)
    rng = case.rng
    x, z = rand(rng, x_shape), rand(rng, (3,))
    tx, tz = rand_like(rng, x), rand_like(rng, z)
    if use_states:
        ts = rand_like(rng, case.values())
        fn = case.pure_of((0, 1), (x, z), True)
        want = jax.jvp(fn, (case.values(), x, z), (ts, tx, tz))
        got = sd.jvp(case.f, (x, z), (tx, tz), grad_states=case.grad_states, state_tangents=ts)
    else:
        fn = case.pure_of((0, 1), (x, z), False)
        want = jax.jvp(fn, (x, z), (tx, tz))
        got = sd.jvp(case.f, [x, z], [tx, tz])
    assert_tree_close(got, want)
    got2 = sj.jit(lambda x, z: sd.jvp(case.f, (x, z), (tx, tz)))(x, z)
    assert_tree_close(got2[0], want[0])
    assert float(case.count.value) == 2.0
    assert case.traces <= 3


def test_jvp_has_aux_and_states_constant_by_default():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    n = sg.ShortTermState(jnp.array(0), name="n")

    def f(x):
        n.value = n.value + 1
        return w.value * x, {"x": x}

    y, ty, aux = sd.jvp(f, (3.0,), (1.0,), has_aux=True)
    assert_tree_close((y, ty), jax.jvp(lambda x: w.value * x, (3.0,), (1.0,)))
    assert float(aux["x"]) == 3.0 and int(n.value) == 1


def test_jvp_errors():
    w = sg.ParamState(jnp.ones(2), name="w")
    f = lambda x: w.value * x  # noqa: E731
    with pytest.raises(TypeError, match=r"statediff.jvp: primals must be a tuple"):
        sd.jvp(f, 1.0, (1.0,))
    with pytest.raises(TypeError, match=r"statediff.jvp: tangents must be a tuple"):
        sd.jvp(f, (1.0,), 1.0)
    with pytest.raises(ValueError, match=r"1 primal\(s\) but 2 tangent\(s\)"):
        sd.jvp(f, (1.0,), (1.0, 2.0))
    with pytest.raises(ValueError, match=r"tangent for positional argument 0.*shape \(3,\)"):
        sd.jvp(f, (1.0,), (jnp.ones(3),))
    with pytest.raises(TypeError, match="state_tangents were given, but grad_states is None"):
        sd.jvp(f, (1.0,), (1.0,), state_tangents=jnp.ones(2))


# -------------------------------------------------------------- linearize
def test_linearize_matches_jax():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x, z):
        return jnp.sin(w.value * x) * z

    pure = lambda wv, x, z: jnp.sin(wv * x) * z  # noqa: E731
    x, z = jnp.array(0.5), jnp.array(3.0)
    y, jvp_fn = sd.linearize(f, x, z)
    want_y, want_fn = jax.linearize(lambda x, z: pure(w.value, x, z), x, z)
    assert_tree_close(y, want_y)
    assert_tree_close(jvp_fn(1.0, 2.0), want_fn(1.0, 2.0))
    y, jvp_fn = sd.linearize(f, x, z, grad_states={"w": w})
    want_y, want_fn = jax.linearize(pure, w.value, x, z)
    tw = jnp.array([0.3, -1.0])
    assert_tree_close(jvp_fn(1.0, 2.0, state_tangents={"w": tw}), want_fn(tw, 1.0, 2.0))
    assert_tree_close(jvp_fn(0.0, 0.0, state_tangents={"w": tw}), want_fn(tw, 0.0, 0.0))


def test_linearize_has_aux_and_errors():
    y, jvp_fn, aux = sd.linearize(lambda x: (x**2, x + 1), 3.0, has_aux=True)
    assert float(jvp_fn(1.0)) == 6.0 and float(aux) == 4.0
    with pytest.raises(ValueError, match="got 2 tangent"):
        jvp_fn(1.0, 2.0)


def test_builder_classes_keep_the_configured_form():
    w = sg.ParamState(jnp.array(2.0), name="w")
    f_vjp = sd.VJPTransform(lambda x: w.value * x, grad_states=w)
    y, vjp_fn = f_vjp(3.0)
    np.testing.assert_allclose(vjp_fn(1.0), 3.0)
    f_jvp = sd.JVPTransform(lambda x: w.value * x, grad_states=w, argnums=0)
    np.testing.assert_allclose(f_jvp((3.0,), (1.0,), 1.0)[1], 5.0)
    y, jvp_fn = sd.LinearizeTransform(lambda x: w.value * x, grad_states=w)(3.0)
    np.testing.assert_allclose(jvp_fn(state_tangents=1.0), 3.0)


def test_run_now_forms_nest_in_other_transforms():
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(x):
        return jnp.sum(jnp.sin(w.value * x))

    pure = lambda wv, x: jnp.sum(jnp.sin(wv * x))  # noqa: E731
    got = sd.jacfwd(lambda x: sd.vjp(f, x, grad_states=w, argnums=None)[1](1.0))(2.0)
    assert_tree_close(got, jax.jacfwd(lambda x: jax.grad(pure)(w.value, x))(2.0))
    xs = jnp.arange(3.0)
    got = sj.vmap(lambda x: sd.jvp(f, (x,), (1.0,))[1])(xs)
    assert_tree_close(
        got, jax.vmap(lambda x: jax.jvp(lambda x: pure(w.value, x), (x,), (1.0,))[1])(xs)
    )
    got = sj.vmap(lambda x: sd.linearize(f, x, grad_states=w)[1](0.0, state_tangents=jnp.ones(2)))(
        xs
    )
    want = jax.vmap(lambda x: jax.jvp(lambda wv: pure(wv, x), (w.value,), (jnp.ones(2),))[1])(xs)
    assert_tree_close(got, want)
