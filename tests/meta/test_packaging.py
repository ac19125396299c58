"""Packaging rules: the licence, the metadata, one project name and one JAX floor everywhere.

The build session (``nox -s build``) checks the same things in the built wheels; these tests
check the sources they are built from, and what an unsupported JAX does at import time.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(p.parent for p in (ROOT / "packages").glob("*/pyproject.toml"))
IMPORT_NAMES = {"stategraph", "statejax", "statediff", "statediff_units"}
PROJECT = "statestack"


def _project(pkg: Path) -> dict:
    return tomllib.loads((pkg / "pyproject.toml").read_text())["project"]


def _noxfile_constant(name: str) -> str:
    tree = ast.parse((ROOT / "noxfile.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"noxfile.py defines no {name}")


def _floor_in(pkg: Path) -> tuple[int, ...]:
    imp = pkg.name.replace("-", "_")
    text = (pkg / "src" / imp / "_src" / "jax_version.py").read_text()
    match = re.search(r"^JAX_FLOOR = (\(.*\))$", text, re.M)
    assert match, f"{pkg.name}: _src/jax_version.py has no JAX_FLOOR"
    return ast.literal_eval(match.group(1))


def test_there_are_four_packages() -> None:
    assert {p.name.replace("-", "_") for p in PACKAGES} == IMPORT_NAMES


def test_apache_license_at_the_root_and_in_every_package() -> None:
    root = (ROOT / "LICENSE").read_text()
    assert "Apache License" in root and "Version 2.0, January 2004" in root
    for pkg in PACKAGES:
        assert (pkg / "LICENSE").read_text() == root, f"{pkg.name}/LICENSE differs from LICENSE"


@pytest.mark.parametrize("pkg", PACKAGES, ids=lambda p: p.name)
def test_metadata(pkg: Path) -> None:
    project = _project(pkg)
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    assert project["authors"] and all(a.get("name") for a in project["authors"])
    assert PROJECT in project["keywords"] and "jax" in project["keywords"]
    urls = project["urls"]
    assert {"Homepage", "Documentation", "Repository", "Issues", "Changelog"} <= set(urls)
    assert urls["Documentation"] == f"https://{PROJECT}.readthedocs.io"
    classifiers = set(project["classifiers"])
    for wanted in (
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Typing :: Typed",
    ):
        assert wanted in classifiers, f"{pkg.name}: no classifier {wanted!r}"
    sdist = tomllib.loads((pkg / "pyproject.toml").read_text())["tool"]["hatch"]["build"]
    assert "LICENSE" in sdist["targets"]["sdist"]["only-include"]


def test_python_classifiers_match_the_ci_matrix() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    tested = {str(v) for v in workflow["jobs"]["tests"]["strategy"]["matrix"]["python"]}
    for pkg in PACKAGES:
        declared = {
            c.rsplit(" :: ", 1)[1]
            for c in _project(pkg)["classifiers"]
            if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
        }
        assert declared == tested, f"{pkg.name}: classifiers {declared}, CI tests {tested}"


def test_one_jax_floor_everywhere() -> None:
    floor = _noxfile_constant("JAX_FLOOR")
    ceiling = _noxfile_constant("JAX_CEILING")
    as_tuple = tuple(int(x) for x in floor.split("."))
    for pkg in PACKAGES:
        jax = [d for d in _project(pkg)["dependencies"] if re.match(r"jax\b(?!lib)", d)]
        declared = [re.sub(r"\s+", "", d.split(";")[0]) for d in jax]
        assert declared == [f"jax>={floor},<{ceiling}"], (
            f"{pkg.name} declares {jax}, the floor session tests jax=={floor}"
        )
        assert _floor_in(pkg) == as_tuple, f"{pkg.name}: _src/jax_version.py JAX_FLOOR"


def test_ci_runs_the_floor_session() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "ci.yml").read_text())
    job = workflow["jobs"]["tests_jax_floor"]
    assert set(job["strategy"]["matrix"]["jax"]) == {"floor", "newest"}


def test_one_project_name() -> None:
    readme = (ROOT / "README.md").read_text().splitlines()[0]
    assert readme.startswith(f"# {PROJECT}")
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert f'project = "{PROJECT}"' in conf and f'html_title = "{PROJECT}"' in conf
    assert f"{PROJECT}:" in conf  # the footer
    errors = (ROOT / "packages" / "stategraph" / "src" / "stategraph" / "errors.py").read_text()
    assert f"https://{PROJECT}.readthedocs.io" in errors
    assert f"{PROJECT}.readthedocs.io" in (ROOT / ".readthedocs.yaml").read_text()
    assert "title:" in (ROOT / "CITATION.cff").read_text()


REPOSITORY = f"https://github.com/{PROJECT}/{PROJECT}"
# Every address of the project, in any tracked text file, is one of these (or under them).
PROJECT_ADDRESSES = (REPOSITORY, f"https://{PROJECT}.readthedocs.io")


def _tracked_text_files() -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        pytest.skip("not a git checkout")
    suffixes = {".md", ".py", ".toml", ".yaml", ".yml", ".cff", ".txt", ".cfg"}
    return [ROOT / n for n in out.stdout.splitlines() if Path(n).suffix in suffixes]


def test_one_project_address_everywhere() -> None:
    """README, docs, metadata, citation and error links name the project at one address."""
    address = re.compile(rf"https?://[\w.-]*{PROJECT}[\w./#-]*", re.I)
    wrong = []
    for path in _tracked_text_files():
        if not path.is_file():
            continue
        for match in address.finditer(path.read_text(encoding="utf-8", errors="replace")):
            url = match.group(0)
            if not url.startswith(PROJECT_ADDRESSES):
                wrong.append(f"{path.relative_to(ROOT)}: {url}")
    assert not wrong, (
        "project addresses other than "
        + " / ".join(PROJECT_ADDRESSES)
        + (":\n  " + "\n  ".join(wrong))
    )
    for pkg in PACKAGES:
        urls = _project(pkg)["urls"]
        assert urls["Repository"] == REPOSITORY and urls["Homepage"] == REPOSITORY, pkg.name
    conf = (ROOT / "docs" / "conf.py").read_text()
    assert f'"repository_url": "{REPOSITORY}"' in conf


def test_docs_say_the_packages_are_not_on_pypi_yet() -> None:
    readme = (ROOT / "README.md").read_text()
    install = (ROOT / "docs" / "guide" / "install.md").read_text()
    assert "not on PyPI yet" in readme
    assert "not on PyPI" in install


def test_changelog_and_citation() -> None:
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert "Keep a Changelog" in changelog and "## [Unreleased]" in changelog
    version = _project(PACKAGES[0])["version"]
    assert f"## [{version}]" in changelog
    yaml = pytest.importorskip("yaml")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert citation["cff-version"].startswith("1.2")
    assert str(citation["version"]) == version
    assert citation["license"] == "Apache-2.0"


def test_release_workflow_publishes_the_four_packages_on_a_tag() -> None:
    yaml = pytest.importorskip("yaml")
    release = yaml.safe_load((ROOT / ".github" / "workflows" / "release.yml").read_text())
    on = release.get("on", release.get(True))  # YAML 1.1 reads a bare `on` as True
    assert on["push"]["tags"] == ["v*"]
    publish = release["jobs"]["publish"]
    assert publish["permissions"]["id-token"] == "write"  # trusted publishing
    assert any("pypa/gh-action-pypi-publish" in s.get("uses", "") for s in publish["steps"])
    build_runs = " ".join(s.get("run", "") for s in release["jobs"]["build"]["steps"])
    assert "nox -s build" in build_runs


@pytest.mark.parametrize("name", sorted(IMPORT_NAMES))
def test_an_old_jax_gives_a_clear_import_error(name: str) -> None:
    pytest.importorskip(name)
    code = (
        "import jax\n"
        "jax.__version__ = '0.4.30'\n"
        "try:\n"
        f"    import {name}\n"
        "except ImportError as e:\n"
        "    print('ImportError:', e)\n"
        "else:\n"
        "    print('imported')\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    floor = _noxfile_constant("JAX_FLOOR")
    assert proc.stdout.startswith("ImportError:"), proc.stdout
    assert f"jax>={floor}" in proc.stdout and "0.4.30" in proc.stdout, proc.stdout


def test_version_parsing() -> None:
    pytest.importorskip("stategraph")
    from stategraph._src.jax_version import JAX_FLOOR, check_jax_version, parse_version

    assert parse_version("0.7.1.dev20250101") == (0, 7, 1)
    assert parse_version("0.10.2") == (0, 10, 2) > (0, 9, 9)
    assert parse_version("junk") == ()
    check_jax_version(".".join(map(str, JAX_FLOOR)))  # the floor itself is accepted
    with pytest.raises(ImportError, match=r"jax>=\d+\.\d+\.\d+.*0\.5\.3"):
        check_jax_version("0.5.3")
