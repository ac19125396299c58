"""Generated call functions: the hot path of every compiled stateful call.

A jitted stateful function is a plain Python function whose code is
regenerated whenever its current state plan changes. For ``def step(x)``
and a plan reading states ``s0, s1`` and writing ``s1``, the code is::

    def step(x):
        if _sj_ACTIVE.count or _sj_TRACE.value is not _sj_EVAL:
            return _sj_slow((x,), {})
        try:
            _sj_s0 = _sj_p3_r0(); _sj_s1 = _sj_p3_r1()
            _sj_res = _sj_p3_jitted(_sj_s0._value, _sj_s1._value, x)
        except (_sj_Stale, AttributeError, NameError):
            return _sj_slow((x,), {})
        except TypeError:
            _sj_check((x,), {})  # a clear error for a State or non-array argument
            raise
        if _sj_res is None:
            return _sj_other((x,), {})
        _sj_s1._value = _sj_res[1]
        return _sj_res[0]

One Python frame, no loop, no signature computation and no cache walk:
JAX's C++ dispatch checks the signature, and each state value is one
positional argument (JAX dispatches positional arrays faster than lists).
The user's own positional signature is emitted when it is simple (no
defaults, ``*args``, keyword-only or static parameters), which saves
packing and unpacking ``*args, **kwargs``; otherwise the function takes
``(*args, **kwargs)``.

- A dead weak reference makes ``None._value`` raise ``AttributeError``, which
  leads to the slow path; so does a signature whose trace touches other
  states when the plan cannot answer it (``Stale``), and a plan's names
  removed while this frame was starting (``NameError``).
- ``None`` is the compiled answer of a plan to a signature that belongs to
  another plan: ``other`` then runs that plan's own generated function
  (:func:`plan_function`), so signatures of two plans used alternately each
  keep a compiled fast path and nothing is regenerated per call.
- A ``TypeError`` from JAX's dispatch (say, a State passed as an argument)
  goes to ``check``, which raises an error naming the user's argument
  position; the clauses cost nothing on calls that succeed.

The plan's objects (compiled function, weak references) live in the
function's globals under names unique to one generation; installing a new
plan or resetting removes the previous generation's names, so nothing of a
replaced plan stays alive. Code generation rather than a loop over the
plan's states: the loop version costs about 0.1 us per state and 1-2 us per
call more (see ``benchmarks/RESULTS.md``).
"""

from __future__ import annotations

import functools
import inspect
import keyword
import types
from collections.abc import Callable, Sequence
from typing import Any

from stategraph.extend import ACTIVE

from .jax_compat import EVAL_TRACE, TRACE_STATE
from .plan import StatePlan

__all__ = [
    "Stale",
    "make_call_function",
    "plan_function",
    "receiver_view",
    "reset",
    "set_plan",
    "simple_parameters",
]


class Stale(Exception):
    """Raised inside JAX tracing when the current plan does not fit the call."""


#: What a plan's own generated function returns for a signature of another plan.
MISS = object()

_BASE = {
    "_sj_ACTIVE": ACTIVE,
    "_sj_TRACE": TRACE_STATE,
    "_sj_EVAL": EVAL_TRACE,
    "_sj_Stale": Stale,
}
_PREFIX = "_sj_"


def simple_parameters(fun: Callable[..., Any]) -> tuple[str, ...] | None:
    """Return ``fun``'s parameter names if they can be emitted as a plain signature.

    That is: every parameter positional (or positional-or-keyword), without a
    default, named by a non-reserved identifier. ``None`` otherwise. A bound
    method's parameters are its function's after the first (``self``).
    """
    bound = inspect.ismethod(fun)
    if bound:
        fun = fun.__func__
    if not inspect.isfunction(fun):  # partials, callables: their own binding rules
        return None
    try:  # the function's own signature: a wrapper's ``*args`` stays ``*args``
        params = list(inspect.signature(fun, follow_wrapped=False).parameters.values())
    except (TypeError, ValueError):
        return None
    if bound:  # the first parameter takes the instance
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        if not params or params[0].kind not in positional:
            return None
        params = params[1:]
    names = []
    for p in params:
        if p.kind not in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            return None
        if p.default is not p.empty or not p.name.isidentifier() or keyword.iskeyword(p.name):
            return None
        if p.name.startswith(_PREFIX):
            return None
        names.append(p.name)
    return tuple(names)


class _Shape:
    """How the generated function receives and forwards its arguments.

    A ``receiver`` is a leading parameter that is taken and not forwarded
    (see :func:`receiver_view`).
    """

    def __init__(self, params: Sequence[str] | None, receiver: str | None = None) -> None:
        self.params = params
        if params is None:
            self.signature = "*args, **kwargs"
            self.forward = ["*args", "**kwargs"]
            self.packed = "args, kwargs"
        else:
            self.signature = ", ".join(params)
            self.forward = list(params)
            packed = "(" + "".join(f"{p}, " for p in params) + ")"
            self.packed = f"{packed}, {{}}"
        if receiver is not None:
            self.signature = f"{receiver}, {self.signature}" if params else receiver


@functools.lru_cache(maxsize=512)
def _code(source: str, label: str, name: str) -> types.CodeType:
    """The code object of the one function ``call`` that ``source`` defines.

    Cached: code objects hold only names (every object is a global of the
    function made from them), and a model's many functions share a few sources.
    """
    namespace: dict[str, Any] = {}
    exec(compile(source, label, "exec"), {}, namespace)  # noqa: S102
    code = namespace["call"].__code__
    # Named after the user's function, so that Python's own errors (a missing or an extra
    # argument) name it; Python names a function by its qualified name there.
    return code.replace(co_name=name, co_qualname=name)


def _function(source: str, globs: dict[str, Any], name: str, label: str) -> types.FunctionType:
    return types.FunctionType(_code(source, label, name), globs, name)


def _no_check(args: tuple, kwargs: dict) -> None:
    return None


def _no_plan_source(shape: _Shape) -> str:
    return f"def call({shape.signature}):\n    return _sj_slow({shape.packed})\n"


def make_call_function(
    slow: Callable[[tuple, dict], Any],
    name: str,
    check: Callable[[tuple, dict], None] = _no_check,
    other: Callable[[tuple, dict], Any] | None = None,
    params: Sequence[str] | None = None,
) -> types.FunctionType:
    """Return a function that calls ``slow`` until :func:`set_plan` gives it a plan.

    Args:
        slow: ``slow(args, kwargs)``, the full call.
        name: The function's ``__name__``.
        check: Called as ``check(args, kwargs)`` when the compiled call raises a
            ``TypeError``; it may raise a clearer one (the original is re-raised
            otherwise).
        other: Called as ``other(args, kwargs)`` when the current plan answers
            that the signature belongs to another plan (default: ``slow``).
        params: The user's simple positional parameter names (see
            :func:`simple_parameters`), or ``None`` for ``(*args, **kwargs)``.
    """
    globs: dict[str, Any] = dict(
        _BASE,
        _sj_slow=slow,
        _sj_check=check,
        _sj_other=other or slow,
        __builtins__=__builtins__,
    )
    globs["_sj_shape"] = shape = _Shape(None if params is None else tuple(params))
    globs["_sj_names"] = ()
    fn = _function(_no_plan_source(shape), globs, name, f"<statejax call {name}>")
    #: The functions generated from these globals, each with its shape (see receiver_view).
    globs["_sj_views"] = [(fn, shape, name)]
    return fn


def receiver_view(
    fn: types.FunctionType, receiver: str, name: str | None = None
) -> types.FunctionType:
    """Return a function that runs what ``fn`` runs, after a leading ``receiver`` parameter.

    The receiver is taken and ignored: made a class's ``__call__``, the view
    is called with the instance first, and the call costs one Python frame
    where a ``__call__`` forwarding to ``fn`` costs two. It shares ``fn``'s
    globals and follows its plans (:func:`set_plan` and :func:`reset`
    regenerate both); it takes the slow path until the next :func:`set_plan`.
    ``fn`` must take its plain positional parameters (see
    :func:`make_call_function`'s ``params``). ``name`` (default: ``fn``'s) is
    what Python's own errors call the view, say ``"Model.__call__"``.
    """
    globs = fn.__globals__
    main = globs["_sj_shape"]
    if main.params is None or receiver in main.params:
        raise ValueError(f"receiver_view: {fn.__name__} has no plain positional signature")
    shape = _Shape(main.params, receiver)
    name = name or fn.__name__
    view = _function(_no_plan_source(shape), globs, name, f"<statejax call {fn.__name__}>")
    globs["_sj_views"].append((view, shape, name))
    return view


def _drop_names(globs: dict[str, Any]) -> None:
    for key in globs["_sj_names"]:
        globs.pop(key, None)
    globs["_sj_names"] = ()


def reset(fn: types.FunctionType) -> None:
    """Make ``fn`` (and its views) call the slow path again, releasing the current plan."""
    globs = fn.__globals__
    label = f"<statejax call {fn.__name__}>"
    for view, shape, name in globs["_sj_views"]:
        view.__code__ = _function(_no_plan_source(shape), globs, name, label).__code__
    _drop_names(globs)


def _body(
    plan: StatePlan, prefix: str, shape: _Shape, miss: str
) -> tuple[list[str], dict[str, Any]]:
    """Source lines of the fast path for ``plan`` and the global names they use."""
    names: dict[str, Any] = {f"{prefix}jitted": plan.jitted}
    lines = ["    if _sj_ACTIVE.count or _sj_TRACE.value is not _sj_EVAL:"]
    lines.append(f"        return _sj_slow({shape.packed})")
    lines.append("    try:")
    values = []
    for i, ref in enumerate(plan.read_refs):
        names[f"{prefix}r{i}"] = ref
        lines.append(f"        _sj_s{i} = {prefix}r{i}()")
        values.append(f"_sj_s{i}._value")
    write_vars = []
    read_index = {id(ref()): i for i, ref in enumerate(plan.read_refs)}
    for j, ref in enumerate(plan.write_refs):
        i = read_index.get(id(ref()))
        if i is None:
            names[f"{prefix}w{j}"] = ref
            lines.append(f"        _sj_t{j} = {prefix}w{j}()")
            lines.append(f"        _sj_t{j}._value")  # AttributeError if the state is gone
            write_vars.append(f"_sj_t{j}")
        else:
            write_vars.append(f"_sj_s{i}")
    lines.append(f"        _sj_res = {prefix}jitted({', '.join(values + shape.forward)})")
    lines.append("    except (_sj_Stale, AttributeError, NameError):")
    lines.append(f"        return _sj_slow({shape.packed})")
    lines.append("    except TypeError:")
    lines.append(f"        _sj_check({shape.packed})")
    lines.append("        raise")
    lines.append("    if _sj_res is None:")
    lines.append(f"        return {miss}")
    for j, var in enumerate(write_vars):
        lines.append(f"    {var}._value = _sj_res[{j + 1}]")
    lines.append("    return _sj_res[0]")
    return lines, names


def set_plan(fn: types.FunctionType, plan: StatePlan) -> None:
    """Regenerate ``fn``'s code for ``plan`` (its states and ``plan.jitted``).

    The previous plan's names leave ``fn``'s globals: a frame of another
    thread that has not read them yet gets a ``NameError`` and takes the slow
    path; one that has read them finishes its call with the old plan.
    """
    globs = fn.__globals__
    gen = globs["_sj_generation"] = globs.get("_sj_generation", 0) + 1
    codes = []
    names: dict[str, Any] = {}
    for _, shape, name in globs["_sj_views"]:  # fn first; every view has the same names
        lines, names = _body(plan, f"_sj_p{gen}_", shape, f"_sj_other({shape.packed})")
        source = "\n".join([f"def call({shape.signature}):", *lines])
        codes.append(_function(source, globs, name, f"<statejax call {fn.__name__}>"))
    old = globs["_sj_names"]
    globs.update(names)
    for (view, _, _), made in zip(globs["_sj_views"], codes, strict=True):
        view.__code__ = made.__code__
    globs["_sj_names"] = tuple(names)
    for key in old:
        if key not in names:
            globs.pop(key, None)


def plan_function(
    plan: StatePlan,
    slow: Callable[[tuple, dict], Any],
    check: Callable[[tuple, dict], None] = _no_check,
) -> types.FunctionType:
    """Return ``plan``'s own fast function, ``fast(args, kwargs)``.

    It returns :data:`MISS` when the signature belongs to yet another plan;
    it holds the plan's states weakly, as the main function does.
    """
    globs: dict[str, Any] = dict(_BASE, _sj_slow=slow, _sj_check=check, __builtins__=__builtins__)
    shape = _Shape(None)
    lines, names = _body(plan, "_sj_", shape, "_sj_MISS")
    globs.update(names, _sj_MISS=MISS)
    source = "\n".join(["def call(args, kwargs):", *lines])
    return _function(source, globs, "fast", "<statejax plan call>")
