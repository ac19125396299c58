"""``GradientTransform.sparsity(*args)``: the pattern and colouring of a call."""

from __future__ import annotations

from typing import Any

import jax

from statejax import StatefulFunction

from .plan import Plan, SparsityInfo, recording

__all__ = ["make_info", "sparsity_of"]


def make_info(plan: Plan, blocks: Any, y_tree: Any) -> SparsityInfo:
    """A :class:`SparsityInfo` with blocks still in JAX's layout."""
    info = SparsityInfo(plan, blocks)
    info._y_tree = y_tree  # type: ignore[attr-defined]
    return info


def sparsity_of(gt: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> SparsityInfo:
    """Trace ``gt`` for these arguments (no state changes) and report its sparsity."""
    with recording() as box:
        StatefulFunction(gt._drive, api=gt.name).trace(*args, **kwargs)
    if not box:
        raise TypeError(
            f"{gt.name}: .sparsity() reports the pattern and colouring of a sparse Jacobian "
            "or Hessian, but this call computes none (only jacfwd, jacrev, jacobian and "
            "hessian have one, for floating-point inputs and outputs; a Hessian needs a scalar "
            "function). Fix: call it on sd.jacfwd/jacrev/hessian(..., sparsity='auto')."
        )
    info = box[-1]
    y = jax.tree.unflatten(info._y_tree, [0] * info._y_tree.num_leaves)
    res = gt._assemble(info.blocks, y, None)
    info.blocks = res[0] if (gt.has_aux or gt.return_value) else res
    return info
