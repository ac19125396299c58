"""Samplers for the numpy distributions that ``jax.random`` does not provide.

Rejection samplers loop with ``jax.lax.while_loop`` until every element is
accepted, so they work under ``jit``, ``vmap`` and ``scan``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

__all__ = ["hypergeometric", "logseries", "noncentral_chisquare", "vonmises", "wald", "zipf"]


def _reject(
    key: Any, shape: tuple[int, ...], dtype: Any, propose: Callable[[Any], tuple[Any, Any]]
) -> Any:
    """Draw with ``propose(key) -> (candidates, accepted)`` until all are accepted."""

    def cond(carry: tuple[Any, Any, Any]) -> Any:
        return ~jnp.all(carry[2])

    def body(carry: tuple[Any, Any, Any]) -> tuple[Any, Any, Any]:
        k, out, done = carry
        k, sub = jax.random.split(k)
        cand, ok = propose(sub)
        take = ok & ~done
        return k, jnp.where(take, cand.astype(dtype), out), done | ok

    init = (key, jnp.zeros(shape, dtype), jnp.zeros(shape, bool))
    return jax.lax.while_loop(cond, body, init)[1]


def wald(key: Any, mean: Any, scale: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Inverse Gaussian by the transformation of Michael, Schucany and Haas."""
    k1, k2 = jax.random.split(key)
    mu = jnp.broadcast_to(jnp.asarray(mean, dtype), shape)
    lam = jnp.broadcast_to(jnp.asarray(scale, dtype), shape)
    y = jax.random.normal(k1, shape, dtype) ** 2
    x = mu + mu**2 * y / (2 * lam) - mu / (2 * lam) * jnp.sqrt(4 * mu * lam * y + (mu * y) ** 2)
    u = jax.random.uniform(k2, shape, dtype)
    return jnp.where(u <= mu / (mu + x), x, mu**2 / x)


def vonmises(key: Any, mu: Any, kappa: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Von Mises by the rejection method of Best and Fisher (1979)."""
    kappa = jnp.broadcast_to(jnp.asarray(kappa, dtype), shape)
    mu = jnp.broadcast_to(jnp.asarray(mu, dtype), shape)
    small = kappa < 1e-6
    k = jnp.where(small, 1.0, kappa)
    tau = 1 + jnp.sqrt(1 + 4 * k**2)
    rho = (tau - jnp.sqrt(2 * tau)) / (2 * k)
    r = (1 + rho**2) / (2 * rho)

    def propose(sub: Any) -> tuple[Any, Any]:
        u1, u2, u3 = jax.random.uniform(sub, (3, *shape), dtype)
        z = jnp.cos(jnp.pi * u1)
        f = (1 + r * z) / (r + z)
        c = k * (r - f)
        ok = (c * (2 - c) - u2 > 0) | (jnp.log(c / u2) + 1 - c >= 0)
        theta = jnp.sign(u3 - 0.5) * jnp.arccos(jnp.clip(f, -1.0, 1.0))
        return theta, ok

    k_rej, k_uni = jax.random.split(key)
    theta = _reject(k_rej, shape, dtype, propose)
    uniform = jax.random.uniform(k_uni, shape, dtype, -jnp.pi, jnp.pi)
    out = jnp.where(small, uniform, theta) + mu
    return jnp.mod(out + jnp.pi, 2 * jnp.pi) - jnp.pi


def noncentral_chisquare(key: Any, df: Any, nonc: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """A Poisson mixture of central chi-squares: ``chi2(df + 2 * Poisson(nonc / 2))``."""
    k1, k2 = jax.random.split(key)
    i = jax.random.poisson(k1, jnp.asarray(nonc) / 2, shape)
    return jax.random.chisquare(k2, jnp.asarray(df, dtype) + 2 * i, shape, dtype)


def zipf(key: Any, a: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Zipf by the rejection method of Devroye (1986), as numpy does."""
    a = jnp.broadcast_to(jnp.asarray(a, jnp.float32), shape)
    am1 = a - 1
    b = jnp.power(2.0, am1)

    def propose(sub: Any) -> tuple[Any, Any]:
        ku, kv = jax.random.split(sub)
        u = 1.0 - jax.random.uniform(ku, shape)
        v = jax.random.uniform(kv, shape)
        x = jnp.floor(jnp.power(u, -1.0 / am1))
        t = jnp.power(1.0 + 1.0 / x, am1)
        ok = (x >= 1) & (x < 2.0**31) & (v * x * (t - 1) / (b - 1) <= t / b)
        return x, ok

    return _reject(key, shape, dtype, propose)


def logseries(key: Any, p: Any, shape: tuple[int, ...], dtype: Any) -> Any:
    """Logarithmic series by Kemp's second method, as numpy does."""
    p = jnp.broadcast_to(jnp.asarray(p, jnp.float32), shape)
    kv, ku = jax.random.split(key)
    v = jax.random.uniform(kv, shape)
    u = jax.random.uniform(ku, shape)
    r = jnp.log1p(-p)
    q = -jnp.expm1(r * u)
    many = jnp.floor(1 + jnp.log(v) / jnp.log(q))
    out = jnp.where(v <= q * q, jnp.maximum(many, 1), jnp.where(v <= q, 2, 1))
    return jnp.where(v >= p, 1, out).astype(dtype)


def hypergeometric(
    key: Any, ngood: Any, nbad: Any, nsample: Any, shape: tuple[int, ...], dtype: Any
) -> Any:
    """Draw ``nsample`` items one by one without replacement and count the good ones."""
    good = jnp.broadcast_to(jnp.asarray(ngood, jnp.float32), shape)
    total = good + jnp.broadcast_to(jnp.asarray(nbad, jnp.float32), shape)
    n = jnp.broadcast_to(jnp.asarray(nsample, jnp.int32), shape)

    def cond(carry: tuple[Any, ...]) -> Any:
        return jnp.any(carry[1] < n)

    def body(carry: tuple[Any, ...]) -> tuple[Any, ...]:
        k, i, good_left, total_left, count = carry
        k, sub = jax.random.split(k)
        active = i < n
        pick = jax.random.uniform(sub, shape) * total_left < good_left
        got = active & pick
        return (
            k,
            i + active,
            good_left - got,
            total_left - active,
            count + got,
        )

    init = (key, jnp.zeros(shape, jnp.int32), good, total, jnp.zeros(shape, jnp.int32))
    return jax.lax.while_loop(cond, body, init)[4].astype(dtype)
