"""Jacobian sparsity detection by abstract interpretation of a jaxpr.

Every variable of the jaxpr gets a *dependency matrix*: a boolean
``scipy.sparse`` CSR matrix with one row per element of the variable and one
column per differentiated input element; ``D[i, j]`` is True when element
``i`` may depend on input ``j``. ``None`` stands for "depends on no input"
(constants, integer and boolean values, values behind ``stop_gradient``).
Values that depend on no input and whose inputs are all known are evaluated
(constant folding), so gather and scatter indices computed from constants are
known exactly. The result is conservative: a False entry is a structural zero
of the Jacobian for every input value.

The per-primitive rules live in :mod:`.rules`; an unknown primitive makes each
of its outputs depend on every input of that equation (with a one-time
warning naming it).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
import scipy.sparse as sp
from jax.extend import core

__all__ = [
    "Entry",
    "TooLarge",
    "detect_jaxpr",
    "empty",
    "select_rows",
    "sparse_dense_warning",
]

# Constant folding is skipped for values larger than this (elements).
FOLD_LIMIT = 1 << 24
# A rule that would build more entries than this gives up (dense fallback).
ENTRY_LIMIT = 1 << 26

_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


class TooLarge(Exception):  # noqa: N818 - internal control flow
    """Raised when detection would be too costly; the caller falls back to dense."""


class Entry:
    """What detection knows about one jaxpr variable.

    Attributes:
        aval: The abstract value (shape, dtype).
        deps: CSR dependency matrix (size x n_inputs) or None.
        val: The concrete value as a NumPy array when known, else None.
    """

    __slots__ = ("aval", "deps", "val")

    def __init__(self, aval: Any, deps: sp.csr_matrix | None = None, val: Any = None) -> None:
        self.aval = aval
        self.deps = deps
        self.val = val

    @property
    def size(self) -> int:
        return int(np.prod(self.aval.shape, dtype=np.int64))

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.aval.shape)


def sparse_dense_warning(what: str, why: str) -> None:
    """Warn once per primitive name that detection treats it densely."""
    with _WARN_LOCK:
        if what in _WARNED:
            return
        _WARNED.add(what)
    warnings.warn(
        f"statediff sparsity detection: {why} `{what}`; its outputs are treated as depending "
        "on all of its inputs (a conservative, denser pattern). Fix: pass the pattern yourself "
        "with sparsity=<boolean array or BCOO>, or sparsity=None for the dense Jacobian.",
        RuntimeWarning,
        stacklevel=4,
    )


def empty(rows: int, n: int) -> sp.csr_matrix:
    """An all-False dependency matrix."""
    return sp.csr_matrix((rows, n), dtype=bool)


def select_rows(mats: Sequence[sp.csr_matrix | None], sizes: Sequence[int], n: int,
                src: np.ndarray) -> sp.csr_matrix | None:
    """Rows of the stacked matrices picked by ``src`` (-1: an empty row)."""
    if all(m is None for m in mats):
        return None
    blocks = [empty(s, n) if m is None else m for m, s in zip(mats, sizes, strict=True)]
    stacked = sp.vstack([*blocks, empty(1, n)], format="csr")
    total = int(sum(sizes))
    idx = np.where(src < 0, total, src)
    return _prune(stacked[idx])


def _prune(m: sp.csr_matrix | None) -> sp.csr_matrix | None:
    if m is None:
        return None
    m = sp.csr_matrix(m, dtype=bool)
    m.eliminate_zeros()
    return None if m.nnz == 0 else m


def union(mats: Sequence[sp.csr_matrix | None]) -> sp.csr_matrix | None:
    """Element-wise OR of dependency matrices of the same shape."""
    present = [m for m in mats if m is not None]
    if not present:
        return None
    out = present[0]
    for m in present[1:]:
        out = out + m
    return _prune(out)


def _is_inexact(aval: Any) -> bool:
    dtype = getattr(aval, "dtype", None)
    if dtype is None:
        return False
    try:
        return bool(jax.dtypes.issubdtype(dtype, np.inexact))
    except TypeError:
        return False


def _known(x: Any) -> Any:
    if isinstance(x, jax.core.Tracer):
        return None
    try:
        return np.asarray(x)
    except Exception:  # noqa: BLE001 - extended dtypes (PRNG keys) and the like
        return None


def _read(env: dict[Any, Entry], v: Any) -> Entry:
    if isinstance(v, core.Literal):
        return Entry(v.aval, None, _known(v.val))
    return env[v]


def _needed(jaxpr: Any) -> list[Any]:
    """The equations the outputs depend on (dead code removed)."""
    live = {id(v) for v in jaxpr.outvars if not isinstance(v, core.Literal)}
    keep = []
    for eqn in reversed(jaxpr.eqns):
        if any(id(v) in live for v in eqn.outvars):
            keep.append(eqn)
            live.update(id(v) for v in eqn.invars if not isinstance(v, core.Literal))
    keep.reverse()
    return keep


def _fold(eqn: Any, ins: list[Entry]) -> list[Any] | None:
    if any(e.val is None for e in ins):
        return None
    if sum(int(np.prod(v.aval.shape, dtype=np.int64)) for v in eqn.outvars) > FOLD_LIMIT:
        return None
    if eqn.effects:
        return None
    try:
        with jax.ensure_compile_time_eval():
            out = eqn.primitive.bind(*[e.val for e in ins], **eqn.params)
    except Exception:  # noqa: BLE001 - folding is only an optimisation
        return None
    outs = out if eqn.primitive.multiple_results else [out]
    return [_known(o) for o in outs]


def detect_jaxpr(jaxpr: Any, ins: list[Entry], n: int) -> list[Entry]:
    """Propagate dependencies through an open jaxpr; return the output entries.

    Args:
        jaxpr: A ``jax.extend.core.Jaxpr`` (constvars first among ``ins``).
        ins: Entries for ``constvars + invars``.
        n: Number of differentiated input elements (matrix columns).
    """
    from .rules import apply_rule

    env: dict[Any, Entry] = {}
    for v, e in zip([*jaxpr.constvars, *jaxpr.invars], ins, strict=True):
        env[v] = e
    for eqn in _needed(jaxpr):
        xs = [_read(env, v) for v in eqn.invars]
        out_avals = [v.aval for v in eqn.outvars]
        if all(e.deps is None for e in xs):
            vals = _fold(eqn, xs)
            outs = [Entry(a, None, None if vals is None else vals[i])
                    for i, a in enumerate(out_avals)]
        elif not any(_is_inexact(a) for a in out_avals):
            outs = [Entry(a) for a in out_avals]
        else:
            deps = apply_rule(eqn, xs, out_avals, n)
            outs = [Entry(a, d if _is_inexact(a) else None) for a, d in
                    zip(out_avals, deps, strict=True)]
        for v, e in zip(eqn.outvars, outs, strict=True):
            env[v] = e
    return [_read(env, v) for v in jaxpr.outvars]


def detect_closed(closed: Any, ins: list[Entry], n: int) -> list[Entry]:
    """:func:`detect_jaxpr` for a closed jaxpr (its consts are known values)."""
    consts = [Entry(v.aval, None, _known(c)) for v, c in
              zip(closed.jaxpr.constvars, closed.consts, strict=True)]
    return detect_jaxpr(closed.jaxpr, [*consts, *ins], n)


def input_entries(avals: Sequence[Any], selected: Sequence[bool]) -> tuple[list[Entry], int]:
    """Entries for a function's input leaves: identity rows for the selected ones."""
    n = int(sum(int(np.prod(a.shape, dtype=np.int64)) for a, s in
                zip(avals, selected, strict=True) if s))
    out, off = [], 0
    for a, s in zip(avals, selected, strict=True):
        size = int(np.prod(a.shape, dtype=np.int64))
        if s and size:
            rows = np.arange(size)
            d = sp.csr_matrix((np.ones(size, bool), (rows, rows + off)), shape=(size, n))
            out.append(Entry(a, d))
            off += size
        else:
            out.append(Entry(a))
    return out, n


def jacobian_pattern(fun: Any, leaves: Sequence[Any], selected: Sequence[bool]
                     ) -> tuple[sp.csr_matrix, list[int]]:
    """Detect the pattern of ``fun(*leaves)`` (a list of output leaves).

    Returns the (m x n) boolean CSR pattern over all output elements and the
    selected input elements, and the sizes of the output leaves.

    Raises:
        TooLarge: detection would be too costly; use the dense Jacobian.
    """
    closed = jax.make_jaxpr(fun)(*leaves)
    avals = [jax.typeof(x) for x in leaves]
    ins, n = input_entries(avals, selected)
    outs = detect_closed(closed, ins, n)
    sizes = [e.size for e in outs]
    blocks = [empty(e.size, n) if e.deps is None else e.deps for e in outs]
    if not blocks:
        return empty(0, n), sizes
    return sp.csr_matrix(sp.vstack(blocks, format="csr"), dtype=bool), sizes
