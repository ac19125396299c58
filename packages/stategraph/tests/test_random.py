"""RandomState and stategraph.random: draws follow jax.random on the same key."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg


def _sub(seed):
    """The key the first draw of ``RandomState(seed)`` uses."""
    return jax.random.split(jax.random.key(seed))[1]


@given(seed=st.integers(0, 2**31 - 1))
@settings(max_examples=3, deadline=None)
def test_draws_match_jax_random(seed):
    k = _sub(seed)
    checks = {
        "normal": (lambda r: r.normal(size=(3,)), lambda: jax.random.normal(k, (3,))),
        "uniform": (
            lambda r: r.uniform(1.0, 2.0, size=4),
            lambda: jax.random.uniform(k, (4,), minval=1.0, maxval=2.0),
        ),
        "gamma": (lambda r: r.gamma(2.0, size=3), lambda: jax.random.gamma(k, 2.0, (3,))),
        "beta": (lambda r: r.beta(2.0, 3.0, size=3), lambda: jax.random.beta(k, 2.0, 3.0, (3,))),
        "poisson": (lambda r: r.poisson(3.0, size=5), lambda: jax.random.poisson(k, 3.0, (5,))),
        "bernoulli": (
            lambda r: r.bernoulli(0.3, size=6),
            lambda: jax.random.bernoulli(k, 0.3, (6,)),
        ),
        "randint": (
            lambda r: r.randint(0, 10, size=4),
            lambda: jax.random.randint(k, (4,), 0, 10),
        ),
        "permutation": (lambda r: r.permutation(6), lambda: jax.random.permutation(k, 6)),
        "exponential": (
            lambda r: r.exponential(size=3),
            lambda: jax.random.exponential(k, (3,)),
        ),
        "truncated_normal": (
            lambda r: r.truncated_normal(-1.0, 1.0, size=3),
            lambda: jax.random.truncated_normal(k, -1.0, 1.0, (3,)),
        ),
    }
    for name, (ours, theirs) in checks.items():
        np.testing.assert_array_equal(ours(sg.RandomState(seed)), theirs(), err_msg=name)


def test_key_argument_uses_that_key_and_leaves_the_state():
    r = sg.RandomState(0)
    before = jax.random.key_data(r.value)
    k = jax.random.key(7)
    np.testing.assert_array_equal(r.normal(size=2, key=k), jax.random.normal(k, (2,)))
    np.testing.assert_array_equal(jax.random.key_data(r.value), before)


def test_typed_and_raw_keys_give_the_same_numbers():
    typed = sg.RandomState(jax.random.key(3))
    raw = sg.RandomState(jax.random.PRNGKey(3))
    seeded = sg.RandomState(3)
    a, b, c = typed.random(4), raw.random(4), seeded.random(4)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    assert jnp.issubdtype(raw.value.dtype, jax.dtypes.prng_key)


def test_successive_draws_differ_and_a_seed_reproduces_them():
    r = sg.RandomState(1)
    a, b = r.normal(size=5), r.normal(size=5)
    assert not np.array_equal(a, b)
    r.seed(1)
    np.testing.assert_array_equal(r.normal(size=5), a)


def test_split_key_advances_the_state():
    r = sg.RandomState(0)
    k0 = r.value
    one = r.split_key()
    parts = jax.random.split(k0)
    np.testing.assert_array_equal(jax.random.key_data(one), jax.random.key_data(parts[1]))
    np.testing.assert_array_equal(jax.random.key_data(r.value), jax.random.key_data(parts[0]))
    assert r.split_key(3).shape == (3,)
    with pytest.raises(ValueError, match="n must be >= 1"):
        r.split_key(0)
    with pytest.raises(TypeError, match="n must be an int"):
        r.split_key(1.5)


def test_backup_and_restore_key():
    r = sg.RandomState(0)
    r.backup_key()
    a = r.random(3)
    with pytest.raises(ValueError, match="already backed up"):
        r.backup_key()
    r.restore_key()
    np.testing.assert_array_equal(r.random(3), a)
    with pytest.raises(ValueError, match="no key is backed up"):
        r.restore_key()
    r.split_key(backup=True)
    r.restore_key()


def test_bad_seeds_are_refused_with_what_was_given():
    with pytest.raises(TypeError, match="str"):
        sg.RandomState("zero")
    with pytest.raises(TypeError, match="float32"):
        sg.RandomState(jnp.zeros(2))
    r = sg.RandomState(0)
    with pytest.raises(TypeError, match="typed PRNG key"):
        r.value = jnp.zeros(2)


@pytest.mark.parametrize(
    "call, shape",
    [
        (lambda r: r.rand(2, 3), (2, 3)),
        (lambda r: r.randn(4), (4,)),
        (lambda r: r.random_sample(2), (2,)),
        (lambda r: r.ranf(2), (2,)),
        (lambda r: r.sample(2), (2,)),
        (lambda r: r.random_integers(5, size=3), (3,)),
        (lambda r: r.choice(5, size=2, replace=False), (2,)),
        (lambda r: r.shuffle(jnp.arange(4)), (4,)),
        (lambda r: r.binomial(10, 0.5, size=3), (3,)),
        (lambda r: r.categorical(jnp.zeros(4), size=(2,)), (2,)),
        (lambda r: r.chisquare(3.0, size=2), (2,)),
        (lambda r: r.dirichlet(jnp.ones(3), size=2), (2, 3)),
        (lambda r: r.f(2.0, 3.0, size=2), (2,)),
        (lambda r: r.geometric(0.3, size=2), (2,)),
        (lambda r: r.gumbel(size=2), (2,)),
        (lambda r: r.laplace(1.0, 2.0, size=2), (2,)),
        (lambda r: r.logistic(size=2), (2,)),
        (lambda r: r.lognormal(0.0, 1.0, size=2), (2,)),
        (lambda r: r.loggamma(2.0, size=2), (2,)),
        (lambda r: r.logseries(0.5, size=3), (3,)),
        (lambda r: r.maxwell(size=2), (2,)),
        (lambda r: r.multinomial(10, jnp.array([0.2, 0.8]), size=3), (3, 2)),
        (lambda r: r.multivariate_normal(jnp.zeros(2), jnp.eye(2), size=3), (3, 2)),
        (lambda r: r.negative_binomial(3, 0.5, size=2), (2,)),
        (lambda r: r.noncentral_chisquare(3.0, 1.0, size=2), (2,)),
        (lambda r: r.noncentral_f(3.0, 4.0, 1.0, size=2), (2,)),
        (lambda r: r.orthogonal(3), (3, 3)),
        (lambda r: r.pareto(3.0, size=2), (2,)),
        (lambda r: r.power(2.0, size=2), (2,)),
        (lambda r: r.rayleigh(2.0, size=2), (2,)),
        (lambda r: r.standard_cauchy(2), (2,)),
        (lambda r: r.standard_exponential(2), (2,)),
        (lambda r: r.standard_gamma(2.0, size=2), (2,)),
        (lambda r: r.standard_normal(2), (2,)),
        (lambda r: r.standard_t(3.0, size=2), (2,)),
        (lambda r: r.t(3.0, size=2), (2,)),
        (lambda r: r.triangular(0.0, 0.5, 1.0, size=2), (2,)),
        (lambda r: r.vonmises(0.0, 2.0, size=5), (5,)),
        (lambda r: r.wald(1.0, 2.0, size=2), (2,)),
        (lambda r: r.weibull(2.0, size=2), (2,)),
        (lambda r: r.weibull_min(2.0, 3.0, size=2), (2,)),
        (lambda r: r.zipf(2.0, size=4), (4,)),
        (lambda r: r.hypergeometric(5, 5, 4, size=3), (3,)),
        (lambda r: r.rand_like(jnp.zeros((2, 2))), (2, 2)),
        (lambda r: r.randn_like(jnp.zeros(3)), (3,)),
        (lambda r: r.randint_like(jnp.zeros(3), 0, 5), (3,)),
    ],
)
def test_every_distribution_draws_the_shape(call, shape):
    r = sg.RandomState(0)
    before = jax.random.key_data(r.value)
    out = call(r)
    assert out.shape == shape
    assert not np.array_equal(jax.random.key_data(r.value), before)


def test_special_samplers_are_in_their_support():
    r = sg.RandomState(0)
    assert (r.zipf(2.5, size=200) >= 1).all()
    assert (r.logseries(0.7, size=200) >= 1).all()
    h = r.hypergeometric(4, 6, 5, size=200)
    assert ((h >= 0) & (h <= 4)).all()
    v = r.vonmises(1.0, 4.0, size=500)
    assert ((v >= -np.pi) & (v <= np.pi)).all()
    assert abs(float(jnp.angle(jnp.mean(jnp.exp(1j * v)))) - 1.0) < 0.15
    assert abs(float(r.wald(2.0, 3.0, size=4000).mean()) - 2.0) < 0.2
    assert abs(float(r.negative_binomial(5, 0.5, size=4000).mean()) - 5.0) < 0.4
    assert abs(float(r.noncentral_chisquare(3.0, 2.0, size=4000).mean()) - 5.0) < 0.4
    p = r.power(3.0, size=4000)
    assert ((p >= 0) & (p <= 1)).all() and abs(float(p.mean()) - 0.75) < 0.03


def test_module_functions_use_the_default_state():
    sg.random.seed(5)
    a = sg.random.normal(size=3)
    sg.random.seed(5)
    np.testing.assert_array_equal(sg.random.normal(size=3), a)
    assert isinstance(sg.random.DEFAULT, sg.RandomState)
    assert sg.random.RandomState is sg.RandomState
    assert sg.random.split_key(2).shape == (2,)
    sg.random.set_key(jax.random.PRNGKey(9))
    np.testing.assert_array_equal(sg.random.get_key_data(), jax.random.PRNGKey(9))
    rng = sg.random.default_rng(0)
    assert rng is not sg.random.DEFAULT
    np.testing.assert_array_equal(rng.random(2), sg.RandomState(0).random(2))
    with sg.random.seed_context(1):
        x = sg.random.rand(2)
    with sg.random.seed_context(1):
        np.testing.assert_array_equal(sg.random.rand(2), x)
    for name in sg.random.__all__:
        assert hasattr(sg.random, name), name


def test_random_state_is_found_in_models_and_is_a_state():
    model = {"rng": sg.RandomState(0), "w": sg.ParamState(jnp.ones(2))}
    assert list(sg.states(model, sg.RandomState)) == ["rng"]
    snap = sg.snapshot(model)
    model["rng"].random()
    sg.restore(model, snap)
    np.testing.assert_array_equal(
        jax.random.key_data(model["rng"].value), jax.random.key_data(snap["rng"])
    )
