"""Per-call cost of unit-aware derivatives against the same derivatives on plain arrays.

The MLP benchmark of the project's statediff-units issue: a 2-layer MLP 32 -> 64 -> 8 (tanh),
its 4 parameters in ``sg.ParamState``, an MSE loss on a batch of 16. In the unit-aware model the
parameters hold brainunit Quantities (W1 and b1 in mS, W2 and b2 in mV; the data are plain
features and targets, the output is compared in units of 1 mV); the plain model holds the same
mantissas as arrays and does the same arithmetic. Targets: per call

- ``sj.jit(sd.jacfwd(loss, grad_states=params, unit_aware=True))`` <= 1.10x the plain call,
- ``sj.jit(sd.grad(loss, grad_states=params, unit_aware=True))`` <= 1.10x the plain call.

Reported for information: eager calls (no ``sj.jit``), and the jitted calls with the data in
units too (inputs and targets in mV: two more Quantity arguments per call, whose units JAX's
dispatch compares on every call, at about 1-2 us each with brainunit 0.5). Each figure is the
median over interleaved blocks of the mean time per call (``block_until_ready`` on every
result).

    python benchmarks/bench_units.py [--quick]
"""

from __future__ import annotations

import os
import statistics
import sys
import time
from typing import Any

import brainunit as u
import jax
import jax.numpy as jnp
import numpy as np
from _harness import calibrate, pin_one_core, print_table, write_results

import statediff as sd
import statediff_units  # noqa: F401  (registers the units backend)
import stategraph as sg
import statejax as sj

TARGET = 1.10


def _mlp(units: bool, data_units: bool = False) -> tuple[dict, Any, tuple]:
    """The MLP and its batch; with ``units``, parameters (and with ``data_units`` data) in units.

    Parameters in units, data plain: ``x @ W1 + b1`` is in mS, ``h @ W2 + b2`` in mV, and the
    loss compares ``out / (1 mV)`` with the plain targets. Data in units too: ``x`` in mV, W1 in
    mS, b1 in uA, the targets in mV and the loss in mV^2. The plain model does the same
    arithmetic on the mantissas (including the divisions by 1).
    """
    k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
    mantissas = {
        "w1": jax.random.normal(k1, (32, 64)) * 0.2,
        "b1": jnp.zeros(64),
        "w2": jax.random.normal(k2, (64, 8)) * 0.2,
        "b2": jnp.zeros(8),
    }
    x = jax.random.normal(k3, (16, 32))
    y = jax.random.normal(k4, (16, 8))
    one_in, one_out = 1.0, 1.0
    if units:
        hidden_unit = u.uA if data_units else u.mS
        unit = {"w1": u.mS, "b1": hidden_unit, "w2": u.mV, "b2": u.mV}
        params = {k: sg.ParamState(v * unit[k], name=k) for k, v in mantissas.items()}
        one_in = 1.0 * hidden_unit
        if data_units:
            x, y = x * u.mV, y * u.mV
        else:
            one_out = 1.0 * u.mV
    else:
        params = {k: sg.ParamState(v, name=k) for k, v in mantissas.items()}

    def loss(x, y):
        z = (x @ params["w1"].value + params["b1"].value) / one_in
        h = jnp.tanh(u.maybe_decimal(z) if units else z)
        out = (h @ params["w2"].value + params["b2"].value) / one_out
        if units and not data_units:
            out = u.maybe_decimal(out)
        return ((out - y) ** 2).mean()

    return params, loss, (x, y)


def _ready(tree):
    return jax.block_until_ready(jax.tree.leaves(tree))


def cases() -> dict[str, dict]:
    """``{case: {"plain": (fn, args), "units": (fn, args)}}``; the first two are the targets."""
    made: dict[str, dict] = {}
    for units in (False, True):
        kind = "units" if units else "plain"
        for data_units in (False, True):
            params, loss, args = _mlp(units, data_units)
            for name, api in (("jacfwd", sd.jacfwd), ("grad", sd.grad)):
                eager = api(loss, grad_states=params, unit_aware=units)
                if not data_units:
                    made.setdefault(f"sj.jit({name})", {})[kind] = (sj.jit(eager), args)
                    made.setdefault(f"eager {name}", {})[kind] = (eager, args)
                else:
                    tag = f"sj.jit({name}), data in units too"
                    made.setdefault(tag, {})[kind] = (sj.jit(eager), args)
    return made


def check(made: dict[str, dict]) -> None:
    """The unit-aware results are the plain ones with units attached."""
    for name, pair in made.items():
        (fp, ap), (fu, au) = pair["plain"], pair["units"]
        plain, with_units = fp(*ap), fu(*au)
        for k in plain:
            got = with_units[k]
            assert isinstance(got, u.Quantity), (name, k, got)
            np.testing.assert_allclose(got.mantissa, plain[k], rtol=2e-5, atol=1e-6)


def interleaved_both(
    cases: dict[str, Any], blocks: int, target_s: float
) -> tuple[dict[str, float], dict[str, float]]:
    """As ``_harness.interleaved``, also timing CPU time (``time.process_time``).

    On a shared machine the wall-clock time includes waiting for the core; the process's CPU
    time (all its threads, pinned to one core) is the work done and drifts much less.
    """
    numbers = {name: calibrate(fn, target_s) for name, fn in cases.items()}
    wall: dict[str, list[float]] = {name: [] for name in cases}
    cpu: dict[str, list[float]] = {name: [] for name in cases}
    names = list(cases)
    for block in range(blocks):
        shift = block % len(names)
        for name in names[shift:] + names[:shift]:
            fn, n = cases[name], numbers[name]
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(n):
                fn()
            wall[name].append((time.perf_counter() - t0) / n)
            cpu[name].append((time.process_time() - c0) / n)
    med = statistics.median
    return {k: med(v) for k, v in wall.items()}, {k: med(v) for k, v in cpu.items()}


def main(quick: bool) -> None:
    core = pin_one_core()
    made = cases()
    check(made)
    rows = []
    for name, pair in made.items():
        fns = {kind: (lambda f=f, a=a: _ready(f(*a))) for kind, (f, a) in pair.items()}
        wall, cpu = interleaved_both(
            fns, blocks=5 if quick else 41, target_s=0.02 if quick else 0.03
        )
        ratio = wall["units"] / wall["plain"]
        cpu_ratio = cpu["units"] / cpu["plain"]
        required = name in ("sj.jit(jacfwd)", "sj.jit(grad)")
        rows.append(
            {
                "case": name,
                "plain_us": wall["plain"] * 1e6,
                "units_us": wall["units"] * 1e6,
                "ratio": ratio,
                "cpu_plain_us": cpu["plain"] * 1e6,
                "cpu_units_us": cpu["units"] * 1e6,
                "cpu_ratio": cpu_ratio,
                "target": f"<= {TARGET:.2f}" if required else "(info)",
                "ok": (ratio <= TARGET) if required else None,
            }
        )
    print_table(
        "unit-aware vs plain (MLP 32-64-8, batch 16, 4 Quantity ParamStates; median per call; "
        "wall clock, then CPU time)",
        rows,
        ["case", "plain_us", "units_us", "ratio", "cpu_plain_us", "cpu_units_us", "cpu_ratio"]
        + ["target", "ok"],
    )
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    extra = {"pinned_core": core, "quick": quick, "load_average_1min": load}
    path = write_results("units", rows, extra)
    print(f"load average (1 min) at the end: {load}")
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main("--quick" in sys.argv[1:])
