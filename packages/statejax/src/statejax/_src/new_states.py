"""``statejax.vmap_new_states``: states created inside a function get a batch axis."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from stategraph import State, catch_new_states

from .vmap import state_label, vmap

__all__ = ["LANE_STATE_HOOKS", "vmap_new_states"]

_API = "statejax.vmap_new_states"

# The one place where per-lane handling of *existing* states plugs in: each
# hook is called with the batch size before the mapped pass and returns a
# context manager yielding an ``in_states`` spec (the states it batched for
# the call, e.g. a random state whose key it split per lane) and restoring
# them on exit. statejax itself registers none; stategraph's random states
# can register one so that each lane draws different numbers.
LANE_STATE_HOOKS: list[Callable[[int], Any]] = []


def _matcher(flt: Any) -> Callable[[State], bool]:
    """Return a predicate for ``state_to_exclude`` (class, tag, predicate, or a tuple of them)."""
    if flt is None:
        return lambda s: False
    if isinstance(flt, (tuple, list)):
        parts = [_matcher(f) for f in flt]
        return lambda s: any(p(s) for p in parts)
    if isinstance(flt, type):
        if not issubclass(flt, State):
            raise TypeError(
                f"{_API}: a class in state_to_exclude must be a State subclass, got "
                f"{flt.__name__}."
            )
        return lambda s: isinstance(s, flt)
    if isinstance(flt, str):
        return lambda s: s.tag == flt
    if callable(flt):
        return lambda s: bool(flt(s.name or "", s))
    raise TypeError(
        f"{_API}: state_to_exclude must be None, a State subclass, a tag string, a predicate "
        f"(path, state) -> bool, or a tuple of these; got {type(flt).__name__} {flt!r}."
    )


def _check_size(axis_size: Any) -> None:
    if axis_size is None:
        return
    if isinstance(axis_size, bool) or not isinstance(axis_size, int) or axis_size < 1:
        raise ValueError(f"{_API}: axis_size must be a positive int or None, got {axis_size!r}.")


def vmap_new_states(
    fun: Callable[..., Any] | None = None,
    *,
    in_axes: Any = 0,
    out_axes: Any = 0,
    axis_name: Any = None,
    axis_size: int | None = None,
    spmd_axis_name: Any = None,
    state_tag: str | None = None,
    state_to_exclude: Any = None,
    in_states: Any = None,
    out_states: Any = None,
) -> Callable[..., Any]:
    """Map ``fun`` so that the states it *creates* get a leading batch axis.

    As ``brainstate.transform.vmap_new_states``: the standard way to build a
    batched model, ``sj.vmap_new_states(model.init_state, axis_size=32)()``.
    Each call runs ``fun`` once per lane (as one ``sj.vmap`` trace, so
    ``fun`` runs once in Python per call); every state created inside it
    afterwards holds the values of all lanes stacked along axis 0 (a
    ``(32, ...)`` array for a ``(...)`` state). States that already existed
    are handled as by :func:`statejax.vmap` without ``in_states``: shared by
    the lanes, readable, writable only with a lane-independent value. New
    states matching ``state_to_exclude`` are not batched: their value must
    be the same in every lane. Unlike ``sj.vmap``, nothing is cached across
    calls: each call creates new states, as brainstate's does.

    Args:
        fun: The function creating states. Omit it for a decorator.
        in_axes: As ``jax.vmap``, per positional argument.
        out_axes: As ``jax.vmap``, for ``fun``'s output.
        axis_name: Name of the mapped axis for collectives.
        axis_size: The batch size (needed when no argument is mapped).
        spmd_axis_name: Accepted for brainstate compatibility; must be
            ``None`` (SPMD axis names are not supported here).
        state_tag: Tag given to every new state (``sg.states(obj, tag)``
            finds them later).
        state_to_exclude: New states to leave unbatched: a State subclass, a
            tag string, a predicate ``(name, state) -> bool``, or a tuple of
            these.
        in_states: Not supported (as in brainstate): use
            :func:`statejax.vmap` for existing states.
        out_states: Not supported, likewise.

    Returns:
        The mapped function (or a decorator when ``fun`` is omitted).

    Raises:
        ValueError: if ``in_states``/``out_states``/``spmd_axis_name`` is
            given, ``axis_size`` is not a positive int, or an excluded state
            gets different values in different lanes.

    Example:
        >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
        >>> class Cell:
        ...     def init_state(self):
        ...         self.h = sg.HiddenState(jnp.zeros(3), name="h")
        >>> cell = Cell()
        >>> sj.vmap_new_states(cell.init_state, axis_size=4)()
        >>> cell.h.value.shape
        (4, 3)
        >>> @sj.vmap_new_states(in_axes=0)
        ... def build(x):
        ...     s = sg.ShortTermState(jnp.zeros(()), name="s")
        ...     s.value = s.value + x
        ...     return s.value
        >>> build(jnp.arange(3.0)).tolist()
        [0.0, 1.0, 2.0]
    """
    if in_states is not None or out_states is not None:
        raise ValueError(
            f"{_API}: in_states and out_states are not supported: vmap_new_states batches "
            "the states created inside fun, so there are no existing states to declare. "
            "Fix: use sj.vmap(..., in_states=...) for states that already exist."
        )
    if spmd_axis_name is not None:
        raise ValueError(
            f"{_API}: spmd_axis_name is not supported (got {spmd_axis_name!r}). Fix: drop it, "
            "or use jax.vmap on a pure function."
        )
    _check_size(axis_size)
    exclude = _matcher(state_to_exclude)
    if state_tag is not None and not isinstance(state_tag, str):
        raise TypeError(f"{_API}: state_tag must be a str or None, got {state_tag!r}.")

    def wrap(f: Callable[..., Any]) -> Any:
        if not callable(f):
            raise TypeError(f"{_API}: expected a callable, got {type(f).__name__} {f!r}.")

        @functools.wraps(f)
        def mapped(*args: Any, **kwargs: Any) -> Any:
            return _run(f, args, kwargs)

        return mapped

    def _run(f: Callable[..., Any], args: tuple, kwargs: dict) -> Any:
        box: dict[str, list[State]] = {}

        def lane(*a: Any, **k: Any) -> Any:
            with catch_new_states(state_tag) as new:
                out = f(*a, **k)
            created = list(new)
            box["batched"] = [s for s in created if not exclude(s)]
            box["shared"] = [s for s in created if exclude(s)]
            return out, [s.value for s in box["batched"]], [s.value for s in box["shared"]]

        with _lane_hooks(axis_size) as hook_states:
            mapped = vmap(
                lane,
                in_axes=in_axes,
                out_axes=(out_axes, 0, None),
                axis_name=axis_name,
                axis_size=axis_size,
                in_states=hook_states or None,
            )
            try:
                out, batched, shared = mapped(*args, **kwargs)
            except ValueError as err:
                if "out_axes" in str(err) and box.get("shared"):
                    names = ", ".join(state_label(s) for s in box["shared"])
                    raise ValueError(
                        f"{_API}: the excluded new state(s) {names} got different values in "
                        "different lanes, but state_to_exclude states are not batched. Fix: "
                        "give them a lane-independent value, or do not exclude them."
                    ) from None
                raise
        for s, v in zip(box["batched"], batched, strict=True):
            s.value = v
        for s, v in zip(box["shared"], shared, strict=True):
            s.value = v
        return out

    if fun is None:
        return wrap
    return wrap(fun)


class _lane_hooks:  # noqa: N801 - used as a context manager
    """Enter every registered per-lane hook; yield the states they batched (axis 0)."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self.exits: list[Any] = []

    def __enter__(self) -> list[State]:
        states: list[State] = []
        if self.size is None:
            return states
        for hook in LANE_STATE_HOOKS:
            cm = hook(self.size)
            got = cm.__enter__()
            self.exits.append(cm)
            states.extend(got or [])
        return states

    def __exit__(self, *exc: Any) -> None:
        for cm in reversed(self.exits):
            cm.__exit__(*exc)

