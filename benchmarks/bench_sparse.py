"""Sparse Jacobians and Hessians (``sparsity="auto"``) against dense plain JAX and asdex.

Three jobs, each against plain JAX on the equivalent pure function, in one run:

1. One step of a leaky network of n neurons with k = 10 random synapses per neuron (a
   gather-based weight); Jacobian of the new potentials with respect to the old:
   ``sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto"))`` against
   ``jax.jit(jax.jacfwd(pure_step))`` (dense) and against ``asdex`` on the pure step
   (when installed); colours against k + 1.
2. A 1-D reaction-diffusion right-hand side on 100,000 grid points with
   ``sparse_output=True`` (tridiagonal, 3 colours): time and peak memory (the dense Jacobian,
   40 GB, cannot be formed).
3. The Hessian of a sum of pairwise interactions on a sparse random graph against
   ``jax.jit(jax.hessian)``.

    python benchmarks/bench_sparse.py [--quick]

``--quick`` uses n = 1,000 and 10,000 for the network but skips the dense 10,000-neuron
reference (it needs several GB), 20,000 grid points and a 300-node graph.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg
import statejax as sj

K = 10


def timeit(fn, *args, repeat=5):
    """(first call seconds, best of ``repeat`` later calls in seconds)."""
    t0 = time.perf_counter()
    jax.block_until_ready(fn(*args))
    first = time.perf_counter() - t0
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        best = min(best, time.perf_counter() - t0)
    return first, best


def network(n, seed=0):
    rng = np.random.default_rng(seed)
    pre = rng.integers(0, n, size=(n, K)).astype(np.int32)
    w = (rng.normal(size=(n, K)) / np.sqrt(K)).astype(np.float32)
    v0 = jnp.asarray(rng.normal(size=n), jnp.float32)

    def pure_step(v):
        syn = (w * jnp.tanh(v)[pre]).sum(axis=1)
        return v + 0.1 * (-v + syn)

    v = sg.HiddenState(v0, name="v")

    def step():
        v.value = pure_step(v.value)
        return v.value

    return v, v0, step, pure_step


def bench_network(n, dense_ref, rows):
    v, v0, step, pure_step = network(n)
    ours = sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto"))
    ours_bcoo = sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto", sparse_output=True))
    info = sd.jacfwd(step, grad_states=v, sparsity="auto").sparsity()
    f_ours, t_ours = timeit(ours)
    f_bcoo, t_bcoo = timeit(ours_bcoo)
    v.value = v0
    check = np.asarray(ours())
    ref_row = {"job": f"network n={n}", "colours": info.num_colors, "k+1": K + 1,
               "ours dense-out s": t_ours, "ours BCOO s": t_bcoo,
               "ours first call s": f_ours}
    if dense_ref:
        dense = jax.jit(jax.jacfwd(pure_step))
        f_d, t_d = timeit(dense, v0, repeat=2)
        np.testing.assert_allclose(check, np.asarray(dense(v0)), rtol=1e-5, atol=1e-6)
        ref_row.update({"dense jax s": t_d, "speed-up vs dense": t_d / t_ours})
    try:
        import asdex
    except ImportError:
        asdex = None
    if asdex is not None:
        t0 = time.perf_counter()
        coloring = asdex.jacobian_coloring(pure_step, v0)
        detect_s = time.perf_counter() - t0
        fa = jax.jit(asdex.jacobian_from_coloring(pure_step, coloring))
        t_a = float("inf")
        for _ in range(3):  # interleaved rounds: the machine's load varies
            t_a = min(t_a, timeit(fa, v0)[1])
            t_bcoo = min(t_bcoo, timeit(ours_bcoo)[1])
        got = fa(v0).todense()
        np.testing.assert_allclose(np.asarray(got), check, rtol=1e-5, atol=1e-6)
        ref_row.update({"ours BCOO s": t_bcoo, "asdex BCOO s": t_a,
                        "asdex detect+colour s": detect_s,
                        "asdex colours": int(coloring.num_colors) if hasattr(
                            coloring, "num_colors") else None,
                        "ours BCOO / asdex": t_bcoo / t_a})
    rows.append(ref_row)


def reaction_diffusion(n):
    rng = np.random.default_rng(1)
    u = sg.HiddenState(jnp.asarray(rng.random(n), jnp.float32), name="u")
    dx2 = 1.0 / (n * n)

    def rhs():
        x = u.value
        lap = jnp.concatenate([x[1:2] - x[:1], x[:-2] - 2 * x[1:-1] + x[2:], x[-2:-1] - x[-1:]])
        return 1e-4 * lap / dx2 + x * (1.0 - x)

    return u, rhs


def _hwm_mb():
    """Peak resident memory of this process (VmHWM, reset by exec, unlike ru_maxrss)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_rd_child(n):
    """Run in a subprocess: time and peak RSS of the sparse_output Jacobian."""
    u, rhs = reaction_diffusion(n)
    base = _hwm_mb()  # after importing JAX
    jac = sj.jit(sd.jacfwd(rhs, grad_states=u, sparse_output=True))
    first, best = timeit(jac)
    out = jac()
    peak = _hwm_mb()
    info = sd.jacfwd(rhs, grad_states=u, sparse_output=True).sparsity()
    print(json.dumps({"job": f"reaction-diffusion n={n}", "colours": info.num_colors,
                      "nnz": int(out.nse), "ours BCOO s": best, "ours first call s": first,
                      "peak RSS MB": peak, "RSS after imports MB": base,
                      "BCOO MB": out.nse * 12 / 1e6,
                      "dense Jacobian would be GB": n * n * 4 / 1e9}))


def bench_hessian(n, rows):
    rng = np.random.default_rng(2)
    edges = rng.integers(0, n, size=(2 * n, 2)).astype(np.int32)
    x0 = jnp.asarray(rng.normal(size=n), jnp.float32)

    def energy(x):
        d = x[edges[:, 0]] - x[edges[:, 1]]
        return jnp.sum(jnp.cos(d)) + 0.25 * jnp.sum(x**4)

    x = sg.ParamState(x0, name="x")
    ours = sj.jit(sd.hessian(lambda: energy(x.value), grad_states=x, sparsity="auto"))
    info = sd.hessian(lambda: energy(x.value), grad_states=x, sparsity="auto").sparsity()
    dense = jax.jit(jax.hessian(energy))
    f_o, t_o = timeit(ours)
    _, t_d = timeit(dense, x0, repeat=2)
    np.testing.assert_allclose(np.asarray(ours()), np.asarray(dense(x0)), rtol=1e-4, atol=1e-4)
    rows.append({"job": f"Hessian, graph n={n}, {2 * n} edges", "colours": info.num_colors,
                 "ours dense-out s": t_o, "ours first call s": f_o, "dense jax s": t_d,
                 "speed-up vs dense": t_d / t_o})


def main():
    if "--rd-child" in sys.argv:
        bench_rd_child(int(sys.argv[-1]))
        return
    quick = "--quick" in sys.argv
    rows: list[dict] = []
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, load {os.getloadavg()}")
    bench_network(1000, True, rows)
    bench_network(10000, not quick, rows)
    n_rd = 20000 if quick else 100000
    out = subprocess.run([sys.executable, __file__, "--rd-child", str(n_rd)],
                         capture_output=True, text=True, check=True)
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    bench_hessian(300 if quick else 2000, rows)
    for r in rows:
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
