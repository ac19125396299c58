"""``debug_nan=True``: raise, with diagnostics, when a derivative holds NaN or Inf.

As brainstate's ``debug_nan``: the derivative is computed as usual; if any of
its floating (or complex) entries is NaN or infinite, a ``RuntimeError`` is
raised instead of returning it. Eagerly, the error is raised at once, names
every derivative block that is affected and, found by
``jax.experimental.checkify`` on the pure function, the first operation that
produced a NaN (or divided by zero) with its source line; the states are left
exactly as they were before the call. Under an enclosing trace (``jit``,
``vmap``, a loop) the check runs when the compiled code runs and raises from a
host callback.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import checkify

from stategraph.extend import read_raw, write_raw

__all__ = ["bad_flag", "call_checked", "raise_bad"]


def _inexact(x: Any) -> bool:
    return hasattr(x, "dtype") and jnp.issubdtype(x.dtype, jnp.inexact)


def bad_flag(tree: Any) -> jax.Array:
    """Return a scalar bool: whether any floating or complex leaf holds NaN or Inf."""
    flags = [jnp.any(~jnp.isfinite(x)) for x in jax.tree.leaves(tree) if _inexact(x)]
    if not flags:
        return jnp.array(False)
    return jnp.any(jnp.stack(flags))


def _report(api: str, grads: Any) -> str:
    lines = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(grads):
        if not _inexact(leaf):
            continue
        a = np.asarray(leaf)
        n_nan, n_inf = int(np.isnan(a).sum()), int(np.isinf(a).sum())
        if n_nan or n_inf:
            where = jax.tree_util.keystr(path) or "(the derivative itself)"
            lines.append(
                f"  {where}: shape {a.shape}, {n_nan} NaN and {n_inf} Inf of {a.size} entries"
            )
    return "\n".join(lines)


def _source(pure: Any, values: list[Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """Where checkify finds the first NaN (or division by zero), or '' if it finds none."""
    try:
        checked = checkify.checkify(pure, errors=checkify.float_checks)
        err, _ = checked(values, *args, **kwargs)
        msg = err.get()
    except Exception as exc:  # diagnostics must never hide the real error
        return f"(checkify could not locate the source: {type(exc).__name__}: {exc})"
    return msg or ""


def _raise_later(api: str, flag: Any) -> None:
    if np.any(np.asarray(flag)):
        raise RuntimeError(
            f"{api}(..., debug_nan=True): the derivative holds NaN or Inf (detected while "
            "running compiled code; call the transform eagerly for the affected blocks and "
            "the operation that produced it)."
        )


def call_checked(transform: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """Call a ``GradientTransform`` whose driver returns ``(result, (grads, flag))``."""
    api = transform.name
    driver = transform._driver
    if not _concrete(args, kwargs):
        result, (_, flag) = driver._call(*args, **kwargs)
        jax.debug.callback(lambda f: _raise_later(api, f), flag)
        return result
    lifted = driver.trace(*args, **kwargs)
    written = lifted.written_states
    before = read_raw(written)
    values = read_raw(lifted.read_states)
    result, (grads, flag) = driver._call(*args, **kwargs)
    if isinstance(flag, jax.core.Tracer):  # an enclosing trace after all
        jax.debug.callback(lambda f: _raise_later(api, f), flag)
        return result
    if not bool(flag):
        return result
    write_raw(written, before)  # all or nothing: the failing call changes no state
    blocks = _report(api, grads)
    source = _source(lambda vals, *a, **k: driver.pure(vals, *a, **k), values, args, kwargs)
    raise RuntimeError(
        f"{api}(..., debug_nan=True): the derivative holds NaN or Inf:\n{blocks}\n"
        + (f"First NaN found by checkify: {source}\n" if source else "")
        + "Fix: look for log/sqrt/division of values at or beyond their domain (use "
        "jnp.where-safe forms), or exploding values; states are left as they were."
    )


def raise_bad(api: str, grads: Any) -> None:
    """Raise the eager ``debug_nan`` error for concrete derivatives (``jax.disable_jit()``)."""
    raise RuntimeError(
        f"{api}(..., debug_nan=True): the derivative holds NaN or Inf:\n{_report(api, grads)}\n"
        "Fix: look for log/sqrt/division of values at or beyond their domain (use "
        "jnp.where-safe forms), or exploding values; states are left as they were."
    )


def _concrete(args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    return not any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((args, kwargs)))
