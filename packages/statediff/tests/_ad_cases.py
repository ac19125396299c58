"""Shared cases for the jvp / vjp / linearize / fwd_grad tests.

A :class:`Case` is a stateful function of ``(x, z)`` reading two states ``a``
and ``b`` and writing a counter, plus its pure equivalent with the state
values as explicit arguments, so that every test can compare against plain
JAX on the pure function.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

import stategraph as sg

KINDS = ["single", "list", "dict", "nested"]
SHAPES = [(), (3,), (2, 3)]
ARGNUMS = [None, 0, 1, (0,), (1, 0), (0, 1)]


def rand(rng: np.random.Generator, shape: tuple[int, ...]) -> jax.Array:
    return jnp.asarray(rng.normal(size=shape), jnp.float32)


def rand_like(rng: np.random.Generator, tree: Any) -> Any:
    return jax.tree.map(lambda x: rand(rng, jnp.shape(x)), tree)


class Case:
    """``f(x, z)`` reading states ``a`` and ``b``; ``grad_states`` shaped by ``kind``.

    With kind ``single`` only ``a`` is differentiated, and ``b`` is a state
    that is read but constant.
    """

    def __init__(self, kind: str, a_shape: tuple, b_shape: tuple, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.kind = kind
        self.a = sg.ParamState(rand(self.rng, a_shape), name="a")
        self.b = sg.ParamState(rand(self.rng, b_shape), name="b")
        self.count = sg.ShortTermState(jnp.zeros(()), name="count")
        self.traces = 0
        a, b = self.a, self.b
        self.grad_states: Any = {
            "single": a,
            "list": [a, b],
            "dict": {"b": b, "a": a},
            "nested": {"a": [a], "b": (b,)},
        }[kind]

    @staticmethod
    def pure(a: Any, b: Any, x: Any, z: Any) -> Any:
        return x * jnp.sum(jnp.sin(a)) + jnp.sum(jnp.exp(0.1 * z)) * jnp.mean(b**2)

    def f(self, x: Any, z: Any) -> Any:
        self.traces += 1
        self.count.value = self.count.value + 1
        return self.pure(self.a.value, self.b.value, x, z)

    def f_aux(self, x: Any, z: Any) -> Any:
        return self.f(x, z), {"x2": x * 2}

    def values(self) -> Any:
        """The grad states' values, in the container shape of ``grad_states``."""
        return jax.tree.map(
            lambda s: s.value, self.grad_states, is_leaf=lambda s: isinstance(s, sg.State)
        )

    def split(self, g: Any) -> tuple[Any, Any]:
        """``(a, b)`` values from a grad-states container (``b`` constant if single)."""
        if self.kind == "single":
            return g, self.b.value
        if self.kind == "list":
            return g[0], g[1]
        if self.kind == "dict":
            return g["a"], g["b"]
        return g["a"][0], g["b"][0]

    def pure_of(self, positions: tuple[int, ...], args: tuple[Any, ...], states: bool) -> Any:
        """Pure function of ``(grad values?, *args at positions)``; the rest are constants."""

        def fn(*inputs: Any) -> Any:
            if states:
                a, b = self.split(inputs[0])
                inputs = inputs[1:]
            else:
                a, b = self.a.value, self.b.value
            full = list(args)
            for p, v in zip(positions, inputs, strict=True):
                full[p] = v
            return self.pure(a, b, *full)

        return fn


def positions_of(argnums: Any, states: bool, n_args: int = 2) -> tuple[int, ...]:
    """The differentiated positions for ``argnums`` (all args when neither is given)."""
    if argnums is None:
        return () if states else tuple(range(n_args))
    return (argnums,) if isinstance(argnums, int) else tuple(argnums)


def assert_tree_close(got: Any, want: Any, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    assert jax.tree.structure(got) == jax.tree.structure(want), (got, want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        assert jnp.shape(g) == jnp.shape(w), (g, w)
        assert jnp.result_type(g) == jnp.result_type(w), (g, w)
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)
