"""Per-call and first-call cost of ``statejax.jit`` against ``jax.jit`` on the pure function.

Cases (targets from the project's statejax issue):

- recurrent step: 64 hidden units in a ShortTermState, 64x64 weights in a ParamState, the
  hidden state written every call; ``sj.jit`` per call <= 1.10x plain ``jax.jit`` threading
  the state through explicitly;
- N small states read and written per call (N = 1, 10, 100, 1000): <= 1.20x at N = 100, and the
  extra cost per state (slope of statejax minus plain JAX) under 0.3 us;
- first call (trace + compile): <= 1.3x plain ``jax.jit``'s first call.

    python benchmarks/bench_statejax.py [--quick]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from _harness import first_calls, interleaved, pin_one_core, print_table, write_results

import stategraph as sg
import statejax as sj


def recurrent_case() -> tuple[dict, dict]:
    key = jax.random.key(0)
    w = sg.ParamState(jax.random.normal(key, (64, 64)) * 0.1, name="W")
    h = sg.ShortTermState(jnp.zeros(64), name="h")
    x = jnp.ones(64)

    @sj.jit
    def step(x):
        h.value = jnp.tanh(w.value @ h.value + x)
        return h.value.sum()

    @jax.jit
    def pure_step(w, h, x):
        h = jnp.tanh(w @ h + x)
        return h.sum(), h

    carry = {"h": h.value}
    wv = w.value

    def plain():
        out, carry["h"] = pure_step(wv, carry["h"], x)
        return jax.block_until_ready(out)

    def stateful():
        return jax.block_until_ready(step(x))

    return {"jax.jit": plain, "sj.jit": stateful}, {}


def many_states_case(n: int) -> dict:
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
    def pure_step(values, a):
        new = [v * a + 1.0 for v in values]
        total = 0.0
        for v in new:
            total = total + v[0]
        return total, new

    carry = {"v": [s.value for s in states]}

    def plain():
        out, carry["v"] = pure_step(carry["v"], a)
        return jax.block_until_ready(out)

    def stateful():
        return jax.block_until_ready(step(a))

    return {"jax.jit": plain, "sj.jit": stateful}


def first_call_makers() -> dict:
    key = jax.random.key(1)
    w0 = jax.random.normal(key, (64, 64)) * 0.1
    x = jnp.ones(64)

    def make_plain():
        def pure_step(w, h, x):
            h = jnp.tanh(w @ h + x)
            return h.sum(), h

        f = jax.jit(pure_step)
        h0 = jnp.zeros(64)
        return lambda: jax.block_until_ready(f(w0, h0, x))

    def make_stateful():
        w = sg.ParamState(w0)
        h = sg.ShortTermState(jnp.zeros(64))

        def step(x):
            h.value = jnp.tanh(w.value @ h.value + x)
            return h.value.sum()

        f = sj.jit(step)
        return lambda: jax.block_until_ready(f(x))

    return {"jax.jit": make_plain, "sj.jit": make_stateful}


def main() -> int:
    quick = "--quick" in sys.argv
    core = pin_one_core()
    blocks = 5 if quick else 15
    rows = []

    cases, _ = recurrent_case()
    t = interleaved(cases, blocks=blocks)
    rows.append(
        {
            "case": "recurrent step (64 hidden)",
            "jax_us": t["jax.jit"] * 1e6,
            "statejax_us": t["sj.jit"] * 1e6,
            "ratio": t["sj.jit"] / t["jax.jit"],
            "target": 1.10,
        }
    )

    per_n = {}
    for n in (1, 10, 100, 1000):
        t = interleaved(many_states_case(n), blocks=blocks if n < 1000 else 2 * blocks)
        per_n[n] = t
        rows.append(
            {
                "case": f"{n} states read+written",
                "jax_us": t["jax.jit"] * 1e6,
                "statejax_us": t["sj.jit"] * 1e6,
                "ratio": t["sj.jit"] / t["jax.jit"],
                "target": 1.20 if n == 100 else None,
            }
        )
    extra = [(per_n[n]["sj.jit"] - per_n[n]["jax.jit"]) for n in (1, 1000)]
    per_state_overhead_us = (extra[1] - extra[0]) / 999 * 1e6
    per_state_total_us = (per_n[1000]["sj.jit"] - per_n[1]["sj.jit"]) / 999 * 1e6
    per_state_jax_us = (per_n[1000]["jax.jit"] - per_n[1]["jax.jit"]) / 999 * 1e6

    t = first_calls(first_call_makers(), repeats=3 if quick else 7)
    rows.append(
        {
            "case": "first call (trace+compile)",
            "jax_us": t["jax.jit"] * 1e6,
            "statejax_us": t["sj.jit"] * 1e6,
            "ratio": t["sj.jit"] / t["jax.jit"],
            "target": 1.30,
        }
    )
    for r in rows:
        r["ok"] = None if r["target"] is None else r["ratio"] <= r["target"]
    print_table(
        f"statejax vs jax.jit (median per call, pinned core {core})",
        rows,
        ["case", "jax_us", "statejax_us", "ratio", "target", "ok"],
    )
    print(
        f"\nextra cost per state of statejax over jax.jit: {per_state_overhead_us:.3f} us "
        f"(target < 0.3 us); per state in total: statejax {per_state_total_us:.3f} us, "
        f"jax.jit {per_state_jax_us:.3f} us"
    )
    path = write_results(
        "statejax",
        rows,
        {
            "per_state_overhead_us": per_state_overhead_us,
            "per_state_total_us": per_state_total_us,
            "per_state_jax_us": per_state_jax_us,
            "pinned_core": core,
        },
    )
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
