"""Sparse Jacobians and Hessians (``sparsity="auto"``) against dense plain JAX and asdex.

Three jobs, each against plain JAX on the equivalent pure function, in one run:

1. One step of a leaky network of n neurons with k = 10 random synapses per neuron (a
   gather-based weight); Jacobian of the new potentials with respect to the old:
   ``sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto"))`` against
   ``jax.jit(jax.jacfwd(pure_step))`` (dense) and against ``asdex`` on the pure step;
   colours against k + 1 (a lower bound: the most non-zeros in a row), the trace-time
   colouring time, the compressed JVPs alone and the floor of writing a fresh dense
   n x n result (what a dense output costs at least).
2. A 1-D reaction-diffusion right-hand side on 100,000 grid points with
   ``sparse_output=True`` (tridiagonal, 3 colours): time and peak memory (the dense Jacobian,
   40 GB, cannot be formed).
3. The Hessian of a sum of pairwise interactions on a sparse random graph against
   ``jax.jit(jax.hessian)``.

    python benchmarks/bench_sparse.py [--quick] [--asdex-python PATH]

asdex is not a dependency of statediff. It is timed in the same run, in a child process of
``--asdex-python`` (an interpreter where ``import asdex`` works; asdex 0.5 needs jax >= 0.11)
or of this interpreter when it can import asdex; the figures are written to
``benchmarks/results/sparse.json``.

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

if "--asdex-child" not in sys.argv:  # the asdex child may run on another JAX, without us
    import statediff as sd
    import stategraph as sg
    import statejax as sj

K = 10
HERE = os.path.dirname(os.path.abspath(__file__))


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


def pure_network(n, seed=0):
    rng = np.random.default_rng(seed)
    pre = rng.integers(0, n, size=(n, K)).astype(np.int32)
    w = (rng.normal(size=(n, K)) / np.sqrt(K)).astype(np.float32)
    v0 = jnp.asarray(rng.normal(size=n), jnp.float32)

    def pure_step(v):
        syn = (w * jnp.tanh(v)[pre]).sum(axis=1)
        return v + 0.1 * (-v + syn)

    return v0, pure_step


def network(n, seed=0):
    v0, pure_step = pure_network(n, seed)
    v = sg.HiddenState(v0, name="v")

    def step():
        v.value = pure_step(v.value)
        return v.value

    return v, v0, step, pure_step


def asdex_child(n):
    """Run in a subprocess (maybe another interpreter): asdex on the pure step."""
    import asdex

    v0, pure_step = pure_network(n)
    t0 = time.perf_counter()
    coloring = asdex.jacobian_coloring(pure_step, v0)
    detect_s = time.perf_counter() - t0
    from importlib.metadata import version

    row = {"asdex version": version("asdex"), "asdex jax": jax.__version__,
           "asdex colours": int(coloring.num_colors), "asdex detect+colour s": detect_s}
    for fmt in ("bcoo", "dense"):
        fa = jax.jit(asdex.jacobian_from_coloring(pure_step, coloring, output_format=fmt))
        first, best = timeit(fa, v0, repeat=5)
        row[f"asdex {fmt} s"] = best
        row[f"asdex {fmt} first call s"] = first
        if n <= 1000:  # asdex checked against plain JAX in its own process
            out = fa(v0)
            got = np.asarray(out.todense() if fmt == "bcoo" else out)
            ref = np.asarray(jax.jacfwd(pure_step)(v0))
            np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)
    print(json.dumps(row))


def run_asdex(n, python):
    if python is None:
        return None
    res = subprocess.run([python, __file__, "--asdex-child", str(n)], capture_output=True,
                         text=True)
    if res.returncode != 0:
        return {"asdex error": res.stderr.strip().splitlines()[-1][:200]}
    return json.loads(res.stdout.strip().splitlines()[-1])


def floor_dense_write(n):
    """Seconds to produce a fresh zeroed dense n x n float32 array: (XLA, NumPy).

    The floor of any dense output: XLA's (what a jitted call returning a dense array pays) and
    NumPy's (a fresh buffer filled by memset, near the machine's memory bandwidth).
    """
    fill = jax.jit(lambda x: jnp.zeros((n, n), jnp.float32) + x)
    xla = timeit(fill, jnp.float32(0.0), repeat=3)[1]

    def numpy_fill():
        a = np.empty((n, n), np.float32)
        a.fill(0.0)
        return a

    return xla, timeit(numpy_fill, repeat=3)[1]


def bench_network(n, dense_ref, rows, asdex_python):
    from statediff._src.sparse.coloring import color_columns

    v, v0, step, pure_step = network(n)
    ours = sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto"))
    ours_bcoo = sj.jit(sd.jacfwd(step, grad_states=v, sparsity="auto", sparse_output=True))
    t0 = time.perf_counter()
    info = sd.jacfwd(step, grad_states=v, sparsity="auto").sparsity()
    info_s = time.perf_counter() - t0
    pattern = info._plan.pattern
    t0 = time.perf_counter()
    colors = color_columns(pattern)
    colour_s = time.perf_counter() - t0
    f_ours, t_ours = timeit(ours)
    f_bcoo, t_bcoo = timeit(ours_bcoo)
    v.value = v0
    check = np.asarray(ours())
    # the compressed JVPs alone (what the sparse call costs before any decompression)
    cj = jnp.asarray(colors)
    comp = jax.jit(lambda x: jax.vmap(lambda k: jax.jvp(
        pure_step, (x,), ((cj == k).astype(x.dtype),))[1])(jnp.arange(info.num_colors)))
    _, t_comp = timeit(comp, v0)
    row = {"job": f"network n={n}, k={K}", "colours": info.num_colors, "k+1": K + 1,
           "max non-zeros per column": int(np.diff(pattern.tocsc().indptr).max()),
           "colouring s (trace time)": colour_s, "detect+colour+plan s (.sparsity())": info_s,
           "ours dense-out s": t_ours, "ours BCOO s": t_bcoo, "compressed JVPs s": t_comp,
           "ours first call s": f_ours, "ours BCOO first call s": f_bcoo,
           "dense output MB": n * n * 4 / 1e6}
    floor_xla, floor_np = floor_dense_write(n)
    row.update({"floor: fresh dense n x n write s (XLA)": floor_xla,
                "floor: fresh dense n x n write s (NumPy memset)": floor_np})
    if dense_ref:
        dense = jax.jit(jax.jacfwd(pure_step))
        f_d, t_d = timeit(dense, v0, repeat=2)
        np.testing.assert_allclose(check, np.asarray(dense(v0)), rtol=1e-5, atol=1e-6)
        row.update({"dense jax s": t_d, "speed-up vs dense (dense out)": t_d / t_ours,
                    "speed-up vs dense (BCOO out)": t_d / t_bcoo,
                    "dense-out speed-up bound (XLA write floor)": t_d / floor_xla,
                    "dense-out speed-up bound (NumPy memset floor)": t_d / floor_np})
    a = run_asdex(n, asdex_python)
    if a:
        for _ in range(2):  # interleave: the machine's load varies
            t_bcoo = min(t_bcoo, timeit(ours_bcoo)[1])
            t_ours = min(t_ours, timeit(ours)[1])
        row.update({"ours BCOO s": t_bcoo, "ours dense-out s": t_ours, **a})
        if "asdex bcoo s" in a:
            row["ours BCOO / asdex BCOO"] = t_bcoo / a["asdex bcoo s"]
            row["ours dense / asdex dense"] = t_ours / a["asdex dense s"]
            if dense_ref:
                row["speed-up vs dense (BCOO out)"] = row["dense jax s"] / t_bcoo
                row["speed-up vs dense (dense out)"] = row["dense jax s"] / t_ours
    rows.append(row)


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
    from statediff._src.sparse.coloring import color_columns

    t0 = time.perf_counter()
    color_columns(info._plan.pattern)
    colour_s = time.perf_counter() - t0
    print(json.dumps({"job": f"reaction-diffusion n={n}", "colours": info.num_colors,
                      "colouring s (trace time)": colour_s,
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
    if "--asdex-child" in sys.argv:
        asdex_child(int(sys.argv[-1]))
        return
    quick = "--quick" in sys.argv
    asdex_python = None
    if "--asdex-python" in sys.argv:
        asdex_python = sys.argv[sys.argv.index("--asdex-python") + 1]
    else:
        try:
            import asdex  # noqa: F401

            asdex_python = sys.executable
        except ImportError:
            pass
    rows: list[dict] = []
    load_before = os.getloadavg()
    print(f"jax {jax.__version__}, backend {jax.default_backend()}, load {load_before}")
    bench_network(1000, True, rows, asdex_python)
    bench_network(10000, not quick, rows, asdex_python)
    n_rd = 20000 if quick else 100000
    out = subprocess.run([sys.executable, __file__, "--rd-child", str(n_rd)],
                         capture_output=True, text=True, check=True)
    rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    bench_hessian(300 if quick else 2000, rows)
    for r in rows:
        print(json.dumps({k: (round(v, 5) if isinstance(v, float) else v) for k, v in r.items()}))
    load_after = os.getloadavg()
    print(f"load average after: {load_after}")
    if not quick:
        meta = {"jax": jax.__version__, "backend": jax.default_backend(),
                "cpus": os.cpu_count(), "load average before": load_before,
                "load average after": load_after,
                "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        with open(os.path.join(HERE, "results", "sparse.json"), "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
