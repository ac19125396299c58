"""The units backend that ``statediff`` calls for ``unit_aware=True``.

Importing this module registers the backend with
:func:`statediff.register_units_backend`; ``statediff`` imports it through the
``statediff.units`` entry point the first time a function is called with
``unit_aware=True``, and ``import statediff_units`` imports it too.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import statediff

from .products import UnitJVP, UnitLinearize, UnitVJP
from .transform import UnitGradientTransform

__all__ = ["BACKEND", "KINDS", "PRODUCTS", "UnitsBackend", "register"]

# Derivative transforms (statediff.GradientTransform): kind -> how many input axes each
# derivative block has (2: second derivatives).
KINDS: dict[str, int] = {
    "jacfwd": 1,
    "jacrev": 1,
    "jacobian": 1,
    "grad": 1,
    "vector_grad": 1,
    "hessian": 2,
    "fwd_grad": 1,
}
# Product transforms: kind -> unit-aware class.
PRODUCTS: dict[str, Any] = {"jvp": UnitJVP, "vjp": UnitVJP, "linearize": UnitLinearize}
# The builder classes of statediff's run-now product transforms.
BUILDERS: dict[str, Any] = {
    "jvp": statediff.JVPTransform,
    "vjp": statediff.VJPTransform,
    "linearize": statediff.LinearizeTransform,
}


class UnitsBackend:
    """Builds the unit-aware callables of ``statediff`` (``unit_aware=True``).

    Example:
        >>> import brainunit as u, statediff as sd
        >>> from statediff_units._src.backend import BACKEND
        >>> sd.units_backend() is BACKEND
        True
        >>> BACKEND.make("grad", lambda x: x ** 2)(3.0 * u.mV)
        Quantity(6., "mV")
    """

    kinds = (*KINDS, *PRODUCTS)

    def make(self, kind: str, func: Callable[..., Any], **options: Any) -> Any:
        """Return the unit-aware version of ``statediff.<kind>(func, **options)``.

        Args:
            kind: The statediff function: ``jacfwd``, ``jacrev``, ``jacobian``,
                ``grad``, ``vector_grad``, ``hessian``, ``fwd_grad``, ``jvp``,
                ``vjp`` or ``linearize``.
            func: The stateful function.
            **options: The keyword arguments of that statediff function
                (``grad_states``, ``argnums``, ``has_aux``, ...), without
                ``unit_aware``.

        Returns:
            A callable with ``func``'s signature following the statediff
            return contract, with units on every derivative block.

        Raises:
            ValueError: ``kind`` is not a transform this backend knows.
        """
        api = getattr(statediff, kind, None)
        if kind not in self.kinds or api is None:
            known = ", ".join(k for k in self.kinds if hasattr(statediff, k))
            raise ValueError(
                f"statediff_units: no unit-aware version of statediff.{kind} (known: {known}). "
                "Fix: update statediff-units to the version of statediff you use, or call "
                f"statediff.{kind} with unit_aware=False and unit-free values."
            )
        options.pop("unit_aware", None)
        if kind in PRODUCTS:  # statediff's run-now products: build their builder classes
            builder = BUILDERS[kind]
            return PRODUCTS[kind](builder(func, name=f"statediff.{kind}", **options))
        plain = api(func, unit_aware=False, **options)
        made = UnitGradientTransform(
            plain,
            grad_states=options.get("grad_states"),
            argnums=options.get("argnums"),
            order=KINDS[kind],
        )
        if hasattr(plain, "key_state"):  # fwd_grad: the same PRNG key state
            made.key_state = plain.key_state  # type: ignore[attr-defined]
        return made

    def __repr__(self) -> str:
        return "statediff_units.UnitsBackend()"


#: The one backend instance (registered on import).
BACKEND = UnitsBackend()


def register() -> UnitsBackend:
    """Register the units backend with statediff (idempotent) and return it.

    Example:
        >>> import statediff as sd
        >>> from statediff_units._src.backend import register
        >>> register() is register() is sd.units_backend()
        True
    """
    statediff.register_units_backend(BACKEND)
    return BACKEND


register()
