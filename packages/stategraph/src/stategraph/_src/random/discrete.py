"""The integer, selection and discrete draws of ``RandomState`` (``jax.random`` numbers)."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from ..jax_compat import multinomial_shape
from . import special
from .draws import Size, _arr, _f, _i, _shape
from .examples import add_examples

__all__ = ["DiscreteDraws"]


class DiscreteDraws:
    """Mixin: integer, selection and discrete draws on the key of a ``RandomState``."""

    __slots__ = ()

    def _next_key(self, key: Any) -> Any:  # pragma: no cover - defined by RandomState
        raise NotImplementedError

    # --------------------------------------------------------------- integers
    def randint(
        self, low: Any, high: Any = None, size: Size = None, dtype: Any = None, key: Any = None
    ) -> jax.Array:
        """Integers in [low, high) (or [0, low) when ``high`` is None)."""
        if high is None:
            low, high = 0, low
        low, high = _arr(low), _arr(high)
        shape = _shape(size, low, high)
        return jax.random.randint(self._next_key(key), shape, low, high, _i(dtype))

    def random_integers(
        self, low: Any, high: Any = None, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Integers in [low, high] (or [1, low] when ``high`` is None)."""
        if high is None:
            low, high = 1, low
        low, high = _arr(low), _arr(high)
        shape = _shape(size, low, high)
        return jax.random.randint(self._next_key(key), shape, low, high + 1, _i(dtype))

    def randint_like(
        self,
        input: Any,
        low: Any = 0,
        high: Any = None,
        dtype: Any = None,
        key: Any = None,  # noqa: A002
    ) -> jax.Array:
        """Integers in [low, high) shaped like ``input``."""
        if high is None:
            low, high = 0, low if low else jnp.max(jnp.asarray(input))
        like = getattr(input, "dtype", None)
        if dtype is None and like is not None and jnp.issubdtype(like, jnp.integer):
            dtype = like
        return self.randint(low, high, np.shape(input), dtype, key)

    # ------------------------------------------------------------ selections
    def choice(
        self, a: Any, size: Size = None, replace: bool = True, p: Any = None, key: Any = None
    ) -> jax.Array:
        """Sample from ``a`` (or ``range(a)``), with or without replacement."""
        shape = () if size is None else _shape(size)
        return jax.random.choice(self._next_key(key), _arr(a), shape, replace, _arr(p))

    def permutation(
        self, x: Any, axis: int = 0, independent: bool = False, key: Any = None
    ) -> jax.Array:
        """A permuted copy of ``x`` (or of ``range(x)``)."""
        return jax.random.permutation(self._next_key(key), _arr(x), axis, independent)

    def shuffle(self, x: Any, axis: int = 0, key: Any = None) -> jax.Array:
        """A shuffled copy of ``x`` along ``axis`` (JAX arrays are immutable)."""
        return self.permutation(x, axis=axis, key=key)

    def bernoulli(
        self, p: Any = 0.5, size: Size = None, key: Any = None, check_valid: bool = True
    ) -> jax.Array:
        """Booleans that are True with probability ``p``."""
        p = _arr(p)
        return jax.random.bernoulli(self._next_key(key), p, _shape(size, p))

    def categorical(
        self, logits: Any, axis: int = -1, size: Size = None, key: Any = None
    ) -> jax.Array:
        """Indices drawn from the categorical distribution of ``logits``."""
        shape = None if size is None else _shape(size)
        return jax.random.categorical(self._next_key(key), _arr(logits), axis, shape)

    # -------------------------------------------------------------- discrete
    def poisson(
        self, lam: Any = 1.0, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Poisson with rate ``lam``."""
        lam = _arr(lam)
        return jax.random.poisson(self._next_key(key), lam, _shape(size, lam), _i(dtype))

    def binomial(
        self,
        n: Any,
        p: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
        check_valid: bool = True,
    ) -> jax.Array:
        """Binomial: successes in ``n`` trials of probability ``p``."""
        n, p = _arr(n), _arr(p)
        return jax.random.binomial(self._next_key(key), n, p, _shape(size, n, p), _f(dtype))

    def geometric(self, p: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Geometric: trials up to the first success (support 1, 2, ...)."""
        p = _arr(p)
        return jax.random.geometric(self._next_key(key), p, _shape(size, p), _i(dtype))

    def negative_binomial(
        self, n: Any, p: Any, size: Size = None, key: Any = None, dtype: Any = None
    ) -> jax.Array:
        """Negative binomial: failures before the ``n``-th success (a gamma-Poisson mix)."""
        n, p = _arr(n), _arr(p)
        shape = _shape(size, n, p)
        k1, k2 = jax.random.split(self._next_key(key))
        lam = jax.random.gamma(k1, n, shape) * (1 - p) / p
        return jax.random.poisson(k2, lam, shape, _i(dtype))

    def multinomial(
        self,
        n: Any,
        pvals: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
        check_valid: bool = True,
    ) -> jax.Array:
        """Counts of ``n`` draws among the categories of ``pvals`` (last axis)."""
        pvals = jnp.asarray(pvals)
        shape = None if size is None else multinomial_shape(_shape(size), pvals.shape[-1])
        return jax.random.multinomial(self._next_key(key), n, pvals, shape=shape, dtype=_f(dtype))

    def zipf(self, a: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Zipf with exponent ``a > 1`` (support 1, 2, ...)."""
        a = _arr(a)
        return special.zipf(self._next_key(key), a, _shape(size, a), _i(dtype))

    def logseries(self, p: Any, size: Size = None, key: Any = None, dtype: Any = None) -> jax.Array:
        """Logarithmic series with parameter ``p`` in (0, 1) (support 1, 2, ...)."""
        p = _arr(p)
        return special.logseries(self._next_key(key), p, _shape(size, p), _i(dtype))

    def hypergeometric(
        self,
        ngood: Any,
        nbad: Any,
        nsample: Any,
        size: Size = None,
        key: Any = None,
        dtype: Any = None,
    ) -> jax.Array:
        """Good items among ``nsample`` drawn without replacement from ``ngood + nbad``."""
        ngood, nbad, nsample = map(_arr, (ngood, nbad, nsample))
        shape = _shape(size, ngood, nbad, nsample)
        return special.hypergeometric(self._next_key(key), ngood, nbad, nsample, shape, _i(dtype))


add_examples(DiscreteDraws)
