"""The distributed scenarios: each runs unchanged on one process or on several.

Every scenario builds its states as global arrays over a ``(data, model)`` mesh of all the
devices of all the processes, runs the stack on them and returns its results as host numpy
arrays gathered with ``process_allgather`` (so every process returns the whole result). The
parent test compares each process' results with the same scenario run by one process with as
many devices. Inputs are deterministic (seeded numpy); the batch of each step is given per
process: each process passes only the rows its own devices hold.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

import statediff as sd
import stategraph as sg
import statejax as sj

SCENARIOS: dict[str, Callable[[], dict[str, np.ndarray]]] = {}


def scenario(fun: Callable[[], dict[str, np.ndarray]]) -> Callable[[], dict[str, np.ndarray]]:
    SCENARIOS[fun.__name__] = fun
    return fun


# ----------------------------------------------------------------------------- helpers


def make_mesh() -> jax.sharding.Mesh:
    """A (data=4, model=2) mesh of every device of every process."""
    assert jax.device_count() == 8, jax.devices()
    return jax.make_mesh((4, 2), ("data", "model"), axis_types=(AxisType.Auto,) * 2)


def global_array(value: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
    """A global array from a value every process knows (each fills its own shards)."""
    value = np.asarray(value)
    return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])


def local_rows(sharding: jax.sharding.Sharding, shape: tuple[int, ...]) -> slice:
    """The rows of a global array of ``shape`` held by this process' devices."""
    index = sharding.addressable_devices_indices_map(shape).values()
    starts = [i[0].start or 0 for i in index]
    stops = [shape[0] if i[0].stop is None else i[0].stop for i in index]
    return slice(min(starts), max(stops))


def batch_array(full: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
    """A global batch built from this process' rows only (as a data loader would give them)."""
    rows = local_rows(sharding, full.shape)
    return jax.make_array_from_process_local_data(sharding, full[rows], full.shape)


def to_host(x: jax.Array) -> np.ndarray:
    """The whole value of a (possibly multi-process) array, on the host of every process."""
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return np.asarray(multihost_utils.process_allgather(x, tiled=True))
    return np.asarray(x)


def kept(state: sg.State, sharding: jax.sharding.Sharding) -> np.ndarray:
    """1 if the state still holds an array with ``sharding`` (up to equivalence)."""
    value = state.value
    return np.asarray(value.sharding.is_equivalent_to(sharding, value.ndim), np.int32)


class MLP:
    """A two-layer perceptron whose parameters are split over the ``model`` axis."""

    def __init__(self, mesh: jax.sharding.Mesh, seed: int = 0, zeros: bool = False) -> None:
        rng = np.random.default_rng(seed)
        shapes = {"w1": (4, 8), "b1": (8,), "w2": (8, 2)}
        self.specs = {"w1": P(None, "model"), "b1": P("model"), "w2": P("model", None)}
        self.shardings = {k: NamedSharding(mesh, s) for k, s in self.specs.items()}
        for name, shape in shapes.items():
            init = np.zeros(shape, np.float32) if zeros else rng.normal(size=shape) * 0.5
            value = global_array(init.astype(np.float32), self.shardings[name])
            setattr(self, name, sg.ParamState(value, name=name))
            momentum = global_array(np.zeros(shape, np.float32), self.shardings[name])
            setattr(self, f"m_{name}", sg.ShortTermState(momentum, name=f"m_{name}"))
        # An ordinary one-device array: sj.jit(in_shardings=...) must accept it.
        self.steps = sg.ShortTermState(jnp.zeros((), jnp.int32), name="steps")

    @property
    def params(self) -> list[sg.ParamState]:
        return [self.w1, self.b1, self.w2]

    @property
    def momenta(self) -> list[sg.ShortTermState]:
        return [self.m_w1, self.m_b1, self.m_w2]

    def loss(self, x: jax.Array, y: jax.Array) -> jax.Array:
        h = jnp.tanh(x @ self.w1.value + self.b1.value)
        return jnp.mean((h @ self.w2.value - y) ** 2)

    def train_step(self, x: jax.Array, y: jax.Array) -> jax.Array:
        grads, loss = sd.grad(self.loss, grad_states=self.params, return_value=True)(x, y)
        for p, m, g in zip(self.params, self.momenta, grads, strict=True):
            m.value = 0.9 * m.value + g
            p.value = p.value - 0.1 * m.value
        self.steps.value = self.steps.value + 1
        return loss

    def results(self) -> dict[str, np.ndarray]:
        out = {name: to_host(getattr(self, name).value) for name in ("w1", "b1", "w2")}
        out["steps"] = to_host(self.steps.value)
        for name, sharding in self.shardings.items():
            out[f"kept_{name}"] = kept(getattr(self, name), sharding)
        return out


def data(seed: int, n: int = 16) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(100 + seed)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    y = np.stack([np.sin(x.sum(1)), np.cos(x[:, 0])], 1).astype(np.float32)
    return x, y


# ----------------------------------------------------------------------------- scenarios


@scenario
def train_step() -> dict[str, np.ndarray]:
    """sj.jit of sd.grad(..., return_value=True) + a momentum update written into the states."""
    mesh = make_mesh()
    model = MLP(mesh)
    batch = NamedSharding(mesh, P("data"))
    step = sj.jit(model.train_step, in_shardings=(batch, batch))
    losses = []
    for k in range(3):
        x, y = data(k)
        losses.append(to_host(step(batch_array(x, batch), batch_array(y, batch))))
    return {"losses": np.stack(losses), **model.results()}


@scenario
def shard_map() -> dict[str, np.ndarray]:
    """sj.shard_map with state_in_specs / state_out_specs and a psum, inside sj.jit."""
    mesh = make_mesh()
    spec = P("data", "model")
    sharding = NamedSharding(mesh, spec)
    field = sg.ShortTermState(global_array(np.ones((8, 4), np.float32), sharding), name="field")
    total = sg.ShortTermState(
        global_array(np.zeros((), np.float32), NamedSharding(mesh, P())), name="total"
    )

    @sj.jit
    @sj.shard_map(
        mesh=mesh,
        in_specs=spec,
        out_specs=spec,
        state_in_specs={field: spec},
        state_out_specs={field: spec},
    )
    def step(drive):
        f = 0.5 * field.value + drive
        field.value = f
        total.value = total.value + jax.lax.psum((f**2).sum(), ("data", "model"))
        return 2 * f

    drive = global_array(np.arange(32, dtype=np.float32).reshape(8, 4) / 32, sharding)
    outs = [to_host(step(drive)) for _ in range(2)]

    # sd.grad inside sj.shard_map: per-shard gradients of a replicated parameter, averaged
    # over the data axis with pmean, and the update written back into the state.
    replicated = NamedSharding(mesh, P())
    w = sg.ParamState(global_array(np.full(4, 0.5, np.float32), replicated), name="w")

    def loss(x):
        return jnp.mean(jnp.tanh(x @ w.value) ** 2)

    @sj.jit
    @sj.shard_map(mesh=mesh, in_specs=P("data"), out_specs=P())
    def grad_step(x):
        g = jax.lax.pmean(sd.grad(loss, grad_states=w)(x), "data")
        w.value = w.value - 0.5 * g
        return g

    x = batch_array(data(3)[0], NamedSharding(mesh, P("data")))
    grads = [to_host(grad_step(x)) for _ in range(2)]
    return {
        "outs": np.stack(outs),
        "field": to_host(field.value),
        "total": to_host(total.value),
        "kept_field": kept(field, sharding),
        "grads": np.stack(grads),
        "w": to_host(w.value),
        "kept_w": kept(w, replicated),
    }


@scenario
def jacrev() -> dict[str, np.ndarray]:
    """sd.jacrev with respect to a sharded state and a sharded argument."""
    mesh = make_mesh()
    sharding = NamedSharding(mesh, P("data"))
    w = sg.ParamState(global_array(np.linspace(-1, 1, 8).astype(np.float32), sharding), name="w")
    x = global_array(np.arange(8, dtype=np.float32) / 4, sharding)

    def f(x):
        return jnp.sin(w.value * x) + jnp.roll(w.value, 1) * x

    jw, jx = sd.jacrev(f, grad_states=w, argnums=0)(x)
    return {"jw": to_host(jw), "jx": to_host(jx), "kept_w": kept(w, sharding)}


@scenario
def for_loop_train() -> dict[str, np.ndarray]:
    """sj.for_loop of training steps (with a progress bar) inside sj.jit."""
    mesh = make_mesh()
    model = MLP(mesh, seed=1)
    xs = np.stack([data(k)[0] for k in range(5)])
    ys = np.stack([data(k)[1] for k in range(5)])
    seq = NamedSharding(mesh, P(None, "data"))
    rows = local_rows(NamedSharding(mesh, P("data")), xs.shape[1:])
    gx = jax.make_array_from_process_local_data(seq, xs[:, rows], xs.shape)
    gy = jax.make_array_from_process_local_data(seq, ys[:, rows], ys.shape)
    bar = sj.ProgressBar(desc=f"process {jax.process_index()}")

    @sj.jit
    def train(xs, ys):
        return sj.for_loop(model.train_step, xs, ys, progress_bar=bar)

    losses = to_host(train(gx, gy))
    jax.effects_barrier()
    return {"losses": losses, **model.results()}


@scenario
def vmap() -> dict[str, np.ndarray]:
    """sj.vmap over a batch sharded over the data axis, with a batched state, in sj.jit."""
    mesh = make_mesh()
    sharding = NamedSharding(mesh, P("data"))
    h = sg.ShortTermState(global_array(np.zeros((8, 3), np.float32), sharding), name="h")
    w = sg.ParamState(
        global_array(np.array([1.0, -2.0, 0.5], np.float32), NamedSharding(mesh, P())), name="w"
    )

    def cell(x):
        h.value = jnp.tanh(0.5 * h.value + x * w.value)
        return h.value.sum()

    step = sj.jit(sj.vmap(cell, in_states=h))
    full = np.arange(24, dtype=np.float32).reshape(8, 3) / 24
    x = batch_array(full, sharding)
    outs = [to_host(step(x)) for _ in range(3)]
    return {"outs": np.stack(outs), "h": to_host(h.value), "kept_h": kept(h, sharding)}


@scenario
def checkpoint() -> dict[str, np.ndarray]:
    """Train, save the sharded states, restore them into a fresh model on every process."""
    mesh = make_mesh()
    model = MLP(mesh, seed=2)
    batch = NamedSharding(mesh, P("data"))
    step = sj.jit(model.train_step)
    x, y = data(7)
    step(batch_array(x, batch), batch_array(y, batch))

    # Save: gather every state's value to the host; one process writes the file.
    path = Path(os.environ["SJ_DIST_OUT"]) / f"{os.environ['SJ_DIST_JOB']}.ckpt.npz"
    host = {k: to_host(v) for k, v in sg.snapshot(model).items()}
    if jax.process_index() == 0:
        np.savez(path, **host)
    multihost_utils.sync_global_devices("checkpoint saved")

    # Restore into a fresh model: each process builds the shards its devices hold.
    fresh = MLP(mesh, seed=3, zeros=True)
    target = sg.snapshot(fresh)
    with np.load(path) as saved:
        values = {}
        for key, like in target.items():
            value = saved[key]
            sharding = like.sharding if len(like.sharding.device_set) > 1 else None
            values[key] = value if sharding is None else global_array(value, sharding)
    sg.restore(fresh, values)
    multihost_utils.sync_global_devices("checkpoint restored")
    out = fresh.results()
    out["same"] = np.asarray(
        all(np.array_equal(host[k], to_host(v)) for k, v in sg.snapshot(fresh).items()), np.int32
    )
    # The restored model trains on, like the original.
    step_fresh = sj.jit(fresh.train_step)
    out["next_loss"] = to_host(step_fresh(batch_array(x, batch), batch_array(y, batch)))
    out["next_loss_original"] = to_host(step(batch_array(x, batch), batch_array(y, batch)))
    return out


@scenario
def fail_on_process_1() -> dict[str, np.ndarray]:
    """Process 1 fails; process 0 waits for it in a collective (the job must fail fast)."""
    if jax.process_index() == 1:
        raise RuntimeError("scenario failure on process 1, as intended")
    mesh = make_mesh()
    x = global_array(np.ones(8, np.float32), NamedSharding(mesh, P("data")))
    return {"x": to_host(x)}


@scenario
def hang_on_process_1() -> dict[str, np.ndarray]:
    """Process 1 never reaches the collective (the parent's hard timeout must end the job)."""
    if jax.process_index() == 1:
        import time

        time.sleep(3600)
    return fail_on_process_1()


# What ``worker.py scenarios all`` runs: every scenario that is meant to succeed.
ALL = [name for name in SCENARIOS if not name.startswith(("fail", "hang"))]
