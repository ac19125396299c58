"""Generated call functions: the hot path of every compiled stateful call.

A jitted stateful function is a plain Python function whose code is
regenerated whenever its state plan changes. For a plan reading states
``s0, s1`` and writing ``s1``, the code is::

    def call(*args, **kwargs):
        if ACTIVE.count or TRACE.value is not EVAL:
            return slow(args, kwargs)
        try:
            s0 = r0(); s1 = r1()
            res = jitted([s0._value], [s1._value], *args, **kwargs)
        except (Stale, AttributeError):
            return slow(args, kwargs)
        except TypeError:
            check(args, kwargs)  # a clear error for a State or non-array argument
            raise
        s1._value = res[1]
        return res[0]

One Python frame, no loop, no signature computation and no cache walk: JAX's
C++ dispatch checks the signature. A dead weak reference makes
``None._value`` raise ``AttributeError``, which leads to the slow path; so does
a signature whose trace touches other states (``Stale``). A ``TypeError``
from JAX's dispatch (say, a State passed as an argument) goes to ``check``,
which raises an error naming the user's argument position; the clauses cost
nothing on calls that succeed.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

from stategraph.extend import ACTIVE

from .jax_compat import EVAL_TRACE, TRACE_STATE
from .plan import StatePlan

__all__ = ["Stale", "make_call_function", "reset", "set_plan"]


class Stale(Exception):
    """Raised inside JAX tracing when the current plan does not fit the call."""


_BASE = {
    "ACTIVE": ACTIVE,
    "TRACE": TRACE_STATE,
    "EVAL": EVAL_TRACE,
    "Stale": Stale,
}

_NO_PLAN = """
def call(*args, **kwargs):
    return slow(args, kwargs)
"""


def _compile(source: str, globs: dict[str, Any], label: str) -> types.CodeType:
    namespace = dict(globs)
    exec(compile(source, label, "exec"), namespace)  # noqa: S102
    return namespace["call"].__code__


def _no_check(args: tuple, kwargs: dict) -> None:
    return None


def make_call_function(
    slow: Callable[[tuple, dict], Any],
    name: str,
    check: Callable[[tuple, dict], None] = _no_check,
) -> types.FunctionType:
    """Return a function that calls ``slow`` until :func:`set_plan` gives it a plan.

    ``check(args, kwargs)`` is called when the compiled call raises a
    ``TypeError``; it may raise a clearer one (the original is re-raised otherwise).
    """
    globs: dict[str, Any] = dict(_BASE, slow=slow, check=check, __builtins__=__builtins__)
    code = _compile(_NO_PLAN, globs, f"<statejax call {name}>")
    return types.FunctionType(code, globs, name)


def reset(fn: types.FunctionType) -> None:
    """Make ``fn`` call its slow path again (after the cache was cleared)."""
    fn.__code__ = _compile(_NO_PLAN, fn.__globals__, f"<statejax call {fn.__name__}>")


def set_plan(fn: types.FunctionType, plan: StatePlan, jitted: Callable[..., Any]) -> None:
    """Regenerate ``fn``'s code for ``plan`` (its states and compiled runner)."""
    globs = fn.__globals__
    gen = globs["_generation"] = globs.get("_generation", 0) + 1
    p = f"p{gen}_"
    names: dict[str, Any] = {f"{p}jitted": jitted}
    body = ["def call(*args, **kwargs):"]
    body.append("    if ACTIVE.count or TRACE.value is not EVAL:")
    body.append("        return slow(args, kwargs)")
    body.append("    try:")
    ro_vars, rw_vars = [], []
    for i, (ref, written) in enumerate(zip(plan.read_refs, plan.rw_mask, strict=True)):
        names[f"{p}r{i}"] = ref
        body.append(f"        s{i} = {p}r{i}()")
        (rw_vars if written else ro_vars).append(f"s{i}._value")
    write_vars = []
    read_index = {id(ref()): i for i, ref in enumerate(plan.read_refs)}
    for j, ref in enumerate(plan.write_refs):
        i = read_index.get(id(ref()))
        if i is None:
            names[f"{p}w{j}"] = ref
            body.append(f"        t{j} = {p}w{j}()")
            body.append(f"        t{j}._value")  # AttributeError if the state is gone
            write_vars.append(f"t{j}")
        else:
            write_vars.append(f"s{i}")
    call_args = ", ".join(
        [f"[{', '.join(ro_vars)}]", f"[{', '.join(rw_vars)}]", "*args", "**kwargs"]
    )
    body.append(f"        res = {p}jitted({call_args})")
    body.append("    except (Stale, AttributeError):")
    body.append("        return slow(args, kwargs)")
    body.append("    except TypeError:")
    body.append("        check(args, kwargs)")
    body.append("        raise")
    for j, var in enumerate(write_vars):
        body.append(f"    {var}._value = res[{j + 1}]")
    body.append("    return res[0]")
    # Names are unique per generation: frames still running older code keep
    # finding theirs, so regenerating is safe while other threads call.
    globs.update(names)
    fn.__code__ = _compile("\n".join(body), globs, f"<statejax call {fn.__name__}>")
