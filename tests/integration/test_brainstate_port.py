"""A brainstate 0.5.4 program ported by changing its imports, checked against plain JAX.

The program is written as a brainstate user writes it (``bt.grad`` with a dict of
``grad_states``, ``has_aux`` and ``return_value``, ``bt.vjp``, ``bt.jvp``,
``bt.for_loop(pbar=...)``, ``bt.vmap(in_states=...)``, ``bt.ifelse``,
``bt.bounded_while_loop``, ``bt.vmap_new_states``) with ``bt`` replaced by ``sj`` / ``sd``.
Every result is compared with the equivalent pure function under plain JAX.

The parts that use transforms another task is building (``ifelse``,
``bounded_while_loop``, ``vmap_new_states``, ``pbar=``) are skipped until they exist; the guards
go once they are merged.
"""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj

N_IN, N_HID, T, B = 3, 4, 6, 5

needs_ifelse = pytest.mark.skipif(False, reason="")
needs_bwl = pytest.mark.skipif(
    not hasattr(sj, "bounded_while_loop"), reason="sj.bounded_while_loop not merged yet"
)
needs_vns = pytest.mark.skipif(
    not hasattr(sj, "vmap_new_states"), reason="sj.vmap_new_states not merged yet"
)
needs_pbar = pytest.mark.skipif(
    "pbar" not in inspect.signature(sj.for_loop).parameters, reason="for_loop(pbar=) not merged"
)


def close(got, want, rtol=1e-5, atol=1e-6):
    assert jax.tree.structure(got) == jax.tree.structure(want), (got, want)
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(w), rtol=rtol, atol=atol)


# ------------------------------------------------------------- the ported model
class RNN:
    """A brainstate-style recurrent cell: parameters and a hidden state."""

    def __init__(self, seed: int = 0) -> None:
        k1, k2 = jax.random.split(jax.random.key(seed))
        self.w = sg.ParamState(jax.random.normal(k1, (N_IN, N_HID)) * 0.5, name="w")
        self.u = sg.ParamState(jax.random.normal(k2, (N_HID, N_HID)) * 0.3, name="u")
        self.b = sg.ParamState(jnp.zeros(N_HID), name="b")
        self.init_state()

    def init_state(self) -> None:
        self.h = sg.HiddenState(jnp.zeros(N_HID), name="h")

    def step(self, x):
        self.h.value = jnp.tanh(x @ self.w.value + self.h.value @ self.u.value + self.b.value)
        return self.h.value

    def params(self):
        return {"w": self.w.value, "u": self.u.value, "b": self.b.value}


def pure_step(p, h, x):
    h = jnp.tanh(x @ p["w"] + h @ p["u"] + p["b"])
    return h, h


def pure_loss(p, h0, xs, ys):
    h, hs = jax.lax.scan(lambda h, x: pure_step(p, h, x), h0, xs)
    return jnp.mean((hs - ys) ** 2), (h, hs[-1])


def data(seed: int = 1):
    k1, k2 = jax.random.split(jax.random.key(seed))
    return jax.random.normal(k1, (T, N_IN)), jax.random.normal(k2, (T, N_HID))


# ---------------------------------------------------------------- the program
def test_grad_with_a_dict_of_grad_states_has_aux_and_return_value():
    model = RNN()
    xs, ys = data()
    h0, p0 = model.h.value, model.params()

    def loss(xs, ys):
        hs = sj.for_loop(model.step, xs)
        return jnp.mean((hs - ys) ** 2), {"last": hs[-1]}

    grads, value, aux = sd.grad(
        loss,
        grad_states={"w": model.w, "u": model.u, "b": model.b},
        has_aux=True,
        return_value=True,
    )(xs, ys)
    (want_value, (want_h, want_last)), want_grads = jax.value_and_grad(pure_loss, has_aux=True)(
        p0, h0, xs, ys
    )
    close(grads, want_grads)
    close(value, want_value)
    close(aux["last"], want_last)
    close(model.h.value, want_h)  # the hidden state is written back

    # One training step, as brainstate code does it.
    for key, state in {"w": model.w, "u": model.u, "b": model.b}.items():
        state.value = state.value - 0.1 * grads[key]
    close(model.params(), jax.tree.map(lambda p, g: p - 0.1 * g, p0, want_grads))


def test_vjp_and_jvp_calling_conventions():
    model = RNN(seed=2)
    x = jnp.arange(float(N_IN))
    h0, p0 = model.h.value, model.params()

    out, vjp_fn = sd.vjp(model.step, x, grad_states=model.w)
    w_ct, x_ct = vjp_fn(jnp.ones(N_HID))
    want_out, pull = jax.vjp(lambda w, x: pure_step({**p0, "w": w}, h0, x)[1], p0["w"], x)
    close(out, want_out)
    close((w_ct, x_ct), pull(jnp.ones(N_HID)))
    close(model.h.value, want_out)

    model.h.value = h0
    out, vjp_fn = sd.vjp(model.step, x)  # default argnums=0: the bare cotangent of x
    close(vjp_fn(jnp.ones(N_HID)), pull(jnp.ones(N_HID))[1])

    model.h.value = h0
    tx = jnp.ones(N_IN)
    y, ty = sd.jvp(model.step, (x,), (tx,))
    close((y, ty), jax.jvp(lambda x: pure_step(p0, h0, x)[1], (x,), (tx,)))


def test_vmap_with_in_states():
    model = RNN(seed=3)
    xs = jax.random.normal(jax.random.key(4), (B, N_IN))
    model.h.value = jnp.zeros((B, N_HID)) + 0.1
    h0, p0 = model.h.value, model.params()
    out = sj.vmap(model.step, in_states=model.h, out_states=model.h)(xs)
    want = jax.vmap(lambda h, x: pure_step(p0, h, x)[1])(h0, xs)
    close(out, want)
    close(model.h.value, want)


@needs_pbar
def test_for_loop_with_pbar(capsys):
    model = RNN(seed=5)
    xs, _ = data(6)
    h0, p0 = model.h.value, model.params()
    hs = sj.for_loop(model.step, xs, pbar=sj.ProgressBar(freq=2))
    jax.effects_barrier()
    close(hs, jax.lax.scan(lambda h, x: pure_step(p0, h, x), h0, xs)[1])
    model.h.value = h0
    close(sj.for_loop(model.step, xs, pbar=3), hs)  # an int: the update frequency


@needs_ifelse
def test_ifelse():
    model = RNN(seed=7)
    p0 = model.params()

    def f(x):
        return sj.ifelse(
            [x < 1, (x >= 1) & (x < 5), x >= 5],
            [lambda a: a * model.b.value, lambda a: a * 2.0 + model.b.value, lambda a: -a],
            jnp.full(N_HID, x),
        )

    for x in (0.5, 3.0, 7.0):
        want = jnp.select(
            [x < 1, 1 <= x < 5, x >= 5], [x * p0["b"], 2.0 * x + p0["b"], -jnp.full(N_HID, x)]
        )
        close(f(x), want)
        close(sj.jit(f)(x), want)


@needs_bwl
def test_grad_through_bounded_while_loop():
    w = sg.ParamState(jnp.array(1.1), name="w")
    steps = sg.ShortTermState(jnp.array(0), name="steps")

    def f(x):
        def body(c):
            steps.value = steps.value + 1
            return c[0] + 1, c[1] * w.value * x

        return sj.bounded_while_loop(lambda c: c[0] < 3, body, (0, 1.0), max_steps=8)[1]

    g_w, g_x = sd.grad(f, grad_states=w, argnums=0)(2.0)
    want = jax.grad(lambda wv, x: (wv * x) ** 3, argnums=(0, 1))(1.1, 2.0)
    close((g_w, g_x), want, rtol=1e-4)
    assert int(steps.value) == 3


@needs_vns
def test_vmap_new_states_initialises_a_batched_model():
    model = RNN(seed=8)
    sj.vmap_new_states(model.init_state, axis_size=B)()
    assert model.h.value.shape == (B, N_HID)
    xs = jax.random.normal(jax.random.key(9), (B, N_IN))
    p0 = model.params()
    out = sj.vmap(model.step, in_states=model.h, out_states=model.h)(xs)
    close(out, jax.vmap(lambda x: pure_step(p0, jnp.zeros(N_HID), x)[1])(xs))
