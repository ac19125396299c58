"""Sparse ``jacfwd`` / ``jacrev`` / ``hessian`` against the dense calls and plain JAX."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.experimental import sparse as jsparse

import statediff as sd
import stategraph as sg
import statejax as sj
from statediff._src.sparse import compute

FEW = settings(max_examples=6, deadline=None, derandomize=True)


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


def _vals(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


# ------------------------------------------------------ random patterns (hypothesis)
@FEW
@given(
    m=st.integers(1, 12),
    n=st.integers(1, 12),
    density=st.floats(0.0, 1.0),
    seed=st.integers(0, 2**16),
)
def test_random_patterns_fwd_rev_user(m, n, density, seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((m, n)) < density
    a = jnp.asarray(mask * rng.normal(size=(m, n)), jnp.float32)

    def f(x):
        return a @ jnp.sin(x)

    x = _vals(n, seed)
    ref = jax.jit(jax.jacfwd(f))(x)
    info = sd.jacfwd(f, sparsity="auto").sparsity(x)
    np.testing.assert_array_equal(info.todense(), np.asarray(a) != 0)
    assert info.num_colors <= n
    close(sd.jacfwd(f, sparsity="auto")(x), ref)
    close(sd.jacrev(f, sparsity=mask)(x), ref)
    close(sd.jacfwd(f, sparsity=jsparse.BCOO.fromdense(jnp.asarray(mask)))(x), ref)
    close(dense_of(sd.jacrev(f, sparsity="auto", sparse_output=True)(x)), ref)


@FEW
@given(seed=st.integers(0, 2**16), n=st.integers(2, 10))
def test_colouring_is_valid(seed, n):
    import scipy.sparse as sp

    from statediff._src.sparse.coloring import color_columns, star_color, symmetric_recovery

    rng = np.random.default_rng(seed)
    p = sp.csr_matrix(rng.random((n + 3, n)) < 0.3)
    c = color_columns(p)
    dense = p.toarray()
    for row in dense:
        cols = np.nonzero(row)[0]
        assert len(set(c[cols].tolist())) == len(cols)  # structurally orthogonal groups
    s = sp.csr_matrix(rng.random((n, n)) < 0.3)
    s = sp.csr_matrix(s + s.T + sp.identity(n, dtype=bool), dtype=bool)
    sc = star_color(s)
    assert symmetric_recovery(s, sc) is not None
    assert sc.max() + 1 <= n


# ------------------------------------------------------------ pytrees and shapes
def tree_fun(p, b):
    u = jnp.sin(p["u"]) * p["w"][:, :1].T.reshape(-1)[: p["u"].shape[0]]
    v = p["w"] * 2.0 + jnp.roll(p["w"], 1, axis=1)
    return {"u": u + b[0], "v": v.sum(1), "grid": v}


@pytest.mark.parametrize("api", [sd.jacfwd, sd.jacrev], ids=["fwd", "rev"])
def test_pytrees_argnums(api):
    p = {"u": _vals(3, 1), "w": _vals((3, 4), 2)}
    b = _vals(2, 3)
    for argnums in (0, (0, 1), 1):
        ref = jax.jit(getattr(jax, api.__name__)(tree_fun, argnums=argnums))(p, b)
        close(api(tree_fun, argnums=argnums, sparsity="auto")(p, b), ref)
        got = api(tree_fun, argnums=argnums, sparse_output=True)(p, b)
        close(dense_of(got), ref)


# ---------------------------------------------------------- states: return contract
class Net:
    def __init__(self, n=6):
        self.v = sg.HiddenState(_vals(n, 5), name="v")
        self.w = sg.ParamState(_vals(n, 6), name="w")
        self.count = sg.State(jnp.zeros(()), name="count")

    def step(self, x):
        v = self.v.value
        new = v + 0.1 * (-v + self.w.value * jnp.tanh(jnp.roll(v, 1)) + x)
        self.v.value = new
        self.count.value = self.count.value + 1.0
        return new


CASES = [
    (gs, an, aux, rv)
    for gs in (False, True)
    for an in (None, 0, (0,))
    for aux in (False, True)
    for rv in (False, True)
    if gs or an is not None
]


@pytest.mark.parametrize(("gs", "an", "aux", "rv"), CASES)
@pytest.mark.parametrize("api", [sd.jacfwd, sd.jacrev], ids=["fwd", "rev"])
def test_return_contract_and_write_back(api, gs, an, aux, rv):
    def run(sparsity):
        net = Net()
        fun = (lambda x: (net.step(x), {"c": net.count.value})) if aux else net.step
        kw = dict(argnums=an, has_aux=aux, return_value=rv, sparsity=sparsity)
        if gs:
            kw["grad_states"] = {"v": net.v, "w": net.w}
        out = api(fun, **kw)(_vals(6, 7))
        return out, (net.v.value, net.count.value)

    (dense, d_states), (sparse, s_states) = run(None), run("auto")
    close(sparse, dense)
    close(s_states, d_states)


def test_chunk_size_and_states():
    for api in (sd.jacfwd, sd.jacrev):
        a, b = Net(), Net()
        d = api(a.step, grad_states=a.v)(1.0)
        s = api(b.step, grad_states=b.v, sparsity="auto", chunk_size=1)(1.0)
        close(s, d)
        close(b.v.value, a.v.value)


# ---------------------------------------------------------------- jit and vmap
def test_inside_sj_jit_detects_once(monkeypatch):
    calls = []
    real = compute.jacobian_pattern

    def counting(*a, **k):
        calls.append(1)
        return real(*a, **k)

    monkeypatch.setattr(compute, "jacobian_pattern", counting)
    net = Net()
    ref_net = Net()
    jac = sd.jacfwd(net.step, grad_states=net.v, sparsity="auto")
    f = sj.jit(lambda x: jac(x))
    for i in range(3):
        got = f(float(i))
        want = sd.jacfwd(ref_net.step, grad_states=ref_net.v)(float(i))
        close(got, want)
    close(net.v.value, ref_net.v.value)
    assert len(calls) == 1


def test_sj_vmap():
    def f(x):
        return jnp.sin(x[1:]) * x[:-1]

    xs = _vals((4, 7), 8)
    got = sj.vmap(sd.jacfwd(f, sparsity="auto"))(xs)
    close(got, jax.jit(jax.vmap(jax.jacfwd(f)))(xs))
    got = sj.vmap(sd.jacrev(f, sparsity="auto"))(xs)
    close(got, jax.jit(jax.vmap(jax.jacrev(f)))(xs))


# ------------------------------------------------------------------- Hessians
def energy(x, k):
    edges = np.array([[0, 1], [1, 2], [2, 3], [3, 0], [4, 5], [5, 6], [6, 7], [1, 5]])
    d = x[edges[:, 0]] - x[edges[:, 1]]
    return jnp.sum(k * jnp.cos(d)) + jnp.sum(x**4) + jnp.sum(k[:2] ** 2 * x[:2])


def test_hessian_sparse_graph():
    x, k = _vals(8, 9), _vals(8, 10)
    ref = jax.jit(jax.hessian(energy))(x, k)
    info = sd.hessian(energy, sparsity="auto").sparsity(x, k)
    assert info.mode == "symmetric" and not info.dense
    assert info.num_colors < 8
    close(sd.hessian(energy, sparsity="auto")(x, k), ref)
    close(dense_of(sd.hessian(energy, sparse_output=True)(x, k)), ref)
    pattern = np.asarray(ref) != 0
    close(sd.hessian(energy, sparsity=pattern)(x, k), ref)
    ref2 = jax.jit(jax.hessian(energy, argnums=(0, 1)))(x, k)
    close(sd.hessian(energy, argnums=(0, 1), sparsity="auto")(x, k), ref2)


def test_hessian_states_and_aux():
    s = sg.ParamState(_vals(8, 11), name="s")
    k = _vals(8, 12)

    def f(k):
        return energy(s.value, k), {"e": s.value.sum()}

    want = sd.hessian(f, grad_states=s, argnums=0, has_aux=True, return_value=True)(k)
    got = sd.hessian(f, grad_states=s, argnums=0, has_aux=True, return_value=True,
                     sparsity="auto")(k)
    close(got, want)


# ----------------------------------------------------- dense fallback and large
def test_auto_dense_pattern_costs_nothing():
    w = _vals((5, 5), 13)

    def f(x):
        return w @ jnp.tanh(x)

    x = _vals(5, 14)
    auto = sd.jacfwd(f, sparsity="auto")
    assert auto.sparsity(x).dense
    close(auto(x), jax.jacfwd(f)(x))
    j_auto = jax.make_jaxpr(auto)(x)
    j_dense = jax.make_jaxpr(sd.jacfwd(f))(x)
    assert str(j_auto) == str(j_dense)


def test_large_tridiagonal_sparse_output():
    n = 20000

    def rhs(u):
        lap = jnp.concatenate([u[1:2], u[:-2] + u[2:], u[-2:-1]]) - 2 * u
        return lap + u * (1 - u)

    u = _vals(n, 15)
    jac = sd.jacfwd(rhs, sparse_output=True)
    info = jac.sparsity(u)
    assert info.num_colors == 3 and info.nnz == 3 * n - 2
    got = jac(u)
    assert isinstance(got, jsparse.BCOO) and got.nse == 3 * n - 2
    small = lambda v: rhs(v)  # noqa: E731
    v = u[:50]
    close(sd.jacfwd(small, sparse_output=True)(v).todense(), jax.jacfwd(small)(v))


# ------------------------------------------------------------ introspection
def test_sparsity_report_blocks_and_no_state_change():
    net = Net()
    before = net.v.value
    info = sd.jacfwd(net.step, grad_states=(net.v, net.w), argnums=0).sparsity(1.0)
    assert info.source == "auto" and info.mode == "forward"
    assert info.shape == (6, 13)
    (bv, bw), bx = info.blocks
    assert bv.shape == (6, 6) and bw.shape == (6, 6) and bx.shape == (6,)
    np.testing.assert_array_equal(bw.todense(), np.eye(6, dtype=bool))
    assert isinstance(info.pattern, jsparse.BCOO)
    assert net.v.value is before
    assert "num_colors" in repr(info)


# -------------------------------------------------------------------- errors
def test_bad_arguments():
    f = lambda x: x * 2.0  # noqa: E731
    with pytest.raises(ValueError, match="sparsity must be None, 'auto'"):
        sd.jacfwd(f, sparsity="dense")
    with pytest.raises(TypeError, match="sparsity must be"):
        sd.jacrev(f, sparsity=3)
    with pytest.raises(TypeError, match="sparse_output must be True or False"):
        sd.hessian(f, sparse_output="yes")
    s = sg.State(jnp.ones(3), name="s")

    def g():
        s.value = s.value * 2.0
        return s.value

    with pytest.raises(ValueError, match=r"shape \(2, 2\).*\(3, 3\)"):
        sd.jacfwd(g, grad_states=s, sparsity=np.ones((2, 2), bool))()
    np.testing.assert_array_equal(s.value, jnp.ones(3))  # untouched, not a tracer
    with pytest.raises(TypeError, match="computes none"):
        sd.grad(lambda x: x.sum()).sparsity(jnp.ones(3))


def test_units_sparse_matches_dense():
    bu = pytest.importorskip("brainunit")
    pytest.importorskip("statediff_units")
    g = sg.ParamState(jnp.array([1.0, 2.0, 3.0]) * bu.mS, name="g")

    def current(v):
        return g.value * bu.math.roll(v, 1) + g.value * v

    v = jnp.arange(3.0) * bu.mV
    for api in (sd.jacfwd, sd.jacrev):
        want = api(current, grad_states=g, argnums=0, unit_aware=True)(v)
        got = api(current, grad_states=g, argnums=0, unit_aware=True, sparsity="auto")(v)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want), strict=True):
            assert bu.get_unit(a) == bu.get_unit(b)
            np.testing.assert_allclose(bu.get_mantissa(a), bu.get_mantissa(b), rtol=1e-6)


def test_sparse_output_on_dense_fallback_and_scalar_blocks():
    w = _vals((5, 5), 16)
    x = _vals(5, 17)
    got = sd.jacfwd(lambda z: w @ jnp.tanh(z), sparse_output=True)(x)
    assert isinstance(got, jsparse.BCOO)
    close(got.todense(), jax.jacfwd(lambda z: w @ jnp.tanh(z))(x))

    def h(a, b):
        return a * b, jnp.sum(b**2)

    a, b = jnp.float32(2.0), _vals(3, 18)
    for api, ref in ((sd.jacfwd, jax.jacfwd), (sd.jacrev, jax.jacrev)):
        want = ref(h, argnums=(0, 1))(a, b)
        close(api(h, argnums=(0, 1), sparsity="auto")(a, b), want)
        close(dense_of(api(h, argnums=(0, 1), sparse_output=True)(a, b)), want)


def test_holomorphic():
    def g(z):
        return jnp.sin(z) * z[::-1]

    z = jnp.array([1 + 2j, 0.5 - 1j, 3 + 0j], jnp.complex64)
    for api, ref in ((sd.jacfwd, jax.jacfwd), (sd.jacrev, jax.jacrev)):
        close(api(g, holomorphic=True, sparsity="auto")(z), ref(g, holomorphic=True)(z))
