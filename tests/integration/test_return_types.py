"""The public transforms' return annotations say what they return (not ``Any``), truthfully.

Each factory returns its transform object when given a function, and a decorator that
returns one when called without it (``@sd.grad(grad_states=w)``).
"""

from __future__ import annotations

import typing

import jax.numpy as jnp
import pytest

import statediff as sd
import stategraph as sg
import statejax as sj

W = sg.ParamState(jnp.ones(3), name="w")


def f(x):
    return (W.value * x).sum()


FACTORIES = [
    (sj.jit, {}, sj.JittedFunction),
    (sj.vmap, {}, sj.JittedFunction),
    (sj.checkpoint, {}, sj.JittedFunction),
    (sj.remat, {}, sj.JittedFunction),
    (sd.grad, {"grad_states": W}, sd.GradientTransform),
    (sd.vector_grad, {"grad_states": W}, sd.GradientTransform),
    (sd.jacfwd, {"grad_states": W}, sd.GradientTransform),
    (sd.jacrev, {"grad_states": W}, sd.GradientTransform),
    (sd.jacobian, {"grad_states": W}, sd.GradientTransform),
    (sd.hessian, {"grad_states": W}, sd.GradientTransform),
]


@pytest.mark.parametrize(
    ("factory", "kwargs", "cls"), FACTORIES, ids=lambda v: getattr(v, "__name__", "")
)
def test_annotation_names_the_returned_class(factory, kwargs, cls) -> None:
    hint = typing.get_type_hints(factory)["return"]
    assert hint is not typing.Any
    assert cls in typing.get_args(hint)
    made = factory(f, **kwargs)
    assert isinstance(made, cls)
    decorated = factory(**kwargs)(f) if kwargs else factory()(f)
    assert isinstance(decorated, cls)


def test_units_layer_annotations() -> None:
    sdu = pytest.importorskip("statediff_units")
    for name in ("grad", "vector_grad", "jacfwd", "jacrev", "jacobian", "hessian", "fwd_grad"):
        hint = typing.get_type_hints(getattr(sdu, name))["return"]
        assert sd.GradientTransform in typing.get_args(hint), name
    assert isinstance(sdu.grad(f, grad_states=W), sd.GradientTransform)
