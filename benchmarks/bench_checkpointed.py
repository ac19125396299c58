"""Reverse-mode memory of ``sj.checkpointed_scan`` against plain ``sj.scan`` (and plain JAX).

The model (from the project's issue 9): a recurrent network ``h <- tanh(W h + U x)`` with
hidden size 64 and input size 16, ``W`` and ``U`` ParamStates, ``h`` a ShortTermState,
run for 10,000 steps; the loss is the sum of the hidden states. The figure is the compiled
temporary memory (``jax.jit(...).lower(...).compile().memory_analysis().temp_size_in_bytes``)
of ``sd.grad(loss, grad_states=params)``: the plain scan keeps every step's intermediates
for the backward pass (memory linear in the length); the checkpointed scan keeps one carry
per step of each nesting level and recomputes the rest (memory growing like log(length)).
The gradients of both are checked against ``jax.grad`` of the pure function. Run times per
call (after compilation) are shown too: checkpointing trades compute for memory.

    python benchmarks/bench_checkpointed.py [--quick]
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from _harness import print_table, write_results

import statediff as sd
import stategraph as sg
import statejax as sj

HIDDEN, INPUTS = 64, 16


def make(seed: int = 0):
    k1, k2 = jax.random.split(jax.random.key(seed))
    params = {
        "W": sg.ParamState(jax.random.normal(k1, (HIDDEN, HIDDEN)) * 0.1, name="W"),
        "U": sg.ParamState(jax.random.normal(k2, (HIDDEN, INPUTS)) * 0.1, name="U"),
    }
    h = sg.ShortTermState(jnp.zeros(HIDDEN), name="h")
    return params, h


def stateful_grad(params, h, loop, **kw):
    def step(c, x):
        h.value = jnp.tanh(params["W"].value @ h.value + params["U"].value @ x)
        return c + h.value.sum(), None

    def loss(xs):
        h.value = jnp.zeros(HIDDEN)
        return loop(step, jnp.zeros(()), xs, **kw)[0]

    return sj.jit(sd.grad(loss, grad_states=params))


def pure_loss(p, xs):
    def step(carry, x):
        c, hv = carry
        hv = jnp.tanh(p["W"] @ hv + p["U"] @ x)
        return (c + hv.sum(), hv), None

    return jax.lax.scan(step, (jnp.zeros(()), jnp.zeros(HIDDEN)), xs)[0][0]


def measure(fn, *args, repeat: int):
    t0 = time.perf_counter()
    compiled = fn.lower(*args).compile()
    compile_s = time.perf_counter() - t0
    stats = compiled.memory_analysis()
    out = fn(*args)
    jax.block_until_ready(out)
    t0 = time.perf_counter()
    for _ in range(repeat):
        out = fn(*args)
    jax.block_until_ready(out)
    run_ms = (time.perf_counter() - t0) / repeat * 1e3
    temp = None if stats is None else stats.temp_size_in_bytes
    return out, temp, compile_s, run_ms


def main(quick: bool = False) -> list[dict]:
    lengths = [1_000, 10_000] if not quick else [1_000]
    rows = []
    for n in lengths:
        params, h = make()
        xs = jax.random.normal(jax.random.key(1), (n, INPUTS))
        ref = jax.grad(pure_loss)({k: v.value for k, v in params.items()}, xs)
        cases = [
            (
                "plain jax.lax.scan (pure)",
                jax.jit(jax.grad(pure_loss)),
                ({k: v.value for k, v in params.items()}, xs),
            ),
            ("sj.scan", stateful_grad(params, h, sj.scan), (xs,)),
            ("sj.checkpointed_scan base=16", stateful_grad(params, h, sj.checkpointed_scan), (xs,)),
            (
                "sj.checkpointed_scan base=4",
                stateful_grad(params, h, sj.checkpointed_scan, base=4),
                (xs,),
            ),
        ]
        for name, fn, args in cases:
            out, temp, compile_s, run_ms = measure(fn, *args, repeat=3 if quick else 5)
            for k in ref:
                scale = float(jnp.abs(ref[k]).max())
                np.testing.assert_allclose(out[k], ref[k], rtol=2e-3, atol=1e-4 * scale)
            rows.append(
                {
                    "steps": n,
                    "case": name,
                    "temp_MiB": None if temp is None else temp / 2**20,
                    "compile_s": compile_s,
                    "run_ms": run_ms,
                }
            )
    print_table(
        "sd.grad through a 64-unit RNN: compiled temporary memory",
        rows,
        ["steps", "case", "temp_MiB", "compile_s", "run_ms"],
    )
    write_results("bench_checkpointed", rows)
    return rows


if __name__ == "__main__":
    main(quick="--quick" in sys.argv)
