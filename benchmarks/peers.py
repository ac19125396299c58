"""The same jobs under plain JAX, this stack, brainstate, Flax NNX and Equinox, in one process.

Jobs (each system written the way its documentation does it; the table in ``RESULTS.md`` says
how, and where a system cannot do a job it says so in words):

- ``grad``: gradient of the MSE loss of a 2-layer MLP (32 -> 64 -> 8, tanh, batch of 16) with
  respect to its four parameters, jitted;
- ``sgd``: one training step (that gradient + ``optax.sgd(1e-2, momentum=0.9)``), jitted, the
  parameters and the optimizer state updated;
- ``jacfwd``: forward-mode Jacobian of the MLP output with respect to W1 (16x8x32x64), jitted;
- ``eager grad``: the gradient without any jit;
- ``recurrent``: one step of a 64-unit recurrent layer (64x64 weights) whose hidden state is
  written every call, jitted;
- ``N states``: N = 1, 10, 100, 1000 small states (4 floats each) read and written per call,
  jitted (plain JAX passes a list of arrays in and gets it back).

Timing: ``benchmarks/_harness.py`` (interleaved blocks, median per call, one pinned core), in
two modes: sync (every call's output blocked on) and async (one block per block of calls, as a
training loop runs). Every system's first output is checked against plain JAX before it is
timed.

    python benchmarks/peers.py [--quick] [--blocks=N]   # normally through `nox -s bench-peers`

Writes ``benchmarks/RESULTS.md``, ``benchmarks/results/peers.json`` and
``benchmarks/results/peers_states.png`` (``--quick``: fewer, shorter blocks, and the three files
go to ``<tempdir>/peers_quick/`` instead).
"""

from __future__ import annotations

import json
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from _harness import RESULTS, interleaved, pin_one_core, print_table

HERE = Path(__file__).resolve().parent
QUICK_DIR = Path(tempfile.gettempdir()) / "peers_quick"
SYSTEMS = [
    "plain JAX",
    "this stack",
    "brainstate",
    "Flax NNX",
    "NNX graph=False",
    "NNX cached_partial",
    "Equinox",
]
BASE = SYSTEMS[0]
NS = (1, 10, 100, 1000)
LR = 1e-2
MOMENTUM = 0.9

br = jax.block_until_ready  # sync mode; async mode swaps in `_no_block` (see `main`)


def _no_block(x: Any) -> Any:
    return x


@dataclass
class Case:
    """One system doing one job: ``call`` is timed; ``check`` (after one call) is compared."""

    how: str
    call: Callable[[], Any] | None = None
    check: Callable[[], list[Any]] | None = None
    cannot: str | None = None  # why the system cannot do the job (then call is None)
    notes: list[str] = field(default_factory=list)


# ----------------------------------------------------------------------------- shared data


def mlp_data(seed: int = 0) -> tuple[dict[str, jax.Array], jax.Array, jax.Array]:
    """Initial MLP parameters (W1, b1, W2, b2), the batch x and the targets y."""
    k = jax.random.split(jax.random.key(seed), 4)
    params = {
        "W1": jax.random.normal(k[0], (32, 64)) * 0.1,
        "b1": jnp.zeros(64),
        "W2": jax.random.normal(k[1], (64, 8)) * 0.1,
        "b2": jnp.zeros(8),
    }
    x = jax.random.normal(k[2], (16, 32))
    y = jax.random.normal(k[3], (16, 8))
    return params, x, y


PNAMES = ["W1", "b1", "W2", "b2"]


def pure_mlp(p: dict, x: jax.Array) -> jax.Array:
    return jnp.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]


def pure_loss(p: dict, x: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.mean((pure_mlp(p, x) - y) ** 2)


def in_order(d: Any) -> list[Any]:
    """The four MLP leaves of a mapping or attribute holder, in PNAMES order, as arrays."""
    out = []
    for k in PNAMES:
        v = d[k] if hasattr(d, "__getitem__") and not hasattr(d, k) else getattr(d, k)
        out.append(jax.tree.leaves(v)[0])
    return out


def rnn_data() -> tuple[jax.Array, jax.Array, jax.Array]:
    w = jax.random.normal(jax.random.key(1), (64, 64)) * 0.1
    return w, jnp.zeros(64), jnp.ones(64)


def state_init(i: int) -> jax.Array:
    return jnp.full((4,), float(i), dtype=jnp.float32)


A = jnp.float32(0.5)


# ----------------------------------------------------------------------------- plain JAX


def plain_cases(n_states: tuple[int, ...]) -> dict[str, Case]:
    import optax

    p, x, y = mlp_data()
    cases: dict[str, Case] = {}

    g = jax.jit(jax.grad(pure_loss))
    cases["grad"] = Case(
        "`jax.jit(jax.grad(pure_loss))(params, x, y)`",
        lambda: br(g(p, x, y)),
        lambda: in_order(g(p, x, y)),
    )

    tx = optax.sgd(LR, momentum=MOMENTUM)
    carry = {"p": p, "o": tx.init(p)}

    @jax.jit
    def sgd_step(p, o, x, y):
        grads = jax.grad(pure_loss)(p, x, y)
        updates, o = tx.update(grads, o, p)
        return optax.apply_updates(p, updates), o

    def sgd_call():
        carry["p"], carry["o"] = sgd_step(carry["p"], carry["o"], x, y)
        return br(carry["p"])

    cases["sgd"] = Case(
        "`jax.jit(step)(params, opt_state, x, y)` returning both (optax)",
        sgd_call,
        lambda: in_order(carry["p"]),
    )

    rest = {k: v for k, v in p.items() if k != "W1"}
    jac = jax.jit(jax.jacfwd(lambda w1, x: pure_mlp({**rest, "W1": w1}, x)))
    cases["jacfwd"] = Case(
        "`jax.jit(jax.jacfwd(f))(W1, x)` on the pure function",
        lambda: br(jac(p["W1"], x)),
        lambda: [jac(p["W1"], x)],
    )

    eg = jax.grad(pure_loss)
    cases["eager grad"] = Case(
        "`jax.grad(pure_loss)(params, x, y)` (op by op)",
        lambda: br(eg(p, x, y)),
        lambda: in_order(eg(p, x, y)),
    )

    w, h0, xr = rnn_data()

    @jax.jit
    def rnn_step(w, h, x):
        h = jnp.tanh(w @ h + x)
        return h.sum(), h

    rc = {"h": h0}

    def rnn_call():
        out, rc["h"] = rnn_step(w, rc["h"], xr)
        return br(out)

    cases["recurrent"] = Case(
        "`jax.jit(step)(W, h, x)` returning the new h", rnn_call, lambda: [rc["h"]]
    )

    for n in n_states:
        cases[f"{n} states"] = _plain_states(n)
    return cases


def _plain_states(n: int) -> Case:
    @jax.jit
    def step(values, a):
        new = [v * a + 1.0 for v in values]
        total = 0.0
        for v in new:
            total = total + v[0]
        return total, new

    c = {"v": [state_init(i) for i in range(n)]}

    def call():
        out, c["v"] = step(c["v"], A)
        return br(out)

    return Case("`jax.jit(step)(list_of_arrays, a)` returning the new list", call, lambda: c["v"])


# ----------------------------------------------------------------------------- this stack


def ours_cases(n_states: tuple[int, ...]) -> dict[str, Case]:
    import optax

    import statediff as sd
    import stategraph as sg
    import statejax as sj

    p0, x, y = mlp_data()
    cases: dict[str, Case] = {}

    def model():
        params = {k: sg.ParamState(v, name=k) for k, v in p0.items()}

        def mlp(x):
            h = jnp.tanh(x @ params["W1"].value + params["b1"].value)
            return h @ params["W2"].value + params["b2"].value

        def loss(x, y):
            return jnp.mean((mlp(x) - y) ** 2)

        return params, mlp, loss

    params, mlp, loss = model()
    g = sj.jit(sd.grad(loss, grad_states=params))
    cases["grad"] = Case(
        "`sj.jit(sd.grad(loss, grad_states=params))(x, y)`",
        lambda: br(g(x, y)),
        lambda: in_order(g(x, y)),
    )

    sparams, _, sloss = model()
    tx = optax.sgd(LR, momentum=MOMENTUM)
    opt = sg.LongTermState(tx.init({k: s.value for k, s in sparams.items()}), name="opt")
    sgrad = sd.grad(sloss, grad_states=sparams)

    @sj.jit
    def train(x, y):
        grads = sgrad(x, y)
        values = {k: s.value for k, s in sparams.items()}
        updates, opt.value = tx.update(grads, opt.value, values)
        for k, v in optax.apply_updates(values, updates).items():
            sparams[k].value = v

    def sgd_call():
        train(x, y)
        return br(sparams["W1"].value)

    cases["sgd"] = Case(
        "`sj.jit(train)(x, y)`: `sd.grad` + optax inside, parameters and optimizer state in "
        "States written in place",
        sgd_call,
        lambda: in_order({k: s.value for k, s in sparams.items()}),
    )

    jac = sj.jit(sd.jacfwd(mlp, grad_states=params["W1"]))
    cases["jacfwd"] = Case(
        "`sj.jit(sd.jacfwd(mlp, grad_states=W1))(x)`",
        lambda: br(jac(x)),
        lambda: [jac(x)],
    )

    eg = sd.grad(loss, grad_states=params)
    cases["eager grad"] = Case(
        "`sd.grad(loss, grad_states=params)(x, y)` (no jit; made once, called many times)",
        lambda: br(eg(x, y)),
        lambda: in_order(eg(x, y)),
        notes=[
            "statediff's eager call runs the pure function it traced and compiled on the "
            "first call (by design), while the peers and plain `jax.grad` run op by op."
        ],
    )

    w0, h0, xr = rnn_data()
    w = sg.ParamState(w0, name="W")
    h = sg.ShortTermState(h0, name="h")

    @sj.jit
    def step(x):
        h.value = jnp.tanh(w.value @ h.value + x)
        return h.value.sum()

    cases["recurrent"] = Case(
        "`sj.jit(step)(x)`, W a ParamState, h a ShortTermState written in place",
        lambda: br(step(xr)),
        lambda: [h.value],
    )

    for n in n_states:
        states = [sg.ShortTermState(state_init(i), name=f"s{i}") for i in range(n)]
        cases[f"{n} states"] = Case(
            "`sj.jit(step)(a)` over ShortTermStates",
            _stateful_states_call(sj.jit, states),
            (lambda st=states: [s.value for s in st]),
        )
    return cases


def _stateful_states_call(jit: Callable, states: list) -> Callable[[], Any]:
    """A jitted step reading and writing every state of ``states`` (ours and brainstate)."""

    @jit
    def step(a):
        total = 0.0
        for s in states:
            s.value = s.value * a + 1.0
            total = total + s.value[0]
        return total

    return lambda: br(step(A))


# ----------------------------------------------------------------------------- brainstate


def brainstate_cases(n_states: tuple[int, ...]) -> dict[str, Case]:
    import brainstate as bst
    import optax

    T = bst.transform
    p0, x, y = mlp_data()
    cases: dict[str, Case] = {}

    def model():
        params = {k: bst.ParamState(v) for k, v in p0.items()}

        def mlp(x):
            h = jnp.tanh(x @ params["W1"].value + params["b1"].value)
            return h @ params["W2"].value + params["b2"].value

        def loss(x, y):
            return jnp.mean((mlp(x) - y) ** 2)

        return params, mlp, loss

    params, mlp, loss = model()
    g = T.jit(T.grad(loss, grad_states=params))
    cases["grad"] = Case(
        "`brainstate.transform.jit(brainstate.transform.grad(loss, grad_states=params))(x, y)`",
        lambda: br(g(x, y)),
        lambda: in_order(g(x, y)),
    )

    sparams, _, sloss = model()
    tx = optax.sgd(LR, momentum=MOMENTUM)
    opt = bst.LongTermState(tx.init({k: s.value for k, s in sparams.items()}))
    sgrad = T.grad(sloss, grad_states=sparams)

    @T.jit
    def train(x, y):
        grads = sgrad(x, y)
        values = {k: s.value for k, s in sparams.items()}
        updates, opt.value = tx.update(grads, opt.value, values)
        for k, v in optax.apply_updates(values, updates).items():
            sparams[k].value = v

    def sgd_call():
        train(x, y)
        return br(sparams["W1"].value)

    cases["sgd"] = Case(
        "`transform.jit(train)(x, y)`: `transform.grad` + optax inside, States written in place",
        sgd_call,
        lambda: in_order({k: s.value for k, s in sparams.items()}),
    )

    jac = T.jit(T.jacfwd(mlp, grad_states=params["W1"]))
    cases["jacfwd"] = Case(
        "`transform.jit(transform.jacfwd(mlp, grad_states=W1))(x)`",
        lambda: br(jac(x)),
        lambda: [jac(x)],
    )

    eg = T.grad(loss, grad_states=params)
    cases["eager grad"] = Case(
        "`transform.grad(loss, grad_states=params)(x, y)` (no jit; made once)",
        lambda: br(eg(x, y)),
        lambda: in_order(eg(x, y)),
    )

    w0, h0, xr = rnn_data()
    w = bst.ParamState(w0)
    h = bst.ShortTermState(h0)

    @T.jit
    def step(x):
        h.value = jnp.tanh(w.value @ h.value + x)
        return h.value.sum()

    cases["recurrent"] = Case(
        "`transform.jit(step)(x)`, W a ParamState, h a ShortTermState written in place",
        lambda: br(step(xr)),
        lambda: [h.value],
    )

    for n in n_states:
        states = [bst.ShortTermState(state_init(i)) for i in range(n)]
        cases[f"{n} states"] = Case(
            "`transform.jit(step)(a)` over ShortTermStates",
            _stateful_states_call(T.jit, states),
            (lambda st=states: [s.value for s in st]),
        )
    return cases


# ----------------------------------------------------------------------------- Flax NNX


def nnx_cases(n_states: tuple[int, ...]) -> dict[str, Case]:
    import optax
    from flax import nnx

    p0, x, y = mlp_data()
    cases: dict[str, Case] = {}

    class MLP(nnx.Module):
        def __init__(self):
            self.W1 = nnx.Param(p0["W1"])
            self.b1 = nnx.Param(p0["b1"])
            self.W2 = nnx.Param(p0["W2"])
            self.b2 = nnx.Param(p0["b2"])

        def __call__(self, x):
            h = jnp.tanh(x @ self.W1[...] + self.b1[...])
            return h @ self.W2[...] + self.b2[...]

    def loss_fn(model, x, y):
        return jnp.mean((model(x) - y) ** 2)

    model = MLP()
    g = nnx.jit(nnx.grad(loss_fn))
    cases["grad"] = Case(
        "`nnx.jit(nnx.grad(loss_fn))(model, x, y)` on an `nnx.Module` with four `nnx.Param`s",
        lambda: br(g(model, x, y)),
        lambda: in_order(g(model, x, y)),
    )

    smodel = MLP()
    optimizer = nnx.Optimizer(smodel, optax.sgd(LR, momentum=MOMENTUM), wrt=nnx.Param)

    @nnx.jit
    def train(model, optimizer, x, y):
        grads = nnx.grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)

    def sgd_call():
        train(smodel, optimizer, x, y)
        return br(smodel.W1[...])

    cases["sgd"] = Case(
        "`nnx.jit(train)(model, optimizer, x, y)` with `nnx.grad` and `nnx.Optimizer` (optax)",
        sgd_call,
        lambda: in_order(smodel),
    )

    @nnx.jit
    def jac(model, x):
        graphdef, w1, rest = nnx.split(model, nnx.PathContains("W1"), ...)

        def f(w1):
            return nnx.merge(graphdef, w1, rest)(x)

        return jax.jacfwd(f)(w1)

    cases["jacfwd"] = Case(
        "no `nnx.jacfwd` exists: `nnx.jit` of `nnx.split(model, W1 filter)` + `jax.jacfwd` "
        "over `nnx.merge` (written by hand)",
        lambda: br(jac(model, x)),
        lambda: jax.tree.leaves(jac(model, x)),
        notes=[
            "NNX has no Jacobian transform over a module's state; the user splits the "
            "module and calls jax.jacfwd on a pure function of the split-out Param."
        ],
    )

    eg = nnx.grad(loss_fn)
    cases["eager grad"] = Case(
        "`nnx.grad(loss_fn)(model, x, y)` (no jit; made once)",
        lambda: br(eg(model, x, y)),
        lambda: in_order(eg(model, x, y)),
    )

    class Hidden(nnx.Variable):
        pass

    w0, h0, xr = rnn_data()

    class RNN(nnx.Module):
        def __init__(self):
            self.W = nnx.Param(w0)
            self.h = Hidden(h0)

        def __call__(self, x):
            self.h[...] = jnp.tanh(self.W[...] @ self.h[...] + x)
            return self.h[...].sum()

    rnn = RNN()

    @nnx.jit
    def step(rnn, x):
        return rnn(x)

    cases["recurrent"] = Case(
        "`nnx.jit(step)(rnn, x)`, W an `nnx.Param`, h an `nnx.Variable` written in place",
        lambda: br(step(rnn, xr)),
        lambda: [rnn.h[...]],
    )

    class Bank(nnx.Module):
        def __init__(self, n):
            self.s = nnx.List([Hidden(state_init(i)) for i in range(n)])

    @nnx.jit
    def bank_step(bank, a):
        total = 0.0
        for v in bank.s:
            v[...] = v[...] * a + 1.0
            total = total + v[...][0]
        return total

    for n in n_states:
        bank = Bank(n)
        cases[f"{n} states"] = Case(
            "`nnx.jit(step)(bank, a)`, an `nnx.Module` holding an `nnx.List` of Variables",
            (lambda b=bank: br(bank_step(b, A))),
            (lambda b=bank: [v[...] for v in b.s]),
        )
    return cases


def nnx_fast_cases(n_states: tuple[int, ...], mode: str) -> dict[str, Case]:
    """Flax NNX's faster modes: ``nnx.jit(..., graph=False)`` or ``nnx.cached_partial``."""
    import optax
    from flax import nnx

    p0, x, y = mlp_data()
    cases: dict[str, Case] = {}
    cached = mode == "cached_partial"

    def jit(f):
        return nnx.jit(f) if cached else nnx.jit(f, graph=False)

    def bind(f, *objs):
        """``f`` with its module arguments bound (cached_partial) or passed each call."""
        if cached:
            g = nnx.cached_partial(f, *objs)
            return lambda *a: g(*a)
        return lambda *a: f(*objs, *a)

    label = "`nnx.jit(f, graph=False)`" if not cached else "`nnx.cached_partial(nnx.jit(f), ...)`"

    class MLP(nnx.Module):
        def __init__(self):
            self.W1 = nnx.Param(p0["W1"])
            self.b1 = nnx.Param(p0["b1"])
            self.W2 = nnx.Param(p0["W2"])
            self.b2 = nnx.Param(p0["b2"])

        def __call__(self, x):
            h = jnp.tanh(x @ self.W1[...] + self.b1[...])
            return h @ self.W2[...] + self.b2[...]

    def loss_fn(model, x, y):
        return jnp.mean((model(x) - y) ** 2)

    model = MLP()
    g = bind(jit(nnx.grad(loss_fn)), model)
    cases["grad"] = Case(
        f"{label} of `nnx.grad(loss_fn)`", lambda: br(g(x, y)), lambda: in_order(g(x, y))
    )

    smodel = MLP()
    optimizer = nnx.Optimizer(smodel, optax.sgd(LR, momentum=MOMENTUM), wrt=nnx.Param)

    def train(model, optimizer, x, y):
        grads = nnx.grad(loss_fn)(model, x, y)
        optimizer.update(model, grads)

    t = bind(jit(train), smodel, optimizer)

    def sgd_call():
        t(x, y)
        return br(smodel.W1[...])

    cases["sgd"] = Case(
        f"{label} of the train step (`nnx.Optimizer`, optax)", sgd_call, lambda: in_order(smodel)
    )
    same = "the same as Flax NNX's graph mode (this mode is a jit option)"
    cases["jacfwd"] = Case(label, cannot=same)
    cases["eager grad"] = Case(label, cannot="no jit: " + same)

    class Hidden(nnx.Variable):
        pass

    w0, h0, xr = rnn_data()

    class RNN(nnx.Module):
        def __init__(self):
            self.W = nnx.Param(w0)
            self.h = Hidden(h0)

        def __call__(self, x):
            self.h[...] = jnp.tanh(self.W[...] @ self.h[...] + x)
            return self.h[...].sum()

    rnn = RNN()
    step = bind(jit(lambda rnn, x: rnn(x)), rnn)
    cases["recurrent"] = Case(
        f"{label} of `step(rnn, x)`", lambda: br(step(xr)), lambda: [rnn.h[...]]
    )

    class Bank(nnx.Module):
        def __init__(self, n):
            self.s = nnx.List([Hidden(state_init(i)) for i in range(n)])

    def bank_step(bank, a):
        total = 0.0
        for v in bank.s:
            v[...] = v[...] * a + 1.0
            total = total + v[...][0]
        return total

    for n in n_states:
        bank = Bank(n)
        call = bind(jit(bank_step), bank)
        cases[f"{n} states"] = Case(
            f"{label} of `step(bank, a)`, an `nnx.List` of Variables",
            (lambda c=call: br(c(A))),
            (lambda b=bank: [v[...] for v in b.s]),
        )
    return cases


# ----------------------------------------------------------------------------- Equinox


def eqx_cases(n_states: tuple[int, ...]) -> dict[str, Case]:
    import equinox as eqx
    import optax

    p0, x, y = mlp_data()
    cases: dict[str, Case] = {}

    class MLP(eqx.Module):
        W1: jax.Array
        b1: jax.Array
        W2: jax.Array
        b2: jax.Array

        def __call__(self, x):
            return jnp.tanh(x @ self.W1 + self.b1) @ self.W2 + self.b2

    def loss_fn(model, x, y):
        return jnp.mean((model(x) - y) ** 2)

    model = MLP(**p0)
    g = eqx.filter_jit(eqx.filter_grad(loss_fn))
    cases["grad"] = Case(
        "`eqx.filter_jit(eqx.filter_grad(loss_fn))(model, x, y)` on an `eqx.Module`",
        lambda: br(g(model, x, y)),
        lambda: in_order(g(model, x, y)),
    )

    tx = optax.sgd(LR, momentum=MOMENTUM)
    carry = {"m": MLP(**p0)}
    carry["o"] = tx.init(eqx.filter(carry["m"], eqx.is_array))

    @eqx.filter_jit
    def train(model, opt_state, x, y):
        grads = eqx.filter_grad(loss_fn)(model, x, y)
        updates, opt_state = tx.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state

    def sgd_call():
        carry["m"], carry["o"] = train(carry["m"], carry["o"], x, y)
        return br(carry["m"].W1)

    cases["sgd"] = Case(
        "`eqx.filter_jit(train)(model, opt_state, x, y)` returning both (optax)",
        sgd_call,
        lambda: in_order(carry["m"]),
    )

    def f(w1, model, x):
        return eqx.tree_at(lambda m: m.W1, model, w1)(x)

    jac = eqx.filter_jit(eqx.filter_jacfwd(f))
    cases["jacfwd"] = Case(
        "`eqx.filter_jit(eqx.filter_jacfwd(f))(W1, model, x)`, f putting W1 into the model "
        "with `eqx.tree_at`",
        lambda: br(jac(p0["W1"], model, x)),
        lambda: [jac(p0["W1"], model, x)],
    )

    eg = eqx.filter_grad(loss_fn)
    cases["eager grad"] = Case(
        "`eqx.filter_grad(loss_fn)(model, x, y)` (no jit; made once)",
        lambda: br(eg(model, x, y)),
        lambda: in_order(eg(model, x, y)),
    )

    w0, h0, xr = rnn_data()

    class RNN(eqx.Module):
        W: jax.Array
        h: eqx.nn.StateIndex

        def __init__(self):
            self.W = w0
            self.h = eqx.nn.StateIndex(h0)

        def __call__(self, x, state):
            h = jnp.tanh(self.W @ state.get(self.h) + x)
            return h.sum(), state.set(self.h, h)

    rnn, rstate = eqx.nn.make_with_state(RNN)()
    rc = {"s": rstate}

    @eqx.filter_jit
    def step(rnn, x, state):
        return rnn(x, state)

    def rnn_call():
        out, rc["s"] = step(rnn, xr, rc["s"])
        return br(out)

    cases["recurrent"] = Case(
        "`eqx.filter_jit(step)(rnn, x, state)` returning the new `eqx.nn.State` "
        "(h behind an `eqx.nn.StateIndex`)",
        rnn_call,
        lambda: [rc["s"].get(rnn.h)],
    )

    class Bank(eqx.Module):
        idx: list

        def __init__(self, n):
            self.idx = [eqx.nn.StateIndex(state_init(i)) for i in range(n)]

    @eqx.filter_jit
    def bank_step(bank, state, a):
        total = 0.0
        for i in bank.idx:
            v = state.get(i) * a + 1.0
            state = state.set(i, v)
            total = total + v[0]
        return total, state

    for n in n_states:
        bank, bstate = eqx.nn.make_with_state(Bank)(n)
        c = {"s": bstate}

        def call(bank=bank, c=c):
            out, c["s"] = bank_step(bank, c["s"], A)
            return br(out)

        cases[f"{n} states"] = Case(
            "`eqx.filter_jit(step)(bank, state, a)` returning the new `eqx.nn.State` "
            "(N `StateIndex`es)",
            call,
            (lambda bank=bank, c=c: [c["s"].get(i) for i in bank.idx]),
        )
    return cases


# ----------------------------------------------------------------------------- running


BUILDERS = {
    "plain JAX": plain_cases,
    "this stack": ours_cases,
    "brainstate": brainstate_cases,
    "Flax NNX": nnx_cases,
    "NNX graph=False": lambda ns: nnx_fast_cases(ns, "graph=False"),
    "NNX cached_partial": lambda ns: nnx_fast_cases(ns, "cached_partial"),
    "Equinox": eqx_cases,
}

JOB_TITLES = {
    "grad": "MLP gradient, jitted",
    "sgd": "MLP SGD step (grad + optax momentum), jitted",
    "jacfwd": "jacfwd of MLP output w.r.t. W1, jitted",
    "eager grad": "MLP gradient, eager (no jit)",
    "recurrent": "recurrent step, 64 hidden (state written), jitted",
}


def title(job: str) -> str:
    """The table label of a job."""
    if job in JOB_TITLES:
        return JOB_TITLES[job]
    n = int(job.split()[0])
    return f"{n} {'state' if n == 1 else 'states'} read+written per call, jitted"


def check(job: str, base: list[Any], got: list[Any]) -> str:
    """Compare a system's first output with plain JAX's; return 'ok' or what differs."""
    if len(base) != len(got):
        return f"MISMATCH: {len(got)} arrays, plain JAX {len(base)}"
    worst = 0.0
    for a, b in zip(base, got, strict=True):
        a, b = np.asarray(a), np.asarray(b)
        if a.shape != b.shape:
            return f"MISMATCH: shape {b.shape}, plain JAX {a.shape}"
        worst = max(worst, float(np.max(np.abs(a - b), initial=0.0)))
        if not np.allclose(a, b, rtol=1e-4, atol=1e-5):
            return f"MISMATCH: max |diff| {worst:.3g}"
    return "ok"


def versions() -> dict[str, str]:
    out = {"python": sys.version.split()[0]}
    for dist in [
        "jax",
        "jaxlib",
        "numpy",
        "brainstate",
        "flax",
        "equinox",
        "optax",
        "stategraph",
        "statejax",
        "statediff",
        "statediff-units",
        "brainunit",
        "matplotlib",
    ]:
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def loadavg() -> list[float]:
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return []


def us(t: float | None) -> str:
    if t is None:
        return ""
    v = t * 1e6
    return f"{v:.1f}" if v < 100 else f"{v:.0f}"


def main() -> int:
    quick = "--quick" in sys.argv
    t_start = time.perf_counter()
    load_start = loadavg()
    core = pin_one_core()
    blocks = 3 if quick else 31
    target_s = 0.01 if quick else 0.05
    # N = 1000: some systems take tens of milliseconds per call, so a block holds few calls
    big_blocks = 2 if quick else 41
    # --blocks=N: a full run (committed files) with N blocks per job (for a busy machine)
    for arg in sys.argv[1:]:
        if arg.startswith("--blocks="):
            blocks = int(arg.split("=", 1)[1])
            big_blocks = max(2, blocks * 4 // 3)

    print(
        f"peers.py ({'quick' if quick else 'full'} mode), pinned to core {core}, "
        f"load average {load_start}",
        flush=True,
    )
    all_cases: dict[str, dict[str, Case]] = {}
    for system, build in BUILDERS.items():
        t0 = time.perf_counter()
        all_cases[system] = build(NS)
        print(f"  built {system} ({time.perf_counter() - t0:.1f} s)", flush=True)
    jobs = [*JOB_TITLES, *(f"{n} states" for n in NS)]

    checks: dict[str, dict[str, str]] = {}
    first_call_s: dict[str, dict[str, float]] = {}
    base_out: dict[str, list[Any]] = {}
    for job in jobs:
        checks[job], first_call_s[job] = {}, {}
        for system in SYSTEMS:
            case = all_cases[system][job]
            if case.call is None:
                continue
            t0 = time.perf_counter()
            case.call()  # first call: trace + compile (timed for information)
            first_call_s[job][system] = time.perf_counter() - t0
            got = case.check()
            if system == BASE:
                base_out[job] = got
                checks[job][system] = "reference"
            else:
                checks[job][system] = check(job, base_out[job], got)
        print(
            f"  first calls + checks of {job}: "
            + ", ".join(f"{s} {checks[job].get(s, 'n/a')}" for s in SYSTEMS),
            flush=True,
        )

    times: dict[str, dict[str, float]] = {}
    load_during: list[list[float]] = []  # 1-min load average after each timed job
    for job in jobs:
        runnable = {
            s: all_cases[s][job].call for s in SYSTEMS if all_cases[s][job].call is not None
        }
        nb = big_blocks if job == "1000 states" else blocks
        t0 = time.perf_counter()
        times[job] = interleaved(runnable, blocks=nb, target_s=target_s)
        load_during.append(loadavg()[:1])
        print(
            f"  timed {job} ({time.perf_counter() - t0:.1f} s): "
            + ", ".join(f"{s} {us(t)} us" for s, t in times[job].items()),
            flush=True,
        )

    # Async mode: no block per call (every case calls the module-level `br`), one per block.
    global br
    times_async: dict[str, dict[str, float]] = {}
    br = _no_block
    try:
        for job in jobs:
            runnable = {
                s: all_cases[s][job].call for s in SYSTEMS if all_cases[s][job].call is not None
            }
            nb = big_blocks if job == "1000 states" else blocks
            times_async[job] = interleaved(runnable, blocks=nb, target_s=target_s, sync=False)
            print(
                f"  timed {job} async: "
                + ", ".join(f"{s} {us(t)} us" for s, t in times_async[job].items()),
                flush=True,
            )
    finally:
        br = jax.block_until_ready

    rows = []
    for job in jobs:
        base = times[job][BASE]
        row: dict[str, Any] = {"job": job}
        for s in SYSTEMS:
            t = times[job].get(s)
            row[s] = None if t is None else f"{t / base:.2f}x ({us(t)} us)"
        rows.append(row)
    print_table(
        f"per call, ratio to plain JAX (us per call); pinned core {core}", rows, ["job", *SYSTEMS]
    )

    runtime = time.perf_counter() - t_start
    load_end = loadavg()
    info = {
        "mode": "quick" if quick else "full",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "versions": versions(),
        "machine": {
            "cpu": cpu_model(),
            "cores": os.cpu_count(),
            "pinned_core": core,
            "platform": platform.platform(),
            "backend": jax.default_backend(),
            "loadavg_start": load_start,
            "loadavg_end": load_end,
            "loadavg_1min_after_each_job": [x for v in load_during for x in v],
        },
        "runtime_s": round(runtime, 1),
        "blocks": blocks,
        "blocks_1000_states": big_blocks,
        "target_s_per_block": target_s,
        "times_async": times_async,
    }
    payload = {
        **info,
        "jobs": {
            job: {
                s: {
                    "how": all_cases[s][job].how,
                    "us_per_call": None
                    if job not in times or s not in times[job]
                    else times[job][s] * 1e6,
                    "ratio_to_jax": None
                    if s not in times[job]
                    else times[job][s] / times[job][BASE],
                    "async_us_per_call": None
                    if s not in times_async.get(job, {})
                    else times_async[job][s] * 1e6,
                    "async_ratio_to_jax": None
                    if s not in times_async.get(job, {})
                    else times_async[job][s] / times_async[job][BASE],
                    "first_call_s": first_call_s[job].get(s),
                    "check": checks[job].get(s),
                    "cannot": all_cases[s][job].cannot,
                }
                for s in SYSTEMS
            }
            for job in jobs
        },
    }
    # --quick writes the same three files into a scratch folder, never over the committed ones.
    out_dir, md_dir = (RESULTS, HERE) if not quick else (QUICK_DIR, QUICK_DIR)
    out_dir.mkdir(parents=True, exist_ok=True)
    jpath = out_dir / "peers.json"
    jpath.write_text(json.dumps(payload, indent=2) + "\n")
    png = plot_states(times, out_dir / "peers_states.png", info)
    md = write_markdown(md_dir / "RESULTS.md", all_cases, times, first_call_s, checks, info)
    print(f"\nresults written to {jpath}\nplot written to {png}\nsummary written to {md}")
    print(f"runtime {runtime:.0f} s; load average start {load_start}, end {load_end}")
    bad = [(j, s, c) for j, d in checks.items() for s, c in d.items() if c.startswith("MIS")]
    for j, s, c in bad:
        print(f"CHECK FAILED: {j} / {s}: {c}")
    return 1 if bad else 0


def plot_states(times: dict, path: Path, info: dict) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    markers = ["o", "s", "^", "D", "<", ">", "v"]
    for s, m in zip(SYSTEMS, markers, strict=True):
        ys = [times[f"{n} states"].get(s) for n in NS]
        pts = [(n, y * 1e6) for n, y in zip(NS, ys, strict=True) if y is not None]
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker=m, label=s)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("number of states read and written per call")
    ax.set_ylabel("time per call (us), median")
    ax.set_title("Per-call cost against number of states (jitted)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.text(
        0.01,
        0.01,
        f"{info['machine']['cpu']}, 1 pinned core; jax {info['versions']['jax']}",
        fontsize=7,
        alpha=0.7,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def findings(times: dict) -> list[str]:
    """Bullets: every job where this stack is slower than a peer or > 1.10x plain JAX."""
    ours = SYSTEMS[1]
    out = []
    for job, t in times.items():
        mine = t[ours]
        if mine > 1.10 * t[BASE]:
            out.append(
                f"- {title(job)}: this stack {us(mine)} us is {mine / t[BASE]:.2f}x plain JAX "
                f"({us(t[BASE])} us)."
            )
        for s in SYSTEMS[2:]:
            if s in t and t[s] < mine:
                out.append(
                    f"- {title(job)}: {s} {us(t[s])} us is faster than this stack "
                    f"({us(mine)} us, {mine / t[s]:.2f}x)."
                )
    return out or [
        "- Nowhere: on every job this stack is within 1.10x of plain JAX and at "
        "least as fast as every peer."
    ]


def write_markdown(
    path: Path, all_cases: dict, times: dict, first_call_s: dict, checks: dict, info: dict
) -> Path:
    v, m = info["versions"], info["machine"]
    jobs = list(times)
    lines = [
        "# Peer comparison: plain JAX, this stack, brainstate, Flax NNX, Equinox",
        "",
        "Generated by `nox -s bench-peers` ([`peers.py`](peers.py)); do not edit by hand. "
        f"Run of {info['date']} ({info['mode']} mode, {info['runtime_s']:.0f} s).",
        "",
        "Each cell: time per call relative to plain JAX on the equivalent pure function, and "
        "the absolute median time per call in microseconds. Lower is better. All systems run "
        "in one process, pinned to one core, timed in interleaved blocks "
        f"({info['blocks']} blocks; {info['blocks_1000_states']} for 1000 states) by "
        "[`_harness.py`](_harness.py). Before timing, every system's first output was "
        "checked against plain JAX (see Checks).",
        "",
        "**Sync mode** (`block_until_ready` on every call's output):",
        "",
        "| job | " + " | ".join(SYSTEMS) + " |",
        "| --- | " + " | ".join("---:" for _ in SYSTEMS) + " |",
    ]
    for job in jobs:
        base = times[job][BASE]
        cells = []
        for s in SYSTEMS:
            t = times[job].get(s)
            if t is None:
                cells.append(all_cases[s][job].cannot or "cannot do this job")
            else:
                cells.append(f"{t / base:.2f}x ({us(t)} us)")
        lines.append(f"| {title(job)} | " + " | ".join(cells) + " |")
    t_async = info.get("times_async") or {}
    if t_async:
        lines += [
            "",
            "**Async mode** (the same calls back to back, one `block_until_ready` per block, "
            "as a training loop or a simulation runs; the Python cost of each call shows in "
            "full):",
            "",
            "| job | " + " | ".join(SYSTEMS) + " |",
            "| --- | " + " | ".join("---:" for _ in SYSTEMS) + " |",
        ]
        for job in jobs:
            base = t_async[job][BASE]
            cells = []
            for s in SYSTEMS:
                t = t_async[job].get(s)
                cells.append(
                    all_cases[s][job].cannot or "cannot do this job"
                    if t is None
                    else f"{t / base:.2f}x ({us(t)} us)"
                )
            lines.append(f"| {title(job)} | " + " | ".join(cells) + " |")
    slope = {}
    for s in SYSTEMS:
        a, b = times["1 states"].get(s), times["1000 states"].get(s)
        if a is not None and b is not None:
            slope[s] = (b - a) / 999 * 1e6
    lines += [
        "",
        "Cost per extra state (slope between 1 and 1000 states, us per state): "
        + ", ".join(f"{s} {x:.3f}" for s, x in slope.items())
        + ".",
        "",
        "![per-call cost against number of states](results/peers_states.png)",
        "",
        "## Where this stack is not ahead",
        "",
        *findings(times),
        "",
        "## Notes",
        "",
        "- Plain JAX runs pure functions: where a job has state (SGD, recurrent, N states) the "
        "values are passed in and the new ones returned, which is what the stateful systems "
        "do for the user.",
        "- This stack's eager `sd.grad` runs the pure function it traced and compiled on its "
        "first call, so it is compared against plain JAX's op-by-op `jax.grad`; the peers' "
        "eager transforms run op by op too.",
        "- Flax NNX runs in its default graph mode (`nnx_graph_mode=True`) in the `Flax NNX` "
        "column; its faster modes have their own columns: `nnx.jit(..., graph=False)` (tree "
        "mode) and `nnx.cached_partial` (the module's graph flattened once). NNX has no "
        "Jacobian transform over module state, so its jacfwd row uses the split/merge "
        "workaround named below.",
        "- Equinox modules are immutable: states live in an `eqx.nn.State` that each call "
        "takes and returns.",
        f"- brainstate {v['brainstate']} is the version the resolver picked next to jax "
        f"{v['jax']}.",
        "- First-call times (last table) are single samples taken in the order of the "
        "columns, so plain JAX, going first, also pays for warming caches the others share.",
        "",
        "## Machine and versions",
        "",
        f"- CPU: {m['cpu']}, {m['cores']} cores; the benchmark process pinned to core "
        f"{m['pinned_core']}; backend {m['backend']}; {m['platform']}",
        f"- load average (1, 5, 15 min) at start {m['loadavg_start']}, at end "
        f"{m['loadavg_end']}; 1-min load average after each timed job (this benchmark "
        f"itself keeps one core busy): {m['loadavg_1min_after_each_job']}"
        + (
            ". The machine is shared and was busy during part of the run: other processes "
            "competed for the cores, so the absolute numbers are noisier than on an idle "
            "machine; the ratios come from interleaved blocks and suffer less."
            if max(
                m["loadavg_start"][:1] + m["loadavg_end"][:1] + m["loadavg_1min_after_each_job"],
                default=0.0,
            )
            > 1.5
            else ". The machine is shared; it was quiet during this run."
        ),
        "- versions: " + ", ".join(f"{k} {x}" for k, x in v.items()),
        "",
        "## How each system does each job",
        "",
    ]
    for job in [*JOB_TITLES, f"{NS[0]} states"]:
        head = JOB_TITLES.get(
            job, "N states read+written per call (N = " + ", ".join(map(str, NS)) + "), jitted"
        )
        lines.append(f"**{head}**")
        lines.append("")
        for s in SYSTEMS:
            c = all_cases[s][job]
            lines.append(f"- {s}: {c.cannot or c.how}")
            lines += [f"  ({n})" for n in c.notes]
        lines.append("")
    lines += [
        "## Checks and first calls",
        "",
        "First call of each system (trace + compile, one sample, seconds) and the comparison "
        "of its first output with plain JAX's (rtol 1e-4, atol 1e-5).",
        "",
        "| job | " + " | ".join(SYSTEMS) + " |",
        "| --- | " + " | ".join("---" for _ in SYSTEMS) + " |",
    ]
    for job in jobs:
        cells = []
        for s in SYSTEMS:
            if s not in first_call_s[job]:
                cells.append("n/a")
            else:
                cells.append(f"{first_call_s[job][s]:.2f} s, {checks[job][s]}")
        lines.append(f"| {title(job)} | " + " | ".join(cells) + " |")
    lines.append("")
    path.write_text("\n".join(lines) + _other_sections(path))
    return path


# Sections of RESULTS.md written by other benchmarks (bench_sparse.py, ...): kept as they are.
OTHER_SECTIONS = ("## Sparse Jacobians",)


def _other_sections(path: Path) -> str:
    """The sections of the existing ``path`` that other benchmarks own, from the first on."""
    if not path.exists():
        return ""
    text = path.read_text()
    starts = [i for i in (text.find("\n" + h) for h in OTHER_SECTIONS) if i >= 0]
    return text[min(starts) :] if starts else ""


if __name__ == "__main__":
    sys.exit(main())
