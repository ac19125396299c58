"""Why ``sj.jit``'s hot path is generated code: against the same hot path as a plain loop.

For N = 1, 10, 100 states read and written per call, three callers of the *same* compiled
function, timed in async mode (one sync per block), interleaved:

- ``jax.jit``: plain JAX on the pure function, state values passed and returned by hand;
- ``generated``: ``sj.jit``'s generated one-frame function (``statejax._src.fastpath``);
- ``plain code``: the same steps written as ordinary Python (a loop over the plan's weak
  references, ``*args, **kwargs`` forwarding, a loop writing back).

    python benchmarks/bench_hot_path.py [--quick] [--pin=none|main|process]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from _harness import argv_option, interleaved, loadavg, pin_regime, print_table, write_results

import stategraph as sg
import statejax as sj
from stategraph.extend import ACTIVE
from statejax._src.fastpath import Stale
from statejax._src.jax_compat import EVAL_TRACE, TRACE_STATE


def plain_code_call(sf: sj.StatefulFunction):
    """The hot path of ``sf``'s current plan, as ordinary Python code."""
    plan = sf._plan
    read_refs, write_refs, jitted, slow = (
        plan.read_refs,
        plan.write_refs,
        plan.jitted,
        sf._call_slow,
    )

    def call(*args, **kwargs):
        if ACTIVE.count or TRACE_STATE.value is not EVAL_TRACE:
            return slow(args, kwargs)
        try:
            values = [r()._value for r in read_refs]
            written = [r() for r in write_refs]
            res = jitted(*values, *args, **kwargs)
        except (Stale, AttributeError):
            return slow(args, kwargs)
        for state, value in zip(written, res[1:], strict=True):
            state._value = value
        return res[0]

    return call


def case(n: int) -> dict:
    states = [sg.ShortTermState(jnp.full((4,), float(i)), name=f"s{i}") for i in range(n)]
    a = jnp.float32(0.5)

    @sj.jit
    def step(a):
        total = 0.0
        for s in states:
            s.value = s.value * a + 1.0
            total = total + s.value[0]
        return total

    @jax.jit
    def pure(values, a):
        new = [v * a + 1.0 for v in values]
        total = 0.0
        for v in new:
            total = total + v[0]
        return total, new

    step(a)
    loop = plain_code_call(step.stateful)
    carry = {"v": [s.value for s in states]}

    def plain():
        out, carry["v"] = pure(carry["v"], a)
        return out

    return {"jax.jit": plain, "generated": lambda: step(a), "plain code": lambda: loop(a)}


def main() -> int:
    quick = "--quick" in sys.argv
    regime = argv_option("pin", "main")
    core = pin_regime(regime)
    rows = []
    for n in (1, 10, 100):
        t = interleaved(
            case(n), blocks=5 if quick else 21, target_s=0.02 if quick else 0.05, sync=False
        )
        rows.append(
            {
                "states": n,
                "jax_us": t["jax.jit"] * 1e6,
                "generated_us": t["generated"] * 1e6,
                "plain_code_us": t["plain code"] * 1e6,
                "generated_ratio": t["generated"] / t["jax.jit"],
                "plain_code_ratio": t["plain code"] / t["jax.jit"],
            }
        )
    print_table(
        f"sj.jit hot path, generated vs plain code, async, regime {regime!r} (core {core}), "
        f"load {loadavg()}",
        rows,
        [
            "states",
            "jax_us",
            "generated_us",
            "plain_code_us",
            "generated_ratio",
            "plain_code_ratio",
        ],
    )
    path = write_results(f"hot_path-{regime}", rows, {"regime": regime, "pinned_core": core})
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
