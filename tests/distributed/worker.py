"""One process of a distributed test job (started by ``cluster.py``, never by pytest itself).

Usage: ``python worker.py scenarios NAME...`` or ``python worker.py pytest PYTEST_ARGS...``.
The job is described by environment variables (``SJ_DIST_*``, set by ``cluster.Job``). With more
than one process, the worker joins JAX's multi-process runtime on 127.0.0.1 with short timeouts.
On any error it prints the traceback and ends itself at once (``os._exit``): it kills nothing
else, and does not wait at the shutdown barrier for peers that may never come.
"""

from __future__ import annotations

import os
import sys
import traceback
from pathlib import Path

# Short timeouts: a worker whose peer died gives up in seconds, not minutes.
INIT_TIMEOUT_S = 30
HEARTBEAT_TIMEOUT_S = 10
SHUTDOWN_TIMEOUT_S = 10


def initialize() -> None:
    """Join the job's multi-process runtime (nothing to do for a one-process job)."""
    import jax

    n = int(os.environ["SJ_DIST_NUM_PROCESSES"])
    if n == 1:
        return
    address = os.environ["SJ_DIST_COORDINATOR"]
    jax.distributed.initialize(
        coordinator_address=address,
        coordinator_bind_address=address,  # listen on 127.0.0.1 only
        num_processes=n,
        process_id=int(os.environ["SJ_DIST_PROCESS_ID"]),
        initialization_timeout=INIT_TIMEOUT_S,
        heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S,
        shutdown_timeout_seconds=SHUTDOWN_TIMEOUT_S,
    )
    assert jax.process_count() == n


def run_scenarios(names: list[str]) -> int:
    import numpy as np
    import scenarios

    import jax

    out = Path(os.environ["SJ_DIST_OUT"])
    job = os.environ["SJ_DIST_JOB"]
    rank = jax.process_index()
    for name in scenarios.ALL if names == ["all"] else names:
        result = scenarios.SCENARIOS[name]()
        np.savez(out / f"{job}.{name}.rank{rank}.npz", **result)
        print(f"scenario {name}: ok", flush=True)
    return 0


def run_pytest(args: list[str]) -> int:
    import pytest

    return int(pytest.main([*args, "-p", "no:cacheprovider", "-q", "-x"]))


def main(argv: list[str]) -> int:
    mode, rest = argv[0], argv[1:]
    initialize()
    if mode == "scenarios":
        code = run_scenarios(rest)
    elif mode == "pytest":
        code = run_pytest(rest)
    else:
        raise SystemExit(f"worker.py: unknown mode {mode!r}")
    if code == 0 and int(os.environ["SJ_DIST_NUM_PROCESSES"]) > 1:
        import jax

        jax.distributed.shutdown()
    return code


if __name__ == "__main__":
    try:
        status = main(sys.argv[1:])
    except BaseException:  # noqa: BLE001 - report anything, then end this process only
        traceback.print_exc()
        status = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
