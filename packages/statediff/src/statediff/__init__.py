"""statediff: Jacobians, gradients and Hessians over states and arguments.

Stateful counterparts of JAX's derivative transforms, with brainstate's
``grad_states`` / ``argnums`` / ``has_aux`` / ``return_value`` contract. Each
call is one cached compiled function; written states are written back with
their primal values.

Example:
    >>> import jax.numpy as jnp, stategraph as sg, statediff as sd
    >>> w = sg.ParamState(jnp.array([1.0, 2.0]), name="w")
    >>> jac, value = sd.jacfwd(lambda x: w.value * x, grad_states=w, return_value=True)(2.0)
    >>> value
    Array([2., 4.], dtype=float32)
"""

# First: a clear ImportError naming the required version on a JAX that is too old.
from statediff._src import jax_version as _jax_version  # noqa: F401

# isort: split
from statediff import errors
from statediff._src.fwd_grad import fwd_grad
from statediff._src.grad import grad, vector_grad
from statediff._src.hessian import hessian
from statediff._src.jacobian import jacfwd, jacobian, jacrev
from statediff._src.jvp import JVPTransform, jvp
from statediff._src.linearize import LinearizeTransform, linearize
from statediff._src.sparse.plan import BlockSparsity, SparsityInfo
from statediff._src.transform import GradientTransform
from statediff._src.units_hook import UnitsBackend, register_units_backend, units_backend
from statediff._src.vjp import VJPTransform, vjp
from statediff.errors import UnitsNotInstalledError

__version__ = "0.1.0"

__all__ = [
    "BlockSparsity",
    "GradientTransform",
    "JVPTransform",
    "LinearizeTransform",
    "SparsityInfo",
    "UnitsBackend",
    "UnitsNotInstalledError",
    "VJPTransform",
    "__version__",
    "errors",
    "fwd_grad",
    "grad",
    "hessian",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linearize",
    "register_units_backend",
    "units_backend",
    "vector_grad",
    "vjp",
]
