"""The sparsity plan of one call: pattern, colouring, where to read each non-zero.

Built at trace time (once per signature) from the user's ``sparsity=``
argument or by detection, and recorded for :meth:`GradientTransform.sparsity`.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from .coloring import (
    color_columns,
    is_valid_coloring,
    recover_columns,
    star_color,
    symmetric_recovery,
)

__all__ = ["Plan", "SparsityInfo", "block_pattern", "check_sparsity", "is_block_tree",
           "is_pattern_leaf", "make_plan", "record", "recording", "user_pattern"]

MODES = {"jacfwd": "forward", "jacrev": "reverse", "hessian": "symmetric"}
_RECORDER: contextvars.ContextVar[list[Any] | None] = contextvars.ContextVar(
    "statediff_sparsity_recorder", default=None)


def is_pattern_leaf(x: Any) -> bool:
    """A block entry of ``sparsity=``: a pattern, ``"auto"`` or None (dense)."""
    return (x is None or isinstance(x, (str, jsparse.BCOO)) or sp.issparse(x)
            or hasattr(x, "shape"))


def is_block_tree(sparsity: Any) -> bool:
    """Whether ``sparsity=`` is a pytree of per-block patterns (not one whole pattern).

    A container whose entries are all Python numbers or bools is a nested-list
    array (one pattern); any other container is a pytree of blocks.
    """
    if sparsity is None or isinstance(sparsity, str) or is_pattern_leaf(sparsity):
        return False
    leaves = jax.tree.leaves(sparsity, is_leaf=is_pattern_leaf)
    return not leaves or not all(isinstance(x, (bool, int, float, np.generic)) for x in leaves)


_KINDS = ("None, 'auto', a boolean array or a jax.experimental.sparse.BCOO pattern of the "
          "Jacobian's 2-D flattening, or a pytree of such per-block patterns (each None, "
          "'auto', a boolean array or a BCOO) in the layout of the derivative")


def check_sparsity(api: str, sparsity: Any, sparse_output: Any) -> None:
    """Validate ``sparsity=`` / ``sparse_output=`` when the transform is built."""
    if not isinstance(sparse_output, bool):
        raise TypeError(f"{api}: sparse_output must be True or False, got {sparse_output!r}.")
    if sparsity is None or (isinstance(sparsity, str) and sparsity == "auto"):
        return
    if isinstance(sparsity, str):
        raise ValueError(
            f"{api}: sparsity must be {_KINDS}; got the string {sparsity!r}. "
            "Fix: sparsity='auto' to detect the pattern."
        )
    if isinstance(sparsity, jsparse.BCOO) or sp.issparse(sparsity) or hasattr(sparsity, "shape"):
        return
    if not isinstance(sparsity, (list, tuple, dict)) and not is_block_tree(sparsity):
        raise TypeError(
            f"{api}: sparsity must be {_KINDS}; got {type(sparsity).__name__}. "
            "Fix: pass the pattern of the Jacobian's 2-D flattening (outputs x inputs)."
        )
    if not is_block_tree(sparsity):
        return
    for path, leaf in jax.tree_util.tree_flatten_with_path(sparsity, is_leaf=is_pattern_leaf)[0]:
        where = f"sparsity{jax.tree_util.keystr(path)}"
        if isinstance(leaf, str) and leaf != "auto":
            raise ValueError(
                f"{api}: the block pattern at {where} is the string {leaf!r}; a block is None "
                "(dense), 'auto' (detected), a boolean array or a BCOO. Fix: use 'auto'."
            )
        if not is_pattern_leaf(leaf) and not isinstance(leaf, (bool, int, float, list, tuple)):
            raise TypeError(
                f"{api}: the block pattern at {where} is a {type(leaf).__name__}; a block is "
                "None (dense), 'auto' (detected), a boolean array or a BCOO. Fix: pass the "
                "block's pattern as a boolean array of the block's shape."
            )


def _linear(sparsity: Any) -> tuple[tuple[int, ...], np.ndarray]:
    """(shape, sorted linear indices of the non-zeros) of a pattern given in any form."""
    if isinstance(sparsity, jsparse.BCOO):
        shape = tuple(sparsity.shape)
        if sparsity.n_batch or sparsity.n_dense:
            sparsity = jsparse.BCOO.fromdense(sparsity.todense())
        idx = np.asarray(sparsity.indices).reshape(-1, len(shape))
        keep = np.asarray(sparsity.data).reshape(-1) != 0
        lin = (np.ravel_multi_index(idx[keep].T, shape) if shape
               else np.zeros(int(keep.any()), np.int64))
    elif sp.issparse(sparsity):
        coo = sp.coo_matrix(sparsity)
        shape = tuple(coo.shape)
        keep = coo.data != 0
        lin = coo.row[keep].astype(np.int64) * shape[1] + coo.col[keep]
    else:
        arr = np.asarray(sparsity)
        shape = tuple(arr.shape)
        lin = np.flatnonzero(arr)
    return shape, np.unique(np.asarray(lin, np.int64))


def _csr(lin: np.ndarray, m: int, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((np.ones(lin.size, bool), (lin // max(n, 1), lin % max(n, 1))),
                         shape=(m, n))


def user_pattern(api: str, sparsity: Any, m: int, n: int) -> sp.csr_matrix:
    """The user's pattern as an (m x n) boolean CSR matrix (any shape of m*n elements)."""
    shape, lin = _linear(sparsity)
    size = int(np.prod(shape, dtype=np.int64))
    if size != m * n:
        raise ValueError(
            f"{api}: the sparsity pattern has shape {tuple(shape)} ({size} entries), but the "
            f"Jacobian's 2-D flattening is ({m}, {n}): all output elements x all differentiated "
            "input elements, each flattened in pytree order. Fix: give a boolean array or BCOO "
            f"of shape ({m}, {n}), a pytree of per-block patterns in the layout of the "
            "derivative, or sparsity='auto'."
        )
    return _csr(lin, m, n)


def block_pattern(api: str, where: str, sparsity: Any, shape: tuple[int, ...], m: int,
                  n: int) -> sp.csr_matrix:
    """One block's pattern (the block's shape or its (m, n) 2-D flattening) as CSR."""
    got, lin = _linear(sparsity)
    if got not in (tuple(shape), (m, n)):
        both = f"{tuple(shape)}" if tuple(shape) == (m, n) else f"{tuple(shape)} or ({m}, {n})"
        raise ValueError(
            f"{api}: the block pattern at {where} has shape {got}, but that block of the "
            f"derivative has shape {tuple(shape)} (2-D flattening ({m}, {n}): its output "
            f"elements x its input elements). Fix: give a boolean array or BCOO of shape {both}, "
            "'auto' to detect this block, or None for dense."
        )
    return _csr(lin, m, n)


class Plan:
    """Pattern, colouring and reads for one signature.

    Attributes:
        mode: ``"forward"``, ``"reverse"`` or ``"symmetric"``.
        pattern: (m x n) boolean CSR pattern (None when detection gave up).
        colors: Colour of each column (forward, symmetric) or row (reverse).
        num_colors: Number of compressed passes.
        dense: Whether the dense Jacobian is computed instead.
        source: ``"auto"``, ``"user"`` or ``"mixed"``.
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


def _checked(pattern: sp.csr_matrix, colors: np.ndarray) -> np.ndarray:
    """The colouring if valid (checked, cheap), else one colour per column (dense)."""
    if is_valid_coloring(pattern, colors):
        return colors
    return np.arange(pattern.shape[1], dtype=np.int32)  # pragma: no cover - never expected


def make_plan(kind: str, pattern: sp.csr_matrix | None, source: str) -> Plan:
    """Colour a pattern and decide between the compressed and the dense path."""
    mode = MODES[kind]
    if pattern is None:
        return Plan(mode, None, None, None, True, source, (0, 0))
    m, n = pattern.shape
    if mode == "forward":
        colors = _checked(pattern, color_columns(pattern))
        reads = recover_columns(pattern, colors)
        full = n
    elif mode == "reverse":
        colors = _checked(sp.csr_matrix(pattern.T), color_columns(sp.csr_matrix(pattern.T)))
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
        source: ``"auto"`` (detected), ``"user"`` (given) or ``"mixed"``
            (per-block patterns, some given and some detected or dense).
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
