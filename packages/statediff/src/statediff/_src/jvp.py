"""``jvp``: forward-mode Jacobian-vector products with state tangents."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax

from .pure_call import DiffTransform, PureCall
from .tangents import arg_tangents, state_tangents
from .units_hook import route

__all__ = ["JVPTransform", "jvp"]


class JVPTransform(DiffTransform):
    """The callable :func:`jvp` returns: ``(primals, tangents=(), state_tangents=None)``.

    Used as a method decorator, the bound callable takes the primals after
    ``self``; ``self`` is positional argument 0 for ``argnums`` (as for the
    other statediff transforms), so give ``argnums`` explicitly.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> f_jvp = sd.jvp(lambda x: w.value * x, grad_states=w, argnums=0)
        >>> f_jvp((3.0,), (1.0,), state_tangents=1.0)
        (Array(6., dtype=float32, weak_type=True), Array(5., dtype=float32, weak_type=True))
    """

    def __call__(  # type: ignore[override]
        self,
        primals: Sequence[Any],
        tangents: Sequence[Any] = (),
        state_tangents: Any = None,
    ) -> Any:
        if not isinstance(primals, (tuple, list)):
            raise TypeError(
                f"{self.name}: primals must be a tuple (or list) of all positional arguments "
                f"of the function, got {type(primals).__name__} {primals!r}. Fix: e.g. "
                "primals=(x,) for a function of one argument."
            )
        return self._driver._call(tuple(primals), tangents, state_tangents)

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self

        def bound(
            primals: Sequence[Any], tangents: Sequence[Any] = (), state_tangents: Any = None
        ) -> Any:
            return self((obj, *primals), tangents, state_tangents)

        return bound

    def _drive(self, primals: tuple[Any, ...], tangents: Any, given_states: Any) -> Any:
        call = PureCall(self, primals, {})
        t_states = state_tangents(self, call.grad_values, given_states)
        t_args = arg_tangents(self, call.positions, call.primals[1:], tangents)
        y, ty, (aux, new) = jax.jvp(call, call.primals, (t_states, *t_args), has_aux=True)
        call.write(new)
        return (y, ty, aux) if self.has_aux else (y, ty)


def jvp(
    func: Callable[..., Any] | None = None,
    grad_states: Any = None,
    argnums: int | tuple[int, ...] | None = None,
    has_aux: bool = False,
    unit_aware: bool = False,
    check_states: bool = True,
) -> Any:
    """Stateful counterpart of ``jax.jvp``: forward-mode Jacobian-vector product.

    Pushes tangents of the states in ``grad_states`` (their values at entry)
    and of the positional arguments in ``argnums`` forward through ``func``.
    States read but not in ``grad_states`` are constants; states written
    inside ``func`` are written back once per call with their primal values.

    The returned callable is ``f_jvp(primals, tangents=(), state_tangents=None)``:

    - ``primals``: a tuple (or list) of *all* positional arguments of
      ``func``, as in ``jax.jvp``; arguments not in ``argnums`` are constants.
    - ``tangents``: a tuple (or list) with one tangent per differentiated
      argument, in ``argnums`` order (a one-tuple for an int ``argnums``).
      Which arguments are differentiated:

      ========================  ========  =====================================
      grad_states               argnums   differentiated arguments
      ========================  ========  =====================================
      None                      None      all positional arguments (``jax.jvp``)
      None or given             given     those in ``argnums``
      given                     None      none: ``tangents`` is ``()``
      ========================  ========  =====================================

    - ``state_tangents``: tangents of the states, in the container shape of
      ``grad_states`` (a bare tangent for a single State). ``None`` (the
      default), a ``None`` entry or a missing dict key means a zero tangent.

    Each tangent has its primal's structure, shape and dtype (``float0`` for
    integer primals, as in JAX). It returns ``(primal_out, tangent_out)``, or
    ``(primal_out, tangent_out, aux)`` with ``has_aux=True``.

    Args:
        func: The stateful function. Omit it to use ``jvp`` as a decorator
            factory: ``@sd.jvp(grad_states=w)``.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments that get tangents (see the table).
        has_aux: ``func`` returns ``(value, aux)``; aux is returned as is.
        unit_aware: Units-aware products (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``func``; with False its tangent is ignored.

    Returns:
        The callable ``f_jvp`` described above (a :class:`JVPTransform`).

    Raises:
        TypeError: a non-State in ``grad_states`` (at construction);
            ``primals`` or ``tangents`` not a tuple; ``state_tangents`` not in
            the container shape of ``grad_states``; a tangent of the wrong
            structure; ``has_aux=True`` and ``func`` does not return a pair.
        ValueError: invalid ``argnums`` (at construction) or one out of range;
            the wrong number of tangents; a tangent whose shape or dtype does
            not match its primal (the message names the state or argument).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def f(x):
        ...     return w.value * x
        >>> y, ty = sd.jvp(f, grad_states=w)((3.0,), (), state_tangents=jnp.ones(2))
        >>> ty
        Array([3., 3.], dtype=float32)
        >>> y, ty = sd.jvp(f)((3.0,), (1.0,))   # like jax.jvp: w is a constant
        >>> ty
        Array([1., 2.], dtype=float32)
    """
    options = dict(
        grad_states=grad_states, argnums=argnums, has_aux=has_aux, check_states=check_states
    )
    routed = route(jvp, func, unit_aware, options)
    if routed is not None:
        return routed
    return JVPTransform(func, name="statediff.jvp", **options)
