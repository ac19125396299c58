"""The migration page lists every public name of ``brainstate.transform`` 0.5.4.

The names are hard-coded from brainstate 0.5.4 (``brainstate.transform.__all__``, which equals
its public ``dir()``), so the test needs no brainstate install.
"""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "brainstate.md"

BRAINSTATE_TRANSFORM_0_5_4 = (
    "GradientTransform", "ProgressBar", "StateFinder", "StatefulFunction", "StatefulMapping",
    "algebraic_simplification", "all_checks", "automatic_checks", "bounded_while_loop",
    "breakpoint_if", "check", "check_error", "checkify", "checkpoint", "checkpointed_for_loop",
    "checkpointed_scan", "common_subexpression_elimination", "cond", "constant_fold",
    "copy_propagation", "dead_code_elimination", "debug_nan", "debug_nan_if", "div_checks",
    "draw", "draw_dot_graph", "eqns_to_closed_jaxpr", "eqns_to_jaxpr", "eval_shape",
    "float_checks", "fn_to_python_code", "for_loop", "fwd_grad", "grad", "hessian", "ifelse",
    "in_new_state_probe", "index_checks", "inline_jit", "jacfwd", "jacobian", "jacrev",
    "jaxpr_to_python_code", "jit", "jit_error_if", "jvp", "make_jaxpr", "map", "named_call",
    "named_scope", "nan_checks", "optimize_jaxpr", "pmap2", "pmap2_new_states",
    "register_prim_handler", "remat", "scan", "shard_map", "switch", "unvmap", "user_checks",
    "vector_grad", "view_pydot", "vjp", "vmap", "vmap2", "vmap2_new_states", "vmap_new_states",
    "while_loop",
)  # fmt: skip


def _first_cells() -> set[str]:
    """The backticked names in the first column of the page's tables."""
    names: set[str] = set()
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if not line.startswith("| ") or line.startswith("| ---"):
            continue
        first = line.split("|")[1]
        names.update(re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", first))
    return names


def test_every_brainstate_transform_name_has_a_row() -> None:
    assert len(BRAINSTATE_TRANSFORM_0_5_4) == 69
    missing = [n for n in BRAINSTATE_TRANSFORM_0_5_4 if n not in _first_cells()]
    assert missing == [], f"docs/brainstate.md has no table row for bt.{missing}"


def test_each_row_says_where_or_why_not() -> None:
    text = PAGE.read_text(encoding="utf-8")
    section = text[text.index("## Transforms") : text.index("## Where the behaviour")]
    for line in section.splitlines():
        if line.startswith("| ") and not line.startswith("| ---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == 3 and all(cells), line
            if cells[1] == "not provided":
                assert len(cells[2]) > 20, f"no reason given: {line}"


def test_the_last_section_is_the_state_objects_section() -> None:
    headings = [ln for ln in PAGE.read_text(encoding="utf-8").splitlines() if ln.startswith("## ")]
    assert headings[-1] == "## State objects, hooks and random numbers"
