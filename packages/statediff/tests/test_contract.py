"""The return contract of every statediff transform, checked against plain JAX.

Each transform is run through the 12 cases of the contract table (``grad_states``
given or not, ``argnums`` given or not, ``has_aux``, ``return_value``) and compared
with JAX's own transform of the equivalent pure function, which takes the values
of the ``grad_states`` container as its first argument.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import stategraph as sg

W0 = jnp.array([0.5, -1.0, 2.0])
B0 = jnp.array(0.3)
C0 = jnp.array([1.5, 0.7, -0.2])
X0 = jnp.array(1.3)
Y0 = jnp.array([0.2, -0.4, 0.9])
VALUES = {"w": W0, "b": B0, "c": C0}


def assert_tree_close(actual: Any, expected: Any) -> None:
    """Same pytree structure, same shapes and dtypes, close values."""
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert jnp.shape(a) == jnp.shape(e)
        assert jnp.result_type(a) == jnp.result_type(e)
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------- the functions
def core_vector(w, b, c, x, y):
    """A pytree output (dict holding a tuple) depending on every input."""
    return {"u": (w * x + b) * c, "v": (w * w * y, b * x * x)}


def core_scalar(w, b, c, x, y):
    """A scalar output with cross terms between every pair of inputs."""
    return (w * w * x * c).sum() + b * b * (y * w).sum() + x * x * b * y.sum()


def core_aux(w, b, x):
    return {"h": w + x, "k": b}


def vector_grad_reference(fun, argnums=0, has_aux=False):
    """Plain-JAX ``vector_grad``: ``jax.grad`` of the sum of every output leaf."""

    def summed(*args):
        out = fun(*args)
        y, aux = out if has_aux else (out, None)
        total = sum(jnp.sum(leaf) for leaf in jax.tree.leaves(y))
        return (total, aux) if has_aux else total

    return jax.grad(summed, argnums=argnums, has_aux=has_aux)


def gradient_transform_jacfwd(func, **kwargs):
    """A new transform built from ``jax.jacfwd`` with :class:`statediff.GradientTransform`."""
    return sd.GradientTransform(func, jax.jacfwd, **kwargs)


# name -> (statediff transform, plain-JAX reference, "vector" or "scalar" output)
TRANSFORMS = {
    "jacfwd": (sd.jacfwd, jax.jacfwd, "vector"),
    "jacrev": (sd.jacrev, jax.jacrev, "vector"),
    "jacobian": (sd.jacobian, jax.jacrev, "vector"),
    "grad": (sd.grad, jax.grad, "scalar"),
    "vector_grad": (sd.vector_grad, vector_grad_reference, "vector"),
    "hessian": (sd.hessian, jax.hessian, "scalar"),
    "GradientTransform(jax.jacfwd)": (gradient_transform_jacfwd, jax.jacfwd, "vector"),
}

# The 12 rows of the contract: (grad_states as a container of state names, argnums,
# has_aux, return_value). The containers and argnums forms vary across rows.
NOT_GIVEN = "not given"
CASES = [
    (None, NOT_GIVEN, False, False),
    (None, NOT_GIVEN, True, False),
    (None, NOT_GIVEN, False, True),
    (None, NOT_GIVEN, True, True),
    ("w", None, False, False),
    (["w", "b"], None, True, False),
    ({"w": "w", "b": "b"}, None, False, True),
    ({"p": ["w"], "q": {"b": "b"}}, None, True, True),
    ("w", 1, False, False),
    ({"w": "w", "b": "b"}, (0, 1), True, False),
    (["w", "b"], (1,), False, True),
    ({"w": "w", "b": "b"}, 0, True, True),
]


def case_id(case):
    spec, argnums, has_aux, return_value = case
    gs = "gs=None" if spec is None else f"gs={spec!r}".replace(" ", "")
    an = "argnums=default" if argnums is NOT_GIVEN else f"argnums={argnums!r}".replace(" ", "")
    return f"{gs}-{an}-aux={has_aux:d}-value={return_value:d}"


def make_states():
    return {
        "w": sg.ParamState(W0, name="w"),
        "b": sg.ParamState(B0, name="b"),
        "c": sg.ParamState(C0, name="c"),  # read, never differentiated: a constant
    }


def make_problem(kind: str, has_aux: bool, states: dict[str, sg.State]):
    """Return ``(stateful f, pure(overrides, x, y), counter)`` for one output kind."""
    core = core_vector if kind == "vector" else core_scalar
    calls = [0]

    def stateful(x, y):
        calls[0] += 1
        out = core(states["w"].value, states["b"].value, states["c"].value, x, y)
        if has_aux:
            return out, core_aux(states["w"].value, states["b"].value, x)
        return out

    def pure_named(overrides: dict[str, Any], x, y):
        v = {**VALUES, **overrides}
        out = core(v["w"], v["b"], v["c"], x, y)
        if has_aux:
            return out, core_aux(v["w"], v["b"], x)
        return out

    return stateful, pure_named, calls


_EXPECTED: dict[Any, Any] = {}


def expected_result(name, spec, argnums, has_aux, return_value, pure_named):
    """What the contract says, computed with plain JAX on the pure function (one jit).

    Transforms with the same JAX reference share it (jacrev and jacobian, jacfwd and
    the GradientTransform built from jax.jacfwd): it is computed once.
    """
    jax_t = TRANSFORMS[name][1]
    key = (
        jax_t,
        name == "hessian",
        TRANSFORMS[name][2],
        repr(spec),
        argnums,
        has_aux,
        return_value,
    )
    if key not in _EXPECTED:
        _EXPECTED[key] = _expected(name, spec, argnums, has_aux, return_value, pure_named)
    return _EXPECTED[key]


def _expected(name, spec, argnums, has_aux, return_value, pure_named):
    jax_t = TRANSFORMS[name][1]

    def reference(x, y):
        args = (x, y)
        if spec is None:
            fun = lambda x, y: pure_named({}, x, y)  # noqa: E731
            res = jax_t(fun, argnums=0, has_aux=has_aux)(*args)
            grads, aux = res if has_aux else (res, None)
            out = fun(*args)
        else:
            names = jax.tree.leaves(spec)

            def pure(svals, x, y):
                return pure_named(dict(zip(names, jax.tree.leaves(svals), strict=True)), x, y)

            full = (jax.tree.map(lambda n: VALUES[n], spec), *args)
            if argnums is None:
                res = jax_t(pure, argnums=0, has_aux=has_aux)(*full)
                grads, aux = res if has_aux else (res, None)
            else:
                nums = (argnums,) if isinstance(argnums, int) else tuple(argnums)
                if name == "hessian":
                    # Blocks nested as jax.hessian nests them for argnums=(states, *argnums).
                    res = jax_t(pure, argnums=(0, *(i + 1 for i in nums)), has_aux=has_aux)(*full)
                    h, aux = res if has_aux else (res, None)
                    var_grads = h[0]
                    arg_grads = h[1] if isinstance(argnums, int) else tuple(h[1:])
                else:
                    # Each part is exactly what JAX gives for those inputs alone.
                    shifted = (
                        argnums + 1 if isinstance(argnums, int) else tuple(i + 1 for i in nums)
                    )
                    res_v = jax_t(pure, argnums=0, has_aux=has_aux)(*full)
                    res_a = jax_t(pure, argnums=shifted, has_aux=has_aux)(*full)
                    var_grads, aux = res_v if has_aux else (res_v, None)
                    arg_grads = res_a[0] if has_aux else res_a
                grads = (var_grads, arg_grads)
            out = pure(*full)
        value = out[0] if has_aux else out
        if has_aux and return_value:
            return grads, value, aux
        if has_aux:
            return grads, aux
        if return_value:
            return grads, value
        return grads

    return jax.jit(reference)(X0, Y0)


def build(name, f, states, spec, argnums, has_aux, return_value):
    sd_t, _, _ = TRANSFORMS[name]
    kwargs: dict[str, Any] = {}
    if spec is not None:
        kwargs["grad_states"] = jax.tree.map(lambda n: states[n], spec)
    if argnums is not NOT_GIVEN:
        kwargs["argnums"] = argnums
    if has_aux:
        kwargs["has_aux"] = True
    if return_value:
        kwargs["return_value"] = True
    return sd_t(f, **kwargs)


@pytest.mark.parametrize("case", CASES, ids=case_id)
@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_contract(name, case):
    spec, argnums, has_aux, return_value = case
    states = make_states()
    f, pure_named, calls = make_problem(TRANSFORMS[name][2], has_aux, states)
    transformed = build(name, f, states, spec, argnums, has_aux, return_value)
    expected = expected_result(name, spec, argnums, has_aux, return_value, pure_named)

    first = transformed(X0, Y0)
    assert_tree_close(first, expected)
    second = transformed(X0, Y0)  # the cached compiled function
    assert_tree_close(second, expected)
    assert calls[0] == 1, "the Python body must run once per signature, eager calls included"
    for key, state in states.items():  # nothing is written: every state is unchanged
        np.testing.assert_array_equal(state.value, VALUES[key])


# ------------------------------------------------------- containers and argnums
CONTAINERS = {
    "State": "w",
    "list": ["w", "b"],
    "tuple": ("b", "w"),
    "dict": {"w": "w", "b": "b"},
    "nested": {"layer": ["w", {"bias": "b"}], "scale": ("c",)},
}


@pytest.mark.parametrize("container", list(CONTAINERS))
def test_var_grads_have_the_container_shape(container):
    name = "grad"
    spec = CONTAINERS[container]
    states = make_states()
    f, pure_named, _ = make_problem(TRANSFORMS[name][2], False, states)
    transformed = build(name, f, states, spec, None, False, False)
    expected = expected_result(name, spec, None, False, False, pure_named)
    got = transformed(X0, Y0)
    assert_tree_close(got, expected)
    assert jax.tree.structure(got) == jax.tree.structure(spec)


@pytest.mark.parametrize("argnums", [1, (1, 0)])
@pytest.mark.parametrize("name", list(TRANSFORMS)[:-1])
def test_argnums_without_grad_states_follow_jax(name, argnums):
    sd_t, jax_t, kind = TRANSFORMS[name]
    states = make_states()
    f, pure_named, _ = make_problem(kind, False, states)
    got = sd_t(f, argnums=argnums)(X0, Y0)
    pure = lambda x, y: pure_named({}, x, y)  # noqa: E731
    expected = jax.jit(jax_t(pure, argnums=argnums))(X0, Y0)
    assert_tree_close(got, expected)


@pytest.mark.parametrize("name", ["jacfwd", "jacrev", "vector_grad"])
def test_arg_grads_match_the_same_call_without_grad_states(name):
    """With grad_states added, arg_grads is what the transform gives without them."""
    sd_t, _, kind = TRANSFORMS[name]
    states = make_states()
    f, _, _ = make_problem(kind, False, states)
    alone = sd_t(f, argnums=(0, 1))(X0, Y0)
    _, together = sd_t(f, grad_states=states["w"], argnums=(0, 1))(X0, Y0)
    assert_tree_close(together, alone)


def test_hessian_of_a_pytree_output_with_states_and_arguments():
    """The output structure is outermost, as jax.hessian nests it."""
    states = make_states()

    def core(w, b, x, y):
        return {"a": (w * w * x).sum() * b, "b": (b * y * y).sum() + x * x * (w * y).sum()}

    def f(x, y):
        return core(states["w"].value, states["b"].value, x, y)

    got = sd.hessian(f, grad_states={"w": states["w"], "b": states["b"]}, argnums=(0, 1))(X0, Y0)
    pure = lambda s, x, y: core(s["w"], s["b"], x, y)  # noqa: E731
    h = jax.jit(jax.hessian(pure, argnums=(0, 1, 2)))({"w": W0, "b": B0}, X0, Y0)
    var_grads = {k: h[k][0] for k in h}
    arg_grads = {k: tuple(h[k][1:]) for k in h}
    assert_tree_close(got, (var_grads, arg_grads))


@pytest.mark.parametrize("name", [n for n in TRANSFORMS if not n.startswith("Gradient")])
def test_decorator_factory(name):
    sd_t, jax_t, kind = TRANSFORMS[name]
    states = make_states()
    f, pure_named, _ = make_problem(kind, False, states)
    decorated = sd_t(grad_states=[states["w"]], return_value=True)(f)
    grads, value = decorated(X0, Y0)
    pure = lambda s, x, y: pure_named({"w": s[0]}, x, y)  # noqa: E731
    reference = jax.jit(lambda s, x, y: (jax_t(pure)(s, x, y), pure(s, x, y)))
    assert_tree_close((grads, value), reference([W0], X0, Y0))


def test_jacobian_is_jacrev():
    w = sg.ParamState(W0, name="w")
    f = lambda x: jnp.sin(w.value) * x  # noqa: E731
    assert_tree_close(sd.jacobian(f, grad_states=w)(X0), sd.jacrev(f, grad_states=w)(X0))


def test_gradient_transform_with_transform_params_and_gradients():
    """GradientTransform passes transform_params through and lays out gradients."""
    w = sg.ParamState(W0, name="w")

    def f(x):
        return (jnp.sin(w.value) * x).sum()

    gt = sd.GradientTransform(
        f,
        jax.grad,
        grad_states={"w": w},
        argnums=0,
        output_structured=False,
        transform_params={"allow_int": False},
    )
    var_grads, arg_grads = gt(X0)
    pure = lambda s, x: (jnp.sin(s["w"]) * x).sum()  # noqa: E731
    assert_tree_close(var_grads, jax.grad(pure)({"w": W0}, X0))
    assert_tree_close(arg_grads, jax.grad(pure, argnums=1)({"w": W0}, X0))


def test_bound_method_of_a_model():
    class Model:
        def __init__(self):
            self.w = sg.ParamState(W0, name="w")

        def loss(self, x):
            return (self.w.value**2 * x).sum()

    m = Model()
    got = sd.grad(m.loss, grad_states=m.w)(X0)
    assert_tree_close(got, jax.grad(lambda w, x: (w**2 * x).sum())(W0, X0))


@pytest.mark.parametrize("name", list(TRANSFORMS))
def test_body_runs_once_per_signature(name):
    sd_t, _, kind = TRANSFORMS[name]
    states = make_states()
    f, _, calls = make_problem(kind, False, states)
    transformed = sd_t(f, grad_states=states["w"], argnums=1)
    for _ in range(3):
        transformed(X0, Y0)
    assert calls[0] == 1
    y4 = jnp.array([0.1, 0.2, 0.3, 0.4])
    states_4 = {k: jnp.resize(v, (4,)) if jnp.ndim(v) else v for k, v in VALUES.items()}
    for key in ("w", "c"):
        states[key].value = states_4[key]
    transformed(X0, y4)
    transformed(X0, y4)
    assert calls[0] == 2
