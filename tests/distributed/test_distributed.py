"""The stack on JAX's multi-process runtime: 2 (and 4) processes on 127.0.0.1, CPU devices.

Each scenario of ``scenarios.py`` runs in a job of 2 processes x 4 devices (the training step
also with 4 processes x 2 devices) and in a job of 1 process x 8 devices; every process of the
multi-process job must return the numbers of the one-process job, and keep the shardings of
its states. The statejax multi-device unit tests also run inside a 2-process job. A failing or
hanging worker fails its job in seconds. Run with ``nox -s distributed``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest
from cluster import ROOT, Job, JobFailed, run

pytestmark = pytest.mark.skipif(
    os.name != "posix", reason="the launcher uses POSIX process groups"
)

SCENARIOS = ["train_step", "shard_map", "jacrev", "for_loop_train", "vmap", "checkpoint"]
UNIT_TESTS = [
    "packages/statejax/tests/test_multidevice.py",
    "packages/statejax/tests/test_shard_map.py",
]


@pytest.fixture(scope="module")
def jobs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Job]:
    """The one-process reference, the 2-process and the 4-process jobs, run side by side."""
    out = tmp_path_factory.mktemp("distributed")
    started = {
        "reference": Job("reference", 1, 8, ["scenarios", "all"], out),
        "two": Job("two", 2, 4, ["scenarios", "all"], out),
        "four": Job("four", 4, 2, ["scenarios", "train_step"], out),
    }
    for job in started.values():
        job.start()
    try:
        for job in started.values():
            job.wait()
    finally:
        for job in started.values():
            job.kill_leftovers()
    return started


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
def test_two_processes_match_one(jobs: dict[str, Job], name: str) -> None:
    want = results(jobs["reference"], name, 0)
    for key, value in want.items():
        if key.startswith(("kept_", "same")):
            assert value == 1, f"{name}: {key} on one process"
    for rank in range(2):
        assert_same(results(jobs["two"], name, rank), want, f"{name}, process {rank} of 2")


def test_four_processes_match_one(jobs: dict[str, Job]) -> None:
    want = results(jobs["reference"], "train_step", 0)
    for rank in range(4):
        assert_same(results(jobs["four"], "train_step", rank), want, f"process {rank} of 4")


def test_checkpoint_restores_the_trained_model(jobs: dict[str, Job]) -> None:
    for rank in range(2):
        got = results(jobs["two"], "checkpoint", rank)
        assert got["same"] == 1
        np.testing.assert_allclose(got["next_loss"], got["next_loss_original"], rtol=1e-6)


def test_progress_bar_runs_on_the_mesh(jobs: dict[str, Job]) -> None:
    log = jobs["two"].log(0).read_text(errors="replace")
    assert "5/5" in log, log[-3000:]


def test_statejax_multidevice_tests_in_two_processes(tmp_path: Path) -> None:
    run(Job("unit", 2, 4, ["pytest", *UNIT_TESTS], tmp_path))


def _assert_reaped(job: Job) -> None:
    for proc in job.procs:
        assert proc.returncode is not None
        with pytest.raises(ProcessLookupError):
            os.kill(proc.pid, 0)


def test_a_failing_worker_fails_the_job_in_seconds(tmp_path: Path) -> None:
    job = Job("fail", 2, 4, ["scenarios", "fail_on_process_1"], tmp_path)
    start = time.monotonic()
    with pytest.raises(JobFailed, match="worker 1 exited with code 1") as err:
        run(job)
    assert time.monotonic() - start < 30
    assert "as intended" in str(err.value)
    _assert_reaped(job)


def test_a_hanging_worker_is_killed_at_the_hard_timeout(tmp_path: Path) -> None:
    job = Job("hang", 2, 4, ["scenarios", "hang_on_process_1"], tmp_path, timeout_s=8)
    start = time.monotonic()
    with pytest.raises(JobFailed, match="timed out after 8 s"):
        run(job)
    assert time.monotonic() - start < 20
    _assert_reaped(job)


def test_launcher_is_light() -> None:
    """The parent never imports JAX: only the workers do."""
    assert ROOT.joinpath("tests", "distributed", "worker.py").exists()
