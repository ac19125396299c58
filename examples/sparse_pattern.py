# requires: matplotlib
"""Draw the detected sparsity patterns shown on the guide page "Sparse Jacobians".

Left: the Jacobian of one step of a 60-neuron leaky network (3 random synapses per neuron)
with respect to its potentials, each non-zero coloured by the colour of its column (one JVP
per colour). Right: the Hessian of a sum of pairwise interactions on a random sparse graph,
star-coloured. Writes ``sparse_pattern.png`` into ``$EXAMPLES_OUTPUT_DIR`` when set (the
example tests), else into ``docs/_static/`` (the picture the docs show).

    python examples/sparse_pattern.py
"""

from __future__ import annotations

import os
import pathlib

import jax.numpy as jnp
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import statediff as sd  # noqa: E402
import stategraph as sg  # noqa: E402

_DIR = os.environ.get("EXAMPLES_OUTPUT_DIR") or (
    pathlib.Path(__file__).resolve().parents[1] / "docs" / "_static"
)
OUT = pathlib.Path(_DIR) / "sparse_pattern.png"


def network_info(n=60, k=3):
    rng = np.random.default_rng(0)
    pre = rng.integers(0, n, size=(n, k))
    w = rng.normal(size=(n, k)).astype(np.float32)
    v = sg.HiddenState(jnp.zeros(n), name="v")

    def step():
        v.value = v.value + 0.1 * (-v.value + (w * jnp.tanh(v.value)[pre]).sum(1))
        return v.value

    return sd.jacfwd(step, grad_states=v, sparsity="auto").sparsity()


def graph_info(n=60):
    rng = np.random.default_rng(1)
    edges = rng.integers(0, n, size=(n, 2))

    def energy(x):
        return jnp.sum(jnp.cos(x[edges[:, 0]] - x[edges[:, 1]])) + jnp.sum(x**4)

    return sd.hessian(energy, sparsity="auto").sparsity(jnp.zeros(n))


def draw(ax, info, title):
    dense = info.todense()
    rows, cols = np.nonzero(dense)
    ax.scatter(cols, rows, c=info.colors[cols], cmap="tab20", s=9, marker="s")
    ax.set_xlim(-0.5, dense.shape[1] - 0.5)
    ax.set_ylim(dense.shape[0] - 0.5, -0.5)
    ax.set_aspect("equal")
    ax.set_title(f"{title}\n{info.nnz} non-zeros, {info.num_colors} colours "
                 f"(dense: {dense.shape[1]} passes)", fontsize=9)
    ax.set_xlabel("input element")
    ax.set_ylabel("output element")


def main():
    fig, axes = plt.subplots(1, 2, figsize=(9, 4.6))
    draw(axes[0], network_info(), "sd.jacfwd(step, grad_states=v, sparsity='auto')")
    draw(axes[1], graph_info(), "sd.hessian(energy, sparsity='auto')")
    fig.tight_layout()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(OUT, dpi=110)
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
