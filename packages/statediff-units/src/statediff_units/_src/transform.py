"""``UnitGradientTransform``: a statediff transform over brainunit Quantities.

How it works, in one pass of the statediff machinery (no state is swapped or
touched outside the normal flow):

- Quantity-valued states and arguments are pytrees (mantissa as the leaf, unit
  as static data), so statejax carries them through its pure function as is.
- The user's function is wrapped so that its Quantity outputs leave as
  :class:`~statediff_units._src.units.UnitTag` nodes: the units become part of
  the traced output structure, cached per signature, and statediff's guard
  against Quantity outputs does not fire.
- The JAX derivative transform is applied to a mantissa-only version of the
  pure function: the differentiated inputs are split into mantissas and units,
  units are re-attached inside (so the user's code sees Quantities), and the
  output is stripped to mantissas. The derivative blocks then get the unit
  ``unit(output leaf) / unit(input leaf)`` (``/ unit(x_i) / unit(x_j)`` for a
  Hessian); dimensionless blocks stay plain arrays.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any

import brainunit as u
import jax

import statediff
from stategraph import State

from .units import (
    attach_units,
    block_unit,
    retag_quantities,
    split_units,
    tag_units,
    unit_block,
    unit_text,
    untag_units,
)

__all__ = ["UNIT_ERRORS", "UnitGradientTransform", "attach_derivative_units"]

#: The unit errors of brainunit; they propagate with a note naming what was differentiated.
UNIT_ERRORS = (u.DimensionMismatchError, u.UnitMismatchError)


def _tagging(func: Callable[..., Any], has_aux: bool) -> Callable[..., Any]:
    """Wrap ``func`` so that its differentiated output leaves as :class:`UnitTag` nodes."""

    @functools.wraps(func)
    def tagged(*args: Any, **kwargs: Any) -> Any:
        out = func(*args, **kwargs)
        if not has_aux:
            return tag_units(out)
        if isinstance(out, (tuple, list)) and len(out) == 2:
            return type(out)((tag_units(out[0]), out[1]))
        return out  # not a pair: statediff raises its has_aux error

    return tagged


def _nest(
    sub: Any,
    in_tree: Any,
    in_units: Sequence[Any],
    order: int,
    out_unit: Any,
    dens: tuple[Any, ...],
) -> Any:
    parts = in_tree.flatten_up_to(sub)
    if order == 1:
        new = [
            unit_block(p, block_unit(out_unit, (*dens, iu)))
            for p, iu in zip(parts, in_units, strict=True)
        ]
    else:
        new = [
            _nest(p, in_tree, in_units, order - 1, out_unit, (*dens, iu))
            for p, iu in zip(parts, in_units, strict=True)
        ]
    return in_tree.unflatten(new)


def attach_derivative_units(
    d: Any,
    *,
    structured: bool,
    order: int,
    out_tree: Any,
    out_units: Sequence[Any],
    in_tree: Any,
    in_units: Sequence[Any],
    api: str,
) -> Any:
    """Give each block of a plain derivative its unit.

    Args:
        d: The derivative of the mantissas, laid out as JAX lays it out.
        structured: ``d`` is output structure over input structure (Jacobians,
            Hessians); otherwise it has the input structure only (gradients of
            a scalar or of a sum).
        order: How many times the input structure is nested (2 for Hessians).
        out_tree: Tree structure of the output mantissas.
        out_units: Unit of each output leaf (``None``: unitless).
        in_tree: Tree structure of the differentiated input mantissas.
        in_units: Unit of each input leaf (``None``: unitless).
        api: Name used in error messages.

    Raises:
        brainunit.UnitMismatchError: an unstructured derivative of an output
            whose leaves do not all have one unit (``vector_grad`` sums them).
    """
    if structured:
        per_out = out_tree.flatten_up_to(d)
        return out_tree.unflatten(
            [
                _nest(sub, in_tree, in_units, order, ou, ())
                for sub, ou in zip(per_out, out_units, strict=True)
            ]
        )
    distinct = {unit_text(x): x for x in out_units}
    if len(distinct) > 1:
        raise u.UnitMismatchError(
            f"{api}(..., unit_aware=True): the gradient of a sum needs every output leaf to "
            f"have one unit, but the function's output leaves have units "
            f"{', '.join(distinct)}. Fix: return values of one unit (convert with "
            "`.to(unit)`), or use jacrev/jacfwd for a per-output derivative",
            *[x for x in distinct.values() if x is not None],
        )
    out_unit = next(iter(distinct.values()), None)
    return _nest(d, in_tree, in_units, order, out_unit, ())


def _unit_transform(base: Callable[..., Any], structured: bool, order: int, api: str) -> Any:
    """Turn a statediff transform into one over Quantities (see the module docstring)."""

    def transform(pure: Callable[..., Any], argnums: Any, has_aux: bool, **params: Any) -> Any:
        nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)

        def run(*inputs: Any) -> tuple[Any, Any]:
            m_inputs = list(inputs)
            units: dict[int, list[Any]] = {}
            for i in nums:
                m_inputs[i], units[i] = split_units(inputs[i])
            box: dict[str, Any] = {}

            def pure_m(*xs: Any) -> tuple[Any, Any]:
                q = list(xs)
                for i in nums:
                    q[i] = attach_units(xs[i], units[i])
                y, (_, aux, new) = pure(*q)
                y_m, y_units = untag_units(y)
                box["out"] = (jax.tree.structure(y_m), y_units)
                return y_m, (y, aux, new)

            d, (y, aux, new) = base(pure_m, argnums=argnums, has_aux=True, **params)(*m_inputs)
            if isinstance(argnums, int):
                in_tree = jax.tree.structure(m_inputs[argnums])
                in_units = units[argnums]
            else:
                in_tree = jax.tree.structure(tuple(m_inputs[i] for i in nums))
                in_units = [x for i in nums for x in units[i]]
            out_tree, out_units = box["out"]
            d = attach_derivative_units(
                d,
                structured=structured,
                order=order,
                out_tree=out_tree,
                out_units=out_units,
                in_tree=in_tree,
                in_units=in_units,
                api=api,
            )
            return d, (y, aux, new)

        return run

    return transform


class UnitGradientTransform(statediff.GradientTransform):
    """A :class:`statediff.GradientTransform` whose inputs and outputs may be Quantities.

    Built from the plain transform that ``statediff`` makes for the same
    call, so every option (``chunk_size``, ``holomorphic``, ``allow_int``,
    ...) is validated and applied by ``statediff`` itself. States and
    arguments may hold ``brainunit`` Quantities; each derivative block carries
    ``unit(output leaf) / unit(input leaf)``.

    Args:
        plain: The transform ``statediff`` built with ``unit_aware=False``.
        grad_states: The ``grad_states`` the user gave.
        argnums: The ``argnums`` the user gave.
        order: How many input axes a block has: 1 for Jacobians and
            gradients, 2 for Hessians.

    Example:
        >>> import brainunit as u, jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> from statediff_units import UnitGradientTransform
        >>> r = sg.ParamState(jnp.array(2.0) * u.ohm, name="r")
        >>> plain = sd.grad(lambda i: r.value * i, grad_states=r)
        >>> UnitGradientTransform(plain, grad_states=r, argnums=None)(3.0 * u.amp)
        Quantity(3., "A")
    """

    def __init__(
        self,
        plain: statediff.GradientTransform,
        grad_states: Any,
        argnums: Any,
        order: int = 1,
    ) -> None:
        if not isinstance(plain, statediff.GradientTransform):
            raise TypeError(
                "statediff_units.UnitGradientTransform: expected the statediff.GradientTransform "
                f"of the plain call, got {type(plain).__name__} {plain!r}."
            )
        super().__init__(
            _tagging(plain.target, plain.has_aux),
            _unit_transform(plain.transform, plain.output_structured, order, plain.name),
            grad_states=grad_states,
            argnums=argnums,
            return_value=plain.return_value,
            has_aux=plain.has_aux,
            transform_params=plain.transform_params,
            check_states=plain.check_states,
            output_structured=plain.output_structured,
            name=plain.name,
            integer_inputs=plain.integer_inputs,
            holomorphic=plain.holomorphic,
            complex_inputs=plain.complex_inputs,
            debug_nan=plain.debug_nan,
        )
        self.target = plain.target
        self.order = order
        self._raw_grad_states = grad_states
        self._raw_argnums = argnums

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)
        except UNIT_ERRORS as err:
            err.add_note(self._unit_note())
            raise

    def __repr__(self) -> str:
        target = getattr(self.target, "__qualname__", self.target)
        return f"{self.name}({target!r}, unit_aware=True)"

    def differentiated(self) -> list[str]:
        """Describe each state and argument this transform differentiates."""
        parts = []
        if self.grad_states.given:
            for path, state in jax.tree_util.tree_leaves_with_path(
                self._raw_grad_states, is_leaf=lambda x: isinstance(x, State)
            ):
                parts.append(f"state {state!r} at grad_states{jax.tree_util.keystr(path)}")
        text = self.argnums.text if self._raw_argnums is not None else "0, the default"
        for i in self.argnums.positions:
            parts.append(f"positional argument {i} (argnums={text})")
        return parts

    def _unit_note(self) -> str:
        target = getattr(self.target, "__qualname__", repr(self.target))
        return (
            f"{self.name}(..., unit_aware=True) of {target} was differentiating with respect "
            f"to {'; '.join(self.differentiated())} when this unit error was raised."
        )

    # ---------------------------------------------- hooks of GradientTransform
    def _check_inputs(self, grad_values: list[Any], args: tuple[Any, ...]) -> None:
        # statediff's dtype checks, on the mantissas (Quantities are allowed here).
        super()._check_inputs(
            [split_units(v)[0] for v in grad_values], tuple(split_units(a)[0] for a in args)
        )

    def _assemble(self, d: Any, y: Any, aux: Any) -> Any:
        # y arrives with UnitTag nodes; the layout of d follows its mantissas.
        y_m, _ = untag_units(y)
        out = super()._assemble(d, y_m, aux)
        if not self.return_value:
            return out
        return (out[0], retag_quantities(y), *out[2:])
