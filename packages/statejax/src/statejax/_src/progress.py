"""A tqdm progress bar for loops that runs inside compiled code."""

from __future__ import annotations

import functools
import operator
import string
import threading
from collections.abc import Callable
from typing import Any

import jax

__all__ = ["ProgressBar", "ProgressBarArgumentError", "as_progress_bar", "progress_key"]

_API = "statejax.ProgressBar"


class ProgressBarArgumentError(TypeError, ValueError):
    """A bad :class:`ProgressBar` argument value (both a ``TypeError`` and a ``ValueError``).

    Raised at construction, so a bad bar never reaches the compiled loop.
    brainstate raises ``ValueError`` for some of these (``freq=0``); catching
    either builtin works.
    """


def _tqdm() -> Any:
    try:
        from tqdm.auto import tqdm
    except ImportError:
        raise ImportError(
            "statejax.for_loop(pbar=...) needs the tqdm package, which is not "
            "installed. Fix: pip install tqdm (a dependency of statejax; it may have been "
            "removed), or call for_loop without pbar."
        ) from None
    return tqdm


def _positive_int(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"{_API}: {name} must be a positive int or None, got the bool {value!r}.")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(
            f"{_API}: {name} must be a positive int or None, got {type(value).__name__} "
            f"{value!r}. Fix: pass e.g. {name}=10."
        ) from None
    if value < 1:
        raise ProgressBarArgumentError(
            f"{_API}: {name} must be a positive int (the number of iterations between "
            f"updates for freq, the number of updates for count), got {value}."
        )
    return value


def _check_desc(desc: Any) -> Any:
    if desc is None or isinstance(desc, str):
        return desc
    if isinstance(desc, (tuple, list)) and len(desc) == 2:
        fmt, fun = desc
        if not isinstance(fmt, str):
            raise TypeError(
                f"{_API}: desc as a pair must be (format string, callable), but its first "
                f"entry is {type(fmt).__name__} {fmt!r}."
            )
        if not callable(fun):
            raise TypeError(
                f"{_API}: desc as a pair must be (format string, callable), but its second "
                f"entry is {type(fun).__name__} {fun!r}, not callable."
            )
        return (fmt, fun)
    raise TypeError(
        f"{_API}: desc must be None, a str, or a (format string, callable) pair, got "
        f"{type(desc).__name__} {desc!r}."
    )


def _check_tqdm_kwargs(tqdm: Any, kwargs: dict[str, Any]) -> None:
    """Build (and close at once) a bar writing nowhere, so tqdm rejects bad arguments now."""
    import io

    probe = dict(kwargs)
    probe["file"] = io.StringIO()
    probe.pop("disable", None)
    try:
        tqdm(total=1, **probe).close()
    except (TypeError, ValueError, KeyError) as err:
        raise TypeError(
            f"{_API}: tqdm rejects the extra keyword arguments {sorted(kwargs)} ({err}). "
            "Extra keyword arguments are passed to tqdm (file, leave, ncols, disable, "
            "mininterval, ...)."
        ) from None


class ProgressBar:
    """A progress bar for :func:`statejax.for_loop` and :func:`statejax.scan`, drawn with tqdm.

    As ``brainstate.transform.ProgressBar``. The loop body reports its
    iteration counter to the host with a ``jax.debug.callback`` every
    ``freq`` iterations (and at the first and last one), so the bar advances
    while compiled code runs, inside ``sj.jit`` too, and on a mesh of several
    devices or hosts (the callback is unordered; on several processes, the
    process owning the reporting device draws the bar). Do not use a progress
    bar inside ``vmap``. Every argument is checked here, at construction: a
    bad one raises before any loop runs.

    Args:
        freq: Update the bar every this many iterations. Default: about 20
            updates per loop (every 5%).
        count: Update the bar this many times per loop (instead of ``freq``;
            give at most one of the two). A ``count`` larger than the loop
            length updates at every iteration.
        desc: Text shown before the bar; or a pair ``(format_string, fun)``:
            ``fun(data)`` is called inside the loop with the dict
            ``{"i": iteration, "carry": carry, "y": output}`` (``carry`` is
            the scan's new carry; for ``for_loop``, the value of the state it
            writes, or a tuple of them when it writes several) and returns a
            dict of arrays that fills ``format_string`` on the host.
        interval: Deprecated alias of ``freq`` (this project's former name).
        **kwargs: Passed to ``tqdm`` (``file``, ``leave``, ``ncols``,
            ``disable``, ...).

    Raises:
        ImportError: if tqdm is not installed (``pip install tqdm``; a
            dependency of statejax).
        TypeError: for any bad argument: ``freq``/``count`` not a positive
            int (for a non-positive one, a :class:`ProgressBarArgumentError`,
            also a ``ValueError``), both given, a bad ``desc``, or an unknown
            tqdm argument.

    Example:
        >>> import io, jax, jax.numpy as jnp, statejax as sj
        >>> out = io.StringIO()
        >>> bar = sj.ProgressBar(freq=5, desc="run", file=out)
        >>> ys = sj.for_loop(lambda x: 2 * x, jnp.arange(10.0), pbar=bar)
        >>> jax.effects_barrier(); "10/10" in out.getvalue()
        True
    """

    def __init__(
        self,
        freq: int | None = None,
        count: int | None = None,
        desc: str | tuple[str, Callable[[dict], dict]] | None = None,
        *,
        interval: int | None = None,
        **kwargs: Any,
    ) -> None:
        self._tqdm = _tqdm()
        freq = _positive_int("freq", freq)
        interval = _positive_int("interval", interval)
        if interval is not None:
            if freq is not None and freq != interval:
                raise ProgressBarArgumentError(
                    f"{_API}: interval is an alias of freq; got freq={freq} and "
                    f"interval={interval}. Fix: pass freq only."
                )
            freq = interval
        count = _positive_int("count", count)
        if freq is not None and count is not None:
            raise ProgressBarArgumentError(
                f"{_API}: give freq (iterations between updates) or count (number of "
                f"updates), not both; got freq={freq} and count={count}."
            )
        self.freq = freq
        self.count = count
        self.desc = _check_desc(desc)
        _check_tqdm_kwargs(self._tqdm, kwargs)
        self.tqdm_kwargs = kwargs
        self._bar: Any = None
        self._lock = threading.Lock()

    @property
    def interval(self) -> int | None:
        """Alias of ``freq``."""
        return self.freq

    @property
    def print_freq(self) -> int | None:
        """``freq``, under brainstate's attribute name."""
        return self.freq

    @property
    def print_count(self) -> int | None:
        """``count``, under brainstate's attribute name."""
        return self.count

    def __repr__(self) -> str:
        return f"ProgressBar(freq={self.freq!r}, count={self.count!r}, desc={self.desc!r})"

    def every(self, n: int) -> int:
        """Return the number of iterations between updates for a loop of ``n``."""
        if self.freq is not None:
            return self.freq
        if self.count is not None:
            return max(1, n // min(self.count, max(n, 1)))
        return max(1, n // 20)

    def tick(self, i: Any, n: int, carry: Any = None, y: Any = None) -> None:
        """Report iteration ``i`` (traced int) of ``n`` to the host, every ``freq`` steps."""
        every = self.every(n)
        data: dict[str, Any] = {}
        if isinstance(self.desc, tuple):
            data = self.desc[1]({"i": i, "carry": carry, "y": y})
            if not isinstance(data, dict):
                raise TypeError(
                    f"{_API}: the desc function must return a dict (of values filling "
                    f"{self.desc[0]!r}), but it returned {type(data).__name__}."
                )
            fields = {
                f.split(".")[0].split("[")[0]
                for _, f, _, _ in string.Formatter().parse(self.desc[0])
                if f
            }
            missing = sorted(fields - set(data))
            if missing:
                raise TypeError(
                    f"{_API}: the desc format {self.desc[0]!r} uses {missing}, which the desc "
                    f"function's dict does not have (its keys: {sorted(data)})."
                )
        update = functools.partial(self._update, n=n)

        def report(i: Any, data: dict[str, Any]) -> None:
            # Unordered: JAX refuses ordered effects on more than one device (a sharded loop,
            # a mesh of several hosts). ``_update`` tolerates late or repeated reports.
            jax.debug.callback(update, i, data, ordered=False)

        def skip(i: Any, data: dict[str, Any]) -> None:
            return None

        jax.lax.cond((i % every == 0) | (i == n - 1), report, skip, i, data)

    def _text(self, n: int, data: dict[str, Any]) -> str:
        if self.desc is None:
            return f"Running for {n:,} iterations"
        if isinstance(self.desc, str):
            return self.desc
        return self.desc[0].format(**data)

    def _update(self, i: Any, data: dict[str, Any], n: int) -> None:
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
                bar = self._bar = self._tqdm(total=n, **self.tqdm_kwargs)
            if i + 1 > bar.n:  # reports may come late or repeated (one per shard)
                bar.set_description(self._text(n, data), refresh=False)
                bar.update(i + 1 - bar.n)
            if i + 1 >= n:
                bar.close()
                self._bar = None


def progress_key(api: str, progress_bar: Any) -> Any:
    """Validate a ``pbar`` / ``progress_bar`` argument and return its (hashable) cache key."""
    if progress_bar is None or progress_bar is False:
        return None
    if progress_bar is True:
        return ("default",)
    if isinstance(progress_bar, ProgressBar):
        return progress_bar
    if isinstance(progress_bar, int) and not isinstance(progress_bar, bool):
        if progress_bar < 1:
            raise ValueError(
                f"{api}: pbar as an int is the update frequency and must be positive, "
                f"got {progress_bar}."
            )
        return ("freq", progress_bar)
    raise TypeError(
        f"{api}: pbar must be None, a bool, a positive int (the update frequency) or a "
        f"statejax.ProgressBar (progress_bar must be the same: it is the former name), got "
        f"{type(progress_bar).__name__} {progress_bar!r}."
    )


def as_progress_bar(api: str, progress_bar: Any) -> ProgressBar | None:
    """Return the :class:`ProgressBar` for a ``pbar`` argument (``None``: no bar)."""
    key = progress_key(api, progress_bar)
    if key is None:
        return None
    if isinstance(key, ProgressBar):
        return key
    return ProgressBar(freq=key[1] if key[0] == "freq" else None)


def pick_progress(api: str, pbar: Any, progress_bar: Any) -> Any:
    """Return the one progress argument given (``pbar``, or its alias ``progress_bar``)."""
    given_pbar = pbar is not None and pbar is not False
    given_alias = progress_bar is not None and progress_bar is not False
    if given_pbar and given_alias and pbar is not progress_bar:
        raise TypeError(
            f"{api}: pbar and progress_bar are the same argument (progress_bar is the "
            "former name); pass one of them."
        )
    return pbar if given_pbar else progress_bar
