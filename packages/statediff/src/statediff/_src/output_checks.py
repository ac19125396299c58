"""Checks of statediff inputs and outputs whose JAX errors would not name statediff.

They run at trace time (once per signature), never on the compiled call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from stategraph.extend import describe

__all__ = ["check_holomorphic_input", "check_scalar_output", "check_transform", "shown_tree"]


def shown_tree(shapes: Any) -> str:
    """Describe an output (a pytree of ``ShapeDtypeStruct``) in plain words."""
    return describe(shapes)


def check_scalar_output(api: str, out: Any, has_aux: bool) -> None:
    """Raise ``TypeError`` unless ``out`` (the function's value) is one scalar array."""
    leaves = jax.tree.leaves(out)
    # One array, possibly inside a custom node of one leaf (a brainunit Quantity).
    single = len(leaves) == 1 and not isinstance(out, (tuple, list, dict))
    if single and tuple(leaves[0].shape) == ():
        return
    if single:
        kind = f"an array of shape {tuple(leaves[0].shape)}"
        fix = (
            "reduce it to a scalar (`.sum()`, `.mean()`), or use statediff.vector_grad for "
            "the gradient of its sum, or statediff.jacrev for the full Jacobian"
        )
    else:
        kind = f"{shown_tree(out)} ({len(leaves)} arrays)"
        fix = (
            "return `(loss, aux)` and pass has_aux=True if the extra outputs are auxiliary "
            "data, or use statediff.jacrev for the derivative of every output"
        )
    what = "the first element of the function's (value, aux) output" if has_aux else (
        "the function's output"
    )
    raise TypeError(
        f"{api}: the gradient is only defined for a function with one scalar output, but "
        f"{what} is {kind}. Fix: {fix}."
    )


def check_holomorphic_input(api: str, what: str, value: Any) -> None:
    """Raise ``TypeError`` if an input of a ``holomorphic=True`` derivative is not complex."""
    for leaf in jax.tree.leaves(value):
        dtype = jax.typeof(leaf).dtype
        if not jax.dtypes.issubdtype(dtype, np.complexfloating):
            raise TypeError(
                f"{api}: holomorphic=True requires complex inputs, but {what} has dtype "
                f"{dtype}. Fix: pass complex values (for example `x.astype(jnp.complex64)`), "
                "or drop holomorphic=True for a function of real inputs."
            )


def check_transform(api: str, transform: Callable[..., Any]) -> None:
    """Raise ``TypeError`` if ``transform`` is not a callable like ``jax.jacfwd``."""
    if not callable(transform):
        raise TypeError(
            f"{api}: transform must be a callable like jax.jacfwd or jax.grad "
            "(`transform(fun, argnums, has_aux=True, **params)`), but got "
            f"{type(transform).__name__} {transform!r}. Fix: pass the JAX transform itself."
        )
