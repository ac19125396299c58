"""``jax.disable_jit()``: the statediff transforms run the Python body, as ``jax.grad`` does."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg


def close(got, want):
    assert jax.tree.structure(got) == jax.tree.structure(want), (got, want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=1e-5, atol=1e-6)


def _model(concrete=True):
    w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")
    scale = sg.State(jnp.array(3.0), name="scale")
    seen = []

    def loss(x):
        # A plain (not differentiated) state is concrete: float() and print work.
        seen.append((type(w.value), float(scale.value) if concrete else None))
        h.value = h.value + w.value * x
        return jnp.sum(h.value**2) * scale.value

    def pure(wv, hv, x):
        return jnp.sum((hv + wv * x) ** 2) * 3.0

    return w, h, scale, seen, loss, pure


def test_grad_runs_the_body_with_jax_tracers_for_the_differentiated_states(capsys):
    w, h, scale, seen, loss, pure = _model()

    def noisy(x):
        print("scale is", float(scale.value))
        return loss(x)

    with jax.disable_jit():
        g = sd.grad(noisy, grad_states=w)(2.0)
        g2 = sd.grad(noisy, grad_states=w)(2.0)
    with jax.disable_jit():
        want = jax.grad(pure)(jnp.array([1.0, 2.0]), jnp.zeros(2), 2.0)
    close(g, want)
    assert len(seen) == 2  # the body ran on every call, not once per signature
    assert all(issubclass(t, jax.core.Tracer) for t, _ in seen)
    assert all(s == 3.0 for _, s in seen)
    assert capsys.readouterr().out.count("scale is 3.0") == 2
    close(h.value, 2 * 2.0 * w.value)  # written back once per call
    close(g2, jax.grad(pure)(w.value, 2.0 * w.value, 2.0))


@pytest.mark.parametrize("name", ["grad", "vector_grad", "jacrev", "jacfwd", "hessian", "fwd_grad"])
def test_every_derivative_matches_the_traced_result(name):
    w, h, scale, seen, loss, pure = _model(concrete=False)
    make = getattr(sd, name)
    kw = dict(key=0, tangent_size=4) if name == "fwd_grad" else {}
    traced = make(loss, grad_states={"w": w}, argnums=0, return_value=True, **kw)(2.0)
    h.value = jnp.zeros(2)
    kw = dict(key=0, tangent_size=4) if name == "fwd_grad" else {}
    with jax.disable_jit():
        eager = make(loss, grad_states={"w": w}, argnums=0, return_value=True, **kw)(2.0)
    close(eager, traced)
    close(h.value, 2.0 * w.value)


def test_products_run_the_body():
    w, h, scale, seen, loss, pure = _model()
    with jax.disable_jit():
        y, vjp_fn = sd.vjp(loss, 2.0, grad_states=w, argnums=None)
        ct = vjp_fn(1.0)
        yj, tj = sd.jvp(loss, (2.0,), (0.0,), grad_states=w, state_tangents=jnp.ones(2))
        yl, lin = sd.linearize(loss, 2.0, grad_states=w)
        tl = lin(0.0, state_tangents=jnp.ones(2))
    h0 = jnp.zeros(2)
    close(y, pure(w.value, h0, 2.0))
    close(ct, jax.grad(pure)(w.value, h0, 2.0))
    close(tj, jax.jvp(lambda wv: pure(wv, 2 * w.value, 2.0), (w.value,), (jnp.ones(2),))[1])
    close(tl, jax.jvp(lambda wv: pure(wv, 4 * w.value, 2.0), (w.value,), (jnp.ones(2),))[1])
    assert len(seen) == 3 and all(s == 3.0 for _, s in seen)
    close(h.value, 3 * 2.0 * w.value)


def test_a_failing_call_leaves_every_state_as_it_was():
    w, h, scale, seen, loss, pure = _model()
    before = (w.value, h.value)

    def bad(x):
        h.value = h.value + w.value * x
        raise ValueError("boom")

    with jax.disable_jit():
        with pytest.raises(ValueError, match="boom"):
            sd.grad(bad, grad_states=w)(1.0)
        with pytest.raises(ValueError, match="boom"):
            sd.vjp(bad, 1.0, grad_states=w)
        with pytest.raises(TypeError, match="has_aux=True requires"):
            sd.grad(loss, grad_states=w, has_aux=True)(1.0)
        with pytest.raises(ValueError, match="never reads or writes"):
            sd.grad(lambda x: x * 2.0, grad_states=w)(1.0)
    assert w.value is before[0] and h.value is before[1]
    assert not isinstance(h.value, jax.core.Tracer)


def test_debug_nan_under_disable_jit():
    w = sg.ParamState(jnp.array([1.0, -1.0]), name="w")
    with jax.disable_jit():
        with pytest.raises(RuntimeError, match="debug_nan=True.*NaN"):
            sd.grad(lambda: jnp.sum(jnp.sqrt(w.value)), grad_states=w, debug_nan=True)()
