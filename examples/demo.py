# requires: matplotlib
"""Project demo: exact Jacobians of a stateful recurrent network, checked by finite differences.

A small network of leaky rate neurons is written the way a brainstate user writes it: a class
whose parameters are ``sg.ParamState`` objects and whose membrane potentials are an
``sg.HiddenState``, updated in place by ``update(x)``. We

1. simulate T steps with ``sj.for_loop`` (the potentials hold their final value afterwards);
2. take ``sd.jacfwd`` of the final potentials with respect to every parameter
   (``grad_states=``) and the whole input sequence (``argnums=0``), in one call;
3. check every Jacobian block against central finite differences, each computed by re-running
   the simulation from the same initial state (states are mutable: they are reset with
   ``sg.snapshot`` / ``sg.restore`` before every run);
4. print a table and save a heat map of the Jacobians.

Run it with ``python3 -m nox -s demo`` or ``python examples/demo.py [--out PATH]``. The PNG goes
to ``examples/output/demo_jacobian.png`` (or ``$EXAMPLES_OUTPUT_DIR/demo_jacobian.png``). It exits
with status 1 if any block disagrees with finite differences.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import jax

# Float64 makes the finite-difference reference accurate to ~1e-9; set before any array exists.
jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import statediff as sd  # noqa: E402
import stategraph as sg  # noqa: E402
import statejax as sj  # noqa: E402

N_NEURONS = 24
N_INPUTS = 4
N_STEPS = 80
DT = 0.5  # ms
FD_EPS = 1e-6
RTOL = 1e-6  # max |jac - fd| <= RTOL * max(1, max |jac|)
OUTPUT_DIR = Path(
    os.environ.get("EXAMPLES_OUTPUT_DIR") or Path(__file__).resolve().parent / "output"
)
DEFAULT_OUT = OUTPUT_DIR / "demo_jacobian.png"


class LeakyRateNetwork:
    """Leaky integrator neurons with a smooth (tanh) firing rate, recurrently connected.

    tau_i dv_i/dt = -v_i + sum_j W_ij tanh(v_j) + sum_k W_in_ik x_k + b_i   (Euler, step dt)
    """

    def __init__(self, n: int, n_in: int, dt: float, rng: np.random.Generator) -> None:
        self.dt = dt
        # Parameters: what we differentiate with respect to.
        w = 1.2 * rng.standard_normal((n, n)) / np.sqrt(n)  # recurrent gain 1.2
        self.W = sg.ParamState(jnp.asarray(w), name="W")
        self.W_in = sg.ParamState(jnp.asarray(rng.standard_normal((n, n_in))), name="W_in")
        self.tau = sg.ParamState(jnp.asarray(rng.uniform(5.0, 15.0, n)), name="tau")  # ms
        self.b = sg.ParamState(jnp.asarray(0.1 * rng.standard_normal(n)), name="b")
        # Dynamical state: the membrane potentials, updated in place every step.
        self.v = sg.HiddenState(jnp.zeros(n), name="v")

    def update(self, x: jax.Array) -> jax.Array:
        v = self.v.value
        drive = self.W.value @ jnp.tanh(v) + self.W_in.value @ x + self.b.value
        self.v.value = v + self.dt * (drive - v) / self.tau.value
        return self.v.value


def make_inputs(rng: np.random.Generator) -> jax.Array:
    """A (T, n_in) input: slow sinusoids plus a little noise."""
    t = np.arange(N_STEPS)[:, None] * DT
    freqs = np.linspace(0.02, 0.08, N_INPUTS)[None, :]
    noise = 0.1 * rng.standard_normal((N_STEPS, N_INPUTS))
    return jnp.asarray(np.sin(2 * np.pi * freqs * t) + noise)


def finite_differences(f, base: jax.Array) -> np.ndarray:
    """Central differences of ``f`` at ``base``, laid out as JAX lays out Jacobians.

    The result has shape ``f(base).shape + base.shape`` (output axes, then input axes).
    """
    base = np.asarray(base, dtype=np.float64)
    columns = []
    for i in range(base.size):
        step = np.zeros(base.size)
        step[i] = FD_EPS
        step = step.reshape(base.shape)
        columns.append((f(jnp.asarray(base + step)) - f(jnp.asarray(base - step))) / (2 * FD_EPS))
    return np.stack(columns, axis=-1).reshape(columns[0].shape + base.shape)


def save_heatmap(path: Path, blocks: dict[str, np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [  # (matrix, title, x label, y label)
        (blocks["input"][:, :, 0], "∂v_T / ∂x_t (input channel 0)", "time step t", "neuron i"),
        (blocks["W"][0], "∂v_T[0] / ∂W", "presynaptic j", "postsynaptic i"),
        (blocks["b"], "∂v_T / ∂b", "neuron j", "neuron i"),
        (blocks["tau"], "∂v_T / ∂τ", "neuron j", "neuron i"),
    ]
    fig, axes = plt.subplots(1, 4, figsize=(16, 4.2), gridspec_kw={"width_ratios": [2.6, 1, 1, 1]})
    for ax, (mat, title, xlabel, ylabel) in zip(axes, panels, strict=True):
        lim = float(np.abs(mat).max()) or 1.0
        im = ax.imshow(
            mat, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest"
        )
        ax.set_title(title)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.suptitle(
        f"Exact Jacobians of the final potentials v_T of a {N_NEURONS}-neuron leaky network "
        f"after {N_STEPS} steps (statediff.jacfwd over statejax.for_loop)"
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where to save the PNG")
    args = parser.parse_args(argv)
    start = time.perf_counter()

    rng = np.random.default_rng(0)
    net = LeakyRateNetwork(N_NEURONS, N_INPUTS, DT, rng)
    inputs = make_inputs(rng)
    params = {"W": net.W, "W_in": net.W_in, "tau": net.tau, "b": net.b}

    def simulate(xs: jax.Array) -> jax.Array:
        """Run the network over xs (T, n_in); return the final potentials."""
        sj.for_loop(net.update, xs)  # returns the stacked per-step potentials, unused here
        return net.v.value

    init = sg.snapshot(net)  # {path: value} of every state: v and the parameters

    # 1. Exact Jacobians: w.r.t. every parameter (grad_states) and the inputs (argnums) at once.
    jac_fn = sd.jacfwd(simulate, grad_states=params, argnums=0, return_value=True)
    (param_jacs, input_jac), v_final = jac_fn(inputs)
    blocks = {name: np.asarray(jac) for name, jac in param_jacs.items()}
    blocks["input"] = np.asarray(input_jac)
    failed = []
    # Like a plain run, jacfwd left the final potentials in net.v: the network has moved on.
    if not np.allclose(net.v.value, v_final):
        failed.append("jacfwd did not write v back")

    # 2. Finite differences. States are mutable, so every run starts by resetting them.
    run = sj.jit(simulate)

    def run_from_init(xs: jax.Array, **param_values: jax.Array) -> np.ndarray:
        sg.restore(net, init)  # v back to zeros, parameters back to their initial values
        for name, value in param_values.items():
            params[name].value = value
        return np.asarray(run(xs))

    if not np.allclose(run_from_init(inputs), v_final):
        failed.append("sj.jit run differs from the jacfwd value")
    fd = {
        name: finite_differences(
            lambda p, name=name: run_from_init(inputs, **{name: p}), init[name]
        )
        for name in params
    }
    fd["input"] = finite_differences(run_from_init, inputs)
    sg.restore(net, init)

    # 3. The table.
    print(
        f"Leaky rate network: {N_NEURONS} neurons, {N_INPUTS} inputs, {N_STEPS} steps "
        f"(float64); d v_T / d (parameters, inputs) by statediff.jacfwd vs central "
        f"finite differences (eps={FD_EPS:g})"
    )
    header = f"{'block':<8} {'jacobian shape':<16} {'max |jac|':>10} {'max abs err':>12}  check"
    print(header)
    print("-" * len(header))
    for name, jac in blocks.items():
        if jac.shape != fd[name].shape:
            failed.append(name)
            print(f"{name:<8} {jac.shape!s:<16} shape mismatch: FD has {fd[name].shape}  FAIL")
            continue
        scale = float(np.abs(jac).max())
        err = float(np.abs(jac - fd[name]).max())
        ok = bool(np.isfinite(err)) and err <= RTOL * max(1.0, scale)
        if not ok:
            failed.append(name)
        shape = "(" + ", ".join(map(str, jac.shape)) + ")"
        print(f"{name:<8} {shape:<16} {scale:>10.3e} {err:>12.2e}  {'OK' if ok else 'FAIL'}")

    save_heatmap(args.out, blocks)
    elapsed = time.perf_counter() - start
    print(f"Jacobian heat map saved to {args.out}")
    if failed:
        print(f"FAILED: {', '.join(failed)} ({elapsed:.1f} s)")
        return 1
    print(f"All {len(blocks)} Jacobian blocks match finite differences ({elapsed:.1f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
