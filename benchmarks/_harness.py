"""Shared timing harness of the benchmarks: interleaved blocks, medians, one pinned core.

Every benchmark compares a case of this stack with the same computation written as a pure
function under plain JAX, in the same process. Cases take turns in rotating order (interleaved
blocks), so drifts of the machine hit all of them alike; each figure is the median over blocks of
the mean time per call within a block.

Two modes: **sync** blocks on every call's output (``jax.block_until_ready``), so the Python cost
of a call hides behind the computation of the previous one only partly; **async** makes the calls
of a block back to back and blocks once at the end, as a training loop does, so every microsecond
of Python between dispatches shows. A case is a function making one call and returning its output
(unblocked); the harness blocks as the mode says.

Three pinning regimes (``--pin=``): ``none``; ``main`` (only the main thread pinned to one core,
after JAX's backend and its worker threads started); ``process`` (the main thread pinned before
the backend starts, so every thread JAX makes inherits the one core: ``taskset -c``).
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results"

# ``--clock=thread`` times blocks by the main thread's CPU time instead of the wall clock: on a
# busy shared machine this shows the Python + dispatch cost of each call without the time the
# thread spent waiting for a core (the computation itself runs on JAX's worker threads).
CLOCK = time.thread_time if "--clock=thread" in sys.argv else time.perf_counter


def pin_one_core() -> int | None:
    """Pin the calling thread to one core (the last one), returning it (None if unsupported).

    On Linux this pins the calling thread only, and the threads it starts afterwards: call it
    before JAX's backend starts (first array) to pin the whole process.
    """
    try:
        cores = sorted(os.sched_getaffinity(0))
        core = cores[-1]
        os.sched_setaffinity(0, {core})
        return core
    except (AttributeError, OSError):
        return None


REGIMES = ("none", "main", "process")


def pin_regime(regime: str) -> int | None:
    """Apply a pinning regime (see the module docstring); return the pinned core or None."""
    import jax.numpy as jnp

    if regime == "process":
        core = pin_one_core()
        jnp.zeros(()).block_until_ready()  # the backend's threads start on that core
        return core
    jnp.zeros(()).block_until_ready()  # start the backend (and its threads) unpinned
    return pin_one_core() if regime == "main" else None


def argv_option(name: str, default: str) -> str:
    """Return the value of ``--name=value`` in ``sys.argv`` (``default`` if absent)."""
    for arg in sys.argv[1:]:
        if arg.startswith(f"--{name}="):
            return arg.split("=", 1)[1]
    return default


def loadavg() -> list[float]:
    """The 1, 5 and 15 minute load averages (empty where unsupported)."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):
        return []


def _block(x: Any) -> Any:
    import jax

    return jax.block_until_ready(x)


def _run(fn: Callable[[], Any], n: int, sync: bool) -> None:
    if sync:
        for _ in range(n):
            _block(fn())
    else:
        out = None
        for _ in range(n):
            out = fn()
        _block(out)


def calibrate(fn: Callable[[], Any], target_s: float = 0.05, sync: bool = True) -> int:
    """Return a number of calls that takes about ``target_s`` seconds."""
    _block(fn())
    n = 1
    while True:
        t0 = CLOCK()
        _run(fn, n, sync)
        dt = CLOCK() - t0
        if dt > target_s / 4 or n > 1_000_000:
            return max(1, int(n * target_s / max(dt, 1e-9)))
        n *= 4


class Timings(dict):
    """Median seconds per call of each case (a dict), with the per-block samples kept."""

    samples: dict[str, list[float]]

    def ratio(self, case: str, baseline: str) -> float:
        """The paired ratio ``case / baseline``: the median over blocks of the two cases' ratio.

        The two cases of one block run back to back, so a slow spell of the machine (this
        2-core machine's speed drifts by 10-30% within seconds) slows both and cancels out of
        their ratio; the ratio of the two medians mixes different spells.
        """
        pairs = zip(self.samples[case], self.samples[baseline], strict=True)
        return statistics.median(a / b for a, b in pairs)


def interleaved(
    cases: dict[str, Callable[[], Any]],
    blocks: int = 15,
    target_s: float = 0.05,
    sync: bool = True,
) -> Timings:
    """Time ``cases`` in interleaved blocks; return the median seconds per call of each.

    ``sync=False`` (async mode) blocks once per block, on the last call's output. The result's
    :meth:`Timings.ratio` gives the paired ratio of two cases.
    """
    numbers = {name: calibrate(fn, target_s, sync) for name, fn in cases.items()}
    samples: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for block in range(blocks):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            fn, n = cases[name], numbers[name]
            t0 = CLOCK()
            _run(fn, n, sync)
            samples[name].append((CLOCK() - t0) / n)
    out = Timings({name: statistics.median(v) for name, v in samples.items()})
    out.samples = samples
    return out


def first_calls(
    makers: dict[str, Callable[[], Callable[[], Any]]], repeats: int = 7
) -> dict[str, float]:
    """Median time of the first call (trace + compile) of freshly made functions."""
    samples: dict[str, list[float]] = {name: [] for name in makers}
    names = list(makers)
    for block in range(repeats):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            call = makers[name]()
            t0 = time.perf_counter()
            _block(call())
            samples[name].append(time.perf_counter() - t0)
    return {name: statistics.median(v) for name, v in samples.items()}


def machine() -> dict[str, Any]:
    """Describe the machine and the versions, for the results file."""
    import jax

    return {
        "python": sys.version.split()[0],
        "jax": jax.__version__,
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "backend": jax.default_backend(),
        "device": str(jax.devices()[0].device_kind),
        "loadavg": loadavg(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_results(
    name: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None
) -> Path:
    """Write ``results/<name>.json`` and return its path."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    payload = {"machine": machine(), "rows": rows, **(extra or {})}
    path.write_text(json.dumps(payload, indent=2) + "\n")
    return path


def print_table(title: str, rows: list[dict[str, Any]], columns: list[str]) -> None:
    """Print rows as an aligned table."""
    print(f"\n{title}")
    widths = {c: max(len(c), *(len(_fmt(r.get(c))) for r in rows)) for c in columns}
    print("  ".join(c.ljust(widths[c]) for c in columns))
    print("  ".join("-" * widths[c] for c in columns))
    for r in rows:
        print("  ".join(_fmt(r.get(c)).ljust(widths[c]) for c in columns))


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1000 else f"{v:.0f}"
    return "" if v is None else str(v)
