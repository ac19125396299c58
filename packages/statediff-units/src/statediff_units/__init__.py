"""statediff-units: unit-aware stateful derivatives over brainunit Quantities.

Importing this package registers its backend with ``statediff``, so that
``statediff.jacfwd(..., unit_aware=True)`` and the rest of the family accept
states and arguments holding ``brainunit`` Quantities and return derivatives
whose blocks carry ``unit(output) / unit(input)`` (``statediff`` also finds
the backend by itself, through the ``statediff.units`` entry point). The
functions here are the statediff ones with ``unit_aware=True`` by default.

Example:
    >>> import brainunit as u, jax.numpy as jnp, stategraph as sg
    >>> import statediff_units as sdu
    >>> r = sg.ParamState(jnp.array(2.0) * u.ohm, name="r")
    >>> def voltage(i):
    ...     return r.value * i
    >>> dv_dr, dv_di = sdu.jacfwd(voltage, grad_states=r, argnums=0)(3.0 * u.amp)
    >>> dv_dr, dv_di
    (Quantity(3., "A"), Quantity(2., "ohm"))
"""

# First: a clear ImportError naming the required version on a JAX that is too old.
from statediff_units._src import jax_version as _jax_version  # noqa: F401

# isort: split
from statediff_units._src.api import grad, hessian, jacfwd, jacobian, jacrev, vector_grad
from statediff_units._src.api_products import fwd_grad, jvp, linearize, vjp
from statediff_units._src.backend import UnitsBackend, register
from statediff_units._src.sgd import sgd_step
from statediff_units._src.transform import UnitGradientTransform

__version__ = "0.1.0"

__all__ = [
    "UnitGradientTransform",
    "UnitsBackend",
    "__version__",
    "fwd_grad",
    "grad",
    "hessian",
    "jacfwd",
    "jacobian",
    "jacrev",
    "jvp",
    "linearize",
    "register",
    "sgd_step",
    "vector_grad",
    "vjp",
]
