# requires: optax
"""MLP regression trained with optax, through ``sd.grad`` and ``sj.jit``.

A small multilayer perceptron is a plain Python class: each ``Linear`` layer holds its weight and
bias in ``sg.ParamState``s, and ``sg.states(model, sg.ParamState)`` collects them into a dict
keyed by path (``"layers.0.w"``, ...). The optax optimizer state (Adam's moments and step count,
a pytree) is itself kept in a ``sg.LongTermState``, so one ``@sj.jit`` train step reads and writes
everything in place:

    grads, loss = sd.grad(loss_fn, grad_states=params, return_value=True)(x, y)
    updates, opt_state.value = opt.update(grads, opt_state.value, param_values)
    ... each ParamState gets optax.apply_updates(...)

The script fits ``y = sin(3x) + 0.3 x^2`` on [-1.5, 1.5], prints the loss every few hundred steps,
and checks

1. the stateful gradients (every parameter) against ``jax.grad`` of the equivalent pure function
   of a parameter dict, at initialisation;
2. the whole training run against the same optax training written in plain JAX (same final loss
   and parameters);
3. that the final training loss is below ``LOSS_MAX``.

It exits with status 1 if a check fails. Run: ``python examples/mlp_regression.py``.
"""

from __future__ import annotations

import sys
import time
from itertools import pairwise

import jax
import jax.numpy as jnp
import numpy as np
import optax

import statediff as sd
import stategraph as sg
import statejax as sj

SIZES = (1, 32, 32, 1)
N_POINTS = 128
STEPS = 1500
PRINT_EVERY = 300
LEARNING_RATE = 1e-2
LOSS_MAX = 1e-3  # the initial loss is ~1
GRAD_RTOL, GRAD_ATOL = 1e-5, 1e-6


class Linear:
    """``x @ w + b`` with ``w`` and ``b`` in ``ParamState``s."""

    def __init__(self, rng: np.random.Generator, n_in: int, n_out: int) -> None:
        w = rng.normal(0.0, np.sqrt(1.0 / n_in), (n_in, n_out))
        self.w = sg.ParamState(jnp.asarray(w, jnp.float32))
        self.b = sg.ParamState(jnp.zeros(n_out))

    def __call__(self, x: jax.Array) -> jax.Array:
        return x @ self.w.value + self.b.value


class MLP:
    """``Linear -> tanh -> ... -> Linear``."""

    def __init__(self, rng: np.random.Generator, sizes: tuple[int, ...]) -> None:
        self.layers = [Linear(rng, n_in, n_out) for n_in, n_out in pairwise(sizes)]

    def __call__(self, x: jax.Array) -> jax.Array:
        for layer in self.layers[:-1]:
            x = jnp.tanh(layer(x))
        return self.layers[-1](x)


def pure_loss(p: dict[str, jax.Array], x: jax.Array, y: jax.Array) -> jax.Array:
    """The same loss as a pure function of the parameter dict (the plain-JAX reference)."""
    n = len(SIZES) - 1
    h = x
    for i in range(n):
        h = h @ p[f"layers.{i}.w"] + p[f"layers.{i}.b"]
        if i < n - 1:
            h = jnp.tanh(h)
    return jnp.mean((h - y) ** 2)


def make_data() -> tuple[jax.Array, jax.Array]:
    x = np.linspace(-1.5, 1.5, N_POINTS, dtype=np.float32)[:, None]
    return jnp.asarray(x), jnp.asarray(np.sin(3 * x) + 0.3 * x**2)


def max_rel_err(a: dict, b: dict) -> float:
    """max over leaves of max|a - b| / (atol + max|b|)."""
    return max(
        float(jnp.max(jnp.abs(a[k] - b[k])) / (GRAD_ATOL + jnp.max(jnp.abs(b[k])))) for k in b
    )


def main() -> int:
    start = time.perf_counter()
    ok = True
    x, y = make_data()
    model = MLP(np.random.default_rng(0), SIZES)  # numpy for set-up: no eager JAX compiles
    params = sg.states(model, sg.ParamState)  # {"layers.0.w": ParamState, ...}
    init_values = {k: s.value for k, s in params.items()}
    print("parameters:", ", ".join(f"{k} {tuple(s.value.shape)}" for k, s in params.items()))

    def loss_fn(x: jax.Array, y: jax.Array) -> jax.Array:
        return jnp.mean((model(x) - y) ** 2)

    # 1. One gradient, stateful vs plain JAX on the equivalent pure function.
    grads = sd.grad(loss_fn, grad_states=params)(x, y)
    ref = jax.grad(pure_loss)(init_values, x, y)
    err = max_rel_err(grads, ref)
    good = set(grads) == set(ref) and err < GRAD_RTOL
    ok &= good
    print(f"gradient vs jax.grad(pure_loss): max rel err {err:.1e}  {'OK' if good else 'FAIL'}")

    # 2. Training: the optax state lives in a State, the train step is one sj.jit.
    opt = optax.adam(LEARNING_RATE)
    opt_state = sg.LongTermState(opt.init(init_values), name="opt_state")

    @sj.jit
    def train_step(x: jax.Array, y: jax.Array) -> jax.Array:
        grads, loss = sd.grad(loss_fn, grad_states=params, return_value=True)(x, y)
        param_values = {k: s.value for k, s in params.items()}
        updates, opt_state.value = opt.update(grads, opt_state.value, param_values)
        for k, v in optax.apply_updates(param_values, updates).items():
            params[k].value = v
        return loss

    losses = []
    for step in range(STEPS):
        loss = train_step(x, y)
        losses.append(loss)
        if step % PRINT_EVERY == 0 or step == STEPS - 1:
            print(f"step {step:5d}  loss {float(loss):.6f}")
    final_loss = float(jax.jit(pure_loss)({k: s.value for k, s in params.items()}, x, y))
    print(f"final loss {final_loss:.6f} (required < {LOSS_MAX:g})")
    good = final_loss < LOSS_MAX and float(losses[-1]) < float(losses[0])
    ok &= good
    print(f"loss decreased below the threshold: {'OK' if good else 'FAIL'}")

    # 3. The same training in plain JAX + optax, from the same initial parameters.
    @jax.jit
    def pure_step(p, s, x, y):
        loss, g = jax.value_and_grad(pure_loss)(p, x, y)
        updates, s = opt.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    p, s = init_values, opt.init(init_values)
    for _ in range(STEPS):
        p, s, _ = pure_step(p, s, x, y)
    final = {k: st.value for k, st in params.items()}
    err = max(float(jnp.max(jnp.abs(final[k] - p[k]))) for k in p)
    ref_loss = float(pure_loss(p, x, y))
    good = err < 1e-3 and abs(ref_loss - final_loss) <= 1e-3 * ref_loss + 1e-7
    ok &= good
    print(
        f"plain-JAX training: final loss {ref_loss:.6f}, max |param diff| {err:.1e}  "
        f"{'OK' if good else 'FAIL'}"
    )
    print(f"done in {time.perf_counter() - start:.1f} s: {'all checks OK' if ok else 'FAILED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
