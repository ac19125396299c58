"""Train a sharded stateful model on several JAX processes (the "Scaling out" guide's example).

On one machine, ``python examples/distributed/train.py [--processes N]`` starts N processes
(default 2) on 127.0.0.1, each with 8/N CPU devices, as a cluster launcher would start one
process per host; ``--processes 1`` runs the same program in one process with 8 devices. Every
process runs :func:`main`. On a cluster, start ``python train.py --worker`` once per host with
the cluster's launcher (``srun`` under SLURM, a JobSet on Kubernetes): ``jax.distributed
.initialize()`` then reads the coordinator address, the number of processes and the process id
from the environment.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

TOTAL_DEVICES = 8  # CPU devices over all processes of a local run


def initialize() -> None:
    """Join the job: every process calls this before anything else touches JAX's devices."""
    import jax

    address = os.environ.get("TRAIN_COORDINATOR")
    if address is None:  # under a cluster launcher: JAX reads the job from the environment
        jax.distributed.initialize()
        return
    if int(os.environ["TRAIN_NUM_PROCESSES"]) == 1:
        return  # one process: nothing to join
    jax.distributed.initialize(
        coordinator_address=address,
        coordinator_bind_address=address,  # listen on 127.0.0.1 only
        num_processes=int(os.environ["TRAIN_NUM_PROCESSES"]),
        process_id=int(os.environ["TRAIN_PROCESS_ID"]),
        initialization_timeout=60,  # seconds to wait for every process to join
        heartbeat_timeout_seconds=10,  # a silent peer is declared dead after this
        shutdown_timeout_seconds=10,  # how long the exit barrier waits for the others
    )


def main() -> dict:
    """Build the model on a global mesh, train it, checkpoint it, restore it; every process."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    from jax.experimental import multihost_utils
    from jax.sharding import AxisType, NamedSharding
    from jax.sharding import PartitionSpec as P

    import statediff as sd
    import stategraph as sg
    import statejax as sj

    # One mesh over every device of every process: (data, model).
    mesh = jax.make_mesh((jax.device_count() // 2, 2), ("data", "model"), (AxisType.Auto,) * 2)

    def global_array(value, spec):
        """A global array from a value every process knows; each fills its own shards."""
        value = np.asarray(value, np.float32)
        sharding = NamedSharding(mesh, spec)
        return jax.make_array_from_callback(value.shape, sharding, lambda index: value[index])

    class MLP:
        def __init__(self, seed):
            rng = np.random.default_rng(seed)
            self.w1 = sg.ParamState(global_array(rng.normal(size=(4, 8)) / 2, P(None, "model")))
            self.b1 = sg.ParamState(global_array(np.zeros(8), P("model")))
            self.w2 = sg.ParamState(global_array(rng.normal(size=(8, 2)) / 2, P("model", None)))
            self.steps = sg.ShortTermState(jnp.zeros((), jnp.int32))  # an ordinary array

        def loss(self, x, y):
            h = jnp.tanh(x @ self.w1.value + self.b1.value)
            return jnp.mean((h @ self.w2.value - y) ** 2)

        def train_step(self, x, y):
            params = [self.w1, self.b1, self.w2]
            grads, loss = sd.grad(self.loss, grad_states=params, return_value=True)(x, y)
            for p, g in zip(params, grads, strict=True):
                p.value = p.value - 0.2 * g  # written back, sharding kept
            self.steps.value = self.steps.value + 1
            return loss

    # The batch: each process loads only the rows its own devices hold.
    batch = NamedSharding(mesh, P("data"))
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(16, 4)).astype(np.float32)
    ys = np.stack([np.sin(xs.sum(1)), np.cos(xs[:, 0])], 1).astype(np.float32)
    held = [i[0].indices(16) for i in batch.addressable_devices_indices_map(xs.shape).values()]
    mine = slice(min(r[0] for r in held), max(r[1] for r in held))  # this process' rows
    x = jax.make_array_from_process_local_data(batch, xs[mine], xs.shape)
    y = jax.make_array_from_process_local_data(batch, ys[mine], ys.shape)

    model = MLP(seed=1)
    step = sj.jit(model.train_step, in_shardings=(batch, batch))
    losses = [float(step(x, y)) for _ in range(5)]  # a replicated scalar: readable anywhere
    assert model.w1.value.sharding.is_equivalent_to(NamedSharding(mesh, P(None, "model")), 2)

    # Read a sharded result on every host: gather it.
    w1 = multihost_utils.process_allgather(model.w1.value, tiled=True)

    # Checkpoint: gather each state's value, one process writes; restore into a fresh model.
    path = os.path.join(os.environ.get("TRAIN_OUTPUT_DIR", "."), "checkpoint.npz")
    snapshot = sg.snapshot(model)  # {path: global array}
    saved = {k: multihost_utils.process_allgather(v, tiled=True) for k, v in snapshot.items()}
    if jax.process_index() == 0:
        np.savez(path, **saved)
    multihost_utils.sync_global_devices("checkpoint written")
    fresh = MLP(seed=2)
    with np.load(path) as data:
        restored = {}
        for key, like in sg.snapshot(fresh).items():
            value = data[key]
            if len(like.sharding.device_set) > 1:  # a sharded state: build its shards
                value = jax.make_array_from_callback(
                    value.shape, like.sharding, lambda index, v=value: v[index]
                )
            restored[key] = value
    sg.restore(fresh, restored)
    assert fresh.w1.value.sharding == model.w1.value.sharding
    assert float(sj.jit(fresh.loss)(x, y)) == float(sj.jit(model.loss)(x, y))
    return {"losses": losses, "w1_sum": float(w1.sum()), "steps": int(model.steps.value)}


def worker() -> None:
    """One process of the job: on any error, report it and end this process (only)."""
    try:
        initialize()
        result = main()
        import jax

        if jax.process_index() == 0:
            print("RESULT", json.dumps(result), flush=True)
        if jax.process_count() > 1:
            jax.distributed.shutdown()
    except BaseException:
        import traceback

        traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(1)


def launch(n_processes: int, timeout_s: float = 240) -> int:
    """Start ``n_processes`` workers on 127.0.0.1 and wait; kill them all if one fails."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    procs = []
    for rank in range(n_processes):
        env = dict(
            os.environ,
            JAX_PLATFORMS="cpu",
            XLA_FLAGS=f"--xla_force_host_platform_device_count={TOTAL_DEVICES // n_processes}",
            TRAIN_COORDINATOR=address,
            TRAIN_NUM_PROCESSES=str(n_processes),
            TRAIN_PROCESS_ID=str(rank),
        )
        cmd = [sys.executable, os.path.abspath(__file__), "--worker"]
        procs.append(subprocess.Popen(cmd, env=env, start_new_session=True))
    deadline = time.monotonic() + timeout_s
    status = 0
    try:
        while any(p.poll() is None for p in procs) and status == 0:
            status = next((p.returncode for p in procs if p.returncode), 0)
            if time.monotonic() > deadline:
                status = 124
            time.sleep(0.05)
        status = status or next((p.returncode for p in procs if p.returncode), 0)
    finally:
        for p in procs:  # leftovers of a failed job, by their process id (and group)
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return status


if __name__ == "__main__":
    if "--worker" in sys.argv:
        worker()
    else:
        n = int(sys.argv[sys.argv.index("--processes") + 1]) if "--processes" in sys.argv else 2
        sys.exit(launch(n))
