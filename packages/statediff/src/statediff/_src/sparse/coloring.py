"""Graph colouring of sparsity patterns, and where to read each non-zero back.

- Columns (forward mode) or rows (reverse mode) of a Jacobian pattern are
  coloured so that two columns sharing a row never share a colour (a distance-2
  colouring of the bipartite graph, greedy, in the better of the natural and
  the largest-first orderings). Entry ``(i, j)`` is then ``B[colour(j), i]``
  in the compressed product ``B`` (one JVP per colour).
- A symmetric (Hessian) pattern is star-coloured (greedy, Gebremedhin, Manne
  and Pothen's star colouring): fewer colours, and every non-zero is read
  directly from either ``(H S)[i, colour(j)]`` or ``(H S)[j, colour(i)]``. The
  recovery is verified; should it fail, the distance-2 column colouring is used.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

__all__ = ["color_columns", "recover_columns", "star_color", "symmetric_recovery"]


def _greedy(adj: sp.csr_matrix, order: np.ndarray) -> np.ndarray:
    indptr = adj.indptr.tolist()
    indices = adj.indices.tolist()
    n = adj.shape[0]
    color = [-1] * n
    mark = [-1] * (n + 1)
    for j in order.tolist():
        for k in indices[indptr[j]:indptr[j + 1]]:
            c = color[k]
            if c >= 0:
                mark[c] = j
        c = 0
        while mark[c] == j:
            c += 1
        color[j] = c
    return np.asarray(color, dtype=np.int32)


def _orders(degree: np.ndarray) -> list[np.ndarray]:
    natural = np.arange(degree.size)
    largest_first = np.argsort(-degree, kind="stable")
    return [natural, largest_first]


def color_columns(pattern: sp.csr_matrix) -> np.ndarray:
    """Colour the columns of an (m x n) pattern: columns sharing a row differ.

    Returns an int32 array of length n (colours 0, 1, ...).
    """
    n = pattern.shape[1]
    if n == 0:
        return np.zeros(0, dtype=np.int32)
    p = sp.csr_matrix(pattern, dtype=bool)
    adj = sp.csr_matrix(p.T @ p, dtype=bool)
    degree = np.diff(adj.indptr)
    best = None
    for order in _orders(degree):
        colors = _greedy(adj, order)
        if best is None or colors.max() < best.max():
            best = colors
    assert best is not None
    return best


def recover_columns(pattern: sp.csr_matrix, colors: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each non-zero ``(i, j)`` (row-major), the compressed read ``(colour(j), i)``."""
    coo = sp.coo_matrix(pattern)
    order = np.lexsort((coo.col, coo.row))
    rows, cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    return rows, cols, colors[cols].astype(np.int64), rows


def star_color(pattern: sp.csr_matrix) -> np.ndarray:
    """Greedy star colouring of a symmetric pattern's adjacency graph."""
    n = pattern.shape[0]
    a = sp.csr_matrix(pattern, dtype=bool).tolil()
    a.setdiag(False)
    a = sp.csr_matrix(a)
    a.eliminate_zeros()
    indptr, indices = a.indptr.tolist(), a.indices.tolist()
    adj = [indices[indptr[v]:indptr[v + 1]] for v in range(n)]
    degree = np.diff(a.indptr)
    best = None
    for order in _orders(degree):
        color = [-1] * n
        forb = [-1] * (n + 1)
        counts: list[dict[int, int]] = [{} for _ in range(n)]
        for v in order.tolist():
            for w in adj[v]:
                cw = color[w]
                if cw >= 0:
                    forb[cw] = v
                for x in adj[w]:
                    if x == v:
                        continue
                    cx = color[x]
                    if cx < 0:
                        continue
                    if cw < 0 or counts[x].get(cw, 0) >= 2:
                        forb[cx] = v
            c = 0
            while forb[c] == v:
                c += 1
            color[v] = c
            for u in adj[v]:
                counts[u][c] = counts[u].get(c, 0) + 1
        arr = np.asarray(color, dtype=np.int32)
        if best is None or arr.max() < best.max():
            best = arr
    assert best is not None
    return best


def symmetric_recovery(pattern: sp.csr_matrix, colors: np.ndarray
                       ) -> tuple[np.ndarray, ...] | None:
    """Reads for a star colouring: ``(rows, cols, colour, read_row)`` per non-zero.

    Returns None if some non-zero cannot be read directly (invalid colouring).
    """
    coo = sp.coo_matrix(pattern)
    order = np.lexsort((coo.col, coo.row))
    rows, cols = coo.row[order].astype(np.int64), coo.col[order].astype(np.int64)
    n = pattern.shape[0]
    p = int(colors.max()) + 1 if colors.size else 1
    # closed neighbourhoods: the pattern plus the diagonal
    nb = sp.csr_matrix(pattern, dtype=bool) + sp.identity(n, dtype=bool, format="csr")
    nb = sp.coo_matrix(nb)
    keys = nb.row.astype(np.int64) * p + colors[nb.col]
    uniq, counts = np.unique(keys, return_counts=True)

    def count(k: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(uniq, k)
        pos = np.minimum(pos, uniq.size - 1)
        return np.where(uniq[pos] == k, counts[pos], 0)

    direct = count(rows * p + colors[cols]) == 1
    mirrored = count(cols * p + colors[rows]) == 1
    if not np.all(direct | mirrored):
        return None
    color = np.where(direct, colors[cols], colors[rows]).astype(np.int64)
    read_row = np.where(direct, rows, cols)
    return rows, cols, color, read_row
