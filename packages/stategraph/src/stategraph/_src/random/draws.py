"""The draw methods of ``RandomState`` (numpy / brainstate names, ``jax.random`` numbers).

Each method takes the key from :meth:`RandomState._next_key` (a split of the
state's key, or the ``key=`` given) and calls the ``jax.random`` function of
the same distribution, so a draw equals ``jax.random`` on that key.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from . import special
from .examples import add_examples

__all__ = ["Draws"]

Size = int | Sequence[int] | None


def _shape(size: Size, *params: Any) -> tuple[int, ...]:
    if size is None:
        shapes = [np.shape(p) for p in params if p is not None]
        return tuple(jnp.broadcast_shapes(*shapes)) if shapes else ()
    if isinstance(size, (int, np.integer)):
        return (int(size),)
    return tuple(int(s) for s in size)


def _arr(x: Any) -> Any:
    return jnp.asarray(x) if isinstance(x, (list, tuple)) else x


def _f(dtype: Any) -> Any:
    return float if dtype is None else dtype


def _i(dtype: Any) -> Any:
    return int if dtype is None else dtype


def _loc_scale(r: Any, loc: Any, scale: Any) -> Any:
    if scale is not None:
        r = r * _arr(scale)
    if loc is not None:
        r = r + _arr(loc)
    return r


class Draws:
    """Mixin: numpy-style draws on the key of a ``RandomState``."""

    __slots__ = ()

    def _next_key(self, key: Any) -> Any:  # pragma: no cover - defined by RandomState
        raise NotImplementedError

    # ---------------------------------------------------------------- uniform
    def rand(self, *dn: int, key: Any = None, dtype: Any = None) -> jax.Array:
        """Uniform on [0, 1) of shape ``dn`` (``numpy.random.rand``)."""
        return jax.random.uniform(self._next_key(key), dn, _f(dtype))

    def random(self, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Uniform on [0, 1) of shape ``size``."""
        return jax.random.uniform(self._next_key(key), _shape(size), _f(dtype))

    def random_sample(self, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Same as :meth:`random`."""
        return self.random(size, key, dtype)

    ranf = random_sample
    sample = random_sample

    def uniform(
        self, low: Any = 0.0, high: Any = 1.0, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Uniform on [low, high)."""
        low, high = _arr(low), _arr(high)
        shape = _shape(size, low, high)
        return jax.random.uniform(self._next_key(key), shape, _f(dtype), low, high)

    def rand_like(self, input: Any, dtype: Any = None, key: Any = None) -> jax.Array:  # noqa: A002
        """Uniform on [0, 1) shaped like ``input``."""
        return self.random(np.shape(input), key, dtype or getattr(input, "dtype", None))

    # ----------------------------------------------------------------- normal
    def randn(self, *dn: int, key: Any = None, dtype: Any = None) -> jax.Array:
        """Standard normal of shape ``dn`` (``numpy.random.randn``)."""
        return jax.random.normal(self._next_key(key), dn, _f(dtype))

    def standard_normal(self, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Standard normal of shape ``size``."""
        return jax.random.normal(self._next_key(key), _shape(size), _f(dtype))

    def normal(
        self,
        loc: Any = None,
        scale: Any = None,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Normal with mean ``loc`` and standard deviation ``scale``."""
        loc, scale = _arr(loc), _arr(scale)
        r = jax.random.normal(self._next_key(key), _shape(size, loc, scale), _f(dtype))
        return _loc_scale(r, loc, scale)

    def randn_like(self, input: Any, dtype: Any = None, key: Any = None) -> jax.Array:  # noqa: A002
        """Standard normal shaped like ``input``."""
        return self.standard_normal(np.shape(input), key, dtype or getattr(input, "dtype", None))

    def lognormal(
        self,
        mean: Any = None,
        sigma: Any = None,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """``exp(normal(mean, sigma))``."""
        mean, sigma = _arr(mean), _arr(sigma)
        r = jax.random.normal(self._next_key(key), _shape(size, mean, sigma), _f(dtype))
        return jnp.exp(_loc_scale(r, mean, sigma))

    def truncated_normal(
        self,
        lower: Any,
        upper: Any,
        size: Size = None,
        loc: Any = 0.0,
        scale: Any = 1.0,
        key: Any = None,
        dtype: Any = None,
        check_valid: bool = True,
    ) -> jax.Array:
        """Normal(``loc``, ``scale``) truncated to [lower, upper]."""
        lower, upper, loc, scale = map(_arr, (lower, upper, loc, scale))
        lo, hi = (lower - loc) / scale, (upper - loc) / scale
        shape = _shape(size, lo, hi, loc, scale)
        r = jax.random.truncated_normal(self._next_key(key), lo, hi, shape, _f(dtype))
        return r * scale + loc

    def multivariate_normal(
        self,
        mean: Any,
        cov: Any,
        size: Size = None,
        method: str = "cholesky",
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Multivariate normal with mean vector ``mean`` and covariance ``cov``."""
        mean, cov = jnp.asarray(mean), jnp.asarray(cov)
        shape = None if size is None else _shape(size) + ()
        return jax.random.multivariate_normal(
            self._next_key(key), mean, cov, shape, _f(dtype), method
        )

    # ------------------------------------------------------------ continuous
    def exponential(
        self, scale: Any = None, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Exponential with mean ``scale``."""
        scale = _arr(scale)
        r = jax.random.exponential(self._next_key(key), _shape(size, scale), _f(dtype))
        return r if scale is None else r * scale

    def standard_exponential(
        self, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Exponential with mean 1."""
        return jax.random.exponential(self._next_key(key), _shape(size), _f(dtype))

    def gamma(
        self, shape: Any, scale: Any = None, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Gamma with shape ``shape`` and scale ``scale``."""
        shape, scale = _arr(shape), _arr(scale)
        r = jax.random.gamma(self._next_key(key), shape, _shape(size, shape, scale), _f(dtype))
        return r if scale is None else r * scale

    def standard_gamma(
        self, shape: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Gamma with shape ``shape`` and scale 1."""
        shape = _arr(shape)
        return jax.random.gamma(self._next_key(key), shape, _shape(size, shape), _f(dtype))

    def beta(
        self, a: Any, b: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Beta(a, b)."""
        a, b = _arr(a), _arr(b)
        return jax.random.beta(self._next_key(key), a, b, _shape(size, a, b), _f(dtype))

    def dirichlet(
        self, alpha: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Dirichlet(alpha); the last axis holds the components."""
        shape = None if size is None else _shape(size)
        return jax.random.dirichlet(self._next_key(key), jnp.asarray(alpha), shape, _f(dtype))

    def chisquare(
        self,
        df: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
        check_valid: bool = True,
    ) -> jax.Array:
        """Chi-square with ``df`` degrees of freedom."""
        df = _arr(df)
        return jax.random.chisquare(self._next_key(key), df, _shape(size, df), _f(dtype))

    def f(
        self, dfnum: Any, dfden: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """F distribution."""
        dfnum, dfden = _arr(dfnum), _arr(dfden)
        shape = _shape(size, dfnum, dfden)
        return jax.random.f(self._next_key(key), dfnum, dfden, shape, _f(dtype))

    def standard_t(
        self, df: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Student's t with ``df`` degrees of freedom."""
        df = _arr(df)
        return jax.random.t(self._next_key(key), df, _shape(size, df), _f(dtype))

    t = standard_t

    def standard_cauchy(self, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Standard Cauchy."""
        return jax.random.cauchy(self._next_key(key), _shape(size), _f(dtype))

    def gumbel(
        self,
        loc: Any = None,
        scale: Any = None,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Gumbel with location ``loc`` and scale ``scale``."""
        loc, scale = _arr(loc), _arr(scale)
        r = jax.random.gumbel(self._next_key(key), _shape(size, loc, scale), _f(dtype))
        return _loc_scale(r, loc, scale)

    def laplace(
        self,
        loc: Any = None,
        scale: Any = None,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Laplace with location ``loc`` and scale ``scale``."""
        loc, scale = _arr(loc), _arr(scale)
        r = jax.random.laplace(self._next_key(key), _shape(size, loc, scale), _f(dtype))
        return _loc_scale(r, loc, scale)

    def logistic(
        self,
        loc: Any = None,
        scale: Any = None,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Logistic with location ``loc`` and scale ``scale``."""
        loc, scale = _arr(loc), _arr(scale)
        r = jax.random.logistic(self._next_key(key), _shape(size, loc, scale), _f(dtype))
        return _loc_scale(r, loc, scale)

    def loggamma(self, a: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Log of a Gamma(a) draw, accurate for small ``a``."""
        a = _arr(a)
        return jax.random.loggamma(self._next_key(key), a, _shape(size, a), _f(dtype))

    def maxwell(self, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Maxwell (one-sided, scale 1)."""
        return jax.random.maxwell(self._next_key(key), _shape(size), _f(dtype))

    def pareto(self, a: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Pareto with shape ``a`` (``jax.random.pareto``, support [1, inf))."""
        a = _arr(a)
        return jax.random.pareto(self._next_key(key), a, _shape(size, a), _f(dtype))

    def power(
        self,
        a: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
        check_valid: bool = True,
    ) -> jax.Array:
        """Power distribution on [0, 1] with exponent ``a - 1``."""
        a = _arr(a)
        u = jax.random.uniform(self._next_key(key), _shape(size, a), _f(dtype))
        return jnp.power(u, 1.0 / a)

    def rayleigh(
        self, scale: Any = 1.0, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Rayleigh with scale ``scale``."""
        scale = _arr(scale)
        return jax.random.rayleigh(self._next_key(key), scale, _shape(size, scale), _f(dtype))

    def triangular(
        self,
        left: Any = 0.0,
        mode: Any = 0.5,
        right: Any = 1.0,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Triangular on [left, right] with peak ``mode``."""
        left, mode, right = map(_arr, (left, mode, right))
        shape = _shape(size, left, mode, right)
        return jax.random.triangular(self._next_key(key), left, mode, right, shape, _f(dtype))

    def weibull(self, a: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Weibull with shape ``a`` and scale 1 (``numpy.random.weibull``)."""
        a = _arr(a)
        return jax.random.weibull_min(self._next_key(key), 1.0, a, _shape(size, a), _f(dtype))

    def weibull_min(
        self, a: Any, scale: Any = None, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Weibull with shape ``a`` and scale ``scale`` (1 when None)."""
        a, scale = _arr(a), _arr(scale)
        s = 1.0 if scale is None else scale
        shape = _shape(size, a, scale)
        return jax.random.weibull_min(self._next_key(key), s, a, shape, _f(dtype))

    def wald(
        self, mean: Any, scale: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Wald (inverse Gaussian) with mean ``mean`` and scale ``scale``."""
        mean, scale = _arr(mean), _arr(scale)
        shape = _shape(size, mean, scale)
        return special.wald(self._next_key(key), mean, scale, shape, _f(dtype))

    def vonmises(
        self, mu: Any, kappa: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Von Mises on the circle, with mode ``mu`` and concentration ``kappa``."""
        mu, kappa = _arr(mu), _arr(kappa)
        shape = _shape(size, mu, kappa)
        return special.vonmises(self._next_key(key), mu, kappa, shape, _f(dtype))

    def noncentral_chisquare(
        self, df: Any, nonc: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Noncentral chi-square with ``df`` degrees of freedom and noncentrality ``nonc``."""
        df, nonc = _arr(df), _arr(nonc)
        shape = _shape(size, df, nonc)
        return special.noncentral_chisquare(self._next_key(key), df, nonc, shape, _f(dtype))

    def noncentral_f(
        self,
        dfnum: Any,
        dfden: Any,
        nonc: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Noncentral F."""
        dfnum, dfden, nonc = map(_arr, (dfnum, dfden, nonc))
        shape = _shape(size, dfnum, dfden, nonc)
        k1, k2 = jax.random.split(self._next_key(key))
        num = special.noncentral_chisquare(k1, dfnum, nonc, shape, _f(dtype)) / dfnum
        den = jax.random.chisquare(k2, dfden, shape, _f(dtype)) / dfden
        return num / den

    def orthogonal(
        self, n: int, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Uniformly distributed orthogonal ``n x n`` matrices."""
        shape = () if size is None else _shape(size)
        return jax.random.orthogonal(self._next_key(key), n, shape, _f(dtype))


add_examples(Draws)
