"""stategraph's grouped and random states under the statediff transforms, against plain JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg


def test_hidden_group_state_in_grad_states_matches_jax_grad():
    g = sg.HiddenGroupState(jnp.arange(6.0).reshape(3, 2) / 3, name="vw")

    def loss(x):
        v, w = g.get_value(0), g.get_value(1)
        return jnp.sum(jnp.sin(v) * w * x)

    def pure(value, x):
        return jnp.sum(jnp.sin(value[..., 0]) * value[..., 1] * x)

    x = jnp.array([1.0, 2.0, 3.0])
    got = sd.grad(loss, grad_states=g)(x)
    np.testing.assert_allclose(got, jax.grad(pure)(g.value, x), rtol=1e-6)
    jac = sd.jacfwd(lambda x: g.value * x[:, None], grad_states=g)(x)
    ref = jax.jacfwd(lambda value, x: value * x[:, None])(g.value, x)
    np.testing.assert_allclose(jac, ref, rtol=1e-6)


def test_grad_states_dict_keys_name_unnamed_states_in_errors():
    used, unused = sg.ParamState(jnp.ones(2)), sg.ParamState(jnp.ones(2))

    def loss():
        return used.value.sum()

    with pytest.raises(ValueError, match="path='bias'"):
        sd.grad(loss, grad_states={"weight": used, "bias": unused})()


def test_random_draws_under_grad_are_not_differentiated():
    rng = sg.RandomState(0)
    w = sg.ParamState(jnp.ones(3))

    def loss():
        return jnp.sum(w.value * rng.normal(size=3))

    noise = sg.RandomState(0).normal(size=3)
    g = sd.grad(loss, grad_states=w)()
    np.testing.assert_allclose(g, jax.grad(lambda wv: jnp.sum(wv * noise))(w.value))
    # The key advanced like an eager draw.
    eager = sg.RandomState(0)
    eager.normal(size=3)
    np.testing.assert_array_equal(jax.random.key_data(rng.value), jax.random.key_data(eager.value))
    jac = sd.jacfwd(lambda x: x * rng.uniform(size=3))(jnp.ones(3))
    assert jac.shape == (3, 3)


def test_a_random_state_in_grad_states_is_refused_clearly():
    rng = sg.RandomState(0)
    key = rng.value

    def loss():
        return rng.normal()

    with pytest.raises(TypeError, match="PRNG key.*never differentiated"):
        sd.grad(loss, grad_states=rng)()
    np.testing.assert_array_equal(jax.random.key_data(rng.value), jax.random.key_data(key))
