"""Stale state identity: clear_cache() on every transform object, through every layer of
nesting, and the global ``sj.clear_caches()`` (issue 11).

A model's attribute is rebound to another State that is still alive elsewhere (the
"re-initialise the layer" pattern with a spare). After ``clear_cache()`` every transform must
use the new state; the reference is plain JAX on the pure function of the new value.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj


class Layer:
    def __init__(self):
        self.w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")

    def f(self, x):
        return jnp.sum(self.w.value**2 * x)

    def vec(self, x):
        return self.w.value * x


def pure(w, x):
    return jnp.sum(w**2 * x)


NEW = jnp.array([3.0, -1.0])

# name -> (build(layer) -> transform object, run(obj) -> result, reference(w) -> result)
OBJECTS = {
    "jit": (lambda m: sj.jit(m.f), lambda t: t(2.0), lambda w: pure(w, 2.0)),
    "vmap": (
        lambda m: sj.vmap(m.f),
        lambda t: t(jnp.arange(3.0)),
        lambda w: jax.vmap(lambda x: pure(w, x))(jnp.arange(3.0)),
    ),
    "checkpoint": (lambda m: sj.checkpoint(m.f), lambda t: t(2.0), lambda w: pure(w, 2.0)),
    "jit(vmap)": (
        lambda m: sj.jit(sj.vmap(m.f)),
        lambda t: t(jnp.arange(3.0)),
        lambda w: jax.vmap(lambda x: pure(w, x))(jnp.arange(3.0)),
    ),
    "jit(jit)": (lambda m: sj.jit(sj.jit(m.f)), lambda t: t(2.0), lambda w: pure(w, 2.0)),
    "grad": (
        lambda m: sd.grad(m.f, argnums=0),
        lambda t: t(2.0),
        lambda w: jax.grad(pure, argnums=1)(w, 2.0),
    ),
    "jacfwd": (
        lambda m: sd.jacfwd(m.vec, argnums=0),
        lambda t: t(2.0),
        lambda w: jax.jacfwd(lambda x: w * x)(2.0),
    ),
    "jacrev": (
        lambda m: sd.jacrev(m.vec, argnums=0),
        lambda t: t(2.0),
        lambda w: jax.jacrev(lambda x: w * x)(2.0),
    ),
    "hessian": (
        lambda m: sd.hessian(m.f, argnums=0),
        lambda t: t(2.0),
        lambda w: jax.hessian(lambda x: pure(w, x))(2.0),
    ),
    "jit(grad)": (
        lambda m: sj.jit(sd.grad(m.f, argnums=0)),
        lambda t: t(2.0),
        lambda w: jax.grad(lambda x: pure(w, x))(2.0),
    ),
    "vmap(grad)": (
        lambda m: sj.vmap(sd.grad(m.f, argnums=0)),
        lambda t: t(jnp.arange(3.0)),
        lambda w: jax.vmap(jax.grad(lambda x: pure(w, x)))(jnp.arange(3.0)),
    ),
}


def _clear(t):
    t.clear_cache()


@pytest.mark.parametrize("name", list(OBJECTS))
@pytest.mark.parametrize("how", ["clear_cache", "clear_caches"])
def test_clear_cache_picks_up_a_rebound_state(name, how):
    build, run, ref = OBJECTS[name]
    m = Layer()
    t = build(m)
    np.testing.assert_allclose(run(t), ref(m.w.value), rtol=1e-6)
    spare = sg.ParamState(NEW, name="spare")  # alive before the rebind and after it
    old = m.w
    m.w = spare
    if how == "clear_cache":
        t.clear_cache()
    else:
        sj.clear_caches()
    np.testing.assert_allclose(run(t), ref(NEW), rtol=1e-6)
    assert old.value is not None


FUNCTION_STYLE = {
    "cond": (
        lambda m: sj.cond(True, m.f, lambda x: 0.0 * x, 2.0),
        lambda w: pure(w, 2.0),
    ),
    "switch": (lambda m: sj.switch(0, [m.f, lambda x: 0.0 * x], 2.0), lambda w: pure(w, 2.0)),
    "scan": (
        lambda m: sj.scan(lambda c, x: (c + m.f(x), None), 0.0, jnp.arange(3.0))[0],
        lambda w: sum(pure(w, x) for x in jnp.arange(3.0)),
    ),
    "while_loop": (
        lambda m: sj.while_loop(lambda c: c[0] < 2, lambda c: (c[0] + 1, c[1] + m.f(1.0)),
                                (0, 0.0))[1],
        lambda w: 2 * pure(w, 1.0),
    ),
    "eval_shape": (
        lambda m: sj.eval_shape(lambda: m.w.value),
        lambda w: jax.ShapeDtypeStruct(w.shape, w.dtype),
    ),
}


@pytest.mark.parametrize("name", list(FUNCTION_STYLE))
def test_clear_caches_reaches_the_function_style_transforms(name):
    run, ref = FUNCTION_STYLE[name]
    m = Layer()
    f = m.f  # the same function object on every call, so the cached driver is reused
    m.f = f
    first = run(m)
    if name != "eval_shape":
        np.testing.assert_allclose(first, ref(m.w.value), rtol=1e-6)
    m.w = sg.ParamState(NEW[:1] if name == "eval_shape" else NEW, name="spare")
    keep = m.w  # noqa: F841
    sj.clear_caches()
    got = run(m)
    if name == "eval_shape":
        assert got.shape == (1,)
    else:
        np.testing.assert_allclose(got, ref(NEW), rtol=1e-6)


def test_jit_method_descriptor_clear_cache_reaches_each_instance():
    class Model:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones(2))

        @sj.jit
        def f(self, x):
            return jnp.sum(self.w.value * x)

    m = Model()
    assert float(m.f(1.0)) == 2.0
    spare = sg.ParamState(jnp.zeros(2))
    m.w = spare
    Model.f.clear_cache()  # the class-level object clears the per-instance compiled function
    assert float(m.f(1.0)) == 0.0


# --------------------------------------------------------------------------- detection
DETECTED = {
    "jit": lambda m: sj.jit(m.f),
    "jit(callable object)": lambda m: sj.jit(Callable(m)),
    "vmap": lambda m: sj.vmap(m.f),
    "jit(vmap)": lambda m: sj.jit(sj.vmap(m.f)),
    "checkpoint": lambda m: sj.checkpoint(m.f),
    "grad": lambda m: sd.grad(m.f, argnums=0),
    "jacrev": lambda m: sd.jacrev(m.f, argnums=0),
    "jit(grad)": lambda m: sj.jit(sd.grad(m.f, argnums=0)),
    "cond": lambda m: (lambda x: sj.cond(True, m.f, zero, x)),
    "closure": lambda m: sj.jit(lambda x: m.f(x)),
}


class Callable:
    def __init__(self, layer):
        self.layer = layer

    def __call__(self, x):
        return self.layer.f(x)


def zero(x):
    return 0.0 * x


@pytest.mark.parametrize("name", list(DETECTED))
def test_checking_mode_detects_a_rebind_without_clear_cache(name):
    m = Layer()
    t = DETECTED[name](m)
    arg = jnp.arange(3.0) if "vmap" in name else 2.0
    ref = (lambda w: jax.vmap(lambda x: pure(w, x))(arg)) if "vmap" in name else (
        (lambda w: jax.grad(lambda x: pure(w, x))(arg)) if "grad" in name or "jac" in name
        else (lambda w: pure(w, arg))
    )
    np.testing.assert_allclose(t(arg), ref(m.w.value), rtol=1e-6)
    old = m.w
    m.w = sg.ParamState(NEW, name="w2")  # the old state stays alive (`old`)
    with sj.check_stale_states():
        np.testing.assert_allclose(t(arg), ref(NEW), rtol=1e-6)
    np.testing.assert_allclose(t(arg), ref(NEW), rtol=1e-6)  # and stays right afterwards
    assert old.value is not None


def test_rebinding_a_module_global_is_detected():
    global GLOBAL_LAYER
    GLOBAL_LAYER = Layer()
    f = sj.jit(lambda x: GLOBAL_LAYER.f(x))
    assert float(f(2.0)) == float(pure(GLOBAL_LAYER.w.value, 2.0))
    keep = GLOBAL_LAYER
    GLOBAL_LAYER = Layer()
    GLOBAL_LAYER.w.value = NEW
    with sj.check_stale_states():
        assert float(f(2.0)) == float(pure(NEW, 2.0))
    assert keep.w.value is not None


def test_checking_mode_is_off_by_default_and_restored():
    from stategraph.extend import ACTIVE

    assert ACTIVE.count == 0
    with sj.check_stale_states():
        assert ACTIVE.count == 1
        with sj.check_stale_states(False):
            assert ACTIVE.count == 0
        assert ACTIVE.count == 1
    assert ACTIVE.count == 0


def test_slow_path_detects_a_rebind_inside_an_enclosing_trace():
    """Calls inside other transforms take the slow path, which checks without the mode."""
    m = Layer()
    inner = sj.jit(m.f)
    inner(2.0)
    m.w = spare = sg.ParamState(NEW)  # noqa: F841
    outer = sj.jit(lambda x: inner(x) * 1.0)  # traces inner's cached signature: checked
    np.testing.assert_allclose(outer(2.0), pure(NEW, 2.0), rtol=1e-6)
