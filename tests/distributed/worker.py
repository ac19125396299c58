"""One process of a distributed test job (started by ``cluster.py``, never by pytest itself).

Usage: ``python worker.py scenarios NAME... [--pytest PYTEST_ARGS...]`` (``all``: every
scenario meant to succeed), ``python worker.py pytest PYTEST_ARGS...``, or ``python worker.py
hang`` (a worker that never returns, for the launcher's own test).
The job is described by environment variables (``SJ_DIST_*``, set by ``cluster.Job``). With more
than one process, the worker joins JAX's multi-process runtime on 127.0.0.1 with short timeouts.
On any error it prints the traceback and ends itself at once (``os._exit``): it kills nothing
else, and does not wait at the shutdown barrier for peers that may never come.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import traceback
from pathlib import Path

# Short timeouts: a worker whose peer died gives up in seconds, not minutes.
INIT_TIMEOUT_S = 30
HEARTBEAT_TIMEOUT_S = 10
SHUTDOWN_TIMEOUT_S = 10


def exit_with_parent() -> None:
    """End this process if the parent dies (say, pytest killed by a cancelled CI job).

    Workers run in their own process group, so a signal to the parent's group misses them; a
    parent that could not kill them leaves orphans, which must not run on.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(3)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


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
    import jax
    import numpy as np
    import scenarios

    out = Path(os.environ["SJ_DIST_OUT"])
    job = os.environ["SJ_DIST_JOB"]
    rank = jax.process_index()
    for name in scenarios.ALL if names == ["all"] else names:
        result = scenarios.SCENARIOS[name]()
        np.savez(out / f"{job}.{name}.rank{rank}.npz", **result)
        print(f"scenario {name}: ok", flush=True)
    return 0


class _HypothesisProfile:
    """A pytest plugin loading a deterministic, short Hypothesis profile.

    Deterministic: every process must draw the same examples, or their collectives would not
    match. Short: every example compiles once per process. (Registered from a plugin so that
    Hypothesis is imported by pytest, which can then rewrite its asserts.)
    """

    def pytest_configure(self, config: object) -> None:
        from hypothesis import HealthCheck, settings

        settings.register_profile(
            "distributed",
            deadline=None,
            max_examples=5,
            derandomize=True,
            database=None,
            suppress_health_check=[HealthCheck.too_slow],
        )
        settings.load_profile("distributed")


def run_pytest(args: list[str]) -> int:
    import pytest

    args = [*args, "-p", "no:cacheprovider", "-q", "-x"]
    return int(pytest.main(args, plugins=[_HypothesisProfile()]))


def hang() -> int:
    """Never return (for the parent's hard-timeout test); start a child that hangs too."""
    import subprocess

    # The child, too, ends if its parent (this worker) goes.
    code = "import os, time\np = os.getppid()\nwhile os.getppid() == p: time.sleep(0.5)"
    child = subprocess.Popen([sys.executable, "-c", code])
    out = Path(os.environ["SJ_DIST_OUT"])
    rank = os.environ["SJ_DIST_PROCESS_ID"]
    (out / f"{os.environ['SJ_DIST_JOB']}.rank{rank}.child").write_text(str(child.pid))
    time.sleep(3600)
    return 1


def main(argv: list[str]) -> int:
    exit_with_parent()
    if argv == ["hang"]:
        return hang()
    # ``scenarios NAME... [--pytest PYTEST_ARGS...]``, or ``pytest PYTEST_ARGS...``.
    scenario_names, pytest_args = argv[1:], None
    if argv[0] == "pytest":
        scenario_names, pytest_args = [], argv[1:]
    elif argv[0] != "scenarios":
        raise SystemExit(f"worker.py: unknown mode {argv[0]!r}")
    elif "--pytest" in scenario_names:
        at = scenario_names.index("--pytest")
        scenario_names, pytest_args = scenario_names[:at], scenario_names[at + 1 :]
    initialize()
    code = run_scenarios(scenario_names) if scenario_names else 0
    if code == 0 and pytest_args is not None:
        code = run_pytest(pytest_args)
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
