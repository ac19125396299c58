"""The stack on JAX's multi-process runtime: 2 (and 4) processes on 127.0.0.1, CPU devices.

Each scenario of ``scenarios.py`` runs in a job of 2 processes x 4 devices (the training step
also with 4 processes x 2 devices) and in a job of 1 process x 8 devices; every process of the
multi-process job must return the numbers of the one-process job, and keep the shardings of
its states. The statejax multi-device unit tests also run inside a 2-process job. A failing or
hanging worker fails its job in seconds. Run with ``nox -s distributed``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from cluster import Job, JobFailed, run

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="the launcher uses POSIX process groups"
)

SCENARIOS = ["train_step", "shard_map", "jacrev", "for_loop_train", "vmap", "checkpoint"]
UNIT_TESTS = [
    "packages/statejax/tests/test_multidevice.py",
    "packages/statejax/tests/test_shard_map.py",
]


class Jobs:
    """The jobs of this module, started together; a failed job fails only the tests using it."""

    def __init__(self, jobs: list[Job]) -> None:
        self.jobs = {job.name: job for job in jobs}
        self.failures: dict[str, JobFailed] = {}
        for job in jobs:
            job.start()
        try:
            for job in jobs:
                try:
                    job.wait()
                except JobFailed as exc:
                    self.failures[job.name] = exc
        finally:
            for job in jobs:
                job.kill_leftovers()

    def __getitem__(self, name: str) -> Job:
        if name in self.failures:
            raise self.failures[name]
        return self.jobs[name]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> Jobs:
    """The one-process reference and the 2- and 4-process jobs, side by side."""
    out = tmp_path_factory.mktemp("distributed")
    return Jobs(
        [
            Job("reference", 1, 8, ["scenarios", "all"], out),
            # Every process costs seconds of CPU to start: the 2-process job also runs the
            # statejax multi-device unit tests, after the scenarios.
            Job("two", 2, 4, ["scenarios", "all", "--pytest", *UNIT_TESTS], out),
            Job("four", 4, 2, ["scenarios", "train_step"], out),
        ]
    )


def results(job: Job, name: str, rank: int) -> dict[str, np.ndarray]:
    with np.load(job.out_dir / f"{job.name}.{name}.rank{rank}.npz") as data:
        return dict(data)


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray], where: str) -> None:
    assert sorted(got) == sorted(want), where
    for key in want:
        np.testing.assert_allclose(
            got[key], want[key], rtol=2e-5, atol=1e-6, err_msg=f"{where}: {key}"
        )


@pytest.mark.parametrize("name", SCENARIOS)
def test_two_processes_match_one(jobs: Jobs, name: str) -> None:
    want = results(jobs["reference"], name, 0)
    for key, value in want.items():
        if key.startswith(("kept_", "same")):
            assert value == 1, f"{name}: {key} on one process"
    for rank in range(2):
        assert_same(results(jobs["two"], name, rank), want, f"{name}, process {rank} of 2")


def test_four_processes_match_one(jobs: Jobs) -> None:
    want = results(jobs["reference"], "train_step", 0)
    for rank in range(4):
        assert_same(results(jobs["four"], "train_step", rank), want, f"process {rank} of 4")


def test_checkpoint_restores_the_trained_model(jobs: Jobs) -> None:
    for rank in range(2):
        got = results(jobs["two"], "checkpoint", rank)
        assert got["same"] == 1
        np.testing.assert_allclose(got["next_loss"], got["next_loss_original"], rtol=1e-6)


def test_progress_bar_runs_on_the_mesh(jobs: Jobs) -> None:
    log = jobs["two"].log(0).read_text(errors="replace")
    assert "5/5" in log, log[-3000:]


def test_statejax_multidevice_tests_in_two_processes(jobs: Jobs) -> None:
    job = jobs["two"]
    for rank in range(2):
        log = job.log(rank).read_text(errors="replace")
        assert " passed" in log and " failed" not in log and " skipped" not in log, log[-3000:]


def _assert_gone(pid: int) -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # a killed child is reaped by init, soon
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} is still alive")


def _assert_reaped(job: Job) -> None:
    for proc in job.procs:
        assert proc.returncode is not None
        _assert_gone(proc.pid)


def test_a_failing_worker_fails_the_job_in_seconds(tmp_path: Path) -> None:
    job = Job("fail", 2, 4, ["scenarios", "fail_on_process_1"], tmp_path)
    with pytest.raises(JobFailed, match="worker 1 exited with code 1") as err:
        run(job)
    # Worker 0 was waiting for worker 1 in a collective: it is killed at once, long before
    # its heartbeat timeout or the job's hard timeout.
    assert job.teardown < 5, job.teardown
    assert job.elapsed < job.timeout_s / 2
    assert "as intended" in str(err.value)
    _assert_reaped(job)


def test_a_hanging_worker_is_killed_at_the_hard_timeout(tmp_path: Path) -> None:
    job = Job("hang", 2, 4, ["hang"], tmp_path, timeout_s=4)
    with pytest.raises(JobFailed, match="timed out after 4 s"):
        run(job)
    assert job.elapsed < 4 + 5 and job.teardown < 5
    _assert_reaped(job)
    for rank in range(2):  # what the worker started went with it (its process group)
        child = int(tmp_path.joinpath(f"hang.rank{rank}.child").read_text())
        _assert_gone(child)


def test_the_parent_never_imports_jax() -> None:
    """Only the workers start JAX (the launcher must not hold a backend or its threads)."""
    assert "jax" not in sys.modules or os.environ.get("SJ_DIST_PARENT_MAY_IMPORT_JAX")
