"""Property tests: varying shapes, grad_states containers and pytree outputs against JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import stategraph as sg

# Each example compiles two functions: keep the count small and the run reproducible.
FEW = settings(max_examples=6, deadline=None, derandomize=True, database=None)

shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)
containers = st.sampled_from(["state", "list", "dict", "nested"])


def assert_tree_close(actual, expected):
    assert jax.tree.structure(actual) == jax.tree.structure(expected)
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        assert jnp.shape(a) == jnp.shape(e)
        assert jnp.result_type(a) == jnp.result_type(e) == jnp.float32
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-6)


def values(rng, shape):
    return jnp.asarray(rng.uniform(-1.0, 1.0, size=shape), dtype=jnp.float32)


def container(kind, items):
    """Put ``items`` (States or values) into the container ``kind``."""
    if kind == "state":
        return items[0]
    if kind == "list":
        return list(items)
    if kind == "dict":
        return {f"p{i}": s for i, s in enumerate(items)}
    # nested dict of lists
    if len(items) == 1:
        return {"a": [items[0]]}
    return {"a": list(items[:-1]), "b": {"c": [items[-1]]}}


class Problem:
    """Random states in a random container, the stateful function and its pure twin."""

    def __init__(self, data, scalar):
        rng = np.random.default_rng(data.draw(st.integers(0, 2**16), label="seed"))
        self.kind = data.draw(containers, label="container")
        n = 1 if self.kind == "state" else data.draw(st.integers(1, 3), label="n_states")
        state_shapes = [data.draw(shapes, label=f"shape{i}") for i in range(n)]
        self.x = values(rng, data.draw(shapes, label="x_shape"))
        self.init = [values(rng, s) for s in state_shapes]
        self.states = [sg.ParamState(v, name=f"s{i}") for i, v in enumerate(self.init)]
        self.const = sg.ParamState(values(rng, ()), name="const")  # read, not differentiated
        self.grad_states = container(self.kind, self.states)
        self.scalar = scalar
        self.has_aux = data.draw(st.booleans(), label="has_aux")

    def core(self, vals, c, x):
        if self.scalar:
            out = sum((v * v * jnp.cos(v)).sum() for v in vals) * (x * x).sum()
            out = out + c * sum(v.sum() for v in vals) * jnp.sin(x).sum()
        else:
            total = sum(jnp.sin(v).sum() for v in vals)
            out = {"scaled": jnp.tanh(x) * total, "per_state": [v * v * x.sum() + c for v in vals]}
        return (out, {"x": x * 2.0}) if self.has_aux else out

    def stateful(self, x):
        return self.core([s.value for s in self.states], self.const.value, x)

    def pure(self, tree, x):
        """The same function of the grad-states values (in the container) and ``x``."""
        leaves = jax.tree.leaves(self.grad_states, is_leaf=lambda s: isinstance(s, sg.State))
        by_state = {id(s): v for s, v in zip(leaves, jax.tree.leaves(tree), strict=True)}
        return self.core([by_state[id(s)] for s in self.states], self.const.value, x)

    def init_tree(self):
        return container(self.kind, self.init)


def contract(grads, value, aux, return_value, has_aux):
    if has_aux and return_value:
        return grads, value, aux
    if has_aux:
        return grads, aux
    if return_value:
        return grads, value
    return grads


def vector_grad_reference(fun, argnums=0, has_aux=False):
    def summed(*args):
        out = fun(*args)
        y, aux = out if has_aux else (out, None)
        total = sum(leaf.sum() for leaf in jax.tree.leaves(y))
        return (total, aux) if has_aux else total

    return jax.grad(summed, argnums=argnums, has_aux=has_aux)


def check(p, sd_t, jax_t, argnums, return_value, hessian=False):
    kwargs = {"grad_states": p.grad_states, "has_aux": p.has_aux, "return_value": return_value}
    if argnums is not None:
        kwargs["argnums"] = argnums
    got = sd_t(p.stateful, **kwargs)(p.x)

    @jax.jit
    def expected(tree, x):
        res = p.pure(tree, x)
        value = res[0] if p.has_aux else res
        if argnums is None:
            out = jax_t(p.pure, has_aux=p.has_aux)(tree, x)
            grads = out[0] if p.has_aux else out
        elif hessian:
            out = jax_t(p.pure, argnums=(0, 1), has_aux=p.has_aux)(tree, x)
            h = out[0] if p.has_aux else out
            grads = (h[0], h[1] if argnums == 0 else (h[1],))
        else:
            shifted = 1 if argnums == 0 else (1,)
            out_v = jax_t(p.pure, argnums=0, has_aux=p.has_aux)(tree, x)
            out_a = jax_t(p.pure, argnums=shifted, has_aux=p.has_aux)(tree, x)
            grads = (out_v[0], out_a[0]) if p.has_aux else (out_v, out_a)
        aux = res[1] if p.has_aux else None
        return contract(grads, value, aux, return_value, p.has_aux)

    assert_tree_close(got, expected(p.init_tree(), p.x))
    for s, v in zip(p.states, p.init, strict=True):
        assert s.value is v


JACOBIANS = {"jacfwd": (sd.jacfwd, jax.jacfwd), "jacrev": (sd.jacrev, jax.jacrev)}
GRADIENTS = {
    "grad": (sd.grad, jax.grad, True),
    "vector_grad": (sd.vector_grad, vector_grad_reference, False),
    "hessian": (sd.hessian, jax.hessian, True),
}
argnums_choices = st.sampled_from([None, 0, (0,)])


@FEW
@given(
    data=st.data(),
    name=st.sampled_from(list(JACOBIANS)),
    argnums=argnums_choices,
    return_value=st.booleans(),
)
def test_jacobians_of_pytree_outputs(data, name, argnums, return_value):
    sd_t, jax_t = JACOBIANS[name]
    check(Problem(data, scalar=False), sd_t, jax_t, argnums, return_value)


@FEW
@given(
    data=st.data(),
    name=st.sampled_from(list(GRADIENTS)),
    argnums=argnums_choices,
    return_value=st.booleans(),
)
def test_gradients_and_hessians(data, name, argnums, return_value):
    sd_t, jax_t, scalar = GRADIENTS[name]
    p = Problem(data, scalar=scalar)
    check(p, sd_t, jax_t, argnums, return_value, hessian=name == "hessian")
