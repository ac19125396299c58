"""Start JAX multi-process jobs on 127.0.0.1 and watch them, for the distributed tests.

The parent (pytest) never imports JAX for this: it starts one worker subprocess per process
(``worker.py``), each in its own session, so that ``os.killpg(pid, SIGKILL)`` ends a worker and
anything it started, and nothing else. A job fails as soon as one worker exits non-zero (the
others are killed at once: they would otherwise wait for it in a collective), or when its hard
timeout passes; it never hangs.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
WORKER = HERE / "worker.py"
# Hard limit of one job in the parent (seconds); SJ_DIST_JOB_TIMEOUT overrides it.
JOB_TIMEOUT_S = float(os.environ.get("SJ_DIST_JOB_TIMEOUT", "120"))
_DEVICE_FLAG = re.compile(r"--xla_force_host_platform_device_count=\S+")


def free_port() -> int:
    """Return a TCP port of 127.0.0.1 that is free now (the coordinator binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class JobFailed(AssertionError):
    """A worker exited non-zero, or the job ran past its hard timeout."""


@dataclass
class Job:
    """One multi-process run: ``n_processes`` workers x ``devices_per_process`` CPU devices."""

    name: str
    n_processes: int
    devices_per_process: int
    args: list[str]
    out_dir: Path
    timeout_s: float = JOB_TIMEOUT_S
    procs: list[subprocess.Popen] = field(default_factory=list)
    started: float = 0.0
    elapsed: float = 0.0
    # Seconds from noticing the failure (a worker's exit, or the timeout) to the job's end.
    teardown: float = 0.0

    def log(self, rank: int) -> Path:
        return self.out_dir / f"{self.name}.rank{rank}.log"

    def env(self, rank: int, coordinator: str) -> dict[str, str]:
        env = dict(os.environ)
        flags = _DEVICE_FLAG.sub("", env.get("XLA_FLAGS", "")).strip()
        env["XLA_FLAGS"] = (
            f"{flags} --xla_force_host_platform_device_count={self.devices_per_process}".strip()
        )
        env["JAX_PLATFORMS"] = "cpu"
        env["SJ_DIST_COORDINATOR"] = coordinator
        env["SJ_DIST_NUM_PROCESSES"] = str(self.n_processes)
        env["SJ_DIST_PROCESS_ID"] = str(rank)
        env["SJ_DIST_OUT"] = str(self.out_dir)
        env["SJ_DIST_JOB"] = self.name
        env["HYPOTHESIS_PROFILE"] = ""  # worker.py loads its own (deterministic) profile
        return env

    def start(self) -> Job:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        coordinator = f"127.0.0.1:{free_port()}"
        self.started = time.monotonic()
        for rank in range(self.n_processes):
            with open(self.log(rank), "wb") as log:
                self.procs.append(
                    subprocess.Popen(
                        [sys.executable, str(WORKER), *self.args],
                        cwd=ROOT,
                        env=self.env(rank, coordinator),
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,  # its own process group: killpg(pid) is exact
                    )
                )
        return self

    def kill_leftovers(self) -> None:
        """Kill every worker of this job still running (by its process id), and reap it."""
        for proc in self.procs:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        for proc in self.procs:
            proc.wait()

    def wait(self) -> None:
        """Wait for every worker; raise :class:`JobFailed` with the logs on any failure."""
        deadline = self.started + self.timeout_s
        problem = None
        try:
            while problem is None:
                codes = [proc.poll() for proc in self.procs]
                bad = [(rank, c) for rank, c in enumerate(codes) if c not in (None, 0)]
                if bad:
                    problem = f"worker {bad[0][0]} exited with code {bad[0][1]}"
                elif all(c == 0 for c in codes):
                    break
                elif time.monotonic() > deadline:
                    problem = f"timed out after {self.timeout_s:.0f} s"
                else:
                    time.sleep(0.05)
        finally:
            noticed = time.monotonic()
            self.kill_leftovers()
            self.elapsed = time.monotonic() - self.started
            self.teardown = time.monotonic() - noticed
        if problem is not None:
            raise JobFailed(f"job {self.name!r}: {problem} ({self.elapsed:.1f} s)\n{self.logs()}")

    def logs(self, tail: int = 6000) -> str:
        parts = []
        for rank in range(self.n_processes):
            text = self.log(rank).read_text(errors="replace") if self.log(rank).exists() else ""
            parts.append(f"--- {self.name} rank {rank} ---\n{text[-tail:]}")
        return "\n".join(parts)


def run(job: Job) -> Job:
    """Start ``job`` and wait for it."""
    job.start()
    job.wait()
    return job
