"""A runnable doctest Example for every draw method (and its ``stategraph.random`` function).

The examples are appended to the docstrings when the classes are made, from one table, so
each draw's documentation shows a call and the shape it returns.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CALLS", "add_examples", "example"]

# name -> (arguments as written in the call, the shape of the result)
CALLS: dict[str, tuple[str, tuple[int, ...]]] = {
    "rand": ("2, 3", (2, 3)),
    "randn": ("4", (4,)),
    "random": ("3", (3,)),
    "random_sample": ("3", (3,)),
    "ranf": ("3", (3,)),
    "sample": ("3", (3,)),
    "uniform": ("-1.0, 1.0, size=3", (3,)),
    "rand_like": ("jnp.zeros((2, 2))", (2, 2)),
    "randn_like": ("jnp.zeros(3)", (3,)),
    "standard_normal": ("3", (3,)),
    "normal": ("0.0, 2.0, size=3", (3,)),
    "lognormal": ("0.0, 1.0, size=3", (3,)),
    "truncated_normal": ("-1.0, 1.0, size=3", (3,)),
    "multivariate_normal": ("jnp.zeros(2), jnp.eye(2), size=4", (4, 2)),
    "randint": ("0, 10, size=3", (3,)),
    "random_integers": ("6, size=3", (3,)),
    "randint_like": ("jnp.zeros(3, int), 0, 5", (3,)),
    "choice": ("5, size=2, replace=False", (2,)),
    "permutation": ("5", (5,)),
    "shuffle": ("jnp.arange(4)", (4,)),
    "bernoulli": ("0.3, size=3", (3,)),
    "categorical": ("jnp.zeros(4), size=3", (3,)),
    "exponential": ("2.0, size=3", (3,)),
    "standard_exponential": ("3", (3,)),
    "gamma": ("2.0, 1.5, size=3", (3,)),
    "standard_gamma": ("2.0, size=3", (3,)),
    "beta": ("2.0, 3.0, size=3", (3,)),
    "dirichlet": ("jnp.ones(3), size=2", (2, 3)),
    "chisquare": ("3.0, size=3", (3,)),
    "f": ("2.0, 3.0, size=3", (3,)),
    "standard_t": ("3.0, size=3", (3,)),
    "t": ("3.0, size=3", (3,)),
    "standard_cauchy": ("3", (3,)),
    "gumbel": ("0.0, 1.0, size=3", (3,)),
    "laplace": ("0.0, 1.0, size=3", (3,)),
    "logistic": ("0.0, 1.0, size=3", (3,)),
    "loggamma": ("2.0, size=3", (3,)),
    "maxwell": ("3", (3,)),
    "pareto": ("3.0, size=3", (3,)),
    "power": ("2.0, size=3", (3,)),
    "rayleigh": ("2.0, size=3", (3,)),
    "triangular": ("0.0, 0.5, 1.0, size=3", (3,)),
    "weibull": ("2.0, size=3", (3,)),
    "weibull_min": ("2.0, 3.0, size=3", (3,)),
    "wald": ("1.0, 2.0, size=3", (3,)),
    "vonmises": ("0.0, 2.0, size=3", (3,)),
    "noncentral_chisquare": ("3.0, 1.0, size=3", (3,)),
    "noncentral_f": ("3.0, 4.0, 1.0, size=3", (3,)),
    "orthogonal": ("3", (3, 3)),
    "poisson": ("3.0, size=3", (3,)),
    "binomial": ("10, 0.5, size=3", (3,)),
    "geometric": ("0.3, size=3", (3,)),
    "negative_binomial": ("3, 0.5, size=3", (3,)),
    "multinomial": ("10, jnp.array([0.2, 0.8]), size=3", (3, 2)),
    "zipf": ("2.0, size=3", (3,)),
    "logseries": ("0.5, size=3", (3,)),
    "hypergeometric": ("5, 5, 4, size=3", (3,)),
}


def example(name: str, receiver: str, setup: str) -> str:
    """The Example section for draw ``name`` called on ``receiver`` after ``setup``."""
    args, shape = CALLS[name]
    return (
        "\n\nExample:\n"
        "    >>> import jax.numpy as jnp, stategraph as sg\n"
        f"    >>> {setup}\n"
        f"    >>> {receiver}.{name}({args}).shape\n"
        f"    {shape!r}\n"
    )


def add_examples(cls: Any) -> None:
    """Append an Example to each draw method of ``cls`` that has one in :data:`CALLS`."""
    for name, method in vars(cls).items():
        if (
            name in CALLS
            and callable(method)
            and method.__doc__
            and "Example:" not in method.__doc__
        ):
            method.__doc__ = method.__doc__.rstrip() + example(
                name, "rng", "rng = sg.RandomState(0)"
            )
