"""The public error classes: hierarchy, docstrings, and that each rule raises its class."""

from __future__ import annotations

import inspect

import jax
import jax.numpy as jnp
import pytest

import stategraph as sg
from stategraph import errors

ERROR_CLASSES = [
    errors.StateError,
    errors.TraceContextError,
    errors.StateStructureError,
    errors.TraceOrderError,
    errors.HookError,
    errors.HookRegistrationError,
    errors.HookExecutionError,
    errors.HookCancellationError,
    errors.DonatedStateError,
]


def test_errors_module_exports_exactly_the_error_classes():
    assert sorted(errors.__all__) == sorted(c.__name__ for c in ERROR_CLASSES)
    assert errors.__all__ == sorted(errors.__all__)


@pytest.mark.parametrize("cls", ERROR_CLASSES)
def test_classes_are_reexported_by_the_package(cls):
    assert getattr(sg, cls.__name__) is cls


def test_state_error_is_the_root():
    assert issubclass(sg.StateError, Exception)
    for cls in (sg.TraceContextError, sg.StateStructureError, sg.TraceOrderError):
        assert issubclass(cls, sg.StateError)
        assert cls is not sg.StateError


def test_structure_error_is_also_a_value_error():
    # A structure mismatch is a bad value: code catching ValueError catches it too.
    assert issubclass(sg.StateStructureError, ValueError)


@pytest.mark.parametrize("cls", ERROR_CLASSES)
def test_each_class_documents_cause_and_fix(cls):
    doc = inspect.getdoc(cls)
    assert doc, f"{cls.__name__} has no docstring"
    assert "Cause:" in doc
    assert "Fix:" in doc
    # The summary line says what went wrong, in a sentence.
    assert doc.splitlines()[0].endswith(".")


def test_trace_context_error_doc_names_the_stateful_counterparts():
    doc = inspect.getdoc(sg.TraceContextError)
    assert "statejax" in doc and "statediff" in doc
    assert "jax.jit" in doc


def test_structure_error_doc_names_structure_shape_dtype():
    doc = inspect.getdoc(sg.StateStructureError)
    for word in ("structure", "shape", "dtype"):
        assert word in doc


# ----------------------------------------------------------- one raise per rule
def _write_from_jit():
    w = sg.State(jnp.ones(3), name="w")

    def f(x):
        w.value = x

    jax.jit(f)(jnp.zeros(3))


def _structure_change_in_trace():
    w = sg.State(jnp.ones(3), name="w")
    with sg.StateTrace():
        w.value = jnp.ones(4)


def _exit_out_of_order():
    outer, inner = sg.StateTrace(), sg.StateTrace()
    outer.__enter__()
    inner.__enter__()
    try:
        outer.__exit__(None, None, None)
    finally:
        inner.__exit__(None, None, None)


@pytest.mark.parametrize(
    ("trigger", "cls"),
    [
        (_write_from_jit, sg.TraceContextError),
        (_structure_change_in_trace, sg.StateStructureError),
        (_exit_out_of_order, sg.TraceOrderError),
    ],
)
def test_every_rule_is_caught_by_the_root_class(trigger, cls):
    with pytest.raises(sg.StateError) as info:
        trigger()
    assert type(info.value) is cls
    assert "Fix" in str(info.value)


def test_bad_arguments_raise_builtin_errors_not_state_errors():
    with pytest.raises(TypeError) as info:
        sg.State(1.0, name=3)
    assert not isinstance(info.value, sg.StateError)
    with pytest.raises(TypeError) as info:
        sg.states({}, 42)
    assert not isinstance(info.value, sg.StateError)


def test_package_metadata():
    assert sg.__all__ == sorted(sg.__all__)
    for name in sg.__all__:
        assert hasattr(sg, name)
    assert isinstance(sg.__version__, str) and sg.__version__.count(".") >= 2
