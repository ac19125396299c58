"""Per-call and first-call cost of statediff against plain JAX on the pure function.

The model (from the project's statediff issue): a 2-layer MLP 32 -> 64 -> 8 with tanh, whose
four parameters are ParamStates; loss = mean squared error on a batch of 16. Targets:

- ``sj.jit(sd.grad(loss, grad_states=params))`` per call <= 1.10x
  ``jax.jit(jax.grad(pure_loss))``;
- eager ``sd.grad(loss, grad_states=params)`` (no jit) <= 1.5x that jitted plain-JAX call;
- ``sj.jit(sd.jacfwd(mlp, grad_states=W1))`` <= 1.05x ``jax.jit(jax.jacfwd(...))``;
- first call <= 1.3x plain JAX's first call;
- eager siblings (issue 9): eager ``sd.jvp``, ``sd.vjp`` (forward and ``vjp_fn``),
  ``sd.vector_grad`` and ``sd.linearize`` <= 1.05x the jitted plain-JAX equivalent
  (``jax.jit(lambda *a: jax.vjp(...))`` etc.); ``--siblings`` runs only these.

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


def eager_sibling_cases() -> dict[str, dict]:
    """Per family, ``{name: call}``: the eager statediff call and its jitted plain-JAX twin."""
    params, x, y, mlp, loss = make_model()
    pv = {k: s.value for k, s in params.items()}
    tx = jnp.ones_like(x)
    ct = jnp.ones((16, 8))
    br = jax.block_until_ready

    plain_jvp = jax.jit(lambda p, x, t: jax.jvp(lambda x: pure_mlp(p, x), (x,), (t,)))
    plain_vjp = jax.jit(lambda p, x: jax.vjp(lambda p: pure_mlp(p, x), p))
    plain_pull = jax.jit(lambda fn, c: fn(c))
    _, plain_fn = plain_vjp(pv, x)
    _, sd_fn = sd.vjp(mlp, x, grad_states=params, argnums=None)
    plain_vg = jax.jit(
        lambda p, x: jax.vjp(lambda p: pure_mlp(p, x), p)[1](jnp.ones((16, 8)))[0]
    )
    sd_vg = sd.vector_grad(mlp, grad_states=params)
    plain_lin = jax.jit(lambda p, x: jax.linearize(lambda x: pure_mlp(p, x), x))
    return {
        "jvp": {
            "jax.jit(jax.jvp)": lambda: br(plain_jvp(pv, x, tx)),
            "eager sd.jvp": lambda: br(sd.jvp(mlp, (x,), (tx,))),
        },
        "vjp": {
            "jax.jit(jax.vjp)": lambda: br(plain_vjp(pv, x)),
            "eager sd.vjp": lambda: br(sd.vjp(mlp, x, grad_states=params, argnums=None)),
        },
        "vjp_fn": {
            "jax.jit(vjp_fn)": lambda: br(plain_pull(plain_fn, ct)),
            "sd vjp_fn": lambda: br(sd_fn(ct)),
        },
        "vector_grad": {
            "jax.jit(vjp(ones))": lambda: br(plain_vg(pv, x)),
            "eager sd.vector_grad": lambda: br(sd_vg(x)),
        },
        "linearize": {
            "jax.jit(jax.linearize)": lambda: br(plain_lin(pv, x)),
            "eager sd.linearize": lambda: br(sd.linearize(mlp, x)),
        },
    }


def eager_sibling_rows(blocks: int) -> list[dict]:
    """Rows of the eager-siblings table (target 1.05x each)."""
    rows = []
    for family, cases in eager_sibling_cases().items():
        (base_name, ours_name) = list(cases)
        t = interleaved(cases, blocks=blocks)
        rows.append(
            {
                "case": f"eager {family} MLP",
                "jax_us": t[base_name] * 1e6,
                "statediff_us": t[ours_name] * 1e6,
                "ratio": t[ours_name] / t[base_name],
                "target": 1.05,
                "ok": t[ours_name] / t[base_name] <= 1.05,
            }
        )
    return rows


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
    if "--siblings" in sys.argv:
        rows = eager_sibling_rows(blocks)
        columns = ["case", "jax_us", "statediff_us", "ratio", "target", "ok"]
        print_table(f"eager siblings vs jitted plain JAX (pinned core {core})", rows, columns)
        return 0
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
    rows += eager_sibling_rows(blocks)
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
