"""The CI workflow, .ci/run and the README call only nox sessions that exist, and cover them.

Also checks the one-version rule: every package has the same version and pins the layer below
it exactly.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
SESSION_FLAGS = {"-s", "--session", "--sessions", "-e"}


def _nox(*args: str) -> str:
    pytest.importorskip("nox")
    return subprocess.run(
        [sys.executable, "-m", "nox", "--noxfile", str(ROOT / "noxfile.py"), *args],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "NO_COLOR": "1"},
    ).stdout


@pytest.fixture(scope="module")
def nox_sessions() -> dict[str, bool]:
    """Every session nox defines (`nox -l`), mapped to whether it runs by default."""
    sessions = {}
    for line in _nox("-l", "--no-color").splitlines():
        match = re.match(r"^([*-]) (.+?)(?: -> .*)?$", line)
        if match:
            sessions[match.group(2)] = match.group(1) == "*"
    assert sessions, "nox -l listed no session"
    return sessions


@pytest.fixture(scope="module")
def valid_names(nox_sessions: dict[str, bool]) -> set[str]:
    """What `nox -s NAME` accepts: a session's full name, or a parametrized group's name."""
    return set(nox_sessions) | {name.split("(")[0] for name in nox_sessions}


@pytest.fixture(scope="module")
def workflow() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load(WORKFLOW.read_text())


def _matrix_combos(job: dict) -> list[dict[str, str]]:
    matrix = (job.get("strategy") or {}).get("matrix") or {}
    axes = {k: v for k, v in matrix.items() if k not in ("include", "exclude")}
    combos = [dict(zip(axes, values, strict=True)) for values in itertools.product(*axes.values())]
    for excluded in matrix.get("exclude", []):
        combos = [c for c in combos if any(c.get(k) != v for k, v in excluded.items())]
    combos += list(matrix.get("include", []))
    return combos or [{}]


def _sessions_in_command(command: str) -> list[str]:
    """Session names passed to nox in a shell command (-s/--session/-e, several allowed)."""
    names = []
    for part in re.split(r"&&|\|\||;|\n", command):
        try:
            tokens = shlex.split(part)
        except ValueError:
            continue
        if "nox" not in tokens:
            continue
        collecting = False
        for token in tokens[tokens.index("nox") + 1 :]:
            if token in SESSION_FLAGS:
                collecting = True
            elif token.startswith("-"):
                collecting = False
            elif collecting:
                names.append(token)
    return names


def _workflow_calls(workflow: dict) -> list[tuple[str, str]]:
    """(job id, session name) for every nox session the workflow runs, matrix expanded."""
    calls = []
    for job_id, job in workflow["jobs"].items():
        for combo in _matrix_combos(job):
            for step in job.get("steps", []):
                run = step.get("run", "")
                for key, value in combo.items():
                    run = re.sub(r"\$\{\{\s*matrix\." + key + r"\s*\}\}", str(value), run)
                for name in _sessions_in_command(run):
                    assert "${{" not in name, f"unexpanded expression in job {job_id}: {name}"
                    calls.append((job_id, name))
    return calls


def test_workflow_calls_only_existing_sessions(workflow: dict, valid_names: set[str]) -> None:
    calls = _workflow_calls(workflow)
    assert calls, "the workflow runs no nox session"
    unknown = sorted({f"{job}: {name}" for job, name in calls if name not in valid_names})
    assert not unknown, f"sessions the workflow calls but nox does not define: {unknown}"


def test_workflow_covers_every_test_session(workflow: dict, nox_sessions: dict[str, bool]) -> None:
    called = {name for _, name in _workflow_calls(workflow)}
    tests = {name for name in nox_sessions if name.startswith("tests(")}
    assert tests, "nox defines no tests sessions"
    assert tests <= called, f"test sessions CI never runs: {sorted(tests - called)}"
    for session in ("lint", "layers", "build", "docs"):
        assert session in called, f"CI has no job running nox -s {session}"


def test_default_sessions(nox_sessions: dict[str, bool]) -> None:
    defaults = {name.split("(")[0] for name, selected in nox_sessions.items() if selected}
    assert defaults == {"tests", "lint", "layers", "build"}
    json_listing = json.loads(_nox("-l", "--json"))
    assert {s["session"] for s in json_listing} == {n for n, s in nox_sessions.items() if s}


def test_workflow_python_matrix(workflow: dict) -> None:
    matrix = workflow["jobs"]["tests"]["strategy"]["matrix"]
    assert {"3.11", "3.12"} <= set(map(str, matrix["python"]))
    assert set(matrix["backend"]) == {"cpu", "cuda"}


def _readme_commands() -> dict[str, str]:
    commands = {}
    for line in README.read_text().splitlines():
        match = re.match(r"^(python3 -m pip install nox uv && python3 -m nox -s \S+)\s+#", line)
        if match:
            commands[match.group(1).rsplit(" ", 1)[-1]] = match.group(1)
    return commands


def test_readme_setup_commands(valid_names: set[str]) -> None:
    commands = _readme_commands()
    assert set(commands) == {"demo", "tests"}, commands
    for session in commands:
        assert session in valid_names


def test_ci_run_uses_the_readme_test_command() -> None:
    command = _readme_commands()["tests"]
    lines = [line.strip() for line in CI_RUN.read_text().splitlines()]
    assert command in lines, f".ci/run must run exactly the README's test command: {command}"
    assert CI_RUN.stat().st_mode & 0o111, ".ci/run must be executable"


def test_one_version_and_exact_pins() -> None:
    projects = {
        p.parent.name: tomllib.loads(p.read_text())["project"]
        for p in sorted((ROOT / "packages").glob("*/pyproject.toml"))
    }
    assert projects, "no packages found"
    versions = {project["version"] for project in projects.values()}
    assert len(versions) == 1, f"packages disagree on the version: {versions}"
    (version,) = versions
    for dist, project in projects.items():
        for requirement in project.get("dependencies", []):
            name = re.split(r"[=<>!~\[ ;]", requirement, maxsplit=1)[0]
            if name in projects:
                assert requirement == f"{name}=={version}", f"{dist}: pin {requirement!r}"


def test_distributed_session_runs_in_ci(workflow: dict, valid_names: set[str]) -> None:
    """The multi-process session exists, is not a default, and both CI entry points run it."""
    assert "distributed" in valid_names
    assert "distributed" in {name for _, name in _workflow_calls(workflow)}
    ci_run = CI_RUN.read_text()
    assert "python3 -m nox -s distributed" in ci_run
    readme_tests = _readme_commands()["tests"]
    assert ci_run.index(readme_tests) < ci_run.index("nox -s distributed"), "after the tests"
