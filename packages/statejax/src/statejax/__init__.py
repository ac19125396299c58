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

from statejax import errors
from statejax._src.caches import clear_caches
from statejax._src.cond import cond
from statejax._src.eval_shape import eval_shape
from statejax._src.for_loop import for_loop
from statejax._src.jit import JittedFunction, jit
from statejax._src.plan import Lifted, StatePlan
from statejax._src.progress import ProgressBar
from statejax._src.rebinds import check_stale_states
from statejax._src.remat import checkpoint, remat
from statejax._src.scan import scan
from statejax._src.shard_map import shard_map
from statejax._src.stateful import StatefulFunction, StatefulLowered, make_jaxpr
from statejax._src.switch import switch
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
    "check_stale_states",
    "checkpoint",
    "clear_caches",
    "cond",
    "errors",
    "eval_shape",
    "for_loop",
    "jit",
    "make_jaxpr",
    "remat",
    "scan",
    "shard_map",
    "switch",
    "vmap",
    "while_loop",
]
