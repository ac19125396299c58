"""Per-call and first-call cost of statediff against plain JAX on the pure function.

The model (from the project's statediff issue): a 2-layer MLP 32 -> 64 -> 8 with tanh, whose
four parameters are ParamStates; loss = mean squared error on a batch of 16. Targets:

- ``sj.jit(sd.grad(loss, grad_states=params))`` per call <= 1.10x
  ``jax.jit(jax.grad(pure_loss))``;
- eager ``sd.grad(loss, grad_states=params)`` (no jit) <= 1.5x that jitted plain-JAX call;
- ``sj.jit(sd.jacfwd(mlp, grad_states=W1))`` <= 1.05x ``jax.jit(jax.jacfwd(...))``;
- first call <= 1.3x plain JAX's first call.

    python benchmarks/bench_statediff.py [--quick]
"""

from __future__ import annotations

import sys

import jax
import jax.numpy as jnp
from _harness import first_calls, interleaved, pin_one_core, print_table, write_results

import statediff as sd
import stategraph as sg
import statejax as sj


def make_model(seed: int = 0):
    k = jax.random.split(jax.random.key(seed), 4)
    params = {
        "W1": sg.ParamState(jax.random.normal(k[0], (32, 64)) * 0.1, name="W1"),
        "b1": sg.ParamState(jnp.zeros(64), name="b1"),
        "W2": sg.ParamState(jax.random.normal(k[1], (64, 8)) * 0.1, name="W2"),
        "b2": sg.ParamState(jnp.zeros(8), name="b2"),
    }
    x = jax.random.normal(k[2], (16, 32))
    y = jax.random.normal(k[3], (16, 8))

    def mlp(x):
        h = jnp.tanh(x @ params["W1"].value + params["b1"].value)
        return h @ params["W2"].value + params["b2"].value

    def loss(x, y):
        return jnp.mean((mlp(x) - y) ** 2)

    return params, x, y, mlp, loss


def pure_mlp(p, x):
    return jnp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def pure_loss(p, x, y):
    return jnp.mean((pure_mlp(p, x) - y) ** 2)


def per_call_cases() -> dict:
    params, x, y, mlp, loss = make_model()
    pv = {k: s.value for k, s in params.items()}
    w1 = pv["W1"]
    rest = {k: v for k, v in pv.items() if k != "W1"}

    plain_grad = jax.jit(jax.grad(pure_loss))
    sj_grad = sj.jit(sd.grad(loss, grad_states=params))
    eager_grad = sd.grad(loss, grad_states=params)
    plain_jac = jax.jit(jax.jacfwd(lambda w, x: pure_mlp({**rest, "W1": w}, x)))
    sj_jac = sj.jit(sd.jacfwd(mlp, grad_states=params["W1"]))
    br = jax.block_until_ready
    grad_cases = {
        "jax.jit(jax.grad)": lambda: br(plain_grad(pv, x, y)),
        "sj.jit(sd.grad)": lambda: br(sj_grad(x, y)),
        "eager sd.grad": lambda: br(eager_grad(x, y)),
    }
    jac_cases = {
        "jax.jit(jax.jacfwd)": lambda: br(plain_jac(w1, x)),
        "sj.jit(sd.jacfwd)": lambda: br(sj_jac(x)),
    }
    return grad_cases, jac_cases


def first_call_makers() -> dict:
    def make_plain():
        params, x, y, _, _ = make_model()
        pv = {k: s.value for k, s in params.items()}
        f = jax.jit(jax.grad(lambda p, x, y: pure_loss(p, x, y)))
        return lambda: jax.block_until_ready(f(pv, x, y))

    def make_stateful():
        params, x, y, _, loss = make_model()
        f = sj.jit(sd.grad(loss, grad_states=params))
        return lambda: jax.block_until_ready(f(x, y))

    return {"jax": make_plain, "statediff": make_stateful}


def main() -> int:
    quick = "--quick" in sys.argv
    core = pin_one_core()
    blocks = 5 if quick else 15
    grad_cases, jac_cases = per_call_cases()
    tg = interleaved(grad_cases, blocks=blocks)
    tj = interleaved(jac_cases, blocks=blocks)
    tf = first_calls(first_call_makers(), repeats=3 if quick else 7)
    base = tg["jax.jit(jax.grad)"]
    rows = [
        {
            "case": "sj.jit(sd.grad) MLP",
            "jax_us": base * 1e6,
            "statediff_us": tg["sj.jit(sd.grad)"] * 1e6,
            "ratio": tg["sj.jit(sd.grad)"] / base,
            "target": 1.10,
        },
        {
            "case": "eager sd.grad MLP",
            "jax_us": base * 1e6,
            "statediff_us": tg["eager sd.grad"] * 1e6,
            "ratio": tg["eager sd.grad"] / base,
            "target": 1.50,
        },
        {
            "case": "sj.jit(sd.jacfwd) wrt W1",
            "jax_us": tj["jax.jit(jax.jacfwd)"] * 1e6,
            "statediff_us": tj["sj.jit(sd.jacfwd)"] * 1e6,
            "ratio": tj["sj.jit(sd.jacfwd)"] / tj["jax.jit(jax.jacfwd)"],
            "target": 1.05,
        },
        {
            "case": "first call sj.jit(sd.grad)",
            "jax_us": tf["jax"] * 1e6,
            "statediff_us": tf["statediff"] * 1e6,
            "ratio": tf["statediff"] / tf["jax"],
            "target": 1.30,
        },
    ]
    for r in rows:
        r["ok"] = r["ratio"] <= r["target"]
    print_table(
        f"statediff vs plain JAX (median per call, pinned core {core})",
        rows,
        ["case", "jax_us", "statediff_us", "ratio", "target", "ok"],
    )
    path = write_results("statediff", rows, {"pinned_core": core})
    print(f"results written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
