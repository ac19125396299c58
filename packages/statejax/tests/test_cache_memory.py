"""Caches of the function-style transforms never keep a model alive (issue 11).

Every transform is given bound methods of 1,000 models built and dropped in turn (a bound
method pins its instance and its states); after ``gc.collect()`` none may be alive, as with
``jax.lax.cond`` and friends. Most models are run under ``sj.make_jaxpr`` (tracing without XLA
compiles, so the test stays quick); a few run eagerly through the compiled path. Fresh lambdas
on every call must not make any cache grow past its bound.
"""

from __future__ import annotations

import gc
import weakref

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj
from statejax._src import compose
from statejax._src.weakcache import WeakLRU

MODELS = 1000
EAGER = 10


class Model:
    def __init__(self, i):
        self.w = sg.ParamState(jnp.full((3,), float(i)), name="w")
        self.n = sg.ShortTermState(jnp.zeros(()), name="n")

    def up(self, x):
        self.n.value = self.n.value + 1.0
        return x + self.w.value

    def down(self, x):
        return x - self.w.value

    def step(self, c, x):
        self.n.value = self.n.value + x
        return c + self.w.value.sum() * x, c

    def loop_body(self, x):
        self.n.value = self.n.value + x

    def cond_fun(self, i):
        return i < 3.0

    def body_fun(self, i):
        self.n.value = self.n.value + 1.0
        return i + 1.0

    def lane(self, x):
        return x * self.w.value.sum()


def run(kind, m):
    x = jnp.ones(3)
    if kind == "cond":
        return sj.cond(True, m.up, m.down, x)
    if kind == "switch":
        return sj.switch(1, [m.down, m.up], x)
    if kind == "scan":
        return sj.scan(m.step, jnp.zeros(()), jnp.arange(3.0))
    if kind == "for_loop":
        return sj.for_loop(m.loop_body, jnp.arange(3.0))
    if kind == "while_loop":
        return sj.while_loop(m.cond_fun, m.body_fun, jnp.zeros(()))
    if kind == "eval_shape":
        return sj.eval_shape(m.up, x)
    if kind == "vmap":
        return sj.vmap(m.lane)(x)
    raise AssertionError(kind)


KINDS = ["cond", "switch", "scan", "for_loop", "while_loop", "eval_shape", "vmap"]


@pytest.mark.parametrize("kind", KINDS)
def test_dropped_models_are_collected(kind):
    refs = []
    for i in range(MODELS):
        m = Model(i)
        if i < EAGER:
            run(kind, m)
        else:
            sj.make_jaxpr(lambda m=m: run(kind, m))()
        refs.append(weakref.ref(m))
        refs.append(weakref.ref(m.w))
        del m
    gc.collect()
    alive = sum(r() is not None for r in refs)
    assert alive == 0, f"{kind}: {alive} of {len(refs)} models/states still alive"


def test_results_stay_right_with_weakly_held_functions():
    m = Model(2)
    out = sj.cond(True, m.up, m.down, jnp.ones(3))
    assert np.allclose(out, jnp.ones(3) + 2.0) and float(m.n.value) == 1.0
    # The same bound method, looked up again, hits the cached driver: the body is not re-run.
    runs = []
    orig = Model.up

    def counted(self, x):
        runs.append(1)
        return orig(self, x)

    Model.up = counted
    try:
        for _ in range(3):
            sj.cond(True, m.up, m.down, jnp.ones(3))
    finally:
        Model.up = orig
    assert len(runs) == 1
    assert float(m.n.value) == 4.0


@pytest.mark.parametrize("kind", ["cond", "while_loop", "scan", "vmap", "eval_shape"])
def test_fresh_lambdas_do_not_grow_the_caches(kind):
    s = sg.ShortTermState(jnp.zeros(()), name="s")
    gc.collect()
    before = len(compose._DRIVERS) + len(compose._LIFTED)
    sizes = []
    for _ in range(40):
        if kind == "cond":
            sj.cond(True, lambda x: x + s.value, lambda x: x, 1.0)
        elif kind == "while_loop":
            sj.while_loop(lambda i: i < 2.0, lambda i: i + 1.0 + 0 * s.value, 0.0)
        elif kind == "scan":
            sj.scan(lambda c, x: (c + x + s.value, None), 0.0, jnp.arange(2.0))
        elif kind == "vmap":
            sj.vmap(lambda x: x * s.value)(jnp.ones(2))
        else:
            sj.eval_shape(lambda x: x + s.value, 1.0)
        sizes.append(len(compose._DRIVERS) + len(compose._LIFTED))
    gc.collect()
    # Every entry went away with its lambda (entries of earlier tests' live functions aside).
    assert len(compose._DRIVERS) + len(compose._LIFTED) <= before
    assert max(sizes) <= before + 40 * 3


def test_caches_are_bounded():
    assert compose._DRIVERS.size <= 1024 and compose._LIFTED.size <= 4096
    cache = WeakLRU(4)
    keep = [lambda x, i=i: x + i for i in range(10)]  # all alive: only the bound evicts
    for f in keep:
        cache.get("k", [f], lambda proxies: object())
    assert len(cache) == 4
    # A hit needs the same function; a bound method hits by (instance, function).
    m = Model(0)
    first = cache.get("m", [m.up], lambda proxies: object())
    assert cache.get("m", [m.up], lambda proxies: object()) is first
    assert cache.get("m", [m.down], lambda proxies: object()) is not first


def test_live_arrays_return_to_the_baseline_after_rebuilds():
    big = 1 << 16

    class Big:
        def __init__(self):
            self.w = sg.ParamState(jnp.ones(big), name="w")
            self.h = sg.ShortTermState(jnp.zeros(big), name="h")

        def up(self, x):
            self.h.value = self.h.value + self.w.value * x
            return x

        def down(self, x):
            return -x

    gc.collect()
    baseline = len(jax.live_arrays())
    for _ in range(20):
        m = Big()
        sj.cond(True, m.up, m.down, 1.0)
        sj.while_loop(lambda i: i < 2.0, lambda i, m=m: m.up(i) + 1.0, 0.0)
        sj.vmap(m.down)(jnp.ones(2))
        del m
    gc.collect()
    assert len(jax.live_arrays()) <= baseline + 4


def test_tracing_walks_no_library_global():
    """A trace's rebind roots are the user's objects, never the stack's or JAX's module globals.

    The stack's caches are module globals of its own modules: walking them on every trace made
    the cost of tracing grow with the number of cached entries (1,000 models: 45 ms a trace).
    """
    from statejax._src import rebinds

    m = Model(0)
    for kind in KINDS:
        run(kind, m)
    drivers = compose._DRIVERS.values()
    assert drivers
    for driver in drivers:
        roots: list = []
        rebinds._roots(driver, roots, set())
        for kind, holder in roots:
            if kind == "global":
                globs, name = holder
                assert not globs["__name__"].startswith(("statejax", "stategraph", "jax")), name
            else:
                assert holder is m or not isinstance(holder, WeakLRU), holder
