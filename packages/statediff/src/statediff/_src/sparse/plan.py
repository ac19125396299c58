"""The sparsity plan of one call: pattern, colouring, where to read each non-zero.

Built at trace time (once per signature) from the user's ``sparsity=``
argument or by detection, and recorded for :meth:`GradientTransform.sparsity`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from .coloring import color_columns, recover_columns, star_color, symmetric_recovery

__all__ = ["Plan", "SparsityInfo", "check_sparsity", "make_plan", "record", "recording",
           "user_pattern"]

MODES = {"jacfwd": "forward", "jacrev": "reverse", "hessian": "symmetric"}
_RECORDER: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "statediff_sparsity_recorder", default=None)


def check_sparsity(api: str, sparsity: Any, sparse_output: Any) -> None:
    """Validate ``sparsity=`` / ``sparse_output=`` when the transform is built."""
    if not isinstance(sparse_output, bool):
        raise TypeError(f"{api}: sparse_output must be True or False, got {sparse_output!r}.")
    if sparsity is None or (isinstance(sparsity, str) and sparsity == "auto"):
        return
    if isinstance(sparsity, str):
        raise ValueError(
            f"{api}: sparsity must be None, 'auto', a boolean array or a "
            f"jax.experimental.sparse.BCOO pattern; got the string {sparsity!r}. "
            "Fix: sparsity='auto' to detect the pattern."
        )
    if isinstance(sparsity, jsparse.BCOO) or sp.issparse(sparsity):
        return
    if not hasattr(sparsity, "shape") and not isinstance(sparsity, (list, tuple)):
        raise TypeError(
            f"{api}: sparsity must be None, 'auto', a boolean array or a "
            f"jax.experimental.sparse.BCOO pattern; got {type(sparsity).__name__}. "
            "Fix: pass the pattern of the Jacobian's 2-D flattening (outputs x inputs)."
        )


def user_pattern(api: str, sparsity: Any, m: int, n: int) -> sp.csr_matrix:
    """The user's pattern as an (m x n) boolean CSR matrix (any shape of m*n elements)."""
    if isinstance(sparsity, jsparse.BCOO):
        shape = tuple(sparsity.shape)
        idx = np.asarray(sparsity.indices).reshape(-1, len(shape)) if shape else None
        data = np.asarray(sparsity.data).reshape(-1) != 0
        lin = np.ravel_multi_index(idx[data].T, shape) if idx is not None else np.zeros(0, int)
        size = int(np.prod(shape, dtype=np.int64))
    elif sp.issparse(sparsity):
        coo = sp.coo_matrix(sparsity)
        shape = coo.shape
        keep = coo.data != 0
        lin = coo.row[keep].astype(np.int64) * shape[1] + coo.col[keep]
        size = shape[0] * shape[1]
    else:
        arr = np.asarray(sparsity)
        shape = arr.shape
        lin = np.flatnonzero(arr)
        size = arr.size
    if size != m * n:
        raise ValueError(
            f"{api}: the sparsity pattern has shape {tuple(shape)} ({size} entries), but the "
            f"Jacobian's 2-D flattening is ({m}, {n}): all output elements x all differentiated "
            "input elements, each flattened in pytree order. Fix: give a boolean array or BCOO "
            f"of shape ({m}, {n}), or sparsity='auto'."
        )
    lin = np.unique(lin.astype(np.int64))
    return sp.csr_matrix((np.ones(lin.size, bool), (lin // max(n, 1), lin % max(n, 1))),
                         shape=(m, n))


class Plan:
    """Pattern, colouring and reads for one signature.

    Attributes:
        mode: ``"forward"``, ``"reverse"`` or ``"symmetric"``.
        pattern: (m x n) boolean CSR pattern (None when detection gave up).
        colors: Colour of each column (forward, symmetric) or row (reverse).
        num_colors: Number of compressed passes.
        dense: Whether the dense Jacobian is computed instead.
        source: ``"auto"`` or ``"user"``.
        reads: ``(rows, cols, colour, read_index)`` per non-zero, row-major.
    """

    def __init__(self, mode: str, pattern: sp.csr_matrix | None, colors: np.ndarray | None,
                 reads: tuple[np.ndarray, ...] | None, dense: bool, source: str,
                 shape: tuple[int, int]) -> None:
        self.mode = mode
        self.pattern = pattern
        self.colors = colors
        self.num_colors = 0 if colors is None or colors.size == 0 else int(colors.max()) + 1
        self.reads = reads
        self.dense = dense
        self.source = source
        self.shape = shape


def make_plan(kind: str, pattern: sp.csr_matrix | None, source: str) -> Plan:
    """Colour a pattern and decide between the compressed and the dense path."""
    mode = MODES[kind]
    if pattern is None:
        return Plan(mode, None, None, None, True, source, (0, 0))
    m, n = pattern.shape
    if mode == "forward":
        colors = color_columns(pattern)
        reads = recover_columns(pattern, colors)
        full = n
    elif mode == "reverse":
        colors = color_columns(sp.csr_matrix(pattern.T))
        rows, cols, _, _ = recover_columns(pattern, np.zeros(n, np.int32))
        reads = (rows, cols, colors[rows].astype(np.int64), cols)
        full = m
    else:
        pattern = sp.csr_matrix(pattern + pattern.T, dtype=bool)
        colors = star_color(pattern)
        reads = symmetric_recovery(pattern, colors)
        if reads is None:  # not expected; the distance-2 colouring always recovers
            colors = color_columns(pattern)
            reads = recover_columns(pattern, colors)
        full = n
    num = int(colors.max()) + 1 if colors.size else 0
    return Plan(mode, pattern, colors, reads, num >= full, source, (m, n))


@contextlib.contextmanager
def recording() -> Iterator[list[Any]]:
    """Collect the :class:`SparsityInfo` of the transforms traced in this block."""
    box: list[Any] = []
    token = _RECORDER.set(box)
    try:
        yield box
    finally:
        _RECORDER.reset(token)


def is_recording() -> bool:
    return _RECORDER.get() is not None


def record(info: Any) -> None:
    box = _RECORDER.get()
    if box is not None:
        box.append(info)


def to_bcoo(pattern: sp.csr_matrix) -> jsparse.BCOO:
    """A boolean 2-D BCOO of a CSR pattern (host arrays)."""
    coo = sp.coo_matrix(pattern)
    idx = np.stack([coo.row, coo.col], axis=1).astype(np.int32)
    return jsparse.BCOO((np.ones(coo.nnz, bool), idx), shape=pattern.shape,
                        indices_sorted=True, unique_indices=True)


class BlockSparsity:
    """The pattern of one block of a sparse Jacobian (see :class:`SparsityInfo`).

    Attributes:
        pattern: Boolean 2-D ``BCOO`` of the block's flattening (outputs x inputs).
        shape: The block's shape in the result (output shape + input shape).
        nnz: Number of structural non-zeros.
    """

    def __init__(self, pattern: sp.csr_matrix, shape: tuple[int, ...]) -> None:
        self._csr = pattern
        self.shape = shape
        self.nnz = int(pattern.nnz)

    @property
    def pattern(self) -> jsparse.BCOO:
        return to_bcoo(self._csr)

    def todense(self) -> np.ndarray:
        """The block's pattern as a boolean NumPy array of the block's shape."""
        return self._csr.toarray().reshape(self.shape)

    def __repr__(self) -> str:
        return f"BlockSparsity(shape={self.shape}, nnz={self.nnz})"


class SparsityInfo:
    """The sparsity of one call of a sparse Jacobian or Hessian.

    Returned by :meth:`statediff.GradientTransform.sparsity`.

    Attributes:
        mode: ``"forward"`` (columns coloured, ``jacfwd``), ``"reverse"``
            (rows coloured, ``jacrev``) or ``"symmetric"`` (star colouring,
            ``hessian``).
        shape: ``(m, n)``: all output elements x all differentiated input
            elements (for a Hessian, ``(n, n)``).
        nnz: Number of structural non-zeros.
        colors: NumPy array: the colour of each column (forward, symmetric)
            or row (reverse).
        num_colors: Number of compressed JVPs / VJPs per call.
        dense: True when the dense Jacobian is computed (the colouring would
            save nothing, or detection gave up).
        source: ``"auto"`` (detected) or ``"user"`` (given).
        blocks: Per-block :class:`BlockSparsity`, in the same pytree layout as
            the derivative the call returns.

    Example:
        >>> import jax.numpy as jnp, statediff as sd
        >>> info = sd.jacfwd(lambda x: x[1:] - x[:-1], sparsity="auto").sparsity(jnp.ones(4))
        >>> info.num_colors, info.nnz
        (2, 6)
    """

    def __init__(self, plan: Plan, blocks: Any) -> None:
        self._plan = plan
        self.mode = plan.mode
        self.shape = plan.shape
        self.nnz = None if plan.pattern is None else int(plan.pattern.nnz)
        self.colors = plan.colors
        self.num_colors = plan.num_colors
        self.dense = plan.dense
        self.source = plan.source
        self.blocks = blocks

    @property
    def pattern(self) -> jsparse.BCOO | None:
        """The whole (m x n) pattern as a boolean 2-D ``BCOO`` (None: not detected)."""
        return None if self._plan.pattern is None else to_bcoo(self._plan.pattern)

    def todense(self) -> np.ndarray | None:
        """The whole pattern as a boolean (m x n) NumPy array."""
        return None if self._plan.pattern is None else self._plan.pattern.toarray()

    def __repr__(self) -> str:
        return (f"SparsityInfo(mode={self.mode!r}, shape={self.shape}, nnz={self.nnz}, "
                f"num_colors={self.num_colors}, dense={self.dense}, source={self.source!r})")
