"""``hessian`` over states and arguments, together."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from .sparse.compute import bind_owner, sparse_transform
from .sparse.plan import check_sparsity
from .transform import GradientTransform
from .units_hook import route

__all__ = ["hessian"]


def _hessian_transform(holomorphic: bool) -> Callable[..., Any]:
    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        return jax.hessian(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic)

    return transform


def hessian(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    debug_nan: bool = False,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Stateful counterpart of ``jax.hessian`` (forward-over-reverse).

    Same return contract as :func:`~statediff.jacfwd`. Unlike brainstate,
    ``grad_states`` and ``argnums`` may be given together; the blocks are
    then nested as JAX nests them for ``argnums=(states, *argnums)``: with
    inputs ``z = (S, a_1, ..., a_k)`` (``S`` the ``grad_states`` container),

    - ``var_grads`` is, for each state ``s`` of the container (the container
      is outermost, as JAX nests it), the tuple ``(H[s][S], H[s][a_1], ...,
      H[s][a_k])``; for a single State, ``(H[S][S], H[S][a_1], ..., H[S][a_k])``,
    - ``arg_grads`` is, for each ``a_i`` (bare for an int ``argnums``, a tuple
      otherwise), the tuple ``(H[a_i][S], H[a_i][a_1], ..., H[a_i][a_k])``.

    That is, with ``H = jax.hessian(pure, argnums=(0, 1 + i_1, ...))(S, *args)``
    for the pure function taking the states' values first: ``var_grads = H[0]``
    and ``arg_grads = H[1]`` (int ``argnums``) or ``H[1:]``.

    Each block ``H[u][v]`` has shape ``output + shape(u) + shape(v)``, nested
    over the containers of ``u`` then ``v`` (for pytree outputs, the output
    structure is outermost, as in JAX). With only ``grad_states`` or only
    ``argnums``, the result is exactly JAX's layout for that input.

    Args:
        func: The stateful scalar function (omit for the decorator form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        holomorphic: ``func`` is holomorphic.
        unit_aware: Units-aware Hessians (needs ``statediff-units``).
        check_states: Raise if a state in ``grad_states`` is never touched.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.
        sparsity: None (dense), ``"auto"`` (detect the Hessian's pattern and
            star-colour it: one forward-over-reverse product per colour), or
            the (n x n) pattern over all differentiated input elements as a
            boolean array or ``BCOO``, or a pytree of per-block patterns in
            the layout of the Hessian (as :func:`jacfwd`; each block is
            joined with its mirror block). Scalar functions only (otherwise
            dense).
        sparse_output: Return each block as a ``BCOO``.

    Returns:
        A function with ``func``'s signature.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> sd.hessian(lambda: (w.value ** 3).sum(), grad_states=w)()
        Array([[ 6.,  0.],
               [ 0., 12.]], dtype=float32)
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        check_states=check_states,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )
    if debug_nan:
        options["debug_nan"] = True
    routed = route(hessian, func, unit_aware, options)
    if routed is not None:
        return routed
    check_sparsity("statediff.hessian", sparsity, sparse_output)
    return bind_owner(GradientTransform(
        func,
        sparse_transform(
            "hessian",
            _hessian_transform(holomorphic),
            sparsity,
            sparse_output,
            None,
            holomorphic,
            "statediff.hessian",
        ),
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        name="statediff.hessian",
        holomorphic=holomorphic,
    ))
