"""Per-example gradients of a stateful RNN: ``sj.vmap(sd.grad(...))`` over ``sj.scan``.

An Elman RNN keeps its weights in ``sg.ParamState``s and its hidden state in an
``sg.HiddenState`` that ``step(x)`` updates in place. The loss of one sequence runs ``step`` over
the time steps with ``sj.scan`` (the hidden state is carried through the loop by the scan).

Per-example gradients come from ``sj.vmap(sd.grad(seq_loss, grad_states=params),
in_states=rnn.h)``. The hidden state must be *per example*: it is declared in ``in_states``, so
``rnn.h`` holds one row per sequence (shape ``(batch, hidden)``), each lane of the vmap reads its
own row as the initial hidden state and its final hidden state is stacked back into that row. (An
undeclared state is shared by all lanes, and writing it a per-lane value raises ``ValueError``;
resetting it at the start of ``seq_loss`` is not enough, its final value still differs per lane.)
The weights are not declared: they are shared by every lane.

The script checks, against plain JAX on the equivalent pure function ``pure_loss(params, h0,
xs, ys)``:

1. the per-example losses, gradients and final hidden states against
   ``jax.vmap(jax.grad(pure_loss, has_aux=True), in_axes=(None, 0, 0, 0))``;
2. that the mean of the per-example gradients equals the gradient of the batch-mean loss (taken
   by ``sd.grad`` over ``sj.vmap``);

then trains the RNN on a delayed-recall task for a few hundred steps with per-example gradient
clipping (the reason to want per-example gradients, as in DP-SGD) inside one ``sj.jit``, and
checks that the loss decreased. It exits with status 1 if a check fails.
Run: ``python examples/rnn_sequence.py``.
"""

from __future__ import annotations

import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import statediff as sd
import stategraph as sg
import statejax as sj

BATCH, LENGTH, N_IN, N_HIDDEN = 16, 20, 2, 24
DELAY = 2  # the target at time t is input channel 0 at time t - DELAY
RTOL, ATOL = 1e-5, 1e-6
TRAIN_STEPS, PRINT_EVERY, LEARNING_RATE, CLIP_NORM = 400, 100, 0.1, 1.0


class RNN:
    """``h <- tanh(x W_in + h W_rec + b)``, output ``h W_out``."""

    def __init__(self, rng: np.random.Generator, batch: int) -> None:
        def normal(*shape: int, scale: float) -> jax.Array:
            return jnp.asarray(rng.normal(0.0, scale, shape), jnp.float32)

        self.w_in = sg.ParamState(normal(N_IN, N_HIDDEN, scale=1 / np.sqrt(N_IN)))
        self.w_rec = sg.ParamState(normal(N_HIDDEN, N_HIDDEN, scale=0.9 / np.sqrt(N_HIDDEN)))
        self.b = sg.ParamState(jnp.zeros(N_HIDDEN))
        self.w_out = sg.ParamState(normal(N_HIDDEN, 1, scale=1 / np.sqrt(N_HIDDEN)))
        self.h = sg.HiddenState(jnp.zeros((batch, N_HIDDEN)), name="h")  # one row per example

    def step(self, x: jax.Array) -> jax.Array:
        h = jnp.tanh(x @ self.w_in.value + self.h.value @ self.w_rec.value + self.b.value)
        self.h.value = h
        return h @ self.w_out.value


def pure_loss(p: dict, h0: jax.Array, xs: jax.Array, ys: jax.Array):
    """One sequence's loss as a pure function; returns (loss, final hidden state)."""

    def body(h, xy):
        x, y = xy
        h = jnp.tanh(x @ p["w_in"] + h @ p["w_rec"] + p["b"])
        return h, jnp.sum((h @ p["w_out"] - y) ** 2)

    h, errs = jax.lax.scan(body, h0, (xs, ys))
    return jnp.mean(errs), h


def make_data(rng: np.random.Generator) -> tuple[jax.Array, jax.Array]:
    xs = rng.normal(size=(BATCH, LENGTH, N_IN)).astype(np.float32)
    ys = np.pad(xs[:, :-DELAY, :1], ((0, 0), (DELAY, 0), (0, 0)))  # x_0 delayed by DELAY
    return jnp.asarray(xs), jnp.asarray(ys)


def rel_err(a, b) -> float:
    """max over leaves of max|a - b| / (ATOL + max|b|)."""
    errs = jax.tree.map(lambda u, v: jnp.max(jnp.abs(u - v)) / (ATOL + jnp.max(jnp.abs(v))), a, b)
    return max(float(e) for e in jax.tree.leaves(errs))


def report(name: str, err: float, tol: float = RTOL) -> bool:
    good = err < tol
    print(f"{name:<58} max rel err {err:.1e}  {'OK' if good else 'FAIL'}")
    return good


def main() -> int:
    start = time.perf_counter()
    rng = np.random.default_rng(0)  # numpy for set-up: no eager JAX compiles
    rnn = RNN(rng, BATCH)
    params = sg.states(rnn, sg.ParamState)  # {"w_in": ..., "w_rec": ..., "b": ..., "w_out": ...}
    xs, ys = make_data(rng)
    h0 = jnp.asarray(rng.normal(0.0, 0.5, (BATCH, N_HIDDEN)), jnp.float32)  # one start each
    ok = True

    def seq_loss(xs: jax.Array, ys: jax.Array) -> jax.Array:
        """Loss of ONE sequence (xs: (LENGTH, N_IN)); starts from the current rnn.h."""

        def body(carry, xy):
            x, y = xy
            return carry, jnp.sum((rnn.step(x) - y) ** 2)

        _, errs = sj.scan(body, None, (xs, ys))
        return jnp.mean(errs)

    # 1. Per-example gradients: rnn.h is declared, so each lane has its own hidden state.
    per_example = sj.jit(
        sj.vmap(sd.grad(seq_loss, grad_states=params, return_value=True), in_states=rnn.h)
    )
    rnn.h.value = h0
    grads, losses = per_example(xs, ys)  # each gradient leaf has a leading BATCH axis
    h_final = rnn.h.value

    values = {k: s.value for k, s in params.items()}
    reference = jax.jit(jax.vmap(jax.value_and_grad(pure_loss, has_aux=True), (None, 0, 0, 0)))
    (ref_losses, ref_h), ref_grads = reference(values, h0, xs, ys)
    print("per-example gradient shapes:", {k: tuple(g.shape) for k, g in grads.items()})
    ok &= report("per-example losses vs jax.vmap(pure_loss)", rel_err(losses, ref_losses))
    ok &= report("per-example grads vs jax.vmap(jax.grad(pure_loss))", rel_err(grads, ref_grads))
    ok &= report("final hidden states (rnn.h, one row per example)", rel_err(h_final, ref_h))

    # 2. Batch gradient of the mean loss, through sd.grad over sj.vmap.
    def batch_loss(xs: jax.Array, ys: jax.Array) -> jax.Array:
        return jnp.mean(sj.vmap(seq_loss, in_states=rnn.h)(xs, ys))

    rnn.h.value = h0
    batch_grads = sj.jit(sd.grad(batch_loss, grad_states=params))(xs, ys)
    mean_grads = jax.tree.map(lambda g: g.mean(axis=0), grads)
    ok &= report(
        "mean of per-example grads vs batch grad (sd.grad)", rel_err(mean_grads, batch_grads)
    )
    ref_batch = jax.tree.map(lambda g: g.mean(axis=0), ref_grads)
    ok &= report(
        "batch grad vs mean of jax.vmap(jax.grad(pure_loss))", rel_err(batch_grads, ref_batch)
    )
    norms = jnp.sqrt(sum(jnp.sum(g.reshape(BATCH, -1) ** 2, axis=1) for g in grads.values()))
    print("per-example gradient norms:", np.array2string(np.asarray(norms), precision=3))

    # 3. Training with per-example gradient clipping; every sequence starts from h = 0.
    @sj.jit
    def train_step(xs: jax.Array, ys: jax.Array) -> jax.Array:
        rnn.h.value = jnp.zeros_like(rnn.h.value)
        grads, losses = sj.vmap(
            sd.grad(seq_loss, grad_states=params, return_value=True), in_states=rnn.h
        )(xs, ys)
        sq = sum(jnp.sum(g.reshape(BATCH, -1) ** 2, axis=1) for g in grads.values())
        scale = jnp.minimum(1.0, CLIP_NORM / jnp.sqrt(sq))  # one factor per example
        for k, g in grads.items():
            clipped = jnp.tensordot(scale, g, axes=1) / BATCH  # mean of the clipped grads
            params[k].value = params[k].value - LEARNING_RATE * clipped
        return jnp.mean(losses)

    first = None
    for step in range(TRAIN_STEPS):
        loss = float(train_step(xs, ys))
        first = loss if first is None else first
        if step % PRINT_EVERY == 0 or step == TRAIN_STEPS - 1:
            print(f"step {step:4d}  mean sequence loss {loss:.4f}")
    good = loss < 0.5 * first
    ok &= good
    print(f"training halved the loss ({first:.4f} -> {loss:.4f}): {'OK' if good else 'FAIL'}")
    print(f"done in {time.perf_counter() - start:.1f} s: {'all checks OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
