"""``fwd_grad``: unbiased forward-gradient estimates (Baydin et al., 2022)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from stategraph import ShortTermState, State

from .transform import GradientTransform
from .units_hook import route

__all__ = ["fwd_grad"]

_API = "statediff.fwd_grad"


class _KeySource:
    """The PRNG key of a ``fwd_grad`` transform, held in a State and advanced per call.

    A typed key (``jax.random.key``) is stored as its raw key data and
    re-wrapped on use: stategraph cannot yet check writes of typed-key values
    inside a trace (``np.dtype`` of a key dtype fails in its structure check).
    """

    def __init__(self, key: Any) -> None:
        self.impl: Any = None
        if isinstance(key, State):
            self.state = key
            return
        if key is None:
            key = 0
        if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
            key = jax.random.key(int(key))
        try:
            dtype = jax.typeof(key).dtype
        except TypeError:
            dtype = None
        if dtype is not None and jnp.issubdtype(dtype, jax.dtypes.prng_key) and key.shape == ():
            self.impl = jax.random.key_impl(key)
            key = jax.random.key_data(key)
        elif dtype != np.uint32 or jnp.shape(key) != (2,):
            raise TypeError(
                f"{_API}: key must be None, an int seed, a single JAX PRNG key "
                "(jax.random.key(0) or jax.random.PRNGKey(0)) or a State holding one, got "
                f"{type(key).__name__} {key!r}. Fix: e.g. key=jax.random.key(0)."
            )
        self.state = ShortTermState(key, name="fwd_grad_key")

    def next(self) -> jax.Array:
        """Advance the key (a recorded read and write) and return this call's subkey."""
        key = self.state.value
        if self.impl is not None:
            key = jax.random.wrap_key_data(key, impl=self.impl)
        key, sub = jax.random.split(key)
        self.state.value = jax.random.key_data(key) if self.impl is not None else key
        return sub


def _check_tangent_size(tangent_size: Any) -> int:
    if tangent_size is None:
        return 1
    if (
        isinstance(tangent_size, bool)
        or not isinstance(tangent_size, (int, np.integer))
        or tangent_size < 1
    ):
        raise ValueError(
            f"{_API}: tangent_size must be a positive int or None (one tangent), got "
            f"{tangent_size!r}. Fix: e.g. tangent_size=16 (random directions averaged)."
        )
    return int(tangent_size)


def draw_tangents(key: jax.Array, primals: Any, tangent_size: int) -> Any:
    """Draw ``tangent_size`` standard-normal tangents for ``primals`` (stacked on axis 0).

    The ``i``-th leaf of ``primals`` (in pytree order) gets
    ``jax.random.normal(jax.random.split(key, n_leaves)[i], (tangent_size, *shape), dtype)``.
    """
    leaves, tree = jax.tree.flatten(primals)
    keys = jax.random.split(key, len(leaves)) if leaves else []
    drawn = [
        jax.random.normal(k, (tangent_size, *jnp.shape(x)), jnp.result_type(x))
        for k, x in zip(keys, leaves, strict=True)
    ]
    return jax.tree.unflatten(tree, drawn)


def _check_clip(drct_der_clip: Any) -> float | None:
    if drct_der_clip is None:
        return None
    ok = isinstance(drct_der_clip, (int, float, np.integer, np.floating)) and not isinstance(
        drct_der_clip, bool
    )
    if not ok or not float(drct_der_clip) > 0:
        raise ValueError(
            f"{_API}: drct_der_clip must be a positive number or None (no clipping), got "
            f"{type(drct_der_clip).__name__} {drct_der_clip!r}. Fix: e.g. drct_der_clip=10.0 "
            "(each directional derivative is clipped to [-10, 10])."
        )
    return float(drct_der_clip)


def _fwd_grad_transform(
    keys: _KeySource, tangent_size: int, clip: float | None = None
) -> Callable[..., Any]:
    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        single = isinstance(argnums, int)
        nums = (argnums,) if single else tuple(argnums)

        def run(*inputs: Any) -> tuple[Any, Any]:
            def partial_fun(*diff: Any) -> Any:
                full = list(inputs)
                for i, v in zip(nums, diff, strict=True):
                    full[i] = v
                return fun(*full)

            diff = tuple(inputs[i] for i in nums)
            y, linear, aux = jax.linearize(partial_fun, *diff, has_aux=True)
            _check_scalar(y)
            vs = draw_tangents(keys.next(), diff, tangent_size)
            ds = jax.vmap(lambda v: linear(*v))(vs)  # directional derivatives, shape (T,)
            if clip is not None:  # as brainstate: clip each directional derivative
                ds = jnp.clip(ds, -clip, clip)
            grads = jax.tree.map(
                lambda x, v: (jnp.tensordot(ds, v, axes=(0, 0)) / tangent_size).astype(
                    jnp.result_type(x)
                ),
                diff,
                vs,
            )
            return (grads[0] if single else tuple(grads)), aux

        return run

    return transform


def _check_scalar(y: Any) -> None:
    leaves = jax.tree.leaves(y)
    aval = jax.typeof(leaves[0]) if len(leaves) == 1 else None
    if aval is None or aval.shape != () or not jnp.issubdtype(aval.dtype, np.floating):
        got = jax.tree.map(lambda x: jax.typeof(x).str_short(), y)
        raise TypeError(
            f"{_API}: like grad, the function must return a real scalar (a float array of "
            f"shape ()), but it returned {got}. Fix: reduce the output (e.g. `.sum()`), or "
            "use statediff.jvp for directional derivatives of vector outputs."
        )


def fwd_grad(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    return_value: bool = False,
    tangent_size: int | None = None,
    drct_der_clip: float | None = None,
    key: Any = None,
    unit_aware: bool = False,
    check_states: bool = True,
    debug_nan: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Forward-gradient estimate of a scalar function (Baydin et al., 2022).

    Estimates the gradient without a backward pass: draws random directions
    ``v ~ N(0, I)`` over all differentiated inputs together, computes each
    directional derivative ``d = J v`` with one forward-mode product, and
    returns ``g = mean(d * v)``. ``E[g]`` is the true gradient; the variance
    shrinks as ``1 / tangent_size``.

    Same arguments and return contract as :func:`~statediff.grad` (the
    12-case table of :func:`~statediff.jacfwd`): each estimate has the
    structure, shape and dtype of its input, ``var_grads`` the container
    shape of ``grad_states``. Inputs must be real floating point.

    Randomness: the transform holds a PRNG key in a state, advanced on every
    call, so successive calls draw fresh directions and the sequence is
    reproducible from ``key``. Call ``n`` (from 0) with key ``k_n`` does
    ``k_{n+1}, sub = jax.random.split(k_n)`` and draws the tangents from
    ``sub``: inputs are flattened in pytree order over ``(var inputs, *arg
    inputs)`` (the ``grad_states`` values in their container's order, then
    the ``argnums`` arguments), and leaf ``i`` of shape ``s`` gets
    ``jax.random.normal(jax.random.split(sub, n_leaves)[i], (tangent_size, *s))``.
    The key state is read and written like any state: use ``statejax.jit``
    (not ``jax.jit``) to compile a function that calls the estimator.

    Args:
        func: The stateful function returning a real scalar (omit for the
            decorator-factory form ``@sd.fwd_grad(grad_states=params)``).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        tangent_size: Number of random directions averaged (default 1).
        drct_der_clip: If given, clip each directional derivative ``d`` to
            ``[-drct_der_clip, drct_der_clip]`` before forming the estimate
            (as brainstate), bounding the estimator's variance.
        key: The initial PRNG key: ``None`` (seed 0), an int seed, a key
            (``jax.random.key(0)`` or a raw ``jax.random.PRNGKey(0)``), or a
            ``State`` holding a key, which is then used and advanced in place.
            The key's state is the transform's ``key_state`` (holding the
            raw ``jax.random.key_data`` when ``key`` is a typed key).
        unit_aware: Units-aware estimates (needs ``statediff-units``).
        check_states: Raise if a state in ``grad_states`` is never touched.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.

    Returns:
        A function with ``func``'s signature (a
        :class:`~statediff.GradientTransform` with a ``key_state`` attribute).

    Raises:
        TypeError: a non-State in ``grad_states``; an invalid ``key``; a
            non-scalar or complex output; integer or complex inputs.
        ValueError: invalid ``argnums`` or ``tangent_size``; an untouched
            state with ``check_states=True``.

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, -2.0]), name="w")
        >>> def loss():
        ...     return (w.value ** 2).sum()
        >>> est = sd.fwd_grad(loss, grad_states=w, tangent_size=4000, key=jax.random.key(1))
        >>> g = est()
        >>> bool(jnp.allclose(g, 2 * w.value, atol=0.3))   # true gradient [2, -4]
        True
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        tangent_size=tangent_size,
        key=key,
        check_states=check_states,
    )
    if drct_der_clip is not None:
        options["drct_der_clip"] = drct_der_clip
    if debug_nan:
        options["debug_nan"] = True
    routed = route(fwd_grad, func, unit_aware, options)
    if routed is not None:
        return routed
    size = _check_tangent_size(tangent_size)
    clip = _check_clip(drct_der_clip)
    keys = _KeySource(key)
    gt = GradientTransform(
        func,
        _fwd_grad_transform(keys, size, clip),
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        output_structured=False,
        name=_API,
    )
    gt.key_state = keys.state  # type: ignore[attr-defined]
    return gt
