"""Sparsity detection through each handled primitive, against plain JAX.

For every function the detected pattern must contain every non-zero of
``jax.jacfwd`` at random points (conservative), equal the exact structure
where detection is exact, and the sparse Jacobian must equal the dense one.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
from statediff._src.sparse import detect

N = 8
RNG = np.random.default_rng(0)
IDX = np.array([3, 0, 0, 7, 5])
M = (RNG.random((6, N)) < 0.3) * RNG.normal(size=(6, N))


def _scan_short(x):
    def body(c, xi):
        return c * 0.5 + xi, jnp.sin(c) * xi

    c, ys = jax.lax.scan(body, 0.0, x)
    return jnp.concatenate([ys, c[None]])


def _scan_long(x):
    def body(c, _):
        return jnp.roll(c, 1) * 0.9 + c, c.sum()

    c, ys = jax.lax.scan(body, x, None, length=40)
    return jnp.concatenate([c, ys])


def _while(x):
    def body(c):
        i, v = c
        return i + 1, v * 0.5 + jnp.roll(v, 1) ** 2

    return jax.lax.while_loop(lambda c: c[0] < 3, body, (0, x))[1]


def _cond(x):
    return jax.lax.cond(x[0] > 0, lambda z: z * 2.0, lambda z: jnp.flip(z), x)


def _custom(x):
    return jax.nn.relu(x) + jax.nn.softplus(x[::-1])


@jax.custom_jvp
def _cube(x):
    return x**3


_cube.defjvp(lambda p, t: (_cube(p[0]), 3 * p[0] ** 2 * t[0]))

# name -> (function, exact?)
CASES = {
    "elementwise": (lambda x: jnp.tanh(x) * jnp.exp(x) / (1 + x**2) - jnp.maximum(x, 0.1), True),
    "clamp_integer_pow": (lambda x: jnp.clip(x, -0.5, 0.5) + x**3, True),
    "where_select": (lambda x: jnp.where(x > 0, x, jnp.sin(x)), True),
    "reshape_transpose": (lambda x: x.reshape(2, 4).T.reshape(-1) * 2.0, True),
    "broadcast": (lambda x: (x[:, None] * jnp.ones((N, 3))).reshape(-1), True),
    "slice_rev": (lambda x: jnp.concatenate([x[1:] - x[:-1], x[::-1][:2]]), True),
    "pad": (lambda x: jnp.pad(x, 2) * 3.0, True),
    "gather": (lambda x: jnp.sin(x)[IDX] * x[IDX[::-1]], True),
    "dynamic_slice": (lambda x: jax.lax.dynamic_slice(x, (2,), (3,)), True),
    "dynamic_update_slice": (
        lambda x: jax.lax.dynamic_update_slice(x, jnp.sin(x[:2]), (5,)), True),
    "stack_tile": (lambda x: jnp.stack([x[:2], x[3:5]]).reshape(-1) * jnp.tile(x[:2], 2), True),
    "split": (lambda x: jnp.split(x, 2)[1] * jnp.split(x, 2)[0], True),
    "reduce": (lambda x: jnp.stack([x.sum(), x[:3].max(), x[3:].min(), x[:2].prod()]), False),
    "reduce_axis": (lambda x: x.reshape(2, 4).sum(0), True),
    "cumulative": (lambda x: jnp.concatenate([jnp.cumsum(x[:4]), jnp.cumprod(x[4:])]), False),
    "sort": (lambda x: jnp.concatenate([jnp.sort(x[:4]), x[4:] * 2.0]), False),
    "top_k": (lambda x: jax.lax.top_k(x, 3)[0], False),
    "argmax_int": (lambda x: x * jnp.argmax(x), True),
    "dot_const_sparse": (lambda x: jnp.asarray(M, jnp.float32) @ jnp.tanh(x), True),
    "dot_vars": (lambda x: jnp.outer(x[:2], x[2:5]).reshape(-1), True),
    "scatter_add": (lambda x: jnp.zeros(4).at[np.array([0, 0, 3])].add(x[:3] ** 2), True),
    "scatter_set": (lambda x: x.at[np.array([1, 6])].set(jnp.sin(x[:2])), False),
    "cond": (_cond, False),
    "while": (_while, False),
    "scan_short": (_scan_short, False),
    "scan_long": (_scan_long, False),
    "jit": (lambda x: jax.jit(lambda z: z[::2] * z[1::2])(x), True),
    "custom_jvp": (_custom, False),
    "user_custom_jvp": (lambda x: _cube(x[:3]), True),
    "remat": (lambda x: jax.checkpoint(lambda z: jnp.sin(z) * z[::-1])(x), True),
    "stop_gradient": (lambda x: x * jax.lax.stop_gradient(x[::-1]), True),
}


def _true_pattern(f, points):
    jac = jax.jit(jax.jacfwd(f))  # one compile, not one per primitive of the Jacobian
    out = np.zeros_like(np.asarray(jac(points[0])), dtype=bool)
    for p in points:
        out |= np.asarray(jac(p)) != 0
    return out.reshape(out.shape[0] if out.ndim > 1 else 1, -1)


@pytest.mark.parametrize("name", sorted(CASES))
def test_detection_per_primitive(name):
    f, exact = CASES[name]
    pts = [jnp.asarray(RNG.normal(size=N), jnp.float32) + 0.1 for _ in range(2)]
    with warnings.catch_warnings():
        # Every primitive here has a rule: no detection warning (a RuntimeWarning). Only that
        # category: a compile may warn of its own (a persistent cache entry being written).
        warnings.simplefilter("error", RuntimeWarning)
        info = sd.jacfwd(f, sparsity="auto").sparsity(pts[0])
    detected = info.todense()
    true = _true_pattern(f, pts)
    assert detected.shape == true.shape
    assert not np.any(true & ~detected), "a non-zero was detected as a structural zero"
    if exact:
        np.testing.assert_array_equal(detected, true)
    dense = jax.jit(jax.jacfwd(f))(pts[0])
    apis = (sd.jacfwd,) if name == "while" else (sd.jacfwd, sd.jacrev)  # JAX: no reverse while
    for api in apis:
        got = api(f, sparsity="auto")(pts[0])
        np.testing.assert_allclose(np.asarray(got), np.asarray(dense), rtol=1e-5, atol=1e-6)


def test_unknown_primitive_warns_once_and_is_dense(monkeypatch):
    monkeypatch.setattr(detect, "_WARNED", set())
    kernel = jnp.asarray(RNG.normal(size=(1, 1, 3)), jnp.float32)

    def f(x):
        y = jax.lax.conv_general_dilated(x[None, None], kernel, (1,), "SAME")
        return y.reshape(-1) + x

    x = jnp.asarray(RNG.normal(size=N), jnp.float32)
    with pytest.warns(RuntimeWarning, match="conv_general_dilated"):
        got = sd.jacfwd(f, sparsity="auto")(x)
    np.testing.assert_allclose(got, jax.jacfwd(f)(x), rtol=1e-5, atol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        sd.jacfwd(lambda z: f(z) * 2.0, sparsity="auto")(x)  # no second warning


def test_detection_is_conservative_for_unknown_indices():
    def f(x, i):
        return jax.lax.dynamic_slice(x, (i,), (2,)) + x[jnp.clip(i, 0, N - 1)]

    x = jnp.arange(float(N))
    got = sd.jacfwd(f, sparsity="auto")(x, 3)
    np.testing.assert_allclose(got, jax.jacfwd(f)(x, 3))
    info = sd.jacfwd(f, sparsity="auto").sparsity(x, 3)
    assert info.todense().all()  # any element may be picked
