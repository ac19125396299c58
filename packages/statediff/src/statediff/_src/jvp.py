"""``jvp``: forward-mode Jacobian-vector products with state tangents.

``jvp(fun, primals, tangents, ...)`` runs now (as ``jax.jvp`` and brainstate);
:class:`JVPTransform` is the reusable builder form.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any

import jax

from statejax import StatefulFunction

from .pure_call import DiffTransform, make_call
from .tangents import arg_tangents, state_tangents
from .units_hook import units_backend
from .weak_cache import cached, quick_table

__all__ = ["JVPTransform", "jvp"]


class JVPTransform(DiffTransform):
    """The builder form of :func:`jvp`: ``JVPTransform(fun, ...)(primals, tangents)``.

    Pushes tangents of the states in ``grad_states`` (their values at entry)
    and of the positional arguments in ``argnums`` forward through ``fun``.
    States read but not in ``grad_states`` are constants; states written
    inside ``fun`` are written back once per call with their primal values.

    - ``primals``: a tuple (or list) of *all* positional arguments of
      ``fun``, as in ``jax.jvp``; arguments not in ``argnums`` are constants.
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
    integer primals, as in JAX). A call returns ``(primal_out, tangent_out)``,
    or ``(primal_out, tangent_out, aux)`` with ``has_aux=True``; it is one
    cached compiled function per signature.

    Used as a method decorator, the bound callable takes the primals after
    ``self``; ``self`` is positional argument 0 for ``argnums``, so give
    ``argnums`` explicitly.

    Args:
        fun: The stateful function.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positional arguments that get tangents (see the table).
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its tangent is ignored.
        name: API name used in error messages.
        weak_states: Hold ``grad_states`` by weak reference (used by caches).

    Raises:
        TypeError: a non-State in ``grad_states`` (at construction);
            ``primals`` or ``tangents`` not a tuple; ``state_tangents`` not in
            the container shape of ``grad_states``; a tangent of the wrong
            structure; ``has_aux=True`` and ``fun`` does not return a pair.
        ValueError: invalid ``argnums`` (at construction) or one out of range;
            the wrong number of tangents; a tangent whose shape or dtype does
            not match its primal (the message names the state or argument).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array(2.0), name="w")
        >>> f_jvp = sd.JVPTransform(lambda x: w.value * x, grad_states=w, argnums=0)
        >>> out, tangent = f_jvp((3.0,), (1.0,), state_tangents=1.0)
        >>> float(out), float(tangent)
        (6.0, 5.0)
    """

    def __init__(
        self,
        fun: Callable[..., Any],
        grad_states: Any = None,
        argnums: int | tuple[int, ...] | None = None,
        has_aux: bool = False,
        check_states: bool = True,
        *,
        name: str = "statediff.JVPTransform",
        weak_states: bool = False,
    ) -> None:
        super().__init__(
            fun, grad_states, argnums, has_aux, check_states, name, weak_states=weak_states
        )

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
        # Under jax.disable_jit() the compiled call's slow path runs _drive, the Python body.
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
        call = make_call(self, primals, {})
        t_states = state_tangents(self, call.grad_values, given_states)
        t_args = arg_tangents(self, call.positions, call.primals[1:], tangents)
        y, ty, (aux, new) = jax.jvp(call, call.primals, (t_states, *t_args), has_aux=True)
        call.write(new)
        return (y, ty, aux) if self.has_aux else (y, ty)


_API = "statediff.jvp"
#: Quick tables (see ``weak_cache``) of the run-now calls under the default settings, by the
#: number of primals: the cached compiled calls of plain functions, each taking
#: ``(*primals, *tangents)``.
_QUICK = {n: quick_table("jvp", (None, False, True, n)) for n in range(9)}
_ONE = _QUICK[1]


class _FlatJVP(JVPTransform):
    """The run-now transform without ``grad_states``: its compiled call takes ``n`` primals.

    The compiled call (``_driver._call``) takes ``(*primals, *tangents)`` as
    ``2 * n`` positional arguments, which JAX dispatches faster than two
    tuples and a ``None`` (about 2,000 machine instructions a call, 3% of a
    small step).
    """

    def __init__(self, fun: Callable[..., Any], n: int, has_aux: bool, check_states: bool) -> None:
        super().__init__(fun, None, None, has_aux, check_states, name=_API, weak_states=True)
        drive = self._drive

        def jvp(*args: Any) -> Any:  # named for Python's own errors
            return drive(args[:n], args[n:], None)

        names = [f"p{i}" for i in range(n)] + [f"t{i}" for i in range(n)]
        jvp.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
            [inspect.Parameter(a, inspect.Parameter.POSITIONAL_ONLY) for a in names]
        )
        self._driver = StatefulFunction(jvp, api=_API, call_signature=jvp, trace_inline=True)


def _build(target: Any, gs: Any, weak: bool, settings: tuple[Any, ...]) -> JVPTransform:
    """Build the cached transform of the run-now :func:`jvp`."""
    if len(settings) == 4:  # no grad_states: (None, has_aux, check_states, number of primals)
        return _FlatJVP(target, settings[3], settings[1], settings[2])
    return JVPTransform(target, gs, *settings, name=_API, weak_states=weak)


def all_positions(grad_states: Any, n: int) -> tuple[int, ...] | None:
    """The builder ``argnums`` that differentiates every one of ``n`` positional arguments."""
    if grad_states is None or n == 0:
        return None  # the builder's default: all arguments (none with grad_states)
    return tuple(range(n))


def _check_sequences(primals: Any, tangents: Any) -> None:
    """Raise the error for bad ``primals`` / ``tangents`` (lists are accepted)."""
    for what, seq in (("primals", primals), ("tangents", tangents)):
        if not isinstance(seq, (tuple, list)):
            raise TypeError(
                f"{_API}: {what} must be a tuple (or list) with one entry per positional "
                f"argument of the function, as in jax.jvp, got {type(seq).__name__} {seq!r}. "
                f"Fix: e.g. {what}=(x,) for a function of one argument."
            )
    if len(tangents) != len(primals):
        raise ValueError(
            f"{_API}: got {len(primals)} primal(s) but {len(tangents)} tangent(s); as in "
            "jax.jvp, tangents has one tangent per primal, with its primal's structure, shape "
            "and dtype. Fix: e.g. tangents=tuple(jnp.ones_like(p) for p in primals)."
        )


def jvp(
    fun: Callable[..., Any],
    primals: Sequence[Any],
    tangents: Sequence[Any],
    *,
    has_aux: bool = False,
    grad_states: Any = None,
    state_tangents: Any = None,
    unit_aware: bool = False,
    check_states: bool = True,
) -> tuple[Any, ...]:
    """Stateful counterpart of ``jax.jvp``: run ``fun`` now and push tangents forward.

    Evaluates ``fun(*primals)`` (which may read and write States) and returns
    ``(primal_out, tangent_out)``, or ``(primal_out, tangent_out, aux)`` with
    ``has_aux=True``, as ``jax.jvp`` and ``brainstate.transform.jvp`` do:
    ``primals`` is a tuple (or list) of all positional arguments and
    ``tangents`` one tangent per primal, each with its primal's structure,
    shape and dtype (``float0`` for integer primals, as in JAX).

    States are constants (zero tangents, as in brainstate) unless given in
    ``grad_states``; then ``state_tangents`` (which brainstate lacks) holds
    their tangents in the container shape of ``grad_states`` (a bare tangent
    for one State); ``None``, a ``None`` entry or a missing dict key means a
    zero tangent. States written inside ``fun`` are written back with their
    primal values.

    Repeated calls with the same function, ``grad_states`` and options reuse
    one compiled function per argument signature (the function and states are
    held weakly by that cache). For the builder form with ``argnums``, see
    :class:`JVPTransform`.

    Args:
        fun: The stateful function.
        primals: A tuple (or list) of all positional arguments of ``fun``.
        tangents: A tuple (or list) with one tangent per primal.
        has_aux: ``fun`` returns ``(value, aux)``; aux is returned as is.
        grad_states: States whose values get tangents: a State, a sequence
            or a dict of States (nested allowed).
        state_tangents: The tangents of ``grad_states`` (see above).
        unit_aware: Units-aware products (needs ``statediff-units``).
        check_states: Raise ``ValueError`` if a state in ``grad_states`` is
            never touched by ``fun``; with False its tangent is ignored.

    Returns:
        ``(primal_out, tangent_out)`` or ``(primal_out, tangent_out, aux)``.

    Raises:
        TypeError: ``primals`` or ``tangents`` not a tuple or list; a tangent
            of the wrong structure; a non-State in ``grad_states``;
            ``state_tangents`` without ``grad_states`` or not in its
            container shape; ``has_aux=True`` and ``fun`` does not return a
            pair.
        ValueError: a different number of tangents than primals; a tangent
            whose shape or dtype does not match its primal (the message names
            the state or argument).

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> def f(x):
        ...     return w.value * x
        >>> y, ty = sd.jvp(f, (3.0,), (1.0,))   # like jax.jvp: w is a constant
        >>> ty
        Array([1., 2.], dtype=float32)
        >>> y, ty = sd.jvp(f, (3.0,), (0.0,), grad_states=w, state_tangents=jnp.ones(2))
        >>> ty
        Array([3., 3.], dtype=float32)
    """
    if (
        grad_states is None
        and state_tangents is None
        and has_aux is False
        and check_states is True
        and unit_aware is False
    ):
        # The common call, of a function already cached with these settings, goes straight
        # to its compiled call: in an eager loop, every Python operation between two
        # dispatches costs several times its own time. (Under jax.disable_jit() the compiled
        # call takes its slow path, which runs the Python body op by op.)
        if type(primals) is tuple and type(tangents) is tuple:
            n = len(primals)
            if n == 1 and len(tangents) == 1:  # the commonest
                hit = _ONE.get(id(fun))
                if hit is not None:
                    hit[1] = True  # used (see weak_cache)
                    return hit[4](primals[0], tangents[0])
            elif n == len(tangents) and n in _QUICK:
                hit = _QUICK[n].get(id(fun))
                if hit is not None:
                    hit[1] = True
                    return hit[4](*primals, *tangents)
    if type(primals) is not tuple or type(tangents) is not tuple or len(primals) != len(tangents):
        _check_sequences(primals, tangents)
        primals, tangents = tuple(primals), tuple(tangents)
    if grad_states is None and state_tangents is None and not unit_aware:
        flat = cached(_build, "jvp", fun, None, (None, has_aux, check_states, len(primals)))
        return flat._driver._call(*primals, *tangents)
    argnums = None if grad_states is None else all_positions(grad_states, len(primals))
    if unit_aware:
        made = units_backend(_API).make(
            "jvp",
            fun,
            grad_states=grad_states,
            argnums=argnums,
            has_aux=has_aux,
            check_states=check_states,
        )
        return made(tuple(primals), tuple(tangents), state_tangents)
    # The transform normalises the flags; as keys, 1 and True (or np.True_) are the same.
    options = (argnums, has_aux, check_states)
    transform = cached(_build, "jvp", fun, grad_states, options)
    # (Under jax.disable_jit() the compiled call's slow path runs _drive, the Python body.)
    return transform._driver._call(primals, tangents, state_tangents)

