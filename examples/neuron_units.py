# requires: brainunit, statediff_units
"""Unit-aware sensitivities of a Hodgkin-Huxley neuron, checked by finite differences.

Three Hodgkin-Huxley neurons (one per stimulus amplitude) share their maximal conductances
``g_Na``, ``g_K`` and ``g_L``, held as ``sg.ParamState`` Quantities in mS/cm^2. The membrane
potential (mV) and the gating variables are states updated in place by ``step(i_ext)``. We

1. simulate a current step with ``sj.for_loop`` (voltages in mV, currents in uA/cm^2, the
   capacitance in uF/cm^2, time in ms: brainunit checks every formula);
2. take ``sd.jacfwd(final_v, grad_states=..., unit_aware=True)``: the sensitivity of the final
   membrane potential to each conductance, which comes back in mV / (mS/cm^2);
3. check every number against central finite differences (re-running the simulation from the
   same initial state) and exit with status 1 on disagreement.

Run it with ``python examples/neuron_units.py``; it takes a few seconds.
"""

from __future__ import annotations

import sys
import time

import jax

# Float64 makes the finite-difference reference accurate; set before any array exists.
jax.config.update("jax_enable_x64", True)

import brainunit as u  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import statediff as sd  # noqa: E402
import statediff_units  # noqa: E402, F401  (registers unit support; statediff also finds it alone)
import stategraph as sg  # noqa: E402
import statejax as sj  # noqa: E402

MS_PER_CM2 = u.mS / u.cm**2
UA_PER_CM2 = u.uA / u.cm**2
DT = 0.01 * u.ms
T_TOTAL = 6.0  # ms
RTOL = 1e-4  # agreement required between jacfwd and finite differences


def _x_over_expm1(x):
    """``x / (1 - exp(-x))``, smooth at 0 (with a gradient-safe double ``where``)."""
    small = jnp.abs(x) < 1e-6
    safe = jnp.where(small, 1.0, x)
    return jnp.where(small, 1.0 + x / 2, safe / -jnp.expm1(-safe))


def rates(v):
    """Opening and closing rates (1/ms) of the m, h and n gates at potential ``v``."""
    mv = v.to_decimal(u.mV)  # the classic formulas are written for v in mV
    per_ms = 1 / u.ms
    a_m = _x_over_expm1((mv + 40.0) / 10.0) * per_ms
    b_m = 4.0 * jnp.exp(-(mv + 65.0) / 18.0) * per_ms
    a_h = 0.07 * jnp.exp(-(mv + 65.0) / 20.0) * per_ms
    b_h = 1.0 / (1.0 + jnp.exp(-(mv + 35.0) / 10.0)) * per_ms
    a_n = 0.1 * _x_over_expm1((mv + 55.0) / 10.0) * per_ms
    b_n = 0.125 * jnp.exp(-(mv + 65.0) / 80.0) * per_ms
    return (a_m, b_m), (a_h, b_h), (a_n, b_n)


class HHNeurons:
    """``n`` Hodgkin-Huxley point neurons sharing their maximal conductances."""

    def __init__(self, n: int) -> None:
        self.g_na = sg.ParamState(jnp.array(120.0) * MS_PER_CM2, name="g_Na")
        self.g_k = sg.ParamState(jnp.array(36.0) * MS_PER_CM2, name="g_K")
        self.g_l = sg.ParamState(jnp.array(0.3) * MS_PER_CM2, name="g_L")
        self.c_m = 1.0 * u.uF / u.cm**2
        self.e_na, self.e_k, self.e_l = 50.0 * u.mV, -77.0 * u.mV, -54.387 * u.mV
        v0 = jnp.full(n, -65.0) * u.mV
        self.v = sg.ShortTermState(v0, name="V")
        gates = [a / (a + b) for a, b in rates(v0)]  # steady state at rest
        self.m, self.h, self.n = (
            sg.ShortTermState(x, name=k) for x, k in zip(gates, "mhn", strict=True)
        )

    def step(self, i_ext):
        """One forward-Euler step of ``DT`` under the external current ``i_ext`` (uA/cm^2)."""
        v, m, h, n = self.v.value, self.m.value, self.h.value, self.n.value
        i_na = self.g_na.value * m**3 * h * (v - self.e_na)
        i_k = self.g_k.value * n**4 * (v - self.e_k)
        i_l = self.g_l.value * (v - self.e_l)
        (a_m, b_m), (a_h, b_h), (a_n, b_n) = rates(v)
        self.m.value = m + DT * (a_m * (1 - m) - b_m * m)
        self.h.value = h + DT * (a_h * (1 - h) - b_h * h)
        self.n.value = n + DT * (a_n * (1 - n) - b_n * n)
        self.v.value = v + DT * (i_ext - i_na - i_k - i_l) / self.c_m

    def conductances(self) -> dict[str, sg.ParamState]:
        return {"g_Na": self.g_na, "g_K": self.g_k, "g_L": self.g_l}


def stimulus(amplitudes) -> u.Quantity:
    """Current steps (uA/cm^2) from 1 ms to 4 ms, one column per neuron: shape (T, n)."""
    t = jnp.arange(int(round(T_TOTAL / DT.to_decimal(u.ms)))) * DT.to_decimal(u.ms)
    on = ((t >= 1.0) & (t < 4.0)).astype(jnp.float64)
    return on[:, None] * amplitudes[None, :] * UA_PER_CM2


def main() -> int:
    start = time.perf_counter()
    model = HHNeurons(3)
    i_ext = stimulus(jnp.array([2.0, 6.0, 12.0]))
    initial = sg.snapshot(model)

    def final_v(currents):
        sj.for_loop(model.step, currents)
        return model.v.value

    # 1-2. Simulate and differentiate in one call: the final potentials and their sensitivity
    # to each conductance, in mV / (mS/cm^2).
    jac, v_end = sd.jacfwd(
        final_v, grad_states=model.conductances(), unit_aware=True, return_value=True
    )(i_ext)

    # 3. Central finite differences, each run from the same initial state.
    run = sj.jit(final_v)

    def simulate(name, value):
        sg.restore(model, initial)
        model.conductances()[name].value = value
        return run(i_ext)

    expected_unit = u.mV / MS_PER_CM2
    ok = True
    print(f"final V: {v_end}  (stimulus 2, 6, 12 uA/cm^2 for 3 ms)")
    print(f"{'param':>6}  {'neuron':>6}  {'jacfwd':>14}  {'finite diff.':>14}  rel. error")
    for name, block in jac.items():
        sg.restore(model, initial)
        base = model.conductances()[name].value
        eps = 1e-5 * base
        fd = (simulate(name, base + eps) - simulate(name, base - eps)) / (2 * eps)
        assert isinstance(block, u.Quantity) and block.unit == expected_unit, block
        got = np.asarray(block.to_decimal(expected_unit))
        ref = np.asarray(fd.to_decimal(expected_unit))
        err = np.abs(got - ref) / np.maximum(np.abs(ref), 1e-3)
        for k in range(got.size):
            print(f"{name:>6}  {k:>6}  {got[k]:>14.6f}  {ref[k]:>14.6f}  {err[k]:.1e}")
        ok &= bool(np.all(err < RTOL))
    sg.restore(model, initial)
    print(f"unit of every block: {expected_unit}")
    print(f"{'agreement' if ok else 'DISAGREEMENT'} within rtol={RTOL}")
    print(f"took {time.perf_counter() - start:.1f} s")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
