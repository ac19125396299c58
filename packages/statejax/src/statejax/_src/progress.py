"""A tqdm progress bar for loops that runs inside compiled code."""

from __future__ import annotations

import functools
import operator
import threading
from typing import Any

import jax

__all__ = ["ProgressBar", "as_progress_bar", "progress_key"]


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "statejax.for_loop(progress_bar=...) needs the tqdm package, which is not "
            "installed. Fix: pip install tqdm (a dependency of statejax; it may have been "
            "removed), or call for_loop without progress_bar."
        ) from None
    return tqdm


class ProgressBar:
    """A progress bar for :func:`statejax.for_loop`, drawn with tqdm.

    The loop body reports its iteration counter to the host with a
    ``jax.debug.callback`` every ``interval`` iterations (and at the last
    one), so the bar advances while compiled code runs, inside ``sj.jit``
    too, and on a mesh of several devices or hosts (the callback is unordered;
    on several processes, the process owning the reporting device draws the
    bar). Do not use a progress bar inside ``vmap``.

    Args:
        interval: Update the bar every this many iterations (default: about
            20 updates per loop).
        desc: Text shown before the bar.
        **tqdm_kwargs: Passed to ``tqdm`` (``file``, ``leave``, ``ncols``,
            ``disable``, ...).

    Raises:
        ImportError: if tqdm is not installed (``pip install tqdm``; a dependency of
            statejax).
        ValueError: if ``interval`` is not a positive int.

    Example:
        >>> import io, jax, jax.numpy as jnp, statejax as sj
        >>> out = io.StringIO()
        >>> bar = sj.ProgressBar(interval=5, desc="run", file=out)  # doctest: +SKIP
        >>> ys = sj.for_loop(lambda x: 2 * x, jnp.arange(10.0), progress_bar=bar)  # doctest: +SKIP
        >>> jax.effects_barrier(); "10/10" in out.getvalue()  # doctest: +SKIP
        True
    """

    def __init__(self, interval: int | None = None, desc: str | None = None, **tqdm_kwargs: Any):
        self._tqdm = _tqdm()
        if interval is not None:
            try:
                interval = operator.index(interval)
            except TypeError:
                interval = 0
            if isinstance(interval, bool) or interval < 1:
                raise ValueError(
                    f"statejax.ProgressBar: interval must be a positive int, got {interval!r}."
                )
        self.interval = interval
        self.desc = desc
        self.tqdm_kwargs = tqdm_kwargs
        self._bar: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"ProgressBar(interval={self.interval!r}, desc={self.desc!r})"

    def tick(self, i: Any, n: int) -> None:
        """Report iteration ``i`` (traced int) of ``n`` to the host, every ``interval`` steps."""
        interval = self.interval or max(1, n // 20)
        update = functools.partial(self._update, n=n)

        def report(i: Any) -> None:
            # Unordered: JAX refuses ordered effects on more than one device (a sharded loop,
            # a mesh of several hosts). ``_update`` tolerates late or repeated reports.
            jax.debug.callback(update, i, ordered=False)

        def skip(i: Any) -> None:
            return None

        jax.lax.cond((i % interval == 0) | (i == n - 1), report, skip, i)

    def _update(self, i: Any, n: int) -> None:
        """Host side: move the bar to ``i + 1`` of ``n`` (a new bar at ``i == 0``)."""
        i = int(i)
        with self._lock:
            bar = self._bar
            if bar is not None and i == 0 and bar.n > 1:  # a new run of the loop
                bar.close()
                bar = self._bar = None
            if bar is None:
                if i != 0 and i + 1 >= n:  # a repeated report of a loop already finished
                    return
                bar = self._bar = self._tqdm(total=n, desc=self.desc, **self.tqdm_kwargs)
            if i + 1 > bar.n:  # reports may come late or repeated (one per shard)
                bar.update(i + 1 - bar.n)
            if i + 1 >= n:
                bar.close()
                self._bar = None


def progress_key(api: str, progress_bar: Any) -> Any:
    """Validate a ``progress_bar`` argument and return its (hashable) cache key."""
    if progress_bar is None or progress_bar is False:
        return None
    if progress_bar is True:
        return ("default",)
    if isinstance(progress_bar, ProgressBar):
        return progress_bar
    if isinstance(progress_bar, int) and not isinstance(progress_bar, bool):
        if progress_bar < 1:
            raise ValueError(
                f"{api}: progress_bar as an int is the update interval and must be positive, "
                f"got {progress_bar}."
            )
        return ("interval", progress_bar)
    raise TypeError(
        f"{api}: progress_bar must be a bool, a positive int (the update interval) or a "
        f"statejax.ProgressBar, got {type(progress_bar).__name__} {progress_bar!r}."
    )


def as_progress_bar(api: str, progress_bar: Any) -> ProgressBar | None:
    """Return the :class:`ProgressBar` for a ``progress_bar`` argument (``None``: no bar)."""
    key = progress_key(api, progress_bar)
    if key is None:
        return None
    if isinstance(key, ProgressBar):
        return key
    return ProgressBar(interval=key[1] if key[0] == "interval" else None)
