"""``jacfwd``, ``jacrev`` and ``jacobian`` over states and arguments."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax

from .sparse.compute import bind_owner, sparse_transform
from .sparse.plan import check_sparsity
from .transform import GradientTransform
from .units_hook import route

__all__ = ["jacfwd", "jacobian", "jacrev"]


def _jacfwd_transform(chunk_size: int | None, holomorphic: bool) -> Callable[..., Any]:
    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        if chunk_size is None:
            return jax.jacfwd(fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic)
        from .chunked import chunked_jacfwd

        return chunked_jacfwd(
            fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic, chunk_size=chunk_size
        )

    return transform


def _jacrev_transform(
    chunk_size: int | None, holomorphic: bool, allow_int: bool
) -> Callable[..., Any]:
    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        if chunk_size is None:
            return jax.jacrev(
                fun, argnums=argnums, has_aux=has_aux, holomorphic=holomorphic, allow_int=allow_int
            )
        from .chunked import chunked_jacrev

        return chunked_jacrev(
            fun,
            argnums=argnums,
            has_aux=has_aux,
            holomorphic=holomorphic,
            allow_int=allow_int,
            chunk_size=chunk_size,
        )

    return transform


def _check_chunk(api: str, chunk_size: Any) -> None:
    if chunk_size is None:
        return
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, int) or chunk_size < 1:
        raise ValueError(
            f"{api}: chunk_size must be a positive int or None, got {chunk_size!r}. "
            "Fix: e.g. chunk_size=64 (basis vectors per pass)."
        )


def jacfwd(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    chunk_size: int | None = None,
    debug_nan: bool = False,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Stateful counterpart of ``jax.jacfwd``: forward-mode Jacobian.

    Differentiates ``func`` with respect to the states in ``grad_states``
    (their values at entry) and/or the positional arguments in ``argnums``.
    States read but not differentiated are constants; states written inside
    ``func`` are written back once per call with their primal values.

    Returns, by which of ``grad_states`` / ``argnums`` are given and the flags:

    ===========  =======  =======  ============  =====================================
    grad_states  argnums  has_aux  return_value  returns
    ===========  =======  =======  ============  =====================================
    None         ``(0)``  F        F             ``arg_grads``
    None         ``(0)``  T        F             ``(arg_grads, aux)``
    None         ``(0)``  F        T             ``(arg_grads, value)``
    None         ``(0)``  T        T             ``(arg_grads, value, aux)``
    given        None     F        F             ``var_grads``
    given        None     T        F             ``(var_grads, aux)``
    given        None     F        T             ``(var_grads, value)``
    given        None     T        T             ``(var_grads, value, aux)``
    given        given    F        F             ``(var_grads, arg_grads)``
    given        given    T        F             ``((var_grads, arg_grads), aux)``
    given        given    F        T             ``((var_grads, arg_grads), value)``
    given        given    T        T             ``((var_grads, arg_grads), value, aux)``
    ===========  =======  =======  ============  =====================================

    ``var_grads`` has the container shape of ``grad_states``; ``arg_grads`` is
    what JAX gives for ``argnums`` alone: one Jacobian for an int ``argnums``
    and a tuple over the arguments for a sequence (inside the output
    structure, for pytree outputs). Each Jacobian is laid out as JAX lays it
    out: output structure over input structure, output shape then input shape.

    Args:
        func: The stateful function. Omit it to use ``jacfwd`` as a decorator
            factory: ``@sd.jacfwd(grad_states=w)``.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``; aux is returned as is.
        return_value: Also return the function's value.
        holomorphic: ``func`` is holomorphic (complex inputs and outputs).
        unit_aware: Units-aware derivatives (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``func``; with False its Jacobian is zeros.
        chunk_size: Compute the Jacobian this many basis vectors at a time,
            bounding peak memory; the result is the same.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.
        sparsity: None (dense), ``"auto"`` (detect the pattern from the
            traced jaxpr and colour it: one JVP per colour), or the pattern
            of the Jacobian's 2-D flattening (all output elements x all
            differentiated input elements) as a boolean array or ``BCOO``,
            or a pytree of per-block patterns in the layout of the
            derivative (each a boolean array or ``BCOO`` of the block's
            shape or 2-D flattening, ``"auto"`` to detect that block, or
            None for a dense block). See the guide page "Sparse Jacobians".
        sparse_output: Return each block as a
            ``jax.experimental.sparse.BCOO`` (implies ``sparsity="auto"``
            when ``sparsity`` is None).

    Returns:
        A function with ``func``'s signature returning what the table says.

    Raises:
        TypeError: a non-State in ``grad_states``; ``has_aux=True`` and
            ``func`` does not return a pair; integer inputs.
        ValueError: invalid ``argnums``; an untouched state with
            ``check_states=True``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def f(x):
        ...     return w.value * x
        >>> sd.jacfwd(f, grad_states=w)(3.0)
        Array([[3., 0.],
               [0., 3.]], dtype=float32)
        >>> var_grads, arg_grads = sd.jacfwd(f, grad_states=w, argnums=0)(3.0)
        >>> arg_grads
        Array([1., 2.], dtype=float32)
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        check_states=check_states,
        chunk_size=chunk_size,
        debug_nan=debug_nan,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )
    if debug_nan:
        options["debug_nan"] = True
    routed = route(jacfwd, func, unit_aware, options)
    if routed is not None:
        return routed
    _check_chunk("statediff.jacfwd", chunk_size)
    check_sparsity("statediff.jacfwd", sparsity, sparse_output)
    return bind_owner(GradientTransform(
        func,
        sparse_transform(
            "jacfwd",
            _jacfwd_transform(chunk_size, holomorphic),
            sparsity,
            sparse_output,
            chunk_size,
            holomorphic,
            "statediff.jacfwd",
        ),
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        name="statediff.jacfwd",
        holomorphic=holomorphic,
    ))


def jacrev(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    chunk_size: int | None = None,
    debug_nan: bool = False,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Stateful counterpart of ``jax.jacrev``: reverse-mode Jacobian.

    Same arguments and return contract as :func:`jacfwd` (see its table),
    plus ``allow_int`` (integer inputs get ``float0`` derivatives, as JAX).

    Args:
        func: The stateful function (omit for the decorator-factory form).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (default 0 when
            ``grad_states`` is None).
        has_aux: ``func`` returns ``(value, aux)``.
        return_value: Also return the function's value.
        holomorphic: ``func`` is holomorphic.
        allow_int: Allow integer inputs, as ``jax.jacrev``.
        unit_aware: Units-aware derivatives (needs ``statediff-units``).
        check_states: Raise if a state in ``grad_states`` is never touched.
        chunk_size: Compute the Jacobian this many cotangent basis vectors at
            a time, bounding peak memory; the result is the same.
        debug_nan: Raise ``RuntimeError`` (naming the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate; the failing call
            leaves every state as it was.
        sparsity: As :func:`jacfwd`, with the rows coloured (one VJP per
            colour).
        sparse_output: Return each block as a ``BCOO``.

    Returns:
        A function with ``func``'s signature returning what :func:`jacfwd`'s
        table says.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> sd.jacrev(lambda x: (w.value * x).sum(), grad_states=[w])(3.0)
        [Array([3., 3.], dtype=float32)]
    """
    options = dict(
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        allow_int=allow_int,
        check_states=check_states,
        chunk_size=chunk_size,
        debug_nan=debug_nan,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )
    if debug_nan:
        options["debug_nan"] = True
    routed = route(jacrev, func, unit_aware, options)
    if routed is not None:
        return routed
    _check_chunk("statediff.jacrev", chunk_size)
    check_sparsity("statediff.jacrev", sparsity, sparse_output)
    return bind_owner(GradientTransform(
        func,
        sparse_transform(
            "jacrev",
            _jacrev_transform(chunk_size, holomorphic, allow_int),
            sparsity,
            sparse_output,
            chunk_size,
            holomorphic,
            "statediff.jacrev",
        ),
        debug_nan=debug_nan,
        grad_states=grad_states,
        argnums=argnums,
        return_value=return_value,
        has_aux=has_aux,
        check_states=check_states,
        name="statediff.jacrev",
        integer_inputs=allow_int,
        holomorphic=holomorphic,
    ))


def jacobian(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool | None = None,
    return_value: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
    chunk_size: int | None = None,
    debug_nan: bool = False,
    sparsity: Any = None,
    sparse_output: bool = False,
) -> GradientTransform | Callable[[Callable[..., Any]], GradientTransform]:
    """Alias of :func:`jacrev` (as ``jax.jacobian`` is of ``jax.jacrev``).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> sd.jacobian(lambda x: x ** 2)(jnp.array([1.0, 2.0]))
        Array([[2., 0.],
               [0., 4.]], dtype=float32)
    """
    return jacrev(
        func,
        grad_states=grad_states,
        argnums=argnums,
        has_aux=has_aux,
        return_value=return_value,
        holomorphic=holomorphic,
        allow_int=allow_int,
        unit_aware=unit_aware,
        check_states=check_states,
        chunk_size=chunk_size,
        debug_nan=debug_nan,
        sparsity=sparsity,
        sparse_output=sparse_output,
    )
