"""Cost of ``state.value`` outside any trace, against a plain Python property.

Both hold the same JAX array. Reads and writes are timed with ``timeit`` in interleaved blocks
(the cases take turns, in a rotating order, so drifts of the machine hit all of them alike);
each case's figure is the median over the blocks, in nanoseconds per operation. A table is
printed and the results are written to ``benchmarks/results/state_access.json``.

    python benchmarks/bench_state_access.py [--repeats 15] [--number 200000]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import timeit
from datetime import UTC, datetime
from pathlib import Path

import jax
import jax.numpy as jnp

import stategraph as sg

RESULTS = Path(__file__).resolve().parent / "results" / "state_access.json"


class PlainHolder:
    """The baseline: a plain class whose ``value`` property holds the array."""

    def __init__(self, value):
        self._value = value

    @property
    def value(self):
        return self._value

    @value.setter
    def value(self, new):
        self._value = new


def make_cases():
    x = jnp.zeros(3)
    new = jnp.ones(3)
    state = sg.State(x)
    plain = PlainHolder(x)
    namespace = {"state": state, "plain": plain, "new": new}
    # (case, statement); the baseline of each operation comes first.
    cases = {
        "read/plain": "plain.value",
        "read/state": "state.value",
        "write/plain": "plain.value = new",
        "write/state": "state.value = new",
    }
    return cases, namespace


def run(repeats: int, number: int) -> dict[str, list[float]]:
    cases, namespace = make_cases()
    timers = {name: timeit.Timer(stmt, globals=namespace) for name, stmt in cases.items()}
    for timer in timers.values():  # warm up
        timer.timeit(number // 10 or 1)
    samples: dict[str, list[float]] = {name: [] for name in timers}
    names = list(timers)
    for block in range(repeats):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            seconds = timers[name].timeit(number)
            samples[name].append(seconds / number * 1e9)
    return samples


def summarize(samples: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    summary = {}
    for name, values in samples.items():
        summary[name] = {
            "median_ns": statistics.median(values),
            "min_ns": min(values),
            "max_ns": max(values),
        }
    for op in ("read", "write"):
        base = summary[f"{op}/plain"]["median_ns"]
        for name in (f"{op}/plain", f"{op}/state"):
            summary[name]["ratio_to_plain"] = summary[name]["median_ns"] / base
    return summary


def print_table(summary: dict[str, dict[str, float]]) -> None:
    header = f"{'case':<14}{'median ns/op':>14}{'min':>10}{'max':>10}{'x plain':>10}"
    print(header)
    print("-" * len(header))
    for name, row in summary.items():
        print(
            f"{name:<14}{row['median_ns']:>14.1f}{row['min_ns']:>10.1f}"
            f"{row['max_ns']:>10.1f}{row['ratio_to_plain']:>10.2f}"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="interleaved blocks per case")
    parser.add_argument("--number", type=int, default=200_000, help="operations per block")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON results file")
    args = parser.parse_args(argv)

    samples = run(args.repeats, args.number)
    summary = summarize(samples)
    print(f"state.value vs a plain property ({args.repeats} blocks x {args.number} ops)")
    print_table(summary)

    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "benchmark": "state_access",
        "description": "state.value read/write outside any trace vs a plain Python property",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": sys.version.split()[0],
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "jax": jax.__version__,
            "stategraph": sg.__version__,
            "backend": jax.default_backend(),
        },
        "method": {
            "repeats": args.repeats,
            "number": args.number,
            "statistic": "median over interleaved blocks, ns per operation",
        },
        "results": summary,
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
