"""``vjp``: reverse-mode vector-Jacobian products over states and arguments.

``vjp(fun, *primals, ...)`` runs now (as ``jax.vjp`` and brainstate);
:class:`VJPTransform` is the reusable builder form.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .options import Argnums
from .pure_call import DiffTransform, make_call
from .residual_fn import residual_function, residual_of
from .tangents import tangent_dtype
from .units_hook import units_backend
from .weak_cache import cached, quick_table

__all__ = ["VJPTransform", "vjp"]


class _PullbackSpec:
    """What a ``vjp_fn`` needs besides its residuals (static, hashed by identity)."""

    def __init__(self, owner: DiffTransform, y: Any) -> None:
        self.owner = owner
        self.out_tree = jax.tree.structure(y)
        self.out_avals = [jax.typeof(leaf) for leaf in jax.tree.leaves(y)]
        paths = jax.tree_util.tree_leaves_with_path(y)
        self.out_paths = [jax.tree_util.keystr(p) for p, _ in paths]

    def check(self, ct: Any) -> None:
        api = self.owner.name
        leaves, tree = jax.tree.flatten(ct)
        if tree != self.out_tree:
            raise TypeError(
                f"{api}: the cotangent passed to vjp_fn has tree structure {tree}, but the "
                f"function's output has {self.out_tree}; they must match. Fix: pass one "
                "cotangent with the output's structure (a tuple output takes a tuple)."
            )
        for path, aval, leaf in zip(self.out_paths, self.out_avals, leaves, strict=True):
            ca = jax.typeof(leaf)
            expected = tangent_dtype(aval.dtype)
            if tuple(ca.shape) != tuple(aval.shape) or (
                expected != jax.dtypes.float0 and np.dtype(ca.dtype) != expected
            ):
                raise ValueError(
                    f"{api}: the cotangent for the output{path} has shape {tuple(ca.shape)} "
                    f"and dtype {ca.dtype}, but that output has shape {tuple(aval.shape)} and "
                    f"dtype {aval.dtype}; they must match. Fix: e.g. `jnp.ones_like(y)`."
                )


def _pull(spec: _PullbackSpec, residual: tuple[list[Any]], ct: Any) -> Any:
    spec.check(ct)
    return spec.owner.assemble(residual_of(spec, residual)(ct))


class VJPTransform(DiffTransform):
    """The builder form of :func:`vjp`: ``VJPTransform(fun, ...)(*args) -> (value, vjp_fn[, aux])``.

    Build once, call many times: each call runs ``fun`` on its arguments
    (one cached compiled function per signature) and returns
    ``(primal_out, vjp_fn)``, or ``(primal_out, vjp_fn, aux)`` with
    ``has_aux=True``. States read but not in ``grad_states`` are constants;
    states written inside ``fun`` are written back once per call with their
    primal values. Keyword arguments of the call are constants.

    ``vjp_fn(cotangent)`` takes one cotangent with the structure, shapes and
    dtypes of ``primal_out`` and returns the cotangents of the inputs:

    ===========  ========  ===========================================
    grad_states  argnums   ``vjp_fn`` returns
    ===========  ========  ===========================================
    None         None      a tuple over all positional arguments (``jax.vjp``)
    None         given     ``arg_grads``
    given        None      ``var_grads``
    given        given     ``(var_grads, arg_grads)``
    ===========  ========  ===========================================

    ``var_grads`` has the container shape of ``grad_states``; ``arg_grads`` is
    bare for an int ``argnums`` and a tuple for a sequence. (The run-now
    :func:`vjp` defaults to ``argnums=0``, as brainstate does.) ``vjp_fn`` is a
    ``jax.tree_util.Partial`` holding the residuals of the forward pass: it
    may be called many times, passed through ``jax.jit`` or returned from
    ``statejax.jit``; each call runs one compiled backward pass.

    Args:
        fun: The stateful function.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (see the table).
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its cotangent is zeros.
        name: API name used in error messages.
        weak_states: Hold ``grad_states`` by weak reference (used by caches).
        positional_calls: Every call passes its arguments by position (used
            by the run-now function): the compiled call may then take
            ``fun``'s own signature.

    Raises:
        TypeError: a non-callable ``fun`` or a non-State in ``grad_states``
            (at construction); ``has_aux=True`` and ``fun`` does not return a
            pair; a cotangent with the wrong structure (from ``vjp_fn``).
        ValueError: invalid ``argnums`` (at construction) or one out of range;
            a cotangent with the wrong shape or dtype (from ``vjp_fn``).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> f_vjp = sd.VJPTransform(lambda x: w.value * x, grad_states=w)
        >>> y, vjp_fn = f_vjp(3.0)
        >>> vjp_fn(1.0)
        Array(3., dtype=float32, weak_type=True)
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        grad_states: Any = None,
        argnums: int | tuple[int, ...] | None = None,
        has_aux: bool = False,
        check_states: bool = True,
        *,
        name: str = "statediff.VJPTransform",
        weak_states: bool = False,
        positional_calls: bool = False,
    ) -> None:
        super().__init__(
            fun,
            grad_states,
            argnums,
            has_aux,
            check_states,
            name,
            weak_states=weak_states,
            positional_calls=positional_calls,
        )
        # One compiled backward pass per signature, cached with this transform.
        self._pull = jax.jit(_pull, static_argnums=0)

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        call = make_call(self, args, kwargs)
        y, pullback, (aux, new) = jax.vjp(call, *call.primals, has_aux=True)
        call.write(new)
        spec = _PullbackSpec(self, y)
        vjp_fn = residual_function(self._pull, spec, pullback)
        return (y, vjp_fn, aux) if self.has_aux else (y, vjp_fn)


_API = "statediff.vjp"
_ARGNUMS = 0  # the default argnums
#: The cached compiled calls of plain functions under the default settings (see ``jvp``).
_DEFAULTS = quick_table("vjp", (_ARGNUMS, False, True))


def _build(target: Any, gs: Any, weak: bool, settings: tuple[Any, bool, bool]) -> VJPTransform:
    """Build the cached transform of the run-now :func:`vjp`."""
    return VJPTransform(target, gs, *settings, name=_API, weak_states=weak, positional_calls=True)


def _vjp_argnums(argnums: Any, n: int) -> Any:
    """Brainstate's rule: ``None`` or no primals -> states only; negatives count from the end."""
    if argnums is None or n == 0:
        return None
    if type(argnums) is int and 0 <= argnums < n:
        return argnums
    if isinstance(argnums, (bool, np.bool_)) or (
        isinstance(argnums, (tuple, list)) and any(isinstance(i, (bool, np.bool_)) for i in argnums)
    ):
        # Raise here: as cache keys, False and 0 (or True and 1) are the same.
        Argnums(_API, argnums, default_zero=False)
    if not isinstance(argnums, (int, np.integer, tuple, list)):
        return argnums  # Argnums judges
    items = (argnums,) if isinstance(argnums, (int, np.integer)) else tuple(argnums)
    out = []
    for i in items:
        if isinstance(i, (int, np.integer)) and not isinstance(i, bool):
            if not -n <= i < n:
                raise ValueError(
                    f"{_API}: argnums={argnums!r} refers to positional argument {int(i)}, but "
                    f"the function was called with {n} positional argument(s) (negative "
                    "argnums count from the end). Fix: pass the argument or change argnums."
                )
            i = int(i) % n
        out.append(i)
    return out[0] if isinstance(argnums, (int, np.integer)) else tuple(out)


def vjp(
    fun: Callable[..., Any],
    *primals: Any,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = _ARGNUMS,
    has_aux: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
) -> tuple[Any, ...]:
    """Stateful counterpart of ``jax.vjp``: run ``fun`` now and return its pullback.

    Evaluates ``fun(*primals)`` (which may read and write States) and returns
    ``(primal_out, vjp_fn)``, or ``(primal_out, vjp_fn, aux)`` with
    ``has_aux=True``, as ``jax.vjp`` and ``brainstate.transform.vjp`` do.
    States read but not in ``grad_states`` are constants; states written
    inside ``fun`` are written back with their primal values.

    ``vjp_fn(cotangent)`` takes one cotangent with the structure, shapes and
    dtypes of ``primal_out`` and returns, as brainstate does:

    ===========  ===============================  ============================
    grad_states  argnums                          ``vjp_fn`` returns
    ===========  ===============================  ============================
    None         int (default 0) or sequence      ``arg_cts``
    given        int or sequence, with primals    ``(state_cts, arg_cts)``
    given        None, or no primals              ``state_cts``
    ===========  ===============================  ============================

    ``state_cts`` has the container shape of ``grad_states`` (bare for one
    State); ``arg_cts`` is bare for an int ``argnums`` (so the default gives
    the cotangent of the first primal itself, not ``jax.vjp``'s 1-tuple) and
    a tuple for a sequence. Negative ``argnums`` count from the end.

    Repeated calls with the same function, ``grad_states`` and options reuse
    one compiled forward pass per argument signature, and ``vjp_fn`` (a
    ``jax.tree_util.Partial`` holding the residuals) runs one compiled
    backward pass; it may be called many times and passed through
    ``jax.jit``. The function and states are held weakly by that cache. For a
    transform built once and called many times, use :class:`VJPTransform`.

    Args:
        fun: The stateful function.
        *primals: Its positional arguments (may be empty when only
            ``grad_states`` are differentiated).
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (see the table).
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        unit_aware: Units-aware products (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its cotangent is zeros.

    Returns:
        ``(primal_out, vjp_fn)`` or ``(primal_out, vjp_fn, aux)``.

    Raises:
        TypeError: a non-State in ``grad_states``; ``has_aux=True`` and
            ``fun`` does not return a pair; a cotangent with the wrong
            structure (from ``vjp_fn``).
        ValueError: nothing to differentiate (no primals or ``argnums=None``,
            and no ``grad_states``); invalid or out-of-range ``argnums``; a
            cotangent with the wrong shape or dtype (from ``vjp_fn``).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> y, vjp_fn = sd.vjp(lambda x: jnp.sum(x ** 2), jnp.array([1.0, 2.0]))
        >>> vjp_fn(1.0)
        Array([2., 4.], dtype=float32)
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def f(x):
        ...     return w.value * x
        >>> y, vjp_fn = sd.vjp(f, 3.0, grad_states={"w": w})
        >>> state_cts, arg_ct = vjp_fn(jnp.ones(2))
        >>> state_cts, arg_ct
        ({'w': Array([3., 3.], dtype=float32)}, Array(3., dtype=float32, weak_type=True))
    """
    if (
        grad_states is None
        and argnums is _ARGNUMS  # the default (an int 0 that is not this object takes the long way)
        and has_aux is False
        and check_states is True
        and unit_aware is False
        and primals
    ):
        hit = _DEFAULTS.get(id(fun))  # as in jvp: a cached function, the default settings
        if hit is not None:
            hit[1] = True  # used (see weak_cache)
            return hit[4](*primals)
    if argnums is None or (type(argnums) is int and 0 <= argnums < len(primals)):
        eff = argnums  # the common cases, without a call
    else:
        eff = _vjp_argnums(argnums, len(primals))
    if eff is None and grad_states is None:
        raise ValueError(
            f"{_API}: nothing to differentiate: "
            + ("no positional primals were given" if not primals else "argnums=None")
            + " and grad_states is None. Fix: pass the primals to differentiate (selected by "
            "argnums, default 0) and/or grad_states=..."
        )
    if unit_aware:
        options = dict(grad_states=grad_states, argnums=eff, has_aux=has_aux)
        made = units_backend(_API).make("vjp", fun, check_states=check_states, **options)
        return made(*primals)
    # The transform normalises the flags; as keys, 1 and True (or np.True_) are the same.
    options = (eff, has_aux, check_states)
    transform = cached(_build, "vjp", fun, grad_states, options)
    # (Under jax.disable_jit() the compiled call's slow path runs _drive, the Python body.)
    return transform._driver._call(*primals)
