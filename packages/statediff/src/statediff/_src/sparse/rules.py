"""Per-primitive dependency rules for :mod:`.detect`.

Three generic rules cover most primitives:

- *element-wise* (``add``, ``tanh``, ``select_n``, ...): output element ``i``
  depends on element ``i`` of each input (size-1 inputs broadcast);
- *index-moving* (``reshape``, ``transpose``, ``slice``, ``gather`` with known
  indices, ``concatenate``, ``pad``, ...): the primitive itself is run on arrays
  of element ids, which tells where each output element comes from;
- *grouping* (reductions, cumulative ops, ``sort``): an output element depends
  on every input element of its group.

``dot_general``, ``scatter*``, the call primitives (``jit``, ``custom_jvp_call``,
``remat``, ...) and the control flow (``cond``, ``while``, ``scan``) have their
own rules. Anything else is treated densely (with a one-time warning).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp

from .detect import (
    ENTRY_LIMIT,
    Entry,
    TooLarge,
    detect_closed,
    detect_jaxpr,
    select_rows,
    sparse_dense_warning,
    union,
)

__all__ = ["apply_rule"]

ELEMENTWISE = frozenset(
    """abs acos acosh add add_any asin asinh atan atan2 atanh cbrt ceil clamp complex conj
    convert_element_type copy copy_p cos cosh digamma div erf erf_inv erfc exp exp2 expm1 floor
    igamma igammac imag integer_pow is_finite lgamma log log1p logistic max min mul neg
    nextafter polygamma pow real reduce_precision rem round rsqrt select_n sign sin sinh sqrt
    square sub tan tanh bessel_i0e bessel_i1e zeta regularized_incomplete_beta random_gamma_grad
    optimization_barrier""".split()
)
MOVING = frozenset(
    """reshape transpose broadcast_in_dim squeeze expand_dims slice rev concatenate pad
    dynamic_slice dynamic_update_slice gather split stack unstack tile""".split()
)
REDUCE = frozenset("reduce_sum reduce_max reduce_min reduce_prod argmax argmin".split())
CUMULATIVE = frozenset("cumsum cumprod cummax cummin cumlogsumexp".split())
SCATTER = frozenset("scatter scatter-add scatter_add scatter-mul scatter_mul scatter-min "
                    "scatter_min scatter-max scatter_max scatter-sub scatter_sub".split())
ZERO = frozenset("stop_gradient".split())
CALLS = ("jaxpr", "call_jaxpr", "fun_jaxpr")


def _size(aval: Any) -> int:
    return int(np.prod(aval.shape, dtype=np.int64))


def _rows(d: sp.csr_matrix | None, size: int, n: int) -> sp.csr_matrix:
    return sp.csr_matrix((size, n), dtype=bool) if d is None else d


def _dense_rule(eqn: Any, ins: list[Entry], outs: list[Any], n: int, why: str) -> list[Any]:
    sparse_dense_warning(str(eqn.primitive), why)
    all_rows = union([_collapse(e.deps) for e in ins])
    return [_broadcast(all_rows, _size(a)) for a in outs]


def _collapse(d: sp.csr_matrix | None) -> sp.csr_matrix | None:
    """One row: the union of all rows."""
    if d is None:
        return None
    return sp.csr_matrix(d.sum(axis=0) > 0)


def _broadcast(row: sp.csr_matrix | None, size: int) -> sp.csr_matrix | None:
    if row is None:
        return None
    if size * row.nnz > ENTRY_LIMIT:
        raise TooLarge(f"a dense block of {size} x {row.nnz}")
    return sp.csr_matrix(row[np.zeros(size, dtype=np.int64)], dtype=bool)


def _elementwise(ins: list[Entry], out: Any, n: int) -> Any:
    size = _size(out)
    parts = []
    for e in ins:
        if e.deps is None:
            continue
        if tuple(e.shape) == tuple(out.shape):
            parts.append(e.deps)
            continue
        if size * e.deps.nnz > ENTRY_LIMIT * max(e.size, 1):
            raise TooLarge("a broadcast")
        src = np.broadcast_to(np.arange(e.size).reshape(e.shape), tuple(out.shape))
        parts.append(sp.csr_matrix(e.deps[src.reshape(-1)], dtype=bool))
    return union(parts)


def _ids(e: Entry, offset: int) -> np.ndarray:
    """Element ids (1-based, offset) shaped like the entry; 0 means "no source"."""
    return (np.arange(e.size, dtype=np.int32) + (offset + 1)).reshape(e.shape)


def _moving(eqn: Any, ins: list[Entry], outs: list[Any], n: int) -> list[Any] | None:
    """Run the primitive on id arrays; None when an index operand is unknown."""
    name = str(eqn.primitive)
    data_pos = {
        "gather": [0],
        "dynamic_slice": [0],
        "dynamic_update_slice": [0, 1],
    }.get(name, list(range(len(ins))))
    args: list[Any] = []
    sizes, mats, offset = [], [], 0
    for i, e in enumerate(ins):
        if i in data_pos:
            args.append(_ids(e, offset))
            sizes.append(e.size)
            mats.append(e.deps)
            offset += e.size
        else:
            if e.val is None:
                return None
            args.append(e.val)
    params = dict(eqn.params)
    if name == "gather":
        params["fill_value"] = 0
    with jax.ensure_compile_time_eval():
        res = eqn.primitive.bind(*[jnp.asarray(a) for a in args], **params)
    res = res if eqn.primitive.multiple_results else [res]
    out = []
    for r in res:
        src = np.asarray(r).reshape(-1).astype(np.int64) - 1
        src[(src < 0) | (src >= offset)] = -1
        out.append(select_rows(mats, sizes, n, src))
    return out


def _group_matrix(shape: tuple[int, ...], axes: tuple[int, ...]) -> sp.csr_matrix:
    """(groups x elements) 0/1 matrix: elements sharing the coordinates off ``axes``."""
    size = int(np.prod(shape, dtype=np.int64))
    keep = [d for d in range(len(shape)) if d not in axes]
    coords = np.unravel_index(np.arange(size), shape)
    kshape = tuple(shape[d] for d in keep)
    group = np.ravel_multi_index([coords[d] for d in keep], kshape) if keep else np.zeros(
        size, dtype=np.int64)
    ngroups = int(np.prod(kshape, dtype=np.int64))
    return sp.csr_matrix((np.ones(size, bool), (group, np.arange(size))), shape=(ngroups, size))


def _reduce(eqn: Any, e: Entry) -> Any:
    g = _group_matrix(e.shape, tuple(eqn.params["axes"]))
    return _prod(g, e.deps)


def _prod(a: sp.csr_matrix, b: sp.csr_matrix | None) -> sp.csr_matrix | None:
    if b is None:
        return None
    out = sp.csr_matrix(a @ b, dtype=bool)
    out.eliminate_zeros()
    return out if out.nnz else None


def _line(shape: tuple[int, ...], axis: int, deps_list: list[Any]) -> Any:
    g = _group_matrix(shape, (axis,))
    u = union([_prod(g, d) for d in deps_list])
    return _prod(sp.csr_matrix(g.T), u)


def _dot_general(eqn: Any, lhs: Entry, rhs: Entry, n: int) -> Any:
    (lc, rc), (lb, rb) = eqn.params["dimension_numbers"]
    lc, rc, lb, rb = map(tuple, (lc, rc, lb, rb))
    lfree = tuple(d for d in range(len(lhs.shape)) if d not in lc + lb)
    rfree = tuple(d for d in range(len(rhs.shape)) if d not in rc + rb)
    nb = int(np.prod([lhs.shape[d] for d in lb], dtype=np.int64))
    ni = int(np.prod([lhs.shape[d] for d in lfree], dtype=np.int64))
    nk = int(np.prod([lhs.shape[d] for d in lc], dtype=np.int64))
    nj = int(np.prod([rhs.shape[d] for d in rfree], dtype=np.int64))
    lid = np.arange(lhs.size).reshape(lhs.shape).transpose(lb + lfree + lc).reshape(nb, ni, nk)
    rid = np.arange(rhs.size).reshape(rhs.shape).transpose(rb + rc + rfree).reshape(nb, nk, nj)
    lmask = None if lhs.val is None else (
        lhs.val.transpose(lb + lfree + lc).reshape(nb, ni, nk) != 0)
    rmask = None if rhs.val is None else (
        rhs.val.transpose(rb + rc + rfree).reshape(nb, nk, nj) != 0)
    m = nb * ni * nj
    parts = []
    if lhs.deps is not None:
        # out[b, i, j] <- lhs[b, i, k] wherever rhs[b, k, j] may be non-zero
        b, k, j = np.nonzero(np.ones((nb, nk, nj), bool) if rmask is None else rmask)
        if b.size * ni > ENTRY_LIMIT:
            raise TooLarge("dot_general")
        i = np.arange(ni)[:, None]
        rows = (b[None] * ni * nj + i * nj + j[None]).reshape(-1)
        cols = lid[b[None], i, k[None]].reshape(-1)
        a = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(m, lhs.size))
        parts.append(_prod(a, lhs.deps))
    if rhs.deps is not None:
        b, i, k = np.nonzero(np.ones((nb, ni, nk), bool) if lmask is None else lmask)
        if b.size * nj > ENTRY_LIMIT:
            raise TooLarge("dot_general")
        j = np.arange(nj)[:, None]
        rows = (b[None] * ni * nj + i[None] * nj + j).reshape(-1)
        cols = rid[b[None], k[None], j].reshape(-1)
        a = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(m, rhs.size))
        parts.append(_prod(a, rhs.deps))
    return union(parts)


def _scatter(eqn: Any, ins: list[Entry], out: Any, n: int) -> Any:
    operand, indices, updates = ins[0], ins[1], ins[2]
    base = operand.deps
    if updates.deps is None:
        return base
    if indices.val is None:
        return union([base, _broadcast(_collapse(updates.deps), _size(out))])
    dn = eqn.params["dimension_numbers"]
    slice_sizes, pos = [], 0
    for d in range(len(operand.shape)):
        if d in dn.inserted_window_dims or d in dn.operand_batching_dims:
            slice_sizes.append(1)
        else:
            slice_sizes.append(updates.shape[dn.update_window_dims[pos]])
            pos += 1
    gdn = jax.lax.GatherDimensionNumbers(
        offset_dims=tuple(dn.update_window_dims),
        collapsed_slice_dims=tuple(dn.inserted_window_dims),
        start_index_map=tuple(dn.scatter_dims_to_operand_dims),
        operand_batching_dims=tuple(dn.operand_batching_dims),
        start_indices_batching_dims=tuple(dn.scatter_indices_batching_dims),
    )
    with jax.ensure_compile_time_eval():
        dest = jax.lax.gather(
            jnp.asarray(_ids(operand, 0)), jnp.asarray(indices.val), gdn, tuple(slice_sizes),
            mode=eqn.params.get("mode"), fill_value=0)
    dest = np.asarray(dest).reshape(-1).astype(np.int64) - 1
    ok = dest >= 0
    p = sp.csr_matrix((np.ones(int(ok.sum()), bool), (dest[ok], np.nonzero(ok)[0])),
                      shape=(operand.size, updates.size))
    return union([base, _prod(p, updates.deps)])


def _call_jaxpr(eqn: Any) -> Any:
    for key in CALLS:
        sub = eqn.params.get(key)
        if sub is not None:
            return sub
    return None


def _run_sub(sub: Any, ins: list[Entry], n: int) -> list[Entry]:
    if hasattr(sub, "consts"):
        return detect_closed(sub, ins, n)
    return detect_jaxpr(sub, ins, n)


def _same(a: list[Entry], b: list[Entry]) -> bool:
    for x, y in zip(a, b, strict=True):
        if (x.deps is None) != (y.deps is None):
            return False
        if x.deps is not None and (x.deps != y.deps).nnz:
            return False
    return True


def _join(a: list[Entry], b: list[Entry]) -> list[Entry]:
    return [Entry(x.aval, union([x.deps, y.deps])) for x, y in zip(a, b, strict=True)]


def _fixpoint(body: Any, consts: list[Entry], carry: list[Entry], xs: list[Entry], n: int,
              ncarry: int) -> tuple[list[Entry], list[Entry]]:
    carry = [Entry(c.aval, c.deps) for c in carry]  # values vary across iterations
    for _ in range(200):
        outs = _run_sub(body, [*consts, *carry, *xs], n)
        new = _join(carry, outs[:ncarry])
        if _same(new, carry):
            return carry, outs[ncarry:]
        carry = new
    raise TooLarge("a loop whose dependencies do not settle")


def _while(eqn: Any, ins: list[Entry], n: int) -> list[Any]:
    p = eqn.params
    nc, nb = p["cond_nconsts"], p["body_nconsts"]
    consts, init = ins[nc:nc + nb], ins[nc + nb:]
    carry, _ = _fixpoint(p["body_jaxpr"], consts, init, [], n, len(init))
    return [c.deps for c in carry]


def _slice_entry(e: Entry, t: int, aval: Any, n: int) -> Entry:
    step = _size(aval)
    d = None if e.deps is None else e.deps[t * step:(t + 1) * step]
    val = None if e.val is None else e.val[t]
    return Entry(aval, d if d is None or d.nnz else None, val)


def _scan(eqn: Any, ins: list[Entry], n: int) -> list[Any]:
    p = eqn.params
    body = p["jaxpr"]
    nconst, ncarry, length = p["num_consts"], p["num_carry"], p["length"]
    consts, init, xs = ins[:nconst], ins[nconst:nconst + ncarry], ins[nconst + ncarry:]
    x_avals = body.jaxpr.invars[nconst + ncarry:]
    if length <= 16:
        carry = init
        ys_t: list[list[Entry]] = [[] for _ in range(length)]
        order = range(length - 1, -1, -1) if p["reverse"] else range(length)
        for t in order:
            x_t = [_slice_entry(x, t, v.aval, n) for x, v in zip(xs, x_avals, strict=True)]
            outs = _run_sub(body, [*consts, *carry, *x_t], n)
            carry, ys_t[t] = outs[:ncarry], outs[ncarry:]
        ys = []
        for k in range(len(ys_t[0]) if ys_t else 0):
            parts = [ys_t[t][k] for t in range(length)]
            ys.append(None if all(q.deps is None for q in parts) else sp.csr_matrix(sp.vstack(
                [q.deps if q.deps is not None else sp.csr_matrix((q.size, n), dtype=bool)
                 for q in parts], format="csr"), dtype=bool))
        return [c.deps for c in carry] + ys
    x_all = []
    for x, v in zip(xs, x_avals, strict=True):
        step = _size(v.aval)
        g = sp.csr_matrix((np.ones(x.size, bool), (np.arange(x.size) % max(step, 1),
                                                    np.arange(x.size))), shape=(step, x.size))
        x_all.append(Entry(v.aval, _prod(g, x.deps)))
    carry, ys = _fixpoint(body, consts, init, x_all, n, ncarry)
    out_ys = []
    for y in ys:
        out_ys.append(None if y.deps is None else sp.csr_matrix(
            y.deps[np.tile(np.arange(y.size), length)], dtype=bool))
    return [c.deps for c in carry] + out_ys


def apply_rule(eqn: Any, ins: list[Entry], outs: list[Any], n: int) -> list[Any]:
    """Dependency matrices of an equation's outputs (None: no dependency)."""
    name = str(eqn.primitive)
    if name in ELEMENTWISE:
        return [_elementwise(ins, outs[0], n)]
    if name in ZERO:
        return [None for _ in outs]
    if name in MOVING:
        res = _moving(eqn, ins, outs, n)
        if res is not None:
            return res
        # unknown indices: every output element may come from any operand element
        row = _collapse(ins[0].deps)
        if name == "dynamic_update_slice":
            upd = _broadcast(_collapse(ins[1].deps), _size(outs[0]))
            return [union([ins[0].deps, upd])]
        return [_broadcast(row, _size(outs[0]))]
    if name in REDUCE:
        return [_reduce(eqn, ins[0])]
    if name in CUMULATIVE:
        return [_line(ins[0].shape, eqn.params["axis"], [ins[0].deps])]
    if name == "sort":
        d = _line(ins[0].shape, eqn.params["dimension"], [e.deps for e in ins])
        return [d for _ in outs]
    if name == "top_k":
        e = ins[0]
        g_in = _group_matrix(e.shape, (len(e.shape) - 1,))
        g_out = _group_matrix(tuple(outs[0].shape), (len(e.shape) - 1,))
        d = _prod(sp.csr_matrix(g_out.T), _prod(g_in, e.deps))
        return [d for _ in outs]
    if name == "dot_general":
        return [_dot_general(eqn, ins[0], ins[1], n)]
    if name in SCATTER:
        return [_scatter(eqn, ins, outs[0], n)]
    if name == "cond":
        branches = eqn.params["branches"]
        idx = ins[0].val
        if idx is not None:
            branches = [branches[int(np.clip(idx, 0, len(branches) - 1))]]
        results = [_run_sub(b, ins[1:], n) for b in branches]
        return [union([r[k].deps for r in results]) for k in range(len(outs))]
    if name == "while":
        return _while(eqn, ins, n)
    if name == "scan":
        return _scan(eqn, ins, n)
    sub = _call_jaxpr(eqn)
    if sub is not None and len(getattr(sub, "jaxpr", sub).invars) == len(ins):
        return [e.deps for e in _run_sub(sub, ins, n)]
    return _dense_rule(eqn, ins, outs, n, "no sparsity rule for primitive")
