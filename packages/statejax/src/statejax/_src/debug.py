"""Debugging helpers for compiled stateful code: NaN hunting and conditional breakpoints."""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify as _cfy

from .compose import cached_driver, lifted_for
from .eager import concrete
from .jax_compat import is_eager
from .stateful import StatefulFunction
from .unvmap import unvmap
from .vmap import state_label
from .weakcache import weak_callable

__all__ = ["breakpoint_if", "debug_nan", "debug_nan_if"]

_API = "statejax.debug_nan"


def _nan_report(fn: Callable[..., Any], args: tuple[Any, ...]) -> tuple[Any, Any, list, list]:
    """Run ``fn`` purely; return (bad flag, checkify error, inexact leaves, their labels)."""
    sf = lifted_for(fn, _API)
    lifted = sf.trace(*args)
    values = [s.value for s in lifted.read_states]  # recorded: enclosing traces lift them
    leaves = sf.arg_leaves(*args)

    def pure(vals: list[Any]) -> Any:
        return lifted.run_flat(leaves, vals)

    err, (out, written) = _cfy.checkify(pure, errors=_cfy.nan_checks)(values)
    labels: list[str] = []
    checked: list[Any] = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(out):
        labels.append(f"output{jax.tree_util.keystr(path)}")
        checked.append(leaf)
    for state, value in zip(lifted.written_states, written, strict=True):
        for path, leaf in jax.tree_util.tree_leaves_with_path(value):
            labels.append(f"{state_label(state)}{jax.tree_util.keystr(path)} (written)")
            checked.append(leaf)
    pairs = [(lab, x) for lab, x in zip(labels, checked, strict=True)
             if jnp.issubdtype(jnp.result_type(x), jnp.inexact)]
    labels, checked = [p[0] for p in pairs], [p[1] for p in pairs]
    bad = jnp.zeros((), bool)
    for x in checked:
        bad = bad | ~jnp.all(jnp.isfinite(x))
    return bad, err, checked, labels


def _message(phase: str, err: Any, checked: list, labels: list[str]) -> str:
    where = f" [{phase}]" if phase else ""
    lines = [f"{_API}: NaN/Inf detected{where} in the outputs or written states of the function."]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # inside checkify's formatting
            report = err.get()
    except Exception:  # noqa: BLE001 - the report is best effort
        report = None
    if report:
        lines.append(f"  First introduced (checkify nan_checks): {report.splitlines()[0]}")
    lines.append("  Contaminated values:")
    for lab, x in zip(labels, checked, strict=True):
        a = np.asarray(x)
        nans, infs = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        if nans or infs:
            lines.append(f"    {lab}: shape={a.shape} dtype={a.dtype} NaNs={nans} Infs={infs}")
    return "\n".join(lines)


def _check_fn(api: str, fn: Any) -> None:
    if not callable(fn):
        raise TypeError(f"{api}: fn must be callable, got {type(fn).__name__} {fn!r}.")


def _check_phase(api: str, phase: Any) -> None:
    if not isinstance(phase, str):
        raise TypeError(f"{api}: phase must be a str, got {type(phase).__name__} {phase!r}.")


def debug_nan(fn: Callable[..., Any], *args: Any, phase: str = "") -> None:
    """Run ``fn(*args)`` and raise if a NaN or Inf reaches its outputs or written states.

    As ``brainstate.transform.debug_nan``: a debugging aid that evaluates
    ``fn`` purely (its state writes are not applied) and checks every
    floating-point output leaf and every value it would write into a state.
    NaN computed but masked away does not count. The message names each
    contaminated value (output path, or state name) with its NaN and Inf
    counts, and the primitive that first produced a NaN (found with
    ``jax.experimental.checkify``). Eagerly (or under ``jax.disable_jit()``)
    it raises ``RuntimeError`` right away; inside ``sj.jit`` a host callback
    raises when the compiled code runs, so the call fails with a
    ``jax.errors.JaxRuntimeError`` (also a ``RuntimeError``) and writes no
    state. Inside ``vmap``, any lane triggers it.

    Args:
        fn: The (stateful) function to check.
        *args: Its arguments.
        phase: A label put in the message (say ``"forward"``).

    Raises:
        RuntimeError: if NaN or Inf reaches an output or a written state.

    Example:
        >>> import jax.numpy as jnp, statejax as sj
        >>> sj.debug_nan(jnp.log, jnp.array([1.0, 2.0]))     # fine
        >>> sj.debug_nan(jnp.log, jnp.array([-1.0, 2.0]), phase="init")
        Traceback (most recent call last):
        ...
        RuntimeError: statejax.debug_nan: NaN/Inf detected [init] in the outputs or written ...
    """
    _check_fn(_API, fn)
    _check_phase(_API, phase)
    if is_eager():
        driver = cached_driver(("debug_nan", fn), lambda: _nan_driver(weak_callable(fn)))
        bad, err, checked, labels = driver(*args)
        if bool(bad):
            raise RuntimeError(_message(phase, err, checked, labels()))
        return
    bad, err, checked, labels = _nan_report(fn, args)

    def fire(err: Any, checked: list) -> None:
        raise RuntimeError(_message(phase, err, checked, labels))

    from .checks import jit_error_if

    jit_error_if(bad, fire, err, checked)


def _nan_driver(fn: Callable[..., Any]) -> StatefulFunction:
    box: dict[str, list[str]] = {}

    def driver(*args: Any) -> Any:
        bad, err, checked, labels = _nan_report(fn, args)
        box["labels"] = labels
        return bad, err, checked

    sf = StatefulFunction(driver, api=_API)

    def run(*args: Any) -> Any:
        bad, err, checked = sf(*args)
        return bad, err, checked, lambda: box.get("labels", [])

    return run  # type: ignore[return-value]


def debug_nan_if(has_nan: Any, fn: Callable[..., Any], *args: Any, phase: str = "") -> None:
    """Run :func:`debug_nan` on ``fn(*args)`` only when ``has_nan`` holds.

    As ``brainstate.transform.debug_nan_if``: a cheap flag (say,
    ``~jnp.isfinite(loss)``) decides whether the full check runs. A batched
    flag counts when it holds in any lane (:func:`statejax.unvmap`).

    Args:
        has_nan: Boolean scalar (or array: any true element).
        fn: The (stateful) function to check.
        *args: Its arguments.
        phase: A label put in the message.

    Raises:
        RuntimeError: if ``has_nan`` holds and NaN or Inf reaches an output
            or a written state of ``fn``.

    Example:
        >>> import jax.numpy as jnp, statejax as sj
        >>> x = jnp.array([-1.0, 2.0])
        >>> sj.debug_nan_if(False, jnp.log, x)     # not checked
        >>> sj.debug_nan_if(jnp.isnan(jnp.log(x)).any(), jnp.log, x)
        Traceback (most recent call last):
        ...
        RuntimeError: statejax.debug_nan: NaN/Inf detected in the outputs or written states ...
    """
    _check_fn("statejax.debug_nan_if", fn)
    _check_phase("statejax.debug_nan_if", phase)
    if concrete(has_nan):
        if bool(jnp.any(jnp.asarray(has_nan))):
            debug_nan(fn, *args, phase=phase)
        return
    flag = unvmap(jnp.any(jnp.asarray(has_nan)), op="any")

    def check(args: tuple[Any, ...]) -> None:
        debug_nan(fn, *args, phase=phase)

    jax.lax.cond(flag, check, lambda args: None, args)


_BREAKPOINT_ARGS = frozenset(inspect.signature(jax.debug.breakpoint).parameters)


def breakpoint_if(pred: Any, **breakpoint_kwargs: Any) -> None:
    """Enter the debugger (``jax.debug.breakpoint``) only when ``pred`` holds.

    As ``brainstate.transform.breakpoint_if``; works eagerly, inside
    ``sj.jit`` and loops, and inside ``vmap`` (where any lane triggers it).

    Args:
        pred: Boolean scalar (or array: any true element).
        **breakpoint_kwargs: Passed to ``jax.debug.breakpoint`` (``backend``,
            ``filter_frames``, ``num_frames``, ``ordered``).

    Raises:
        TypeError: for a keyword ``jax.debug.breakpoint`` does not take.

    Example:
        >>> import jax.numpy as jnp, statejax as sj
        >>> x = jnp.array([1.0, 2.0])
        >>> sj.breakpoint_if(jnp.isnan(x).any())    # no NaN: no breakpoint
    """
    bad = sorted(set(breakpoint_kwargs) - _BREAKPOINT_ARGS)
    if bad:
        raise TypeError(
            f"statejax.breakpoint_if: unknown keyword argument(s) {bad}; "
            f"jax.debug.breakpoint takes {sorted(_BREAKPOINT_ARGS)}."
        )
    if concrete(pred):
        if bool(jnp.any(jnp.asarray(pred))):
            jax.debug.breakpoint(**breakpoint_kwargs)
        return
    flag = unvmap(jnp.any(jnp.asarray(pred)), op="any")
    jax.lax.cond(flag, lambda: jax.debug.breakpoint(**breakpoint_kwargs), lambda: None)
