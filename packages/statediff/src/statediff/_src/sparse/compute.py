"""Sparse ``jacfwd`` / ``jacrev`` / ``hessian`` of a pure function, JAX's layout.

:func:`sparse_transform` returns a drop-in for ``jax.jacfwd(fun, argnums,
has_aux)`` (or ``jacrev`` / ``hessian``) that, at trace time, gets the
pattern (given or detected), colours it, and then computes one JVP (VJP) per
colour and scatters the compressed products back into each block, dense or
as a ``BCOO``. When colouring would save nothing it calls the dense transform.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.sparse as sp
from jax.experimental import sparse as jsparse

from ..jax_compat import convert_keeping_weak_type
from .detect import TooLarge, jacobian_pattern, sparse_dense_warning
from .plan import (
    Plan,
    block_pattern,
    is_block_tree,
    is_pattern_leaf,
    is_recording,
    make_plan,
    record,
    user_pattern,
)

__all__ = ["bind_owner", "sparse_transform"]


def _dyn(args: tuple[Any, ...], argnums: Any) -> tuple[Any, Callable[[Any], tuple[Any, ...]]]:
    nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
    dyn = args[argnums] if isinstance(argnums, int) else tuple(args[i] for i in nums)

    def rebuild(value: Any) -> tuple[Any, ...]:
        new = list(args)
        vals = (value,) if isinstance(argnums, int) else value
        for i, v in zip(nums, vals, strict=True):
            new[i] = v
        return tuple(new)

    return dyn, rebuild


def _sds(x: Any) -> jax.ShapeDtypeStruct:
    t = jax.typeof(x)
    return jax.ShapeDtypeStruct(t.shape, t.dtype, weak_type=t.weak_type)


def _inexact(leaves: list[Any]) -> bool:
    return all(jax.dtypes.issubdtype(jax.typeof(x).dtype, np.inexact) for x in leaves)


class _Call:
    """One traced call: the function over flat input leaves and its layout."""

    def __init__(self, fun: Any, argnums: Any, has_aux: bool, args: tuple[Any, ...]) -> None:
        dyn, rebuild = _dyn(args, argnums)
        self.leaves, self.in_tree = jax.tree.flatten(dyn)
        self.has_aux = has_aux
        in_tree = self.in_tree

        def flat(*leaves: Any) -> Any:
            return fun(*rebuild(jax.tree.unflatten(in_tree, list(leaves))))

        self.flat = flat
        out = jax.eval_shape(flat, *[_sds(x) for x in self.leaves])
        y = out[0] if has_aux else out
        self.y_leaves, self.out_tree = jax.tree.flatten(y)
        self.in_avals = [jax.typeof(x) for x in self.leaves]

    def y_only(self, *leaves: Any) -> list[Any]:
        out = self.flat(*leaves)
        return jax.tree.leaves(out[0] if self.has_aux else out)

    def grad_only(self, *leaves: Any) -> list[Any]:
        return list(jax.grad(self._scalar, argnums=tuple(range(len(leaves))))(*leaves))

    def _scalar(self, *leaves: Any) -> Any:
        return self.y_only(*leaves)[0].reshape(())


def _tangents(colors: Any, k: Any, avals: list[Any]) -> list[Any]:
    t = colors == k
    out, off = [], 0
    for a in avals:
        size = int(np.prod(a.shape, dtype=np.int64))
        out.append(t[off:off + size].reshape(a.shape).astype(a.dtype))
        off += size
    return out


def _batched(fn: Callable[[Any], Any], p: int, chunk: int | None) -> Any:
    ks = jnp.arange(p, dtype=jnp.int32)
    if chunk is None or chunk >= p:
        return jax.vmap(fn)(ks)
    return jax.lax.map(fn, ks, batch_size=chunk)


def _compressed(kind: str, call: _Call, plan: Plan, chunk: int | None, holomorphic: bool
                ) -> tuple[list[Any], Any]:
    """The compressed products, one (p x size) matrix per read-side leaf, and fun's output."""
    p = plan.num_colors
    colors = jnp.asarray(plan.colors)
    leaves = call.leaves
    if kind == "jacfwd" and (chunk is None or chunk >= p):
        # as jax.jacfwd: one vmap of the JVP, the primal computed once (unbatched)
        def push(k: Any) -> Any:
            res = jax.jvp(call.flat, list(leaves), _tangents(colors, k, call.in_avals),
                          has_aux=call.has_aux)
            return (res[0], jax.tree.leaves(res[1]), res[2]) if call.has_aux else (
                res[0], jax.tree.leaves(res[1]), None)

        y, comp, aux = jax.vmap(push, out_axes=(None, 0, None))(jnp.arange(p, dtype=jnp.int32))
        return [c.reshape(p, -1) for c in comp], ((y, aux) if call.has_aux else y)
    if kind == "jacfwd":
        if call.has_aux:
            y, lin, aux = jax.linearize(call.flat, *leaves, has_aux=True)
            out = (y, aux)
        else:
            y, lin = jax.linearize(call.flat, *leaves)
            out = y
        comp = _batched(lambda k: jax.tree.leaves(lin(*_tangents(colors, k, call.in_avals))),
                        p, chunk)
        return [c.reshape(p, -1) for c in comp], out
    if kind == "jacrev":
        if call.has_aux:
            y, pull, aux = jax.vjp(call.flat, *leaves, has_aux=True)
            out = (y, aux)
        else:
            y, pull = jax.vjp(call.flat, *leaves)
            out = y
        y_avals = [jax.typeof(v) for v in jax.tree.leaves(y)]
        tree = jax.tree.structure(y)

        def pullback(k: Any) -> list[Any]:
            cts = _tangents(colors, k, y_avals)
            return list(pull(jax.tree.unflatten(tree, cts)))

        comp = _batched(pullback, p, chunk)
        return [c.reshape(p, -1) for c in comp], out

    def grad_fn(*ls: Any) -> Any:
        def scalar(*xs: Any) -> Any:
            res = call.flat(*xs)
            y = res[0] if call.has_aux else res
            return jax.tree.leaves(y)[0].reshape(()), res

        g, res = jax.grad(scalar, argnums=tuple(range(len(ls))), has_aux=True,
                          holomorphic=holomorphic)(*ls)
        return list(g), res

    _, res = grad_fn(*leaves)

    def push(k: Any) -> list[Any]:
        return jax.jvp(lambda *xs: grad_fn(*xs)[0], list(leaves),
                       _tangents(colors, k, call.in_avals))[1]

    comp = _batched(push, p, chunk)
    return [c.reshape(p, -1) for c in comp], res


def _block_reads(plan: Plan, r0: int, r1: int, c0: int, c1: int) -> tuple[np.ndarray, ...]:
    rows, cols, color, read = plan.reads  # type: ignore[misc]
    lo, hi = np.searchsorted(rows, r0), np.searchsorted(rows, r1)
    rr, cc, kk, ii = rows[lo:hi], cols[lo:hi], color[lo:hi], read[lo:hi]
    sel = (cc >= c0) & (cc < c1)
    return rr[sel] - r0, cc[sel] - c0, kk[sel], ii[sel]


def _make_block(vals: Any, r: np.ndarray, c: np.ndarray, shape: tuple[int, ...],
                n_b: int, dtype: Any, sparse_output: bool) -> Any:
    lin = r * n_b + c
    size = int(np.prod(shape, dtype=np.int64))
    vals = vals.astype(dtype)
    if sparse_output and shape:
        idx = np.stack(np.unravel_index(lin, shape), axis=1).astype(np.int32) if lin.size else \
            np.zeros((0, len(shape)), np.int32)
        return jsparse.BCOO((vals, jnp.asarray(idx)), shape=shape, indices_sorted=True,
                            unique_indices=True)
    flat = jnp.zeros((size,), dtype).at[lin].set(vals, indices_are_sorted=True,
                                                   unique_indices=True, mode="promise_in_bounds")
    return flat.reshape(shape)


def _layout(kind: str, call: _Call) -> tuple[list[Any], list[Any], list[Any]]:
    """(row-side avals, column-side avals, dtype per (a, b) rule source)."""
    ins = call.in_avals
    outs = [jax.typeof(y) for y in call.y_leaves]
    if kind == "hessian":
        return ins, ins, ins
    return outs, ins, outs if kind == "jacfwd" else ins


def _assemble(kind: str, call: _Call, blocks: list[list[Any]]) -> Any:
    rows = [jax.tree.unflatten(call.in_tree, row) for row in blocks]
    if kind == "hessian":
        return jax.tree.unflatten(call.out_tree, [jax.tree.unflatten(call.in_tree, rows)])
    return jax.tree.unflatten(call.out_tree, rows)


def _shapes(kind: str, call: _Call) -> list[list[tuple[int, ...]]]:
    r_av, c_av, _ = _layout(kind, call)
    lead = tuple(jax.typeof(call.y_leaves[0]).shape) if kind == "hessian" else ()
    return [[lead + tuple(a.shape) + tuple(b.shape) for b in c_av] for a in r_av]


def _sizes(avals: list[Any]) -> list[int]:
    return [int(np.prod(a.shape, dtype=np.int64)) for a in avals]


def _blocks_from(kind: str, call: _Call, plan: Plan, per_block: Callable[..., Any]) -> Any:
    r_av, c_av, dt = _layout(kind, call)
    rs, cs = np.cumsum([0, *_sizes(r_av)]), np.cumsum([0, *_sizes(c_av)])
    shapes = _shapes(kind, call)
    blocks = []
    for a in range(len(r_av)):
        row = []
        for b in range(len(c_av)):
            dtype = dt[a].dtype if kind != "jacrev" else dt[b].dtype
            row.append(per_block(a, b, rs[a], rs[a + 1], cs[b], cs[b + 1], shapes[a][b], dtype))
        blocks.append(row)
    return _assemble(kind, call, blocks)


def block_infos(kind: str, call: _Call, plan: Plan) -> Any:
    """Per-block pattern objects in JAX's layout (for :class:`SparsityInfo`)."""
    from .plan import BlockSparsity

    def one(a: int, b: int, r0: int, r1: int, c0: int, c1: int, shape: Any, dtype: Any) -> Any:
        pat = plan.pattern if plan.pattern is not None else sp.csr_matrix(
            np.ones(plan.shape, bool))
        return BlockSparsity(sp.csr_matrix(pat[r0:r1, c0:c1]), shape)

    return _blocks_from(kind, call, plan, one)


def _decompress(kind: str, call: _Call, plan: Plan, comp: list[Any], sparse_output: bool) -> Any:
    big = comp[0] if len(comp) == 1 else jnp.concatenate(
        [c.astype(jnp.result_type(*comp)) for c in comp], axis=1)

    def one(a: int, b: int, r0: int, r1: int, c0: int, c1: int, shape: Any, dtype: Any) -> Any:
        r, c, k, i = _block_reads(plan, r0, r1, c0, c1)
        flat = k * big.shape[1] + i
        vals = big.reshape(-1).at[jnp.asarray(flat, jnp.int32)].get(
            mode="promise_in_bounds", unique_indices=plan.mode != "symmetric",
        ) if r.size else jnp.zeros((0,), big.dtype)
        return _make_block(vals, r, c, shape, c1 - c0, dtype, sparse_output)

    return _blocks_from(kind, call, plan, one)


def _sparsify_dense(kind: str, call: _Call, plan: Plan, d: Any) -> Any:
    """Turn the dense result into BCOO blocks (the dense path of sparse_output=True)."""
    leaves = jax.tree.leaves(d)
    it = iter(leaves)

    def one(a: int, b: int, r0: int, r1: int, c0: int, c1: int, shape: Any, dtype: Any) -> Any:
        block = next(it)
        if not shape:
            return block
        if plan.pattern is None:
            return jsparse.BCOO.fromdense(block, nse=int(np.prod(shape)))
        r, c, _, _ = _block_reads(plan, r0, r1, c0, c1) if plan.reads is not None else (
            *sp.find(plan.pattern[r0:r1, c0:c1])[:2], None, None)
        lin = r * (c1 - c0) + c
        return _make_block(block.reshape(-1)[lin], r, c, shape, c1 - c0, dtype, True)

    return _blocks_from(kind, call, plan, one)


def _match(d: Any, expected: Any) -> Any:
    """Give each dense block the dtype and weak type of the dense transform's block."""
    is_bcoo = lambda x: isinstance(x, jsparse.BCOO)  # noqa: E731
    leaves, tree = jax.tree.flatten(d, is_leaf=is_bcoo)
    want = tree.flatten_up_to(expected)
    out = []
    for x, e in zip(leaves, want, strict=True):
        if is_bcoo(x):
            if x.data.dtype != e.dtype:
                x = jsparse.BCOO((x.data.astype(e.dtype), x.indices), shape=x.shape,
                                 indices_sorted=True, unique_indices=True)
            out.append(x)
        else:
            out.append(convert_keeping_weak_type(x, e.dtype, bool(e.weak_type)))
    return jax.tree.unflatten(tree, out)


def _detect(kind: str, call: _Call) -> sp.csr_matrix | None:
    sds = [_sds(x) for x in call.leaves]
    fn = call.grad_only if kind == "hessian" else call.y_only
    try:
        pattern, _ = jacobian_pattern(fn, sds, [True] * len(sds))
    except TooLarge as err:
        sparse_dense_warning(str(err), "detection is too costly for")
        return None
    return pattern


def _user_layout(kind: str, call: _Call, owner: Any, d: Any) -> Any:
    """The derivative part of what the stateful call returns, for JAX's layout ``d``."""
    if owner is None:
        return d
    from ..transform import GradientTransform

    y = jax.tree.unflatten(call.out_tree, [0] * call.out_tree.num_leaves)
    res = GradientTransform._assemble(owner, d, y, None)
    return res[0] if (owner.has_aux or owner.return_value) else res


def _block_tree_pattern(kind: str, call: _Call, spec: Any, api: str, owner: Any
                        ) -> tuple[sp.csr_matrix | None, str]:
    """The whole pattern from a pytree of per-block patterns (None, 'auto', array, BCOO)."""
    r_av, c_av, _ = _layout(kind, call)
    rs, cs = np.cumsum([0, *_sizes(r_av)]), np.cumsum([0, *_sizes(c_av)])
    shapes = _shapes(kind, call)
    nb = len(c_av)
    ids = [[a * nb + b for b in range(nb)] for a in range(len(r_av))]
    layout = _user_layout(kind, call, owner, _assemble(kind, call, ids))
    flat, treedef = jax.tree_util.tree_flatten_with_path(layout)
    try:
        entries = treedef.flatten_up_to(spec)
    except (ValueError, TypeError) as err:
        want = jax.tree.unflatten(treedef, [f"<block {shapes[i // nb][i % nb]}>" for _, i in flat])
        got = jax.tree.map(lambda x: x if x is None or isinstance(x, str) else (
            f"<pattern {tuple(x.shape)}>" if hasattr(x, "shape") else f"<{type(x).__name__}>"),
            spec, is_leaf=is_pattern_leaf)
        raise ValueError(
            f"{api}: sparsity= is a pytree of per-block patterns, so it must have the "
            f"layout of the derivative the call returns: {want} (one entry per block, of the "
            f"block's shape); got {got}. Fix: give one entry per block (None for a dense "
            "block, 'auto' to detect it, or a boolean array / BCOO of the block's shape), "
            "or a single pattern of the whole Jacobian's 2-D flattening."
        ) from err
    m, n = int(rs[-1]), int(cs[-1])
    blocks: dict[int, sp.csr_matrix] = {}
    auto = []
    for (path, i), entry in zip(flat, entries, strict=True):
        a, b = divmod(i, nb)
        r, c = int(rs[a + 1] - rs[a]), int(cs[b + 1] - cs[b])
        if entry is None:
            blocks[i] = sp.csr_matrix(np.ones((r, c), bool))
        elif isinstance(entry, str):
            auto.append(i)
        else:
            where = f"sparsity{jax.tree_util.keystr(path)}"
            blocks[i] = block_pattern(api, where, entry, shapes[a][b], r, c)
    whole = _detect(kind, call) if auto else None
    for i in auto:
        a, b = divmod(i, nb)
        blocks[i] = (sp.csr_matrix(whole[rs[a]:rs[a + 1], cs[b]:cs[b + 1]]) if whole is not None
                     else sp.csr_matrix(np.ones((int(rs[a + 1] - rs[a]),
                                                 int(cs[b + 1] - cs[b])), bool)))
    grid = [[blocks[a * nb + b] for b in range(nb)] for a in range(len(r_av))]
    pattern = sp.csr_matrix(sp.bmat(grid, format="csr"), dtype=bool) if m and n else \
        sp.csr_matrix((m, n), dtype=bool)
    source = "auto" if len(auto) == len(flat) else ("user" if not auto else "mixed")
    return pattern, source


def _pattern(kind: str, call: _Call, sparsity: Any, api: str, owner: Any = None
             ) -> tuple[sp.csr_matrix | None, str]:
    """The (m x n) pattern (None: dense) and where it came from."""
    m = sum(_sizes([jax.typeof(y) for y in call.y_leaves]))
    n = sum(_sizes(call.in_avals))
    if sparsity is None or isinstance(sparsity, str):
        return _detect(kind, call), "auto"
    if is_block_tree(sparsity):
        return _block_tree_pattern(kind, call, sparsity, api, owner)
    return user_pattern(api, sparsity, n if kind == "hessian" else m, n), "user"


def _supported(kind: str, call: _Call) -> bool:
    if not call.leaves or not call.y_leaves:
        return False
    if not _inexact(call.leaves) or not _inexact(call.y_leaves):
        return False
    if kind == "hessian":
        return len(call.y_leaves) == 1 and jax.typeof(call.y_leaves[0]).size == 1
    return True


def sparse_transform(kind: str, dense_transform: Callable[..., Any], sparsity: Any,
                     sparse_output: bool, chunk_size: int | None, holomorphic: bool,
                     api: str) -> Callable[..., Any]:
    """A ``transform(fun, argnums, has_aux)`` computing sparse Jacobians / Hessians.

    With ``sparsity=None`` it is the dense transform, except while
    :meth:`GradientTransform.sparsity` is recording, when it also reports what
    ``sparsity="auto"`` would detect.
    """
    from .report import make_info

    owner: list[Any] = [None]  # the GradientTransform, for the layout of per-block patterns

    def transform(fun: Callable[..., Any], argnums: Any, has_aux: bool) -> Callable[..., Any]:
        dense = dense_transform(fun, argnums=argnums, has_aux=has_aux)

        def run(*args: Any) -> Any:
            want = sparsity if sparsity is not None else ("auto" if sparse_output else None)
            if want is None and not is_recording():
                return dense(*args)
            call = _Call(fun, argnums, has_aux, args)
            if not _supported(kind, call):
                return dense(*args)
            plan = make_plan(kind, *_pattern(kind, call, want, api, owner[0]))
            record(make_info(plan, block_infos(kind, call, plan), call.out_tree))
            if want is None:
                return dense(*args)
            if plan.dense:
                res = dense(*args)
                d, rest = (res[0], res[1:]) if has_aux else (res, ())
                if sparse_output:
                    d = _sparsify_dense(kind, call, plan, d)
                return (d, *rest) if has_aux else d
            expected = jax.eval_shape(dense, *args)
            comp, out = _compressed(kind, call, plan, chunk_size, holomorphic)
            d = _decompress(kind, call, plan, comp, sparse_output)
            d = _match(d, expected[0] if has_aux else expected)
            return (d, out[1]) if has_aux else d

        return run

    transform._sparse_owner = owner  # type: ignore[attr-defined]
    return transform


def bind_owner(gt: Any) -> Any:
    """Tell ``gt``'s sparse transform its layout (for per-block patterns); returns ``gt``."""
    box = getattr(gt.transform, "_sparse_owner", None)
    if box is not None:
        box[0] = gt
    return gt
