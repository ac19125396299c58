"""``vjp``: reverse-mode vector-Jacobian products over states and arguments."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from .pure_call import DiffTransform, PureCall
from .tangents import tangent_dtype
from .units_hook import route

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


def _pull(spec: _PullbackSpec, pullback: Any, ct: Any) -> Any:
    spec.check(ct)
    return spec.owner.assemble(pullback(ct))


class VJPTransform(DiffTransform):
    """The callable :func:`vjp` returns: ``(*args, **kwargs) -> (value, vjp_fn[, aux])``.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> y, vjp_fn = sd.vjp(lambda x: w.value * x, grad_states=w)(3.0)
        >>> vjp_fn(1.0)
        Array(3., dtype=float32, weak_type=True)
    """

    def __init__(self, target: Callable[..., Any], **options: Any) -> None:
        super().__init__(target, **options)
        # One compiled backward pass per signature, cached with this transform.
        self._pull = jax.jit(_pull, static_argnums=0)

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        call = PureCall(self, args, kwargs)
        y, pullback, (aux, new) = jax.vjp(call, *call.primals, has_aux=True)
        call.write(new)
        spec = _PullbackSpec(self, y)
        vjp_fn = jax.tree_util.Partial(functools.partial(self._pull, spec), pullback)
        return (y, vjp_fn, aux) if self.has_aux else (y, vjp_fn)


def vjp(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
) -> Any:
    """Stateful counterpart of ``jax.vjp``: reverse-mode vector-Jacobian product.

    The returned callable takes ``func``'s arguments and returns
    ``(primal_out, vjp_fn)``, or ``(primal_out, vjp_fn, aux)`` with
    ``has_aux=True``. States read but not in ``grad_states`` are constants;
    states written inside ``func`` are written back once per call with their
    primal values (the call is one cached compiled function).

    ``vjp_fn(cotangent)`` takes one cotangent with the structure, shapes and
    dtypes of ``primal_out`` and returns the cotangents of the inputs, laid
    out as :func:`~statediff.jacfwd` lays out its results:

    ===========  ========  ===========================================
    grad_states  argnums   ``vjp_fn`` returns
    ===========  ========  ===========================================
    None         None      a tuple over all positional arguments (``jax.vjp``)
    None         given     ``arg_grads``
    given        None      ``var_grads``
    given        given     ``(var_grads, arg_grads)``
    ===========  ========  ===========================================

    ``var_grads`` has the container shape of ``grad_states``; ``arg_grads`` is
    bare for an int ``argnums`` and a tuple for a sequence. ``vjp_fn`` is a
    ``jax.tree_util.Partial`` holding the residuals of the forward pass: it
    may be called many times, passed through ``jax.jit`` or returned from
    ``statejax.jit``; each call runs one compiled backward pass.

    Args:
        func: The stateful function. Omit it to use ``vjp`` as a decorator
            factory: ``@sd.vjp(grad_states=w)``.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments to differentiate (see the table).
        has_aux: ``func`` returns ``(value, aux)``; aux is returned as is.
        unit_aware: Units-aware products (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``func``; with False its cotangent is zeros.

    Returns:
        A function with ``func``'s signature (a :class:`VJPTransform`).

    Raises:
        TypeError: a non-State in ``grad_states`` (at construction);
            ``has_aux=True`` and ``func`` does not return a pair; a cotangent
            with the wrong structure (from ``vjp_fn``).
        ValueError: invalid ``argnums`` (at construction) or one out of range;
            a cotangent with the wrong shape or dtype (from ``vjp_fn``).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def f(x):
        ...     return w.value * x
        >>> y, vjp_fn = sd.vjp(f, grad_states={"w": w}, argnums=0)(3.0)
        >>> var_grads, arg_grads = vjp_fn(jnp.ones(2))
        >>> var_grads, arg_grads
        ({'w': Array([3., 3.], dtype=float32)}, Array(3., dtype=float32, weak_type=True))
    """
    options = dict(
        grad_states=grad_states, argnums=argnums, has_aux=has_aux, check_states=check_states
    )
    routed = route(vjp, func, unit_aware, options)
    if routed is not None:
        return routed
    return VJPTransform(func, name="statediff.vjp", **options)
