"""A large Jacobian in bounded memory: ``sd.jacfwd(..., chunk_size=k)``.

A stateful dense layer holds a 256x256 weight ``ParamState``. The Jacobian of
its 256-vector output with respect to the weights is 256 x 256 x 256 floats
(64 MiB). ``jax.jacfwd`` gets it by pushing all 65536 basis tangents of the
weights through the layer at once; XLA then needs a 65536 x 65536 identity in
temporary memory (16 GiB). With ``chunk_size=64`` the same Jacobian is built
64 tangents per pass, in a loop writing into the result in place: the
temporary memory is that of one chunk.

This script compiles both (compiling costs no memory), prints the compiled
temporary memory from XLA's ``memory_analysis()``, then computes the chunked
Jacobians and checks them against the unchunked reverse-mode one (cheap here:
256 cotangents), and the chunked reverse mode against it too. Reverse mode
writes this layer's outer products straight into the result, so chunking
gains nothing there (a few bytes of loop bookkeeping); it pays in reverse mode
when the batched intermediates outgrow the result (a wide hidden layer).

Run: ``python examples/large_jacobian.py [--size 256] [--chunk-size 64]``.
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg
import statejax as sj


class Dense:
    """``y = tanh(W x + b)``; counts its calls in a state it writes."""

    def __init__(self, n: int, seed: int = 0) -> None:
        key = jax.random.key(seed)
        self.w = sg.ParamState(jax.random.normal(key, (n, n)) / np.sqrt(n), name="W")
        self.b = sg.ParamState(jnp.zeros(n), name="b")
        self.calls = sg.ShortTermState(jnp.zeros((), jnp.int32), name="calls")

    def __call__(self, x: jax.Array) -> jax.Array:
        self.calls.value = self.calls.value + 1
        return jnp.tanh(self.w.value @ x + self.b.value)


def temp_bytes(fn, *args) -> int | None:
    """Compiled temporary memory of ``fn(*args)`` in bytes (None if not reported)."""
    analysis = fn.lower(*args).compile().memory_analysis()
    return None if analysis is None else int(analysis.temp_size_in_bytes)


def measure(size: int = 256, chunk_size: int = 64) -> dict[str, int | None]:
    """Compile the four Jacobians, report their temp memory, check the chunked results."""
    layer = Dense(size)
    x = jnp.linspace(-1.0, 1.0, size)
    fwd = sj.jit(sd.jacfwd(layer, grad_states=layer.w))
    fwd_chunked = sj.jit(sd.jacfwd(layer, grad_states=layer.w, chunk_size=chunk_size))
    rev = sj.jit(sd.jacrev(layer, grad_states=layer.w))
    rev_chunked = sj.jit(sd.jacrev(layer, grad_states=layer.w, chunk_size=chunk_size))
    figures = {
        "jacfwd": temp_bytes(fwd, x),
        f"jacfwd chunk_size={chunk_size}": temp_bytes(fwd_chunked, x),
        "jacrev": temp_bytes(rev, x),
        f"jacrev chunk_size={chunk_size}": temp_bytes(rev_chunked, x),
    }
    reference = rev(x)  # the unchunked jacfwd would need its temp memory above to run
    for name, fn in [("jacfwd", fwd_chunked), ("jacrev", rev_chunked)]:
        start = time.perf_counter()
        jac = jax.block_until_ready(fn(x))
        took = time.perf_counter() - start
        np.testing.assert_allclose(jac, reference, rtol=1e-5, atol=1e-6)
        print(f"chunked {name}: shape {jac.shape}, {took:.2f} s, matches unchunked jacrev")
    if int(layer.calls.value) != 3:  # each call writes its state back once
        raise RuntimeError(f"expected 3 calls recorded, got {int(layer.calls.value)}")
    return figures


def _mib(n: int | None) -> str:
    return (
        "n/a (memory_analysis() is None here)"
        if n is None
        else f"{n:>14,d} B ({n / 2**20:,.1f} MiB)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--chunk-size", type=int, default=64)
    opts = parser.parse_args()
    print(f"Jacobian of a {opts.size}-vector w.r.t. a {opts.size}x{opts.size} ParamState")
    print(f"on {jax.default_backend()}")
    figures = measure(opts.size, opts.chunk_size)
    print("compiled temporary memory:")
    for name, n in figures.items():
        print(f"  {name:<24} {_mib(n)}")


if __name__ == "__main__":
    main()
