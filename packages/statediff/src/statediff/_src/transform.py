"""``GradientTransform``: the machinery shared by every statediff transform."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from stategraph import State
from stategraph.extend import PrivateTrace
from statejax import StatefulFunction

from .debug_nan import bad_flag, call_checked
from .fast_call import with_plain_call
from .jax_compat import DISABLE_JIT
from .options import Argnums, GradStates
from .output_checks import (
    check_holomorphic_input,
    check_scalar_output,
    check_transform,
    shown_tree,
)
from .quantity import find_quantity

__all__ = ["GradientTransform", "split_components"]

# transform(fun, argnums, has_aux=True, **params) -> callable returning (derivative, aux)
Transform = Callable[..., Callable[..., tuple[Any, Any]]]


def split_components(d: Any, y_treedef: Any, n: int, output_structured: bool) -> list[Any]:
    """Split a derivative over a tuple of inputs into one derivative per input.

    JAX lays out a Jacobian over several inputs as the output structure whose
    leaves are tuples over the inputs; this returns, for each input, the
    output structure over that input (what JAX returns for that input alone).
    """
    if not output_structured:
        return list(d)
    per_leaf = y_treedef.flatten_up_to(d)
    return [jax.tree.unflatten(y_treedef, [p[i] for p in per_leaf]) for i in range(n)]


class GradientTransform:
    """Apply a JAX derivative transform to a stateful function.

    The function may read and write States. The derivative is taken with
    respect to the states in ``grad_states`` (their values at entry) and/or
    the positional arguments in ``argnums``; other states are constants;
    written states are written back once per call with their primal values.
    The whole call is one cached compiled function: the Python body runs once
    per signature, eager calls included.

    Without ``argnums`` and ``debug_nan``, for a ``target`` whose parameters
    are all positional without defaults, the instance is of its own subclass
    of this class (of the same name, adding nothing else) whose ``__call__``
    is the compiled function's generated call itself: ``isinstance`` holds,
    ``type(g) is GradientTransform`` does not, and a call costs one Python
    frame instead of two.

    Args:
        target: The stateful function.
        transform: ``transform(fun, argnums, has_aux=True, **params)`` returning
            a function that gives ``(derivative, aux)``, like ``jax.jacfwd``.
        grad_states: A State, a sequence or a dict of States (nested allowed).
        argnums: Positions of the arguments to differentiate. Defaults to 0
            when ``grad_states`` is None.
        return_value: Also return the function's value.
        has_aux: ``target`` returns ``(value, aux)``.
        transform_params: Extra keyword arguments for ``transform``.
        check_states: Raise if a state in ``grad_states`` is never touched.
        output_structured: Whether ``transform`` lays results out as output
            structure over input structure (Jacobians) rather than input
            structure only (gradients).
        name: API name used in error messages.
        integer_inputs: Allow integer inputs (``allow_int``).
        holomorphic: Allow complex inputs (holomorphic differentiation).
        complex_inputs: Allow complex inputs without ``holomorphic`` (``grad``).
        debug_nan: Raise ``RuntimeError`` (with the affected blocks and the
            operation that produced the first NaN) instead of returning a
            derivative that holds NaN or Inf, as brainstate's ``debug_nan``;
            a failing call leaves the states as they were.

    Example:
        >>> import jax, jax.numpy as jnp, stategraph as sg, statediff as sd
        >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
        >>> gt = sd.GradientTransform(lambda x: w.value * x, jax.jacfwd, grad_states=w)
        >>> gt(3.0)
        Array([[3., 0.],
               [0., 3.]], dtype=float32)
    """

    def __init__(
        self,
        target: Callable[..., Any],
        transform: Transform,
        grad_states: Any = None,
        argnums: Any = None,
        return_value: bool = False,
        has_aux: bool | None = None,
        transform_params: dict[str, Any] | None = None,
        check_states: bool = True,
        *,
        output_structured: bool = True,
        name: str = "statediff.GradientTransform",
        integer_inputs: bool = False,
        holomorphic: bool = False,
        complex_inputs: bool = False,
        debug_nan: bool = False,
    ) -> None:
        if not callable(target):
            raise TypeError(f"{name}: expected a callable, got {type(target).__name__} {target!r}.")
        check_transform(name, transform)
        self.target = target
        self.name = name
        self.transform = transform
        self.grad_states = GradStates(name, grad_states)
        self.argnums = Argnums(name, argnums, default_zero=not self.grad_states.given)
        self.return_value = bool(return_value)
        self.has_aux = bool(has_aux)
        self.transform_params = dict(transform_params or {})
        self.check_states = bool(check_states)
        self.output_structured = output_structured
        self.integer_inputs = integer_inputs
        self.holomorphic = holomorphic
        self.complex_inputs = complex_inputs
        self._debug_nan = bool(debug_nan)
        self._lifted = StatefulFunction(target, api=name)
        # Without argnums, which arguments are passed by keyword changes nothing: the compiled
        # call may then take the target's own positional signature (no *args/**kwargs
        # packing per call). With argnums, a keyword argument must stay one (not
        # differentiated, as in jax.grad), so the call keeps (*args, **kwargs).
        plain = None if self.argnums.given else target
        self._driver = StatefulFunction(
            self._drive, api=name, call_signature=plain, trace_inline=True
        )
        functools.update_wrapper(self, target, updated=())
        with_plain_call(self, GradientTransform)

    @property
    def debug_nan(self) -> bool:
        """Whether a derivative holding NaN or Inf raises (fixed at construction)."""
        return self._debug_nan

    @debug_nan.setter
    def debug_nan(self, value: Any) -> None:
        # The compiled driver's output (and the call path) are made for the flag's value.
        raise AttributeError(
            f"{self.name}: debug_nan is fixed when the transform is made (got {value!r}). "
            "Fix: build a new transform with debug_nan=..."
        )

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if DISABLE_JIT.value:  # as jax.grad under jax.disable_jit(): run the Python body
            from .eager import gradient_eager

            return gradient_eager(self, args, kwargs)
        if self.debug_nan:
            return call_checked(self, args, kwargs)
        return self._driver._call(*args, **kwargs)

    def clear_cache(self) -> None:
        """Forget every traced signature and compiled function, through every layer of nesting.

        Call it after rebinding a model's attribute to another State that was
        already alive; the next call traces the function again.
        """
        self._driver.clear_cache()
        self._lifted.clear_cache()

    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        if obj is None:
            return self
        return functools.partial(self, obj)

    def __repr__(self) -> str:
        return f"{self.name}({getattr(self.target, '__qualname__', self.target)!r})"

    def sparsity(self, *args: Any, **kwargs: Any) -> Any:
        """Return the sparsity pattern and colouring of a call with these arguments.

        Traces the call (no state changes, nothing computed) and returns a
        :class:`~statediff.SparsityInfo`: the detected or given pattern, the
        colours, the number of compressed passes and the per-block patterns
        in the layout of the result. With ``sparsity=None`` it reports what
        ``sparsity="auto"`` would detect.

        Example:
            >>> import jax.numpy as jnp, statediff as sd
            >>> sd.jacfwd(lambda x: jnp.sin(x), sparsity="auto").sparsity(jnp.ones(3)).num_colors
            1
        """
        from .sparse.report import sparsity_of

        return sparsity_of(self, args, kwargs)

    # ------------------------------------------------------------ the driver
    def _internal_argnums(self) -> int | tuple[int, ...]:
        shift = 1 if self.grad_states.given else 0
        positions = tuple(p + shift for p in self.argnums.positions)
        if self.grad_states.given:
            return (0, *positions) if self.argnums.given else 0
        return positions[0] if self.argnums.is_int else positions

    def _check_touched(self, touched: list[State]) -> None:
        ids = {id(s) for s in touched}
        missing = [s for s in self.grad_states.states if id(s) not in ids]
        if missing and self.check_states:
            names = ", ".join(repr(s) for s in missing)
            seen = ", ".join(repr(s) for s in touched) or "no state at all"
            raise ValueError(
                f"{self.name}: grad_states holds {names}, which the function never reads or "
                f"writes (it touched: {seen}). Its derivative would be zero. Fix: pass the "
                "states the function uses, or check_states=False to get zeros."
            )

    def _check_inputs(self, grad_values: list[Any], args: tuple[Any, ...]) -> None:
        for state, value in zip(self.grad_states.states, grad_values, strict=True):
            where = find_quantity(value)
            if where is not None:
                raise TypeError(
                    f"{self.name}: state {state!r} holds a physical Quantity{where}; without "
                    "units support its unit would be silently dropped or mangled. Fix: pass "
                    "unit_aware=True (needs `pip install statediff-units`)."
                )
            self._check_dtype(lambda s=state: f"state {s!r}", value)
        for i in self.argnums.positions:
            where = find_quantity(args[i])
            if where is not None:
                raise TypeError(
                    f"{self.name}: positional argument {i}{where} (argnums={self.argnums.text}) "
                    "is a physical Quantity; without units support its unit would be silently "
                    "dropped or mangled. Fix: pass unit_aware=True (needs "
                    "`pip install statediff-units`)."
                )
            self._check_dtype(
                lambda i=i: f"positional argument {i} (argnums={self.argnums.text})", args[i]
            )

    def _check_dtype(self, label: Callable[[], str], value: Any) -> None:
        # ``label()`` names the input; it is formatted only for an error (a state's
        # repr describes its value, which costs a pytree walk per state).
        for leaf in jax.tree.leaves(value):
            dtype = jax.typeof(leaf).dtype
            if jax.dtypes.issubdtype(dtype, np.floating):
                if self.holomorphic:
                    check_holomorphic_input(self.name, label(), leaf)
                continue
            if jax.dtypes.issubdtype(dtype, np.complexfloating):
                if self.holomorphic or self.complex_inputs:
                    continue
                raise TypeError(
                    f"{self.name}: {label()} has dtype {dtype}; like JAX, this transform requires "
                    "real-valued inputs (a sub-dtype of np.floating) unless holomorphic=True. "
                    "Fix: pass holomorphic=True for holomorphic functions, or split the "
                    "complex input into real and imaginary parts."
                )
            if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
                raise TypeError(
                    f"{self.name}: {label()} holds a PRNG key (dtype {dtype}); a random key is "
                    "never differentiated. Fix: leave the random state out of grad_states "
                    "(e.g. grad_states=sg.states(model, sg.ParamState)); the function may "
                    "still draw from it."
                )
            if self.integer_inputs:
                continue
            raise TypeError(
                f"{self.name}: {label()} has dtype {dtype}; like JAX, this transform requires "
                "real-valued inputs (a sub-dtype of np.floating), not integer or boolean ones. "
                "Fix: cast it with `.astype(jnp.float32)`, or pass allow_int=True where the "
                "transform supports it (jacrev, jacobian, grad)."
            )

    def _drive(self, *args: Any, **kwargs: Any) -> Any:
        # The driver's trace (a statejax StatefulFunction) lifts every state this
        # runs into inputs of one cached compiled function. The user's function
        # runs once, under JAX's transform itself, as in plain JAX (JAX then
        # reuses its cached linearizations of jnp's jitted functions): the
        # states in grad_states show the transform's tracers, the others their
        # lifted values, and writes stay private until the primal values are
        # written back below.
        if DISABLE_JIT.value:
            # The compiled call's slow path runs this eagerly under jax.disable_jit()
            # (see fast_call): run the Python body op by op, as __call__ does.
            from .eager import gradient_eager

            return gradient_eager(self, args, kwargs)
        name = self.name
        self.argnums.check_range(name, len(args))
        gs = self.grad_states
        grad_states = gs.states
        grad_values = [s.value for s in grad_states]  # recorded reads: lifted by the driver
        self._check_inputs(grad_values, args)
        # The function given at construction (a subclass may show another as .target).
        given, has_aux, target = gs.given, self.has_aux, self._lifted.fun
        scalar = name.rsplit(".", 1)[-1] == "grad"  # statediff.grad (and its unit-aware twin)
        box: dict[str, Any] = {}

        def pure(*inputs: Any) -> tuple[Any, tuple[Any, Any, Any]]:
            if given:
                g_list = gs.flatten(inputs[0])
                call_args = inputs[1:]
            else:
                g_list = []
                call_args = inputs
            with PrivateTrace(grad_states, g_list) as trace:
                out = target(*call_args, **kwargs)
                written = list(trace.written_states)
                new = trace.values(written)
            box.update(trace=trace, written=written)
            self._check_output(out, scalar)
            y, aux = (out[0], out[1]) if has_aux else (out, None)
            return y, (y, aux, new)

        inputs = (gs.unflatten(grad_values), *args) if given else args
        fn = self.transform(
            pure, argnums=self._internal_argnums(), has_aux=True, **self.transform_params
        )
        d, (y, aux, new) = fn(*inputs)
        self._check_touched(list(box["trace"].states))
        for state, value in zip(box["written"], new, strict=True):
            state.value = value
        if self.debug_nan:
            return self._assemble(d, y, aux), (d, bad_flag(d))
        return self._assemble(d, y, aux)

    def _check_output(self, out: Any, scalar: bool) -> None:
        """The checks of the function's output (at trace time, on tracers: no values shown)."""
        name = self.name
        for path, leaf in jax.tree_util.tree_leaves_with_path(out):
            if isinstance(leaf, State):
                raise TypeError(
                    f"{name}: a function must not return States, but its output"
                    f"{jax.tree_util.keystr(path)} is {leaf!r}. Return `state.value` instead."
                )
        if self.has_aux and not (isinstance(out, (tuple, list)) and len(out) == 2):
            raise TypeError(
                f"{name}: has_aux=True requires the function to return a pair (value, aux), "
                f"but it returned {shown_tree(_shapes(out))}. Fix: return "
                "`value, aux`, or pass has_aux=False."
            )
        y = out[0] if self.has_aux else out
        if scalar:
            check_scalar_output(name, _shapes(y), self.has_aux)
        where = find_quantity(y)
        if where is not None:
            raise TypeError(
                f"{name}: the function's value{where} is a physical Quantity; without "
                "units support its unit would be silently dropped or mangled. Fix: pass "
                "unit_aware=True (needs `pip install statediff-units`)."
            )

    def _assemble(self, d: Any, y: Any, aux: Any) -> Any:
        if self.grad_states.given and self.argnums.given:
            n = 1 + len(self.argnums.positions)
            y_treedef = jax.tree.structure(y)
            parts = split_components(d, y_treedef, n, self.output_structured)
            if self.argnums.is_int:
                arg_grads = parts[1]
            elif self.output_structured:
                # As JAX lays out a Jacobian over argnums=(i, j, ...): the output
                # structure over the tuple of inputs (the same as without grad_states).
                per_leaf = y_treedef.flatten_up_to(d)
                arg_grads = jax.tree.unflatten(y_treedef, [tuple(p[1:]) for p in per_leaf])
            else:
                arg_grads = tuple(parts[1:])
            grads: Any = (parts[0], arg_grads)
        else:
            grads = d
        if self.has_aux and self.return_value:
            return grads, y, aux
        if self.has_aux:
            return grads, aux
        if self.return_value:
            return grads, y
        return grads


def _shape(leaf: Any) -> Any:
    try:
        aval = jax.typeof(leaf)
    except TypeError:
        return leaf
    return jax.ShapeDtypeStruct(aval.shape, aval.dtype, weak_type=aval.weak_type)


def _shapes(tree: Any) -> Any:
    """``tree`` with each array leaf (tracers included) as its ``ShapeDtypeStruct``."""
    return jax.tree.map(_shape, tree)
