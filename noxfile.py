"""Every automated task of the monorepo, as nox sessions.

Run ``nox -l`` for the list. The default (``nox``) runs: tests lint layers build.

    nox -s tests                                        # every layer on CPU, then integration
    nox -s "tests(layer='statejax', backend='cpu')"     # one layer, one backend
    nox -s lint layers build docs                       # static checks, packaging, docs
    nox -s distributed                                  # 2 and 4 JAX processes on 127.0.0.1
    nox -s demo | bench | bench-peers                   # examples and benchmarks

Adding a package to the stack = adding its folder packages/<dist>/ and one line to LAYERS.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import zipfile
from pathlib import Path

import nox

# The stack, bottom first, as distribution names. The import name is the dist name with "-"
# replaced by "_". A layer whose packages/<dist>/src/<import name> folder does not exist yet is
# skipped with a message.
LAYERS = ["stategraph", "statejax", "statediff", "statediff-units"]

BACKENDS = ["cpu", "cuda"]

ROOT = Path(__file__).resolve().parent
TEST_TOOLS = ["pytest>=8.1", "hypothesis>=6.100", "pytest-xdist>=3.5"]
# The integration session also runs tests/meta, which reads the CI workflow and `nox -l`.
# matplotlib and optax: examples run by tests (optax in examples and benchmarks only, never in
# the packages).
# orbax-checkpoint: the training guide saves and restores a checkpoint (never in the packages).
# uv: tests/integration/test_install.py runs the README's uv install command.
META_TOOLS = [
    "pyyaml>=6",
    "nox>=2024.3.2",
    "matplotlib>=3.7",
    "optax>=0.2",
    "orbax-checkpoint>=0.11",
    "uv>=0.4",
]
# Sphinx, MyST, the theme (sphinx-book-theme, as JAX's docs use) and copy buttons, from PyPI:
# docs/requirements.txt, which Read the Docs installs too.
DOCS_TOOLS = ["-r", "docs/requirements.txt"]
LINT_TOOLS = ["ruff>=0.6"]
IMPORT_LINTER = "import-linter>=2.17"  # >=2.17: the "protected" contract type
PEERS = ["brainstate", "flax", "equinox", "optax"]
CPU_DEVICE_FLAG = "--xla_force_host_platform_device_count=8"
# The CPU test legs compile thousands of tiny XLA programs; LLVM's optimization passes are
# most of each compile and buy nothing at these sizes, so the tests compile without them (about
# a fifth less CPU time per layer). Every check compares against plain JAX compiled under the
# same flags. Set XLA_FLAGS=--xla_backend_optimization_level=N to test another level.
CPU_TEST_OPT_FLAG = "--xla_backend_optimization_level=0"
# Not --xla_cpu_use_fusion_emitters=false, although it halves each compile on jaxlib 0.10: with
# it, jax.jit(jax.jacfwd(f)) of the docs' sparse example (a gather of a tanh, summed) returns a
# Jacobian off by 0.14 on jaxlib 0.10.2, and plain JAX under the same flags agrees with it.
# The oldest JAX the stack supports: every package declares jax>=JAX_FLOOR and raises an
# ImportError naming it on an older JAX (packages/*/src/*/_src/jax_version.py). The
# tests_jax_floor session runs every layer's tests on it (jaxlib pinned with it), and on the
# newest JAX. tests/meta checks that the declarations agree with this line.
JAX_FLOOR = "0.6.2"
# The first JAX the stack does not support yet: every package declares jax<JAX_CEILING.
# JAX 0.11 changed internals the stack relies on (the scan primitive's parameters; jax.jit
# copying a wrapped function's attributes over its own methods); see docs/guide/install.md.
JAX_CEILING = "0.11"
JAX_LEGS = ["floor", "newest"]
# pytest-xdist on the CPU legs: one worker per core, idle workers steal queued tests. Tests
# marked `serial` (timing measurements, anything that must have the machine to itself) are
# left out of the parallel run and run alone afterwards.
XDIST_ARGS = ["-n", os.environ.get("STATESTACK_TEST_WORKERS", "auto"), "--dist", "worksteal"]
# The integration tests mostly wait on the processes they start (fresh venvs installing the
# stack, examples, docs pages): one worker more than there are cores keeps the cores busy
# (on 2 cores: 129 s against 168 s with 2 workers; the compile-bound layer legs gain nothing).
INTEGRATION_WORKERS = os.environ.get("STATESTACK_TEST_WORKERS") or str((os.cpu_count() or 1) + 1)
SERIAL_MARK = "serial"

nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests", "lint", "layers", "build"]


# ----------------------------------------------------------------------------- helpers


def import_name(dist: str) -> str:
    """Import name of a layer: statediff-units -> statediff_units."""
    return dist.replace("-", "_")


def src_dir(dist: str) -> Path:
    return ROOT / "packages" / dist / "src"


def layer_exists(dist: str) -> bool:
    return (src_dir(dist) / import_name(dist)).is_dir()


def existing_layers() -> list[str]:
    """The layers present in the tree, bottom first, stopping at the first missing one."""
    present = []
    for dist in LAYERS:
        if not layer_exists(dist):
            break
        present.append(dist)
    return present


def missing_message(dist: str) -> str:
    return (
        f"packages/{dist}/src/{import_name(dist)} does not exist yet: "
        f"layer {dist!r} skipped (add the package to enable it)"
    )


def editable(dists: list[str]) -> list[str]:
    """pip/uv arguments that install the given layers editable, all in one resolve."""
    args: list[str] = []
    for dist in dists:
        args += ["-e", f"packages/{dist}"]
    return args


def install_all_layers(session: nox.Session, *extra: str) -> list[str]:
    dists = existing_layers()
    if not dists:
        session.skip(missing_message(LAYERS[0]))
    if len(dists) < len(LAYERS):
        session.log(f"Layers present: {', '.join(dists)}; not yet: {LAYERS[len(dists)]} and up.")
    session.install(*editable(dists), *extra)
    return dists


def gpu_absent_reason() -> str | None:
    """Why no NVIDIA GPU is visible, or None when one is."""
    smi = shutil.which("nvidia-smi")
    if smi is not None:
        try:
            proc = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            smi_state = f"nvidia-smi failed: {exc}"
        else:
            if proc.returncode == 0 and "GPU" in proc.stdout:
                return None
            smi_state = f"nvidia-smi -L exited {proc.returncode} listing no GPU"
    else:
        smi_state = "nvidia-smi not on PATH"
    if os.path.exists("/dev/nvidia0"):
        return None
    return f"{smi_state}, no /dev/nvidia0"


_COMPILE_CACHE: list[str] = []


def compile_cache_dir() -> str:
    """A JAX compilation cache shared by every test process of this nox run, removed at exit.

    The xdist workers of one layer (and the layers after it) compile many of the same small
    programs; with one on-disk cache each is compiled once per run (about a tenth of a layer's
    time on 2 cores). It starts empty on every run, so a run's time is never that of a warm
    cache, and nothing compiled by an older jaxlib or older code is ever reused. JAX writes an
    entry in place, so a process may read one half written: JAX then warns and compiles the
    program itself (pyproject.toml ignores that warning; no test turns every warning into an
    error).
    """
    if not _COMPILE_CACHE:
        path = tempfile.mkdtemp(prefix="statestack-jax-cache-")
        atexit.register(shutil.rmtree, path, ignore_errors=True)
        _COMPILE_CACHE.append(path)
    return _COMPILE_CACHE[0]


def test_env(backend: str) -> dict[str, str]:
    env = {
        "HYPOTHESIS_PROFILE": "ci",
        "JAX_PLATFORMS": backend,
        # Write .pyc files even where PYTHONDONTWRITEBYTECODE is set (as on some CI images):
        # every test process after the first (xdist workers, the examples, docs pages and
        # install checks the integration tests start) then imports JAX from bytecode instead
        # of compiling its ~1,000 modules again.
        "PYTHONDONTWRITEBYTECODE": "",
    }
    if backend == "cpu":
        # Multi-device tests (shard_map, pmap) see 8 virtual CPU devices.
        flags = [os.environ.get("XLA_FLAGS"), CPU_DEVICE_FLAG]
        if "xla_backend_optimization_level" not in (os.environ.get("XLA_FLAGS") or ""):
            flags.append(CPU_TEST_OPT_FLAG)
        env["XLA_FLAGS"] = " ".join(filter(None, flags))
        if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
            env["JAX_COMPILATION_CACHE_DIR"] = compile_cache_dir()
            env["JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS"] = "0"
            env["JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"] = "0"
    return env


_CUDA_PROBE = """
try:
    import jax
    ok = any(d.platform == "gpu" for d in jax.devices())
except Exception as exc:  # no jax, no CUDA plugin, no driver...
    print("CUDA-JAX: no", type(exc).__name__, exc)
else:
    print("CUDA-JAX:", "yes" if ok else "no", jax.__version__)
try:
    import hypothesis, pytest  # noqa: F401
    print("TEST-TOOLS: yes")
except ImportError:
    print("TEST-TOOLS: no")
"""


def _ensure_system_site_packages(session: nox.Session) -> None:
    """Re-create the session venv with --system-site-packages (cuda sessions only).

    nox's ``venv_params`` are per session function, shared by all its parametrizations, and
    the cpu sessions must stay isolated; so the cuda sessions rebuild their own venv here.
    """
    venv = session.virtualenv
    location = getattr(venv, "location", None)
    if location is None or not hasattr(venv, "venv_params"):
        session.error("cuda sessions need a virtualenv backend (uv, virtualenv or venv)")
    cfg = Path(location) / "pyvenv.cfg"
    if cfg.exists() and "include-system-site-packages = true" in cfg.read_text():
        return
    venv.venv_params = [*venv.venv_params, "--system-site-packages"]
    venv.reuse_existing = False
    venv.create()


def _probe(session: nox.Session, python: str) -> tuple[bool, bool]:
    """(jax sees a CUDA GPU, pytest and hypothesis import) for one interpreter."""
    env = {k: v for k, v in os.environ.items() if k != "JAX_PLATFORMS"}
    try:
        proc = subprocess.run(
            [python, "-c", _CUDA_PROBE], capture_output=True, text=True, env=env, timeout=300
        )
    except (OSError, subprocess.SubprocessError) as exc:
        session.log(f"{python}: probe failed: {exc}")
        return False, False
    summary = proc.stdout.strip().replace("\n", " / ")
    session.log(f"{python}: {summary}")
    return "CUDA-JAX: yes" in proc.stdout, "TEST-TOOLS: yes" in proc.stdout


def _visible_pythons() -> list[str]:
    """nox's own interpreter and the python3/python on PATH (any of them may be a venv)."""
    found = [sys.executable, shutil.which("python3"), shutil.which("python")]
    unique: list[str] = []
    for python in found:
        if python and python not in unique:
            unique.append(python)
    return unique


def install_for_cuda(session: nox.Session, dists: list[str], *extra: str) -> tuple[str, dict]:
    """Prepare a cuda session; return the interpreter to run pytest with and extra env vars.

    The session venv is re-created with --system-site-packages. If a visible Python already has
    a CUDA-enabled jax (and pytest and hypothesis), nothing is fetched from the network: the
    layers' src folders go on PYTHONPATH. Otherwise jax[cuda12], the layers and the test tools
    are installed into the venv.
    """
    _ensure_system_site_packages(session)
    pythonpath = os.pathsep.join(
        filter(None, [*(str(src_dir(d)) for d in dists), os.environ.get("PYTHONPATH")])
    )
    venv_python = str(Path(session.bin) / "python")
    # The venv first: it sees the base interpreter's site-packages. Then the visible
    # interpreters themselves, for a CUDA jax that lives in a venv (whose packages a
    # --system-site-packages venv does not see).
    for python in [venv_python, *_visible_pythons()]:
        has_cuda_jax, has_tools = _probe(session, python)
        if not has_cuda_jax:
            continue
        if not has_tools:
            if python != venv_python:
                continue
            session.log("jax with CUDA is present; installing only the test tools.")
            session.install(*TEST_TOOLS)
        session.log(f"Using {python} with the layers on PYTHONPATH: nothing installed.")
        return python, {"PYTHONPATH": pythonpath}
    session.install("-U", "jax[cuda12]", *editable(dists), *TEST_TOOLS, *extra)
    return "python", {}


# ----------------------------------------------------------------------------- tests

# Order: every layer on CPU, the (skipped without a GPU) CUDA legs, then integration.
TEST_MATRIX = [
    *[(layer, "cpu") for layer in LAYERS],
    *[(layer, "cuda") for layer in LAYERS],
    ("integration", "cpu"),
    ("integration", "cuda"),
]


@nox.session
@nox.parametrize(("layer", "backend"), TEST_MATRIX)
def tests(session: nox.Session, layer: str, backend: str) -> None:
    """Unit tests + doctests of one layer (with only the layers below it), or integration."""
    if backend == "cuda":
        reason = gpu_absent_reason()
        if reason is not None:
            session.skip(f"no NVIDIA GPU visible ({reason}): CUDA tests skipped")

    ok_codes = [0]
    if layer == "integration":
        dists = existing_layers()
        if not dists:
            session.skip(missing_message(LAYERS[0]))
        targets = [p for p in ("tests/integration", "tests/meta") if (ROOT / p).is_dir()]
        extra = META_TOOLS
    else:
        if not layer_exists(layer):
            session.skip(missing_message(layer))
        # This layer and the ones below it, never one above: importing a higher layer fails.
        dists = LAYERS[: LAYERS.index(layer) + 1]
        absent = [d for d in dists if not layer_exists(d)]
        if absent:
            session.skip(missing_message(absent[0]))
        tests_dir = Path("packages", layer, "tests")
        targets = [str(tests_dir)] if (ROOT / tests_dir).is_dir() else []
        # Docstring examples are doctests.
        targets += ["--doctest-modules", str(Path("packages", layer, "src"))]
        extra = []
        if not any((ROOT / tests_dir).glob("**/test_*.py")):
            # A layer that has just appeared may have no tests (nor doctests) yet: pytest's
            # exit code 5, "no tests collected", is then accepted, with this warning.
            session.warn(f"{tests_dir} has no test_*.py yet: only doctests run for {layer}")
            ok_codes = [0, 5]

    env = test_env(backend)
    python = "python"
    if backend == "cuda":
        python, extra_env = install_for_cuda(session, dists, *extra)
        env.update(extra_env)
    else:
        session.install(*editable(dists), *TEST_TOOLS, *extra)

    # The CUDA legs run in one process: each JAX process would claim most of the GPU's memory.
    workers = INTEGRATION_WORKERS if layer == "integration" else None
    run_pytest(session, python, targets, env, ok_codes, parallel=backend == "cpu", workers=workers)


def _has_serial_tests(targets: list[str]) -> bool:
    """Whether any test file under ``targets`` uses the ``serial`` marker."""
    needle = f"mark.{SERIAL_MARK}"
    for target in targets:
        path = ROOT / target
        if not path.exists() or target.startswith("-"):
            continue
        files = [path] if path.is_file() else path.rglob("*.py")
        if any(needle in f.read_text(encoding="utf-8", errors="replace") for f in files):
            return True
    return False


def run_pytest(
    session: nox.Session,
    python: str,
    targets: list[str],
    env: dict[str, str],
    ok_codes: list[int],
    parallel: bool = True,
    workers: str | None = None,
) -> None:
    """Run pytest on ``targets``: in parallel (pytest-xdist), then the serial tests alone.

    ``workers`` replaces the parallel run's worker count (``XDIST_ARGS``'s). Options after
    ``--`` on the nox command line come last, so ``-- -n 0`` turns the parallel run off and
    ``-- -k name`` selects tests in both passes.
    """
    serial = parallel and _has_serial_tests(targets)
    first = [*XDIST_ARGS] if parallel else []
    if parallel and workers is not None:
        first[1] = workers
    if serial:
        first += ["-m", f"not {SERIAL_MARK}"]
    session.run(
        python,
        "-m",
        "pytest",
        *targets,
        *first,
        *session.posargs,
        env=env,
        success_codes=ok_codes,
        external=True,  # the cuda legs may use an interpreter outside the venv
    )
    if serial:
        session.run(
            python,
            "-m",
            "pytest",
            *targets,
            "-m",
            SERIAL_MARK,
            *session.posargs,
            env=env,
            success_codes=[0, 5],  # 5: the selection (-k ...) left no serial test
            external=True,
        )


@nox.session(name="tests_jax_floor")
@nox.parametrize("jax", JAX_LEGS)
def tests_jax_floor(session: nox.Session, jax: str) -> None:
    """Every layer's tests and doctests on the oldest supported JAX (jax='floor') or the newest.

    One venv holds the whole stack (the per-layer isolation is the tests session's job), with
    jax and jaxlib pinned to JAX_FLOOR, or upgraded to the newest release; the tests run in
    parallel (pytest-xdist).
    """
    dists = existing_layers()
    if not dists:
        session.skip(missing_message(LAYERS[0]))
    if jax == "floor":
        pins = [f"jax=={JAX_FLOOR}", f"jaxlib=={JAX_FLOOR}"]
    else:
        pins = ["-U", "jax", "jaxlib"]
    session.install(*editable(dists), *TEST_TOOLS, *pins)
    show = "import jax, jaxlib; print('jax', jax.__version__, 'jaxlib', jaxlib.__version__)"
    session.run("python", "-c", show)
    targets: list[str] = []
    for dist in dists:
        tests_dir = Path("packages", dist, "tests")
        if (ROOT / tests_dir).is_dir():
            targets.append(str(tests_dir))
    targets += ["--doctest-modules", *(str(Path("packages", d, "src")) for d in dists)]
    run_pytest(session, "python", targets, test_env("cpu"), [0])


@nox.session
def distributed(session: nox.Session) -> None:
    """Multi-process tests: 2 and 4 JAX processes on 127.0.0.1 (CPU devices, gloo collectives).

    tests/distributed starts its own worker processes (one jax.distributed process each) with
    short heartbeat/shutdown timeouts and a hard timeout per job in the parent, so a failing
    or hanging worker fails the session in seconds, never hangs it.
    """
    install_all_layers(session, *TEST_TOOLS)
    env = {"JAX_PLATFORMS": "cpu", "HYPOTHESIS_PROFILE": "ci"}
    session.run("python", "-m", "pytest", "tests/distributed", *session.posargs, env=env)


# ----------------------------------------------------------------------------- static checks


@nox.session
def lint(session: nox.Session) -> None:
    """Ruff lint (pycodestyle, pyflakes, isort, bugbear, pyupgrade, Google docstrings)."""
    session.install(*LINT_TOOLS)
    candidates = [
        "packages",
        "tests",
        "examples",
        "benchmarks",
        "docs",
        "noxfile.py",
        "conftest.py",
    ]
    paths = [p for p in candidates if (ROOT / p).exists()]
    session.run("ruff", "check", *paths, *session.posargs)


def _filtered_importlinter_config(present: list[str]) -> str:
    """INI text of [tool.importlinter] keeping only what refers to present packages."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    all_roots = set(config["root_packages"])
    absent = all_roots - set(present)

    def keep(module: str) -> bool:
        return module.split(".")[0] not in absent

    def ini_value(value: object) -> str:
        if isinstance(value, bool):
            return str(value)
        if isinstance(value, list):
            return "".join(f"\n    {v}" for v in value)
        return str(value)

    lines = ["[importlinter]"]
    for key, value in config.items():
        if key == "contracts":
            continue
        if key == "root_packages":
            value = [r for r in value if r in present]
        lines.append(f"{key} = {ini_value(value)}")

    module_fields = {
        "layers",
        "source_modules",
        "forbidden_modules",
        "protected_modules",
        "allowed_importers",
        "modules",
    }
    for contract in config.get("contracts", []):
        contract = dict(contract)
        dropped = False
        for field in module_fields & contract.keys():
            contract[field] = [m for m in contract[field] if keep(m)]
            # allowed_importers may legitimately end up empty only if the protected module went.
            if not contract[field]:
                dropped = True
        if contract.get("type") == "layers" and len(contract.get("layers", [])) < 2:
            dropped = True
        if dropped:
            continue
        cid = contract.pop("id")
        lines.append("")
        lines.append(f"[importlinter:contract:{cid}]")
        lines += [f"{k} = {ini_value(v)}" for k, v in contract.items()]
    return "\n".join(lines) + "\n"


@nox.session
def layers(session: nox.Session) -> None:
    """Architecture contracts (import-linter): the stack, private _src, brainunit, no NN libs."""
    present = [import_name(d) for d in install_all_layers(session, IMPORT_LINTER)]
    if len(present) == len(LAYERS):
        session.run("lint-imports", "--no-cache", *session.posargs)
        return
    config = Path(session.create_tmp()) / ".importlinter"
    config.write_text(_filtered_importlinter_config(present))
    session.log(f"Checking the contracts that apply to the present layers ({config}).")
    session.run("lint-imports", "--no-cache", str(config), *session.posargs)


# ----------------------------------------------------------------------------- packaging


# What every wheel's METADATA must say (the licence, who, where, what): field -> values that
# must each appear. Checked by the build session.
REQUIRED_METADATA = {
    "License-Expression": ["Apache-2.0"],
    "License-File": ["LICENSE"],
    "Author": [],
    "Keywords": [],
    "Requires-Python": [],
    "Project-URL": ["Homepage", "Documentation", "Repository", "Issues", "Changelog"],
    "Classifier": [
        "License :: OSI Approved :: Apache Software License",
        "Programming Language :: Python :: 3.11",
        "Programming Language :: Python :: 3.12",
        "Typing :: Typed",
    ],
}


def _check_metadata(metadata: str, has_license_file: bool) -> list[str]:
    """Problems with a wheel's METADATA text (licence, authors, URLs, classifiers, JAX floor)."""
    fields: dict[str, list[str]] = {}
    for line in metadata.split("\n\n", 1)[0].splitlines():
        key, sep, value = line.partition(": ")
        if sep:
            fields.setdefault(key, []).append(value)
    problems = []
    for key, wanted in REQUIRED_METADATA.items():
        values = fields.get(key)
        if not values:
            problems.append(f"METADATA has no {key}")
            continue
        for want in wanted:
            if not any(v == want or v.startswith(f"{want},") for v in values):
                problems.append(f"METADATA {key} lacks {want!r} (has {values})")
    # "jax<0.11,>=0.6.2" (the specifiers in any order), not jaxlib or jax[cuda]
    jax = [
        r
        for r in fields.get("Requires-Dist", [])
        if r.startswith("jax") and r[3:4] in ("<", ">", "=", "!", "~", " ")
    ]
    wanted = {f">={JAX_FLOOR}", f"<{JAX_CEILING}"}
    if len(jax) != 1 or set(jax[0][3:].split(";")[0].replace(" ", "").split(",")) != wanted:
        problems.append(
            f"METADATA requires {jax or 'no jax'}, not jax>={JAX_FLOOR},<{JAX_CEILING} "
            "(JAX_FLOOR, JAX_CEILING)"
        )
    if not has_license_file:
        problems.append("no LICENSE in .dist-info/licenses/")
    return problems


def _check_wheel(path: Path, imp: str) -> list[str]:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        meta = [n for n in names if n.endswith(".dist-info/METADATA")]
        metadata = zf.read(meta[0]).decode("utf-8") if meta else ""
    problems = []
    licensed = any(n.endswith(".dist-info/licenses/LICENSE") for n in names)
    problems += _check_metadata(metadata, licensed) if meta else ["no .dist-info/METADATA"]
    if f"{imp}/py.typed" not in names:
        problems.append(f"missing {imp}/py.typed")
    for name in names:
        parts = name.split("/")
        top = parts[0]
        if top != imp and not top.endswith((".dist-info", ".data")):
            problems.append(f"unexpected top-level entry {name}")
        if "tests" in parts[:-1] or parts[-1].startswith("test_") or parts[-1] == "conftest.py":
            problems.append(f"test file {name}")
        if {"_build", "__pycache__"} & set(parts[:-1]) or name.endswith((".pyc", ".pyo")):
            problems.append(f"build junk {name}")
    return problems


def _check_sdist(path: Path) -> list[str]:
    with tarfile.open(path) as tf:
        names = tf.getnames()
    problems = []
    if not any(name.split("/")[1:] == ["LICENSE"] for name in names):
        problems.append("no LICENSE at the top of the sdist")
    for name in names:
        parts = name.split("/")
        if "tests" in parts[:-1] or "_build" in parts or "__pycache__" in parts:
            problems.append(f"unwanted file {name}")
    return problems


@nox.session
def build(session: nox.Session) -> None:
    """Build sdist + wheel of every package into dist/; check contents, licence and metadata."""
    dists = existing_layers()
    if not dists:
        session.skip(missing_message(LAYERS[0]))
    out = ROOT / "dist"
    shutil.rmtree(out, ignore_errors=True)
    use_uv = session.venv_backend == "uv"
    if not use_uv:
        session.install("build")
    for dist in dists:
        if use_uv:
            session.run("uv", "build", "--out-dir", str(out), f"packages/{dist}")
        else:
            session.run("python", "-m", "build", "--outdir", str(out), f"packages/{dist}")

    failures = []
    for dist in dists:
        imp = import_name(dist)
        wheels = sorted(out.glob(f"{imp}-*.whl"))
        sdists = sorted(out.glob(f"{imp}-*.tar.gz"))
        if len(wheels) != 1 or len(sdists) != 1:
            failures.append(f"{dist}: expected one wheel and one sdist, found {wheels + sdists}")
            continue
        for problem in _check_wheel(wheels[0], imp):
            failures.append(f"{wheels[0].name}: {problem}")
        for problem in _check_sdist(sdists[0]):
            failures.append(f"{sdists[0].name}: {problem}")
        session.log(f"{wheels[0].name} and {sdists[0].name}: OK")
    if failures:
        session.error("Bad distributions:\n  " + "\n  ".join(failures))


@nox.session
def docs(session: nox.Session) -> None:
    """Sphinx + MyST HTML docs, warnings as errors, offline (no intersphinx)."""
    install_all_layers(session, *DOCS_TOOLS)
    out = ROOT / "docs" / "_build" / "html"
    shutil.rmtree(out, ignore_errors=True)
    session.run(
        "sphinx-build", "-W", "--keep-going", "-b", "html", "docs", str(out), *session.posargs
    )
    session.log(f"Open {out / 'index.html'}")


# ----------------------------------------------------------------------------- examples, benchmarks


@nox.session
def demo(session: nox.Session) -> None:
    """Run examples/demo.py with the whole stack installed."""
    script = ROOT / "examples" / "demo.py"
    if not script.exists():
        session.skip("examples/demo.py does not exist yet: demo skipped")
    install_all_layers(session, "matplotlib")
    session.run("python", str(script), *session.posargs, env={"MPLBACKEND": "Agg"})


@nox.session
def bench(session: nox.Session) -> None:
    """Run every benchmarks/bench_*.py (each prints a table, writes benchmarks/results/*.json)."""
    scripts = sorted((ROOT / "benchmarks").glob("bench_*.py"))
    if not scripts:
        session.skip("no benchmarks/bench_*.py yet: bench skipped")
    install_all_layers(session, "matplotlib", "optax")  # optax: the train-step case
    for script in scripts:
        session.run("python", str(script), *session.posargs, env={"MPLBACKEND": "Agg"})


@nox.session(name="bench-peers")
def bench_peers(session: nox.Session) -> None:
    """Run benchmarks/peers.py against brainstate, flax, equinox and optax."""
    script = ROOT / "benchmarks" / "peers.py"
    if not script.exists():
        session.skip("benchmarks/peers.py does not exist yet: bench-peers skipped")
    install_all_layers(session, *PEERS, "matplotlib")
    session.run("python", str(script), *session.posargs, env={"MPLBACKEND": "Agg"})
