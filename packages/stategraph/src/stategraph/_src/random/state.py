"""``RandomState``: a state holding a PRNG key, advanced on every draw."""

from __future__ import annotations

import operator
import threading
from typing import Any

import jax

from ..state import State
from ..structure import describe
from .discrete import DiscreteDraws
from .draws import Draws
from .keys import fresh_seed, is_typed_key, to_key

__all__ = ["RandomState"]

# The read-split-write of a key is one step, also when threads share a state.
_KEY_LOCK = threading.RLock()
_STATE_SET = State.value.fset  # type: ignore[attr-defined]


class RandomState(Draws, DiscreteDraws, State):
    """A state holding a JAX PRNG key, with numpy-style draw methods.

    Every draw splits the key: the state keeps one half and the draw uses the
    other, so successive draws differ and a seed reproduces them. The key is
    an ordinary state value: ``sj.jit`` reads and writes it like any state
    (two calls draw different numbers, nothing is retraced), ``sj.scan`` and
    ``sj.for_loop`` advance it per step, and ``sj.vmap`` gives each lane its
    own key (split from this one, which advances once). A key is never
    differentiated. Each draw with ``key=`` given uses that key instead and
    leaves the state alone.

    Args:
        seed_or_key: An int seed, a typed key (``jax.random.key(0)``), a raw
            key (``jax.random.PRNGKey(0)``, stored as a typed key) or ``None``
            (an unpredictable seed).
        name: Optional name.

    Example:
        >>> import jax, stategraph as sg
        >>> rng = sg.RandomState(0)
        >>> x = rng.normal(size=(2,))
        >>> _, sub = jax.random.split(jax.random.key(0))   # what the draw used
        >>> bool((x == jax.random.normal(sub, (2,))).all())
        True
        >>> bool((rng.normal(size=(2,)) == x).all())   # the key moved on
        False
    """

    __slots__ = ()

    def __init__(self, seed_or_key: Any = None, name: str | None = None, **metadata: Any) -> None:
        if seed_or_key is None:
            seed_or_key = fresh_seed()
        super().__init__(to_key(f"{type(self).__name__}", seed_or_key), name=name, **metadata)
        self.__dict__["_backup"] = None

    def _check_value(self, value: Any) -> None:
        super()._check_value(value)
        if not is_typed_key(value):
            raise TypeError(
                f"{type(self).__name__} {self._label()}: the value must be a typed PRNG key, "
                f"got {describe(value)}. Fix: use rng.seed(seed_or_key) or "
                "rng.value = jax.random.key(seed)."
            )

    def _set_checked(self, new: Any) -> None:
        self._check_value(new)  # also on the fast path: a key state holds keys only
        _STATE_SET(self, new)

    value = property(State.value.fget, _set_checked, doc=State.value.__doc__)  # type: ignore[attr-defined]

    # ----------------------------------------------------------------- keys
    def seed(self, seed_or_key: Any = None) -> None:
        """Set a new key from an int seed, a typed or raw key, or ``None`` (unpredictable).

        Example:
            >>> import stategraph as sg
            >>> rng = sg.RandomState(1)
            >>> a = rng.random(3); rng.seed(1)
            >>> bool((rng.random(3) == a).all())
            True
        """
        if seed_or_key is None:
            seed_or_key = fresh_seed()
        self.value = to_key(f"{type(self).__name__}.seed", seed_or_key)

    def set_key(self, key: Any) -> None:
        """Set the key (an int seed, a typed or raw key)."""
        self.value = to_key(f"{type(self).__name__}.set_key", key)

    def split_key(self, n: int | None = None, backup: bool = False) -> Any:
        """Advance the key and return a fresh key (``n=None``) or ``n`` fresh keys.

        Args:
            n: How many keys to return (an array of ``n`` keys), or ``None``
                for a single key.
            backup: Save the key before the split (see :meth:`backup_key`).

        Raises:
            TypeError: if ``n`` is not an int.
            ValueError: if ``n`` is smaller than 1.

        Example:
            >>> import jax, stategraph as sg
            >>> rng = sg.RandomState(0)
            >>> rng.split_key(3).shape
            (3,)
        """
        if n is not None:
            try:
                n = operator.index(n)
            except TypeError:
                raise TypeError(
                    f"{type(self).__name__}.split_key: n must be an int or None, got "
                    f"{type(n).__name__} {n!r}."
                ) from None
            if n < 1:
                raise ValueError(f"{type(self).__name__}.split_key: n must be >= 1, got {n}.")
        with _KEY_LOCK:
            key = self.value
            keys = jax.random.split(key, 2 if n is None else n + 1)
            if backup:
                self.backup_key()
            self.value = keys[0]
        return keys[1] if n is None else keys[1:]

    def split_keys(self, n: int, backup: bool = False) -> Any:
        """Return ``n`` fresh keys (``split_key(n)``)."""
        return self.split_key(n, backup)

    def backup_key(self) -> None:
        """Remember the current key; :meth:`restore_key` puts it back.

        Raises:
            ValueError: if a backup is already held.

        Example:
            >>> import stategraph as sg
            >>> rng = sg.RandomState(0)
            >>> rng.backup_key(); a = rng.random(); rng.restore_key()
            >>> bool(rng.random() == a)
            True
        """
        if self.__dict__.get("_backup") is not None:
            raise ValueError(
                f"{type(self).__name__}.backup_key: a key is already backed up and was not "
                "restored. Fix: call restore_key() first."
            )
        self.__dict__["_backup"] = self.value

    def restore_key(self) -> None:
        """Put back the key saved by :meth:`backup_key`.

        Raises:
            ValueError: if no key was backed up.
        """
        backup = self.__dict__.get("_backup")
        if backup is None:
            raise ValueError(
                f"{type(self).__name__}.restore_key: no key is backed up. Fix: call "
                "backup_key() (or split_key(backup=True)) first."
            )
        self.value = backup
        self.__dict__["_backup"] = None

    def self_assign_multi_keys(self, n: int, backup: bool = True) -> None:
        """Replace the key by ``n`` keys split from it (for code that maps over them)."""
        n = operator.index(n)
        if n < 1:
            raise ValueError(f"{type(self).__name__}.self_assign_multi_keys: n must be >= 1.")
        with _KEY_LOCK:
            keys = jax.random.split(self.value, n)
            if backup:
                self.backup_key()
            _STATE_SET(self, keys)

    def clone(self) -> RandomState:
        """Return a new random state seeded with a key split from this one."""
        return type(self)(self.split_key())

    def _next_key(self, key: Any) -> Any:
        return self.split_key() if key is None else to_key(f"{type(self).__name__}", key)

    # ------------------------------------------------------------ per lane
    def split_lanes(self, n: int) -> Any:
        """Per-lane keys for a map over ``n`` lanes (the state advances once).

        Part of the per-lane protocol of :mod:`stategraph.extend`.
        """
        return self.split_key(n)

    def merge_lanes(self, lanes: Any) -> Any:
        """The value after the map: the key already advanced by :meth:`split_lanes`."""
        return self.value
