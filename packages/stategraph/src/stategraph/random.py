"""Random numbers on a default global :class:`~stategraph.RandomState` (``brainstate.random``).

Every draw function of :class:`~stategraph.RandomState` (``normal``,
``uniform``, ``randint``, ``choice``, ``permutation``, ``gamma``, ...) is
also a function here, drawing on :data:`DEFAULT`, the default random state.
``DEFAULT`` is made on first use (importing this module starts no JAX
backend), from an unpredictable seed; :func:`seed` makes it reproducible.

Example:
    >>> import jax, stategraph as sg
    >>> sg.random.seed(42)
    >>> a = sg.random.normal(size=3)
    >>> sg.random.seed(42)
    >>> bool((sg.random.normal(size=3) == a).all())
    True
    >>> rng = sg.random.default_rng(0)   # an independent state
    >>> rng.randint(0, 10, size=2).shape
    (2,)
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import jax

from stategraph._src.random.examples import example
from stategraph._src.random.keys import to_key
from stategraph._src.random.state import RandomState

_DRAWS = (
    "bernoulli beta binomial categorical chisquare choice dirichlet exponential f gamma "
    "geometric gumbel hypergeometric laplace loggamma logistic lognormal logseries maxwell "
    "multinomial multivariate_normal negative_binomial noncentral_chisquare noncentral_f "
    "normal orthogonal pareto permutation poisson power rand rand_like randint randint_like "
    "randn randn_like random random_integers random_sample ranf rayleigh sample shuffle "
    "standard_cauchy standard_exponential standard_gamma standard_normal standard_t t "
    "triangular truncated_normal uniform vonmises wald weibull weibull_min zipf"
).split()

__all__ = sorted(
    [
        "DEFAULT",
        "RandomState",
        "clone_rng",
        "default_rng",
        "get_key",
        "get_key_data",
        "restore_key",
        "seed",
        "seed_context",
        "self_assign_multi_keys",
        "set_key",
        "split_key",
        "split_keys",
        *_DRAWS,
    ]
)

_LOCK = threading.Lock()
_DEFAULT: RandomState | None = None


def _default() -> RandomState:
    global _DEFAULT
    if _DEFAULT is None:
        with _LOCK:
            if _DEFAULT is None:
                _DEFAULT = RandomState(name="stategraph.random.DEFAULT")
    return _DEFAULT


def __getattr__(name: str) -> Any:
    if name == "DEFAULT":
        return _default()
    raise AttributeError(f"module 'stategraph.random' has no attribute {name!r}")


def _on_default(name: str) -> Any:
    method = getattr(RandomState, name)

    @functools.wraps(method)
    def draw(*args: Any, **kwargs: Any) -> Any:
        return getattr(_default(), name)(*args, **kwargs)

    summary = (method.__doc__ or "").split("Example:")[0].strip()
    draw.__doc__ = (
        f"Draw on the default random state: ``DEFAULT.{name}(...)``.\n\n{summary}\n\n"
        "See :class:`~stategraph.RandomState` for the arguments ``size``, ``key`` and "
        "``dtype``." + example(name, "sg.random", "sg.random.seed(0)")
    )
    draw.__module__ = __name__
    draw.__qualname__ = name
    del draw.__wrapped__  # type: ignore[attr-defined]
    sig = inspect.signature(method)
    draw.__signature__ = sig.replace(parameters=list(sig.parameters.values())[1:])  # type: ignore[attr-defined]
    return draw


for _name in _DRAWS:
    globals()[_name] = _on_default(_name)
del _name


def seed(seed_or_key: Any = None) -> None:
    """Reseed the default random state (``None``: an unpredictable seed).

    Example:
        >>> import stategraph as sg
        >>> sg.random.seed(0); a = sg.random.rand(2)
        >>> sg.random.seed(0); bool((sg.random.rand(2) == a).all())
        True
    """
    _default().seed(seed_or_key)


def split_key(n: int | None = None, backup: bool = False) -> Any:
    """Advance the default key; return a fresh key (or ``n`` keys).

    Example:
        >>> import stategraph as sg
        >>> sg.random.split_key(4).shape
        (4,)
    """
    return _default().split_key(n, backup)


def split_keys(n: int, backup: bool = False) -> Any:
    """Return ``n`` fresh keys from the default state.

    Example:
        >>> import stategraph as sg
        >>> sg.random.split_keys(2).shape
        (2,)
    """
    return _default().split_key(n, backup)


def default_rng(seed_or_key: Any = None) -> RandomState:
    """Return a new :class:`~stategraph.RandomState` (``None``: an unpredictable seed).

    Example:
        >>> import stategraph as sg
        >>> a, b = sg.random.default_rng(3), sg.random.default_rng(3)
        >>> bool(a.random() == b.random())
        True
    """
    return RandomState(seed_or_key)


def get_key() -> Any:
    """Return the default state's current key (a typed key).

    Example:
        >>> import jax, stategraph as sg
        >>> sg.random.seed(0); sg.random.get_key().dtype
        key<fry>
    """
    return _default().value


def get_key_data() -> jax.Array:
    """Return the raw ``uint32`` data of the default key.

    Example:
        >>> import stategraph as sg
        >>> sg.random.seed(0); sg.random.get_key_data().shape
        (2,)
    """
    return jax.random.key_data(_default().value)


def set_key(seed_or_key: Any) -> None:
    """Set the default key (an int seed, a typed or a raw key).

    Example:
        >>> import jax, stategraph as sg
        >>> sg.random.set_key(jax.random.PRNGKey(1)); sg.random.get_key_data().tolist()
        [0, 1]
    """
    _default().set_key(seed_or_key)


def restore_key() -> None:
    """Put back the default key saved by ``split_key(backup=True)`` or ``backup_key``.

    Example:
        >>> import stategraph as sg
        >>> k = sg.random.split_key(backup=True); sg.random.restore_key()
    """
    _default().restore_key()


def self_assign_multi_keys(n: int, backup: bool = True) -> None:
    """Replace the default key by ``n`` keys split from it.

    Example:
        >>> import stategraph as sg
        >>> sg.random.seed(0); sg.random.self_assign_multi_keys(3)
        >>> sg.random.get_key().shape
        (3,)
        >>> sg.random.restore_key()
    """
    _default().self_assign_multi_keys(n, backup)


def clone_rng(seed_or_key: Any = None, clone: bool = True) -> RandomState:
    """Return a new random state: seeded by ``seed_or_key``, else split from the default.

    Example:
        >>> import stategraph as sg
        >>> type(sg.random.clone_rng()).__name__
        'RandomState'
    """
    if seed_or_key is None:
        return _default().clone() if clone else _default()
    return RandomState(seed_or_key)


@contextlib.contextmanager
def seed_context(seed_or_key: Any) -> Iterator[None]:
    """Use ``seed_or_key`` for the default state inside the block, then put the old key back.

    Example:
        >>> import stategraph as sg
        >>> with sg.random.seed_context(1):
        ...     a = sg.random.rand()
        >>> with sg.random.seed_context(1):
        ...     b = sg.random.rand()
        >>> bool(a == b)
        True
    """
    rng = _default()
    old = rng.value
    rng.value = to_key("stategraph.random.seed_context", seed_or_key)
    try:
        yield
    finally:
        rng.value = old
