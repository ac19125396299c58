"""jax.disable_jit(): the statejax transforms run their Python bodies on concrete values."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj


def _concrete(x):
    return float(x)  # raises ConcretizationTypeError on a tracer


def test_cond_switch_while_run_in_python_with_states():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def up(x):
        s.value = s.value + _concrete(x)
        return x

    with jax.disable_jit():
        assert float(sj.cond(True, up, lambda x: -x, 2.0)) == 2.0
        assert float(sj.switch(5, [lambda x: -x, up], 3.0)) == 3.0  # clamped

        def body(v):
            s.value = s.value + 1
            return v + _concrete(v) + 1

        out = sj.while_loop(lambda v: _concrete(v) < 10, body, 0.0)
    assert float(s.value) == 5.0 + 4.0
    ref = jax.lax.while_loop(lambda v: v < 10, lambda v: 2 * v + 1, 0.0)
    assert float(out) == float(ref)


def test_scan_and_for_loop_and_map_print_and_float(capsys):
    h = sg.ShortTermState(jnp.zeros(()), name="h")

    def step(c, x):
        print("x =", _concrete(x))
        h.value = 0.5 * h.value + x
        return c + x, h.value

    with jax.disable_jit():
        c, ys = sj.scan(step, 0.0, jnp.arange(3.0))
        zs = sj.for_loop(lambda x: _concrete(x) * 2.0, jnp.arange(3.0))
        ms = sj.map(lambda x: _concrete(x) + 1.0, jnp.arange(3.0))
    assert capsys.readouterr().out.count("x =") == 3
    h2 = 0.0
    ref = []
    for x in range(3):
        h2 = 0.5 * h2 + x
        ref.append(h2)
    np.testing.assert_allclose(ys, ref)
    assert float(c) == 3.0 and float(h.value) == ref[-1]
    np.testing.assert_allclose(zs, [0.0, 2.0, 4.0])
    np.testing.assert_allclose(ms, [1.0, 2.0, 3.0])


def test_reverse_scan_matches_jax():
    with jax.disable_jit():
        out = sj.scan(lambda c, x: (c * 2 + x, c), 1.0, jnp.arange(4.0), reverse=True)
        ref = jax.lax.scan(lambda c, x: (c * 2 + x, c), 1.0, jnp.arange(4.0), reverse=True)
    np.testing.assert_allclose(out[0], ref[0])
    np.testing.assert_allclose(out[1], ref[1])


def test_failure_rolls_back_every_written_state():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    def step(c, x):
        s.value = s.value + 1
        if _concrete(x) == 2.0:
            raise RuntimeError("stop at 2")
        return c, None

    with jax.disable_jit():
        with pytest.raises(RuntimeError, match="stop at 2"):
            sj.scan(step, 0.0, jnp.arange(4.0))
        with pytest.raises(RuntimeError, match="stop at 2"):
            sj.cond(True, lambda: step(0, jnp.asarray(2.0)), lambda: (0, None))
    assert float(s.value) == 0.0


def test_traced_predicate_falls_back_to_the_compiled_transform():
    s = sg.ShortTermState(jnp.zeros(3), name="s")

    def body(v):
        return v + 1

    with jax.disable_jit():
        # Under vmap the predicate is traced: JAX falls back to the primitive, and so do we.
        out = sj.vmap(lambda x: sj.while_loop(lambda v: v < 3, body, x))(jnp.arange(3.0))
        out2 = sj.vmap(lambda x: sj.cond(x > 1, lambda: x, lambda: -x), in_states=s)(
            jnp.arange(3.0)
        )
    np.testing.assert_allclose(out, [3.0, 3.0, 3.0])
    np.testing.assert_allclose(out2, [0.0, -1.0, 2.0])


def test_zero_length_scan_is_an_error_as_in_jax():
    with jax.disable_jit(), pytest.raises(ValueError, match="zero-length"):
        sj.scan(lambda c, x: (c, x), 0.0, jnp.zeros((0,)))


def test_outside_disable_jit_the_bodies_are_traced():
    with pytest.raises(jax.errors.ConcretizationTypeError):
        sj.scan(lambda c, x: (c + _concrete(x), None), 0.0, jnp.arange(2.0))


def test_transforms_that_jax_traces_still_work_under_disable_jit():
    s = sg.ShortTermState(jnp.zeros(()), name="s")

    @sj.checkpoint
    def layer(x):
        s.value = s.value + 1
        return jnp.sin(x)

    with jax.disable_jit():
        np.testing.assert_allclose(layer(1.0), np.sin(1.0), rtol=1e-6)
        np.testing.assert_allclose(sj.vmap(jnp.sin)(jnp.arange(3.0)), np.sin(np.arange(3.0)))
        assert sj.eval_shape(lambda x: x * 2, jnp.ones(2)).shape == (2,)
        err, out = sj.checkify(lambda x: x + 1)(jnp.asarray(1.0))
    assert float(s.value) == 1.0 and err.get() is None and float(out) == 2.0
