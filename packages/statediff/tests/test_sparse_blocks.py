"""Per-block ``sparsity=`` patterns and the colouring, against plain JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

import statediff as sd
import stategraph as sg
import statejax as sj
from statediff._src.sparse.coloring import color_columns, is_valid_coloring

FEW = settings(max_examples=8, deadline=None, derandomize=True)
CHOICES = ("exact", "superset", "flat2d", "bcoo", "flat_bcoo", "auto", None)


def close(a, b, rtol=1e-5, atol=1e-6):
    la, ta = jax.tree.flatten(a)
    lb, tb = jax.tree.flatten(b)
    assert ta == tb, f"{ta} != {tb}"
    for x, y in zip(la, lb, strict=True):
        assert jnp.shape(x) == jnp.shape(y)
        assert jnp.result_type(x) == jnp.result_type(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def dense_of(tree):
    is_bcoo = lambda x: isinstance(x, jsparse.BCOO)  # noqa: E731
    return jax.tree.map(lambda x: x.todense() if is_bcoo(x) else x, tree, is_leaf=is_bcoo)


def block_entry(ref_block, choice, rng, out_ndim):
    """A pattern for one block of the reference derivative, in the form ``choice``."""
    mask = np.asarray(ref_block) != 0
    rows = int(np.prod(mask.shape[:out_ndim], dtype=int))
    flat = mask.reshape(rows, -1)
    if choice == "exact":
        return mask
    if choice == "superset":  # extra structural non-zeros are allowed
        return mask | (rng.random(mask.shape) < 0.3)
    if choice == "flat2d":
        return flat
    if choice == "bcoo":
        return jsparse.BCOO.fromdense(jnp.asarray(mask))
    if choice == "flat_bcoo":
        return jsparse.BCOO.fromdense(jnp.asarray(flat))
    return choice  # "auto" or None


def spec_for(ref, choices, rng):
    """A per-block spec with the layout of ``ref`` (every output leaf here is 1-D)."""
    leaves, tree = jax.tree.flatten(ref)
    entries = [block_entry(blk, choices[i % len(choices)], rng, 1) for i, blk in enumerate(leaves)]
    return jax.tree.unflatten(tree, entries)


# --------------------------------------------- a stateful step with states and args
N, P, M = 6, 3, 4


def make_mats(seed, density):
    rng = np.random.default_rng(seed)

    def sparse_mat(r, c):
        return jnp.asarray((rng.random((r, c)) < density) * rng.normal(size=(r, c)), jnp.float32)

    return sparse_mat(N, N), sparse_mat(P, N), sparse_mat(P, M)


def pure(s, x, mats):
    a_m, d_m, c_m = mats
    v, w = s["v"], s["w"]
    a = a_m @ jnp.sin(v) + w * jnp.tanh(v)
    b = d_m @ (w**2) + c_m @ jnp.cos(x)
    return {"a": a, "b": b}


@FEW
@given(
    seed=st.integers(0, 2**16),
    density=st.floats(0.0, 0.7),
    choices=st.lists(st.sampled_from(CHOICES), min_size=6, max_size=6),
    api=st.sampled_from(["jacfwd", "jacrev"]),
    aux=st.booleans(),
    rv=st.booleans(),
    sparse_output=st.booleans(),
)
def test_per_block_states_and_args(seed, density, choices, api, aux, rv, sparse_output):
    rng = np.random.default_rng(seed + 1)
    mats = make_mats(seed, density)
    v0 = jnp.asarray(rng.normal(size=N), jnp.float32)
    w0 = jnp.asarray(rng.normal(size=N), jnp.float32)
    x = jnp.asarray(rng.normal(size=M), jnp.float32)
    s0 = {"v": v0, "w": w0}
    jax_api = getattr(jax, api)
    # plain JAX on the pure function, in statediff's layout ((var_grads, arg_grads), ...)
    # (jitted: one compile each instead of one per primitive)
    var_ref = jax.jit(jax_api(lambda s, x: pure(s, x, mats)))(s0, x)
    arg_ref = jax.jit(jax_api(lambda x, s: pure(s, x, mats)))(x, s0)
    ref = (var_ref, arg_ref)
    value = jax.jit(lambda s, x: pure(s, x, mats))(s0, x)

    v = sg.HiddenState(v0, name="v")
    w = sg.ParamState(w0, name="w")

    def step(x):
        out = pure({"v": v.value, "w": w.value}, x, mats)
        v.value = out["a"]
        return (out, {"n": v.value.sum()}) if aux else out

    spec = spec_for(ref, choices, rng)
    jac = getattr(sd, api)(step, grad_states={"v": v, "w": w}, argnums=0, has_aux=aux,
                           return_value=rv, sparsity=spec, sparse_output=sparse_output)
    got = sj.jit(jac)(x)
    if aux or rv:
        got, *rest = got
        if rv:
            close(rest[0], value)
        if aux:
            close(rest[-1], {"n": value["a"].sum()})
    close(dense_of(got), ref)
    close(v.value, value["a"])  # written back once, the primal value
    info = jac.sparsity(x)
    assert info.source in ("user", "auto", "mixed")
    assert jax.tree.structure(info.blocks, is_leaf=lambda b: hasattr(b, "nnz")) == \
        jax.tree.structure(ref)


@pytest.mark.parametrize("api", ["jacfwd", "jacrev"])
def test_per_block_argnums_only_and_sparse_win(api):
    # a block-diagonal Jacobian given per block: few colours, exact result
    n = 12
    a = jnp.asarray(np.random.default_rng(3).normal(size=n), jnp.float32)

    def f(x, y):
        return {"p": jnp.sin(x) * a, "q": jnp.roll(y, 1) * 2.0 + x[:4].sum()}

    x, y = jnp.linspace(0.1, 1.0, n), jnp.linspace(-1.0, 1.0, 4)
    ref = getattr(jax, api)(f, argnums=(0, 1))(x, y)
    spec = {"p": (np.eye(n, dtype=bool), None), "q": ("auto", "auto")}
    jac = getattr(sd, api)(f, argnums=(0, 1), sparsity=spec)
    close(jac(x, y), ref)
    info = jac.sparsity(x, y)
    assert info.source == "mixed"
    assert info.blocks["p"][1].nnz == n * 4  # None: treated as dense
    assert info.blocks["p"][0].nnz == n


def test_per_block_hessian():
    s = sg.ParamState(jnp.linspace(0.2, 1.0, 5), name="s")

    def energy(x, c):
        return jnp.sum(jnp.cos(x[1:] - x[:-1])) + jnp.sum(c * x**3) + jnp.sum(c**2)

    c = jnp.linspace(1.0, 2.0, 5)
    ref = jax.hessian(energy, argnums=(0, 1))(s.value, c)
    tri = np.abs(np.subtract.outer(np.arange(5), np.arange(5))) <= 1
    eye = np.eye(5, dtype=bool)
    for spec in (((tri, eye), (eye, eye)), ((tri, "auto"), (None, eye)),
                 (("auto", "auto"), ("auto", "auto"))):
        got = sj.jit(sd.hessian(lambda c: energy(s.value, c), grad_states=s, argnums=0,
                                sparsity=spec))(c)
        close(got, ref, rtol=1e-4, atol=1e-4)
    got = sd.hessian(lambda c: energy(s.value, c), grad_states=s, argnums=0,
                     sparsity=((tri, eye), (eye, eye)), sparse_output=True)(c)
    close(dense_of(got), ref, rtol=1e-4, atol=1e-4)


def test_per_block_errors():
    v = sg.HiddenState(jnp.ones(3), name="v")

    def f(x):
        v.value = v.value * x[:3]
        return v.value

    x = jnp.ones(4)
    kw = dict(grad_states=v, argnums=0)
    with pytest.raises(ValueError, match=r"statediff.jacfwd: sparsity= is a pytree.*layout"):
        sd.jacfwd(f, sparsity=(np.eye(3, dtype=bool),), **kw)(x)
    np.testing.assert_array_equal(v.value, jnp.ones(3))  # the failing call changed nothing
    with pytest.raises(ValueError, match=r"sparsity\[1\] has shape \(3, 3\).*\(3, 4\)"):
        sd.jacrev(f, sparsity=(np.eye(3, dtype=bool), np.eye(3, dtype=bool)), **kw)(x)
    with pytest.raises(ValueError, match=r"sparsity\[0\] is the string 'dense'"):
        sd.jacfwd(f, sparsity=("dense", None), **kw)
    with pytest.raises(TypeError, match=r"sparsity\[1\] is a object"):
        sd.jacfwd(f, sparsity=(None, object()), **kw)
    # a nested list of bools is still one whole pattern
    got = sd.jacfwd(lambda x: x * 2.0, sparsity=[[True, False], [False, True]])(jnp.ones(2))
    close(got, 2.0 * jnp.eye(2))


# -------------------------------------------------------------------- colouring
@settings(max_examples=40, deadline=None, derandomize=True)
@given(
    m=st.integers(1, 40),
    n=st.integers(1, 40),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
    banded=st.booleans(),
)
def test_colourings_are_valid(m, n, density, seed, banded):
    rng = np.random.default_rng(seed)
    dense = rng.random((m, n)) < density
    if banded:
        width = 1 + seed % 4
        i, j = np.indices((m, n))
        dense &= np.abs(i - j) < width
    p = sp.csr_matrix(dense)
    bound = max(int(dense.sum(1).max(initial=0)), 1)
    for pat in (p, sp.csr_matrix(p.T)):
        c = color_columns(pat)
        assert c.shape == (pat.shape[1],)
        assert is_valid_coloring(pat, c)
        d = pat.toarray()
        for row in d:  # independent check: no two columns of a row share a colour
            cols = np.nonzero(row)[0]
            assert len(set(c[cols].tolist())) == len(cols)
        assert int(c.max()) + 1 <= pat.shape[1]
    assert int(color_columns(p).max()) + 1 >= bound


def test_colouring_quality_random_network_and_band():
    n, k = 2000, 10
    rng = np.random.default_rng(0)
    pre = rng.integers(0, n, size=(n, k))
    rows = np.repeat(np.arange(n), k + 1)
    cols = np.concatenate([np.arange(n)[:, None], pre], axis=1).reshape(-1)
    p = sp.csr_matrix((np.ones(rows.size, bool), (rows, cols)), shape=(n, n))
    c = color_columns(p)
    assert is_valid_coloring(p, c)
    assert int(c.max()) + 1 <= 31  # the old natural/largest-first greedy gave 33 here
    i = np.arange(1000)
    band = sp.csr_matrix((np.ones(3 * 1000 - 2, bool), (
        np.concatenate([i, i[1:], i[:-1]]), np.concatenate([i, i[:-1], i[1:]]))),
        shape=(1000, 1000))
    assert int(color_columns(band).max()) + 1 == 3


def test_per_block_units_and_chunks():
    bu = pytest.importorskip("brainunit")
    sdu = pytest.importorskip("statediff_units")
    g = sg.ParamState(jnp.array([1.0, 2.0, 3.0]) * bu.mS, name="g")

    def current(v):
        return g.value * bu.math.roll(v, 1)

    v = jnp.array([1.0, 2.0, 3.0]) * bu.mV
    for api in ("jacfwd", "jacrev"):
        want = getattr(sdu, api)(current, grad_states=g, argnums=0)(v)
        shift = np.roll(np.eye(3, dtype=bool), 1, axis=0)
        got = getattr(sdu, api)(current, grad_states=g, argnums=0, chunk_size=1,
                                sparsity=("auto", shift))(v)
        for a, b in zip(got, want, strict=True):
            assert a.unit == b.unit
            np.testing.assert_allclose(np.asarray(a.mantissa), np.asarray(b.mantissa))
    # plain JAX on the unit-free function: d(g * roll(v, 1)) / dv
    ref = jax.jacfwd(lambda x: jnp.array([1.0, 2.0, 3.0]) * jnp.roll(x, 1))(jnp.ones(3))
    np.testing.assert_allclose(np.asarray(got[1].mantissa), np.asarray(ref))
