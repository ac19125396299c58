"""Runtime checks in compiled stateful code: ``jit_error_if`` and ``checkify``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.experimental import checkify as _cfy

from .compose import StateIO, lifted_for
from .eager import concrete
from .jax_compat import error_flag
from .jit import as_function
from .stateful import StatefulFunction
from .unvmap import unvmap

__all__ = [
    "all_checks",
    "automatic_checks",
    "check",
    "check_error",
    "checkify",
    "div_checks",
    "float_checks",
    "index_checks",
    "jit_error_if",
    "nan_checks",
    "user_checks",
]

user_checks = _cfy.user_checks
nan_checks = _cfy.nan_checks
div_checks = _cfy.div_checks
index_checks = _cfy.index_checks
float_checks = _cfy.float_checks
automatic_checks = _cfy.automatic_checks
all_checks = _cfy.all_checks

_ERROR_TYPES = tuple(all_checks)


def _message_error(msg: str, *args: Any, **kwargs: Any) -> None:
    if args:
        try:
            msg = msg % args
        except (TypeError, ValueError):
            msg = msg.format(*args)
    if kwargs:
        msg = msg.format(**kwargs)
    raise ValueError(msg)


def _raise_now(error: Callable[..., Any], args: Any, kwargs: Any) -> None:
    error(*args, **kwargs)
    raise RuntimeError(  # the error function returned instead of raising
        "statejax.jit_error_if: the condition holds, and the error function "
        f"{getattr(error, '__name__', error)!r} returned instead of raising. "
        "Fix: raise an exception in it (or pass a message string)."
    )


def _raise_if(error: Callable[..., Any], pred: Any, args: Any, kwargs: Any) -> None:
    if bool(pred):
        _raise_now(error, args, kwargs)


def jit_error_if(
    pred: Any, error: Callable[..., Any] | str, *err_args: Any, **err_kwargs: Any
) -> None:
    """Raise an error when ``pred`` holds, from inside compiled (and batched) code.

    As ``brainstate.transform.jit_error_if``. With a concrete ``pred``
    (eager code, ``jax.disable_jit()``) the error is raised right away, in
    Python. Inside ``sj.jit`` (or any trace) an ordered host callback raises
    it when the compiled code runs; the call then fails with a
    ``jax.errors.JaxRuntimeError`` carrying the message, and, as for every
    failing stateful call, no state is written. Inside ``vmap`` the error is
    raised when ``pred`` holds in any lane, with that lane's arguments.

    Args:
        pred: Boolean scalar (or array: any true element raises).
        error: A message (raised as ``ValueError``; ``%``- or
            ``str.format``-style placeholders are filled from ``err_args`` and
            ``err_kwargs``), or a function called with them that raises.
        *err_args: Values passed to ``error`` (arrays are passed concretely).
        **err_kwargs: Keyword values passed to ``error``.

    Raises:
        ValueError: with the message, when ``error`` is a string and ``pred``
            holds (eagerly).
        TypeError: if ``error`` is neither a string nor callable.

    Example:
        >>> import jax, jax.numpy as jnp, statejax as sj
        >>> x = jnp.array([1.0, 2.0])
        >>> sj.jit_error_if(x.sum() < 0, "the sum is negative: {s}", s=x.sum())   # fine
        >>> sj.jit_error_if(x.sum() > 0, "the sum is positive: {s}", s=x.sum())
        Traceback (most recent call last):
        ...
        ValueError: the sum is positive: 3.0
    """
    if isinstance(error, str):
        error = functools.partial(_message_error, error)
    elif not callable(error):
        raise TypeError(
            "statejax.jit_error_if: error must be a message string or a function that "
            f"raises, got {type(error).__name__} {error!r}."
        )
    if concrete((pred, err_args, err_kwargs)):
        if bool(jnp.any(jnp.asarray(pred))):
            _raise_now(error, err_args, err_kwargs)
        return
    lane_pred = jnp.any(jnp.asarray(pred))
    flag = unvmap(lane_pred, op="any")

    def fire(lane_pred: Any, args: Any, kwargs: Any) -> None:
        # Unordered: under vmap the callback runs per lane, and raises in the
        # lanes where ``pred`` holds (with that lane's arguments).
        jax.debug.callback(functools.partial(_raise_if, error), lane_pred, args, kwargs)

    def skip(lane_pred: Any, args: Any, kwargs: Any) -> None:
        return None

    jax.lax.cond(flag, fire, skip, lane_pred, err_args, err_kwargs)


def check(pred: Any, msg: str, *fmt_args: Any, debug: bool = False, **fmt_kwargs: Any) -> None:
    """Assert ``pred`` inside a :func:`statejax.checkify`-wrapped function.

    ``jax.experimental.checkify.check``, re-exported (states play no part).
    A false ``pred`` is recorded in the ``Error`` that the checkified function
    returns, inside ``jit``/``vmap``/``scan`` too. Without ``checkify``
    around it, an eager call raises at once and compiled code refuses to
    lower, as in JAX.

    Args:
        pred: The condition that must hold.
        msg: The error message, with ``{}``/``{name}`` fields filled from
            ``fmt_args``/``fmt_kwargs`` (traced values allowed).
        *fmt_args: Positional format values.
        debug: A debug-only check (kept only with ``jax.config`` checks on).
        **fmt_kwargs: Keyword format values.

    Example:
        >>> import jax.numpy as jnp, statejax as sj
        >>> def half(x):
        ...     sj.check(x > 0, "x must be positive, got {x}", x=x)
        ...     return x / 2
        >>> err, out = sj.checkify(half)(jnp.array(-4.0))
        >>> err.get()
        'x must be positive, got -4.0 (`check` failed)'
    """
    _cfy.check(pred, msg, *fmt_args, debug=debug, **fmt_kwargs)


def check_error(error: Any) -> None:
    """Raise (or, inside :func:`statejax.checkify`, record) a checkify ``Error``.

    ``jax.experimental.checkify.check_error``, re-exported: propagates an
    ``Error`` returned by an inner checkified function into the enclosing
    one's error, or raises it eagerly.

    Args:
        error: A ``jax.experimental.checkify.Error``.

    Example:
        >>> import jax.numpy as jnp, statejax as sj
        >>> inner = sj.checkify(lambda x: (sj.check(x < 3, "too big"), x)[1])
        >>> def outer(x):
        ...     err, y = inner(x)
        ...     sj.check_error(err)
        ...     return y
        >>> err, _ = sj.checkify(outer)(jnp.array(5.0))
        >>> err.get()
        'too big (`check` failed)'
    """
    _cfy.check_error(error)


def _check_errors(errors: Any) -> frozenset:
    try:
        errors = frozenset(errors)
    except TypeError:
        raise TypeError(
            "statejax.checkify: errors must be a set of checkify error kinds such as "
            f"sj.user_checks | sj.nan_checks, got {type(errors).__name__} {errors!r}."
        ) from None
    bad = [e for e in errors if e not in _ERROR_TYPES]
    if bad:
        raise TypeError(
            f"statejax.checkify: errors must hold checkify error kinds (sj.user_checks, "
            f"sj.nan_checks, sj.div_checks, sj.index_checks, sj.float_checks, "
            f"sj.automatic_checks, sj.all_checks), got {bad!r}."
        )
    return errors


def _checkify_driver(fun: Callable[..., Any], errors: frozenset) -> StatefulFunction:
    sf = lifted_for(fun, "statejax.checkify")

    def driver(*args: Any, **kwargs: Any) -> Any:
        lifted = sf.trace(*args, **kwargs)
        io = StateIO([lifted])
        values = io.values()
        err, (out, new) = _cfy.checkify(io.pure(sf, lifted), errors=errors)(
            values, *args, **kwargs
        )
        failed = error_flag(err)
        old = io.out_values(values)
        # All or nothing: a failed check leaves every state as it was.
        io.write(jax.tree.map(lambda n, o: jnp.where(failed, o, n), new, old))
        return err, out

    functools.update_wrapper(driver, fun, updated=())
    return StatefulFunction(driver, api="statejax.checkify")


def checkify(
    fun: Callable[..., Any], errors: Any = user_checks
) -> Callable[..., tuple[_cfy.Error, Any]]:
    """State-aware ``jax.experimental.checkify.checkify``.

    The returned function runs ``fun`` with the checks in ``errors``
    (:func:`statejax.check` assertions, NaN, division by zero, out-of-bounds
    indexing, ...) turned into a returned ``Error`` value instead of an
    exception, so they work inside ``jit``, ``vmap`` and loops. ``fun`` may
    read and write states: when no check fails the written states hold their
    new values; when one fails, every state keeps the value it had before
    the call (per lane under ``vmap``). Eager calls run one cached compiled
    function per signature.

    Args:
        fun: The (stateful) function to check.
        errors: The error kinds to check: :data:`statejax.user_checks`
            (default, as brainstate), ``nan_checks``, ``div_checks``,
            ``index_checks``, ``float_checks``, ``automatic_checks``,
            ``all_checks``, or a union of them.

    Returns:
        A function with ``fun``'s arguments returning ``(error, out)``;
        ``error.get()`` is the message or ``None``, ``error.throw()`` raises.

    Raises:
        TypeError: if ``fun`` is not callable or ``errors`` is not a set of
            error kinds.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> total = sg.ShortTermState(jnp.zeros(()), name="total")
        >>> def add(x):
        ...     sj.check(x >= 0, "negative input {x}", x=x)
        ...     total.value = total.value + x
        ...     return total.value
        >>> err, out = sj.checkify(add)(jnp.array(2.0))
        >>> err.get(), float(total.value)
        (None, 2.0)
        >>> err, out = sj.checkify(add)(jnp.array(-1.0))
        >>> err.get(), float(total.value)   # the failed call wrote nothing
        ('negative input -1.0 (`check` failed)', 2.0)
    """
    if not callable(fun):
        raise TypeError(
            f"statejax.checkify: expected a callable, got {type(fun).__name__} {fun!r}."
        )
    return as_function(_checkify_driver(fun, _check_errors(errors)))
