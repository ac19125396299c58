"""statejax: stateful functions lifted to pure JAX, and stateful transforms.

A function that reads and writes :class:`stategraph.State` objects is traced
once per signature into a pure JAX function of (state values, arguments);
``jit``, ``vmap``, ``cond``, ``scan`` and the others are built on that pure
function, so they nest in any order and cost what plain JAX costs.

Example:
    >>> import jax.numpy as jnp, stategraph as sg, statejax as sj
    >>> w = sg.ParamState(jnp.ones(3), name="w")
    >>> @sj.jit
    ... def scale(x):
    ...     w.value = w.value * x
    ...     return w.value.sum()
    >>> float(scale(2.0)), float(w.value[0])
    (6.0, 2.0)
"""

# First: a clear ImportError naming the required version on a JAX that is too old.
from statejax._src import jax_version as _jax_version  # noqa: F401

# isort: split
from statejax import errors
from statejax._src.bounded import bounded_while_loop
from statejax._src.caches import clear_caches
from statejax._src.checkpointed import checkpointed_for_loop, checkpointed_scan
from statejax._src.checks import (
    all_checks,
    automatic_checks,
    check,
    check_error,
    checkify,
    div_checks,
    float_checks,
    index_checks,
    jit_error_if,
    nan_checks,
    user_checks,
)
from statejax._src.cond import cond
from statejax._src.debug import breakpoint_if, debug_nan, debug_nan_if
from statejax._src.eval_shape import eval_shape
from statejax._src.for_loop import for_loop
from statejax._src.ifelse import ifelse
from statejax._src.jit import JittedFunction, jit
from statejax._src.map import map
from statejax._src.naming import named_call, named_scope
from statejax._src.new_states import vmap_new_states
from statejax._src.plan import Lifted, StatePlan
from statejax._src.progress import ProgressBar
from statejax._src.rebinds import check_stale_states
from statejax._src.remat import checkpoint, remat
from statejax._src.scan import scan
from statejax._src.shard_map import shard_map
from statejax._src.stateful import StatefulFunction, StatefulLowered
from statejax._src.stateful_methods import make_jaxpr
from statejax._src.switch import switch
from statejax._src.unvmap import unvmap
from statejax._src.vmap import vmap
from statejax._src.while_loop import while_loop

__version__ = "0.1.0"

__all__ = [
    "JittedFunction",
    "Lifted",
    "ProgressBar",
    "StatePlan",
    "StatefulFunction",
    "StatefulLowered",
    "__version__",
    "all_checks",
    "automatic_checks",
    "bounded_while_loop",
    "breakpoint_if",
    "check",
    "check_error",
    "check_stale_states",
    "checkify",
    "checkpoint",
    "checkpointed_for_loop",
    "checkpointed_scan",
    "clear_caches",
    "cond",
    "debug_nan",
    "debug_nan_if",
    "div_checks",
    "errors",
    "eval_shape",
    "float_checks",
    "for_loop",
    "ifelse",
    "index_checks",
    "jit",
    "jit_error_if",
    "make_jaxpr",
    "map",
    "named_call",
    "named_scope",
    "nan_checks",
    "remat",
    "scan",
    "shard_map",
    "switch",
    "unvmap",
    "user_checks",
    "vmap",
    "vmap_new_states",
    "while_loop",
]
