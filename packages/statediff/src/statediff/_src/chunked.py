"""Chunked ``jacfwd`` / ``jacrev``: a Jacobian a few basis vectors at a time.

``jax.jacfwd`` pushes the whole standard basis of the inputs through one
``vmap`` of the JVP, so it materialises ``n_in`` tangents at once (and every
intermediate of the function batched ``n_in`` times); ``jax.jacrev`` does the
same with ``n_out`` cotangents. Here the function is linearized (forward) or
pulled back (reverse) once, then the basis goes through ``vmap`` of the linear
map ``chunk_size`` vectors at a time inside a loop: peak working memory is
bounded by the chunk, the result is the same array JAX returns (values,
dtypes, weak types and pytree layout).

The loop is a ``fori_loop`` writing each chunk in place into the Jacobian's
own buffers, so no stacked copy of the Jacobian is made; the basis chunk is
built inside the loop from indices, so the ``n x n`` identity is never
materialised. Rather than padding the last chunk with zero vectors, it starts
at ``n - chunk_size`` and recomputes a few columns: same result, no slicing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from .jax_compat import convert_keeping_weak_type

__all__ = ["chunked_jacfwd", "chunked_jacrev"]

# (offset into the flat vector, shape, dtype, weak_type) of one leaf
_Layout = list[tuple[int, tuple[int, ...], Any, bool]]


def chunked_jacfwd(
    fun: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    *,
    chunk_size: int,
) -> Callable[..., Any]:
    """Forward-mode Jacobian computed ``chunk_size`` input basis vectors at a time.

    A drop-in for ``jax.jacfwd(fun, argnums, has_aux, holomorphic)``: same
    result, layout and errors, with peak memory bounded by the chunk.

    Args:
        fun: The function to differentiate.
        argnums: Positional argument(s) to differentiate (int or sequence).
        has_aux: ``fun`` returns ``(value, aux)``; returns ``(jac, aux)``.
        holomorphic: ``fun`` is holomorphic (complex inputs and outputs).
        chunk_size: Number of basis vectors pushed forward per pass (>= 1).

    Returns:
        A function with ``fun``'s arguments returning the Jacobian.

    Example:
        >>> import jax.numpy as jnp
        >>> from statediff._src.chunked import chunked_jacfwd
        >>> chunked_jacfwd(lambda x: x ** 2, chunk_size=2)(jnp.array([1.0, 2.0, 3.0]))
        Array([[2., 0., 0.],
               [0., 4., 0.],
               [0., 0., 6.]], dtype=float32)
    """
    _check_chunk_size("chunked_jacfwd", chunk_size)
    _check_callable("chunked_jacfwd", fun)

    def jacfun(*args: Any, **kwargs: Any) -> Any:
        f_partial, dyn = _partial(fun, argnums, args, kwargs)
        in_leaves, in_tree = jax.tree.flatten(dyn)
        in_avals = [jax.typeof(x) for x in in_leaves]
        for aval in in_avals:
            _check_input_jacfwd(holomorphic, aval)

        def flat_fun(*leaves: Any) -> Any:
            return f_partial(*jax.tree.unflatten(in_tree, leaves))

        if has_aux:
            y, jvp_fn, aux = jax.linearize(flat_fun, *in_leaves, has_aux=True)
        else:
            (y, jvp_fn), aux = jax.linearize(flat_fun, *in_leaves), None
        out_leaves, out_tree = jax.tree.flatten(y)
        out_avals = [jax.typeof(x) for x in out_leaves]
        if holomorphic:
            for aval in out_avals:
                if not jnp.issubdtype(aval.dtype, np.complexfloating):
                    raise TypeError(
                        "jacfwd with holomorphic=True requires outputs with complex dtype, "
                        f"but got {aval.dtype.name}."
                    )
        in_layout, total_in = _layout(in_avals)
        diff_out = [i for i, a in enumerate(out_avals) if _inexact(a.dtype)]

        def push(start: Any, k: int) -> list[Any]:
            tangents = jax.vmap(jvp_fn)(*_basis(start, k, in_layout))
            leaves = out_tree.flatten_up_to(tangents)
            return [leaves[i] for i in diff_out]

        columns = _loop_chunks(push, total_in, chunk_size, axis=-1) if diff_out else []
        by_output = dict(zip(diff_out, columns, strict=True))  # out_shape + (total_in,)
        rows = []
        for i, oa in enumerate(out_avals):
            col = by_output.get(i)
            row = []
            for offset, shape, _, _ in in_layout:
                if col is None:  # integer output: zeros, as JAX
                    block = jnp.zeros(oa.shape + shape, oa.dtype)
                else:
                    block = col[..., offset : offset + _size(shape)].reshape(oa.shape + shape)
                row.append(_downcast(block, oa.dtype, oa.weak_type))
            rows.append(row)
        jac = _assemble(rows, in_tree, out_tree, argnums)
        return (jac, aux) if has_aux else jac

    return _wrap(jacfun, fun)


def chunked_jacrev(
    fun: Callable[..., Any],
    argnums: int | Sequence[int] = 0,
    has_aux: bool = False,
    holomorphic: bool = False,
    allow_int: bool = False,
    *,
    chunk_size: int,
) -> Callable[..., Any]:
    """Reverse-mode Jacobian computed ``chunk_size`` cotangent basis vectors at a time.

    A drop-in for ``jax.jacrev(fun, argnums, has_aux, holomorphic, allow_int)``:
    same result, layout and errors, with peak memory bounded by the chunk.
    Integer inputs (``allow_int=True``) are held constant and get zeros of
    their own dtype, exactly as ``jax.jacrev`` returns them.

    Args:
        fun: The function to differentiate.
        argnums: Positional argument(s) to differentiate (int or sequence).
        has_aux: ``fun`` returns ``(value, aux)``; returns ``(jac, aux)``.
        holomorphic: ``fun`` is holomorphic (complex inputs and outputs).
        allow_int: Allow integer and boolean inputs.
        chunk_size: Number of cotangent basis vectors pulled back per pass (>= 1).

    Returns:
        A function with ``fun``'s arguments returning the Jacobian.

    Example:
        >>> import jax.numpy as jnp
        >>> from statediff._src.chunked import chunked_jacrev
        >>> chunked_jacrev(lambda x: x[:2] * x[2], chunk_size=1)(jnp.array([1.0, 2.0, 3.0]))
        Array([[3., 0., 1.],
               [0., 3., 2.]], dtype=float32)
    """
    _check_chunk_size("chunked_jacrev", chunk_size)
    _check_callable("chunked_jacrev", fun)

    def jacfun(*args: Any, **kwargs: Any) -> Any:
        f_partial, dyn = _partial(fun, argnums, args, kwargs)
        in_leaves, in_tree = jax.tree.flatten(dyn)
        in_avals = [jax.typeof(x) for x in in_leaves]
        for aval in in_avals:
            _check_input_jacrev(holomorphic, allow_int, aval)
        diff_in = [j for j, a in enumerate(in_avals) if _inexact(a.dtype)]

        def diff_fun(*diff_leaves: Any) -> Any:
            leaves = list(in_leaves)
            for j, value in zip(diff_in, diff_leaves, strict=True):
                leaves[j] = value
            return f_partial(*jax.tree.unflatten(in_tree, leaves))

        primals = [in_leaves[j] for j in diff_in]
        if has_aux:
            y, vjp_fn, aux = jax.vjp(diff_fun, *primals, has_aux=True)
        else:
            (y, vjp_fn), aux = jax.vjp(diff_fun, *primals), None
        out_leaves, out_tree = jax.tree.flatten(y)
        out_avals = [jax.typeof(x) for x in out_leaves]
        for aval in out_avals:
            _check_output_jacrev(holomorphic, aval)
        out_layout, total_out = _layout(out_avals)

        def pull(start: Any, k: int) -> list[Any]:
            def one(*cts: Any) -> Any:
                return vjp_fn(jax.tree.unflatten(out_tree, cts))

            return list(jax.vmap(one)(*_basis(start, k, out_layout)))

        pulled = _loop_chunks(pull, total_out, chunk_size, axis=0) if diff_in else []
        by_input = dict(zip(diff_in, pulled, strict=True))  # (total_out,) + in_shape
        rows = []
        for offset, oshape, _, _ in out_layout:
            row = []
            for j, ia in enumerate(in_avals):
                full = by_input.get(j)
                if full is None:  # integer input: zeros of its dtype, as JAX
                    block = jnp.zeros(oshape + ia.shape, ia.dtype)
                else:
                    block = full[offset : offset + _size(oshape)].reshape(oshape + ia.shape)
                row.append(_downcast(block, ia.dtype, ia.weak_type))
            rows.append(row)
        jac = _assemble(rows, in_tree, out_tree, argnums)
        return (jac, aux) if has_aux else jac

    return _wrap(jacfun, fun)


# ----------------------------------------------------------------- the chunk loop
def _loop_chunks(
    body: Callable[[Any, int], list[Any]], total: int, chunk_size: int, axis: int
) -> list[Any]:
    """Stack ``body(start, k)`` over basis rows ``[0, total)``, ``k`` rows at a time.

    ``body`` returns arrays with a leading axis of ``k``; the result has that
    axis moved to ``axis`` and grown to ``total``. The chunks are written in
    place into the result buffers by a ``fori_loop`` (no stacked copy); the
    last chunk starts at ``total - k`` (it overlaps the one before and
    rewrites the same columns), so nothing needs padding or slicing.
    """
    k = max(1, min(chunk_size, total))
    n = -(-total // k)

    def place(results: list[Any]) -> list[Any]:
        return [jnp.moveaxis(r, 0, axis) for r in results]

    if n == 1:  # one chunk: no loop
        return place(body(0, k))
    shapes = jax.eval_shape(lambda: place(body(0, k)))
    init = []
    for s in shapes:
        shape = list(s.shape)
        shape[axis] = total
        init.append(jnp.zeros(shape, s.dtype))
    if n == 0:  # nothing to differentiate against (a size-0 side)
        return init

    def step(c: Any, bufs: list[Any]) -> list[Any]:
        start = jnp.minimum(c * k, total - k)
        chunk = place(body(start, k))
        return [
            jax.lax.dynamic_update_slice_in_dim(b, r, start, axis)
            for b, r in zip(bufs, chunk, strict=True)
        ]

    return jax.lax.fori_loop(0, n, step, init)


def _basis(start: Any, k: int, layout: _Layout) -> list[Any]:
    """Rows ``start .. start + k`` of the identity, split into leaves (``(k,) + shape``)."""
    rows = start + jnp.arange(k)
    out = []
    for offset, shape, dtype, weak in layout:
        cols = offset + jnp.arange(_size(shape))
        onehot = (rows[:, None] == cols[None, :]).reshape((k, *shape))
        out.append(_convert(onehot, dtype, weak))
    return out


def _layout(avals: list[Any]) -> tuple[_Layout, int]:
    layout, offset = [], 0
    for aval in avals:
        layout.append((offset, tuple(aval.shape), aval.dtype, bool(aval.weak_type)))
        offset += _size(aval.shape)
    return layout, offset


def _assemble(rows: list[list[Any]], in_tree: Any, out_tree: Any, argnums: Any) -> Any:
    """Output structure over input structure, as JAX lays out a Jacobian."""
    per_out = [jax.tree.unflatten(in_tree, row) for row in rows]
    if _is_int(argnums):
        per_out = [p[0] for p in per_out]
    return jax.tree.unflatten(out_tree, per_out)


# ----------------------------------------------------------------- dtypes
def _inexact(dtype: Any) -> bool:
    return bool(jnp.issubdtype(dtype, np.inexact))


def _size(shape: Sequence[int]) -> int:
    return int(np.prod(shape, dtype=np.int64))


def _convert(x: Any, dtype: Any, weak: bool) -> Any:
    return convert_keeping_weak_type(x, dtype, weak)


def _downcast(x: Any, dtype: Any, weak: bool) -> Any:
    """Cast a block to the dtype JAX gives it (real part for a real target)."""
    if jnp.iscomplexobj(x) and not jnp.issubdtype(dtype, np.complexfloating):
        x = jnp.real(x)
    return _convert(x, dtype, weak)


def _check_input_jacfwd(holomorphic: bool, aval: Any) -> None:
    if holomorphic:
        if not jnp.issubdtype(aval.dtype, np.complexfloating):
            raise TypeError(
                "jacfwd with holomorphic=True requires inputs with complex dtype, "
                f"but got {aval.dtype.name}."
            )
    elif not jnp.issubdtype(aval.dtype, np.floating):
        raise TypeError(
            "jacfwd requires real-valued inputs (input dtype that is a sub-dtype of "
            f"np.floating), but got {aval.dtype.name}. For holomorphic differentiation, "
            "pass holomorphic=True. For differentiation of non-holomorphic functions "
            "involving complex inputs or integer inputs, use jax.jvp directly."
        )


def _check_input_jacrev(holomorphic: bool, allow_int: bool, aval: Any) -> None:
    dtype = aval.dtype
    if holomorphic and not jnp.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            "jacrev with holomorphic=True requires inputs with complex dtype, "
            f"but got {dtype.name}."
        )
    if jnp.issubdtype(dtype, np.integer) or jnp.issubdtype(dtype, np.bool_):
        if not allow_int:
            raise TypeError(
                "jacrev requires real- or complex-valued inputs (input dtype that is a "
                f"sub-dtype of np.inexact), but got {dtype.name}. If you want to use "
                "Boolean- or integer-valued inputs, use vjp or set allow_int to True."
            )
    elif not jnp.issubdtype(dtype, np.inexact):
        raise TypeError(
            "jacrev requires numerical-valued inputs (input dtype that is a sub-dtype of "
            f"np.bool_ or np.number), but got {dtype.name}."
        )


def _check_output_jacrev(holomorphic: bool, aval: Any) -> None:
    dtype = aval.dtype
    if holomorphic:
        if not jnp.issubdtype(dtype, np.complexfloating):
            raise TypeError(
                "jacrev with holomorphic=True requires outputs with complex dtype, "
                f"but got {dtype.name}."
            )
    elif jnp.issubdtype(dtype, np.complexfloating):
        raise TypeError(
            "jacrev requires real-valued outputs (output dtype that is a sub-dtype of "
            f"np.floating), but got {dtype.name}. For holomorphic differentiation, pass "
            "holomorphic=True. For differentiation of non-holomorphic functions involving "
            "complex outputs, use jax.vjp directly."
        )
    elif not jnp.issubdtype(dtype, np.floating):
        raise TypeError(
            "jacrev requires real-valued outputs (output dtype that is a sub-dtype of "
            f"np.floating), but got {dtype.name}. For differentiation of functions with "
            "integer outputs, use jax.vjp directly."
        )


# ----------------------------------------------------------------- arguments
def _is_int(x: Any) -> bool:
    return isinstance(x, (int, np.integer)) and not isinstance(x, (bool, np.bool_))


def _check_chunk_size(api: str, chunk_size: Any) -> None:
    if not _is_int(chunk_size) or chunk_size < 1:
        raise ValueError(
            f"{api}: chunk_size must be a positive int, got {chunk_size!r}. "
            "Fix: e.g. chunk_size=64 (basis vectors per pass)."
        )


def _check_callable(api: str, fun: Any) -> None:
    if not callable(fun):
        raise TypeError(f"{api}: expected a callable, got {type(fun).__name__} {fun!r}.")


def _partial(
    fun: Callable[..., Any], argnums: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> tuple[Callable[..., Any], tuple[Any, ...]]:
    """``fun`` of the differentiated arguments only, and their values."""
    if _is_int(argnums):
        positions: tuple[int, ...] = (int(argnums),)
    elif isinstance(argnums, Sequence) and all(_is_int(a) for a in argnums):
        positions = tuple(int(a) for a in argnums)
    else:
        raise TypeError(f"argnums must be an int or a sequence of ints, got {argnums!r}.")
    n = len(args)
    for p in positions:
        if not -n <= p < n:
            raise TypeError(
                f"differentiating with respect to argnums={argnums!r} requires at least "
                f"{max(p + 1, -p)} positional arguments to be passed by the caller, but got "
                f"only {n} positional arguments."
            )
    positions = tuple(p % n for p in positions)

    def f_partial(*dyn: Any) -> Any:
        full = list(args)
        for p, value in zip(positions, dyn, strict=True):
            full[p] = value
        return fun(*full, **kwargs)

    return f_partial, tuple(args[p] for p in positions)


def _wrap(jacfun: Callable[..., Any], fun: Callable[..., Any]) -> Callable[..., Any]:
    for attr in ("__name__", "__qualname__", "__module__"):
        try:
            setattr(jacfun, attr, getattr(fun, attr))
        except (AttributeError, TypeError):
            pass
    jacfun.__doc__ = f"Jacobian of {getattr(fun, '__name__', fun)!r} (chunked)."
    return jacfun
