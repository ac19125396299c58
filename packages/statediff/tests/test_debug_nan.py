"""``debug_nan=True`` on the derivative transforms, and ``fwd_grad(drct_der_clip=...)``."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj

TRANSFORMS = {
    "grad": sd.grad,
    "vector_grad": sd.vector_grad,
    "jacrev": sd.jacrev,
    "jacfwd": sd.jacfwd,
    "jacobian": sd.jacobian,
    "hessian": sd.hessian,
}
JAX = {
    "grad": jax.grad,
    "vector_grad": jax.grad,  # of a scalar function: the same
    "jacrev": jax.jacrev,
    "jacfwd": jax.jacfwd,
    "jacobian": jax.jacrev,
    "hessian": jax.hessian,
}


def _model():
    w = sg.ParamState(jnp.array([1.0, 4.0]), name="w")
    h = sg.ShortTermState(jnp.zeros(2), name="h")

    def loss(x):
        h.value = h.value + x
        return jnp.sum(jnp.sqrt(w.value) ** 3 * x)

    return w, h, loss


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_clean_derivative_is_returned_unchanged(name):
    w, h, loss = _model()
    got = TRANSFORMS[name](loss, grad_states=w, debug_nan=True)(2.0)
    want = JAX[name](lambda wv: jnp.sum(jnp.sqrt(wv) ** 3 * 2.0))(w.value)
    np.testing.assert_allclose(got, want, rtol=1e-5)
    np.testing.assert_allclose(h.value, [2.0, 2.0])  # written back


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_nan_derivative_raises_and_changes_no_state(name):
    w, h, loss = _model()
    w.value = jnp.array([1.0, -4.0])
    h_before, w_before = h.value, w.value
    plain = TRANSFORMS[name](loss, grad_states=w)(2.0)  # the default returns the NaN
    assert bool(jnp.isnan(plain).any())
    h_before = h.value
    with pytest.raises(RuntimeError, match=r"statediff.\w+\(\.\.\., debug_nan=True\).*NaN") as e:
        TRANSFORMS[name](loss, grad_states=w, debug_nan=True)(2.0)
    assert "sqrt" in str(e.value)  # checkify names the primitive that produced the NaN
    assert h.value is h_before and w.value is w_before
    assert not isinstance(h.value, jax.core.Tracer)


def test_inf_is_caught_too_and_the_message_names_the_block():
    w = sg.ParamState(jnp.array([0.0, 1.0]), name="w")
    with pytest.raises(RuntimeError, match=r"\['w'\].*0 NaN and 1 Inf"):
        sd.grad(lambda x: jnp.sum(jnp.sqrt(w.value)) * x, grad_states={"w": w}, debug_nan=True)(1.0)


def test_under_jit_the_check_runs_with_the_compiled_code():
    w, h, loss = _model()
    f = sj.jit(lambda x: sd.grad(loss, grad_states=w, debug_nan=True)(x))
    np.testing.assert_allclose(f(1.0), 1.5 * jnp.sqrt(w.value))
    w.value = jnp.array([1.0, -4.0])
    h_before = h.value
    with pytest.raises(Exception, match="debug_nan=True"):
        jax.block_until_ready(f(1.0))
    assert h.value is h_before  # sj.jit writes nothing back when its call fails


def test_decorator_form_and_fwd_grad():
    w, h, loss = _model()
    g = sd.grad(grad_states=w, debug_nan=True)(loss)
    assert g.debug_nan
    est = sd.fwd_grad(lambda: jnp.sum(jnp.log(w.value)), grad_states=w, debug_nan=True)
    est()
    w.value = jnp.array([0.0, 1.0])
    with pytest.raises(RuntimeError, match="statediff.fwd_grad"):
        est()


# ------------------------------------------------------------ drct_der_clip
def _reference_fwd_grad(f, x, key, tangent_size, clip):
    """The documented estimator: tangents from split(key)[1], clipped directional derivatives."""
    _, sub = jax.random.split(key)
    (k0,) = jax.random.split(sub, 1)
    vs = jax.random.normal(k0, (tangent_size, *x.shape), x.dtype)
    ds = jax.vmap(lambda v: jax.jvp(f, (x,), (v,))[1])(vs)
    if clip is not None:
        ds = jnp.clip(ds, -clip, clip)
    return jnp.tensordot(ds, vs, axes=(0, 0)) / tangent_size


@pytest.mark.parametrize("clip", [None, 0.5, 3.0])
def test_drct_der_clip_matches_the_clipped_estimator(clip):
    x = jnp.array([1.0, -2.0, 3.0])
    f = lambda x: jnp.sum(x**2)  # noqa: E731
    key = jax.random.key(7)
    got = sd.fwd_grad(f, tangent_size=16, key=key, drct_der_clip=clip)(x)
    want = _reference_fwd_grad(f, x, key, 16, clip)
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_drct_der_clip_bounds_the_estimate():
    x = jnp.array([100.0, -200.0])
    est = sd.fwd_grad(lambda x: jnp.sum(x**2), tangent_size=1, key=0, drct_der_clip=1.0)
    for _ in range(3):
        g = est(x)
        v = g  # with one tangent, g = clip(d) * v and |clip(d)| <= 1
        assert bool(jnp.all(jnp.isfinite(v)))
    assert float(jnp.abs(g).max()) < 10.0


@pytest.mark.parametrize("bad", [0, -1.0, "1", True, jnp.ones(2)])
def test_drct_der_clip_bad_values(bad):
    with pytest.raises(ValueError, match=r"statediff.fwd_grad: drct_der_clip must be a positive"):
        sd.fwd_grad(lambda x: x**2, drct_der_clip=bad)
