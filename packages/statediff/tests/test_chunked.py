"""Chunked ``jacfwd``/``jacrev`` (``chunk_size=k``) against plain ``jax.jacfwd``/``jax.jacrev``."""

from __future__ import annotations

import jax
import jax.experimental
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import statediff as sd
import stategraph as sg
import statejax as sj
from statediff._src.chunked import chunked_jacfwd, chunked_jacrev

FEW = settings(max_examples=8, deadline=None, derandomize=True)
PAIRS = [(jax.jacfwd, chunked_jacfwd), (jax.jacrev, chunked_jacrev)]
PAIR_IDS = ["fwd", "rev"]


def assert_same(actual, expected, rtol=1e-6, atol=1e-6):
    """Same pytree layout, shapes, dtypes, weak types and (close) values."""
    la, ta = jax.tree.flatten(actual)
    le, te = jax.tree.flatten(expected)
    assert ta == te, f"structure {ta} != {te}"
    for a, e in zip(la, le, strict=True):
        aa, ae = jax.typeof(a), jax.typeof(e)
        assert aa.shape == ae.shape, (aa, ae)
        assert aa.dtype == ae.dtype, (aa, ae)
        assert aa.weak_type == ae.weak_type, (aa, ae)
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=rtol, atol=atol)


def _values(shape, seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=shape), jnp.float32)


# --------------------------------------------------------------- pure functions
def coupled(tree, b):
    """Pytree in, pytree out; every output depends on every input element."""
    leaves = jax.tree.leaves(tree)
    s = sum(jnp.sum(jnp.sin(leaf) * (i + 1)) for i, leaf in enumerate(leaves)) + jnp.sum(b**2)
    return {"per": [jnp.cos(leaf) * s for leaf in leaves], "total": s, "b": jnp.tanh(b) * s}


shapes = st.lists(st.integers(1, 3), min_size=0, max_size=2).map(tuple)


@FEW
@given(
    leaf_shapes=st.lists(shapes, min_size=1, max_size=3),
    b_shape=shapes,
    chunk=st.integers(1, 12),
    argnums=st.sampled_from([0, 1, (0,), (1,), (0, 1), (1, 0)]),
    mode=st.sampled_from([0, 1]),
)
def test_matches_jax_on_pytrees(leaf_shapes, b_shape, chunk, argnums, mode):
    tree = {f"k{i}": _values(s, i) for i, s in enumerate(leaf_shapes)}
    b = _values(b_shape, 7)
    jax_t, ours = PAIRS[mode]
    # Both sides jitted: one compile each per example instead of one per primitive (the
    # eager call of the chunked transforms is checked by the tests below).
    expected = jax.jit(jax_t(coupled, argnums=argnums))(tree, b)
    assert_same(jax.jit(ours(coupled, argnums=argnums, chunk_size=chunk))(tree, b), expected)


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("argnums", [0, 2, -1, (0,), (2, 0), (0, 1, 2)])
@pytest.mark.parametrize("chunk", [2, 1000])
def test_argnums_forms_has_aux_and_jit(jax_t, ours, argnums, chunk):
    def f(a, x, c):
        y = jnp.sin(a["p"] @ x) * c
        return {"u": y, "v": (a["q"].sum() * x[:2], jnp.tanh(x).reshape(1, 3))}, {"aux": a["q"]}

    a = {"p": _values((2, 3), 0), "q": _values((2, 2), 1)}
    args = (a, _values((3,), 2), jnp.float32(2.0))
    expected = jax.jit(jax_t(f, argnums, has_aux=True))(*args)
    assert_same(ours(f, argnums, has_aux=True, chunk_size=chunk)(*args), expected)
    jitted = jax.jit(ours(f, argnums, has_aux=True, chunk_size=chunk))
    assert_same(jitted(*args), expected)


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
def test_keyword_arguments_pass_through(jax_t, ours):
    def f(x, scale=1.0):
        return jnp.sin(x) * scale

    x = _values((4,), 0)
    assert_same(ours(f, chunk_size=3)(x, scale=3.0), jax_t(f)(x, scale=3.0))


# --------------------------------------------------------------- chunk sizes
@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("chunk", [1, 2, 5, 6, 7, 10**6])
def test_chunk_sizes_including_one_and_larger_than_total(jax_t, ours, chunk):
    def f(x):
        return jnp.outer(jnp.sin(x), x[:2]).ravel() * x.sum()

    x = _values((6,), 3)
    assert_same(ours(f, chunk_size=chunk)(x), jax.jit(jax_t(f))(x))


def test_several_chunks_run_as_one_loop_and_one_chunk_without_loop():
    def f(x):
        return jnp.sin(x) * x.sum()

    def loops(jaxpr):
        return [e.primitive.name for e in jaxpr.eqns if e.primitive.name in ("scan", "while")]

    x = _values((10,), 0)
    for ours in (chunked_jacfwd, chunked_jacrev):
        assert len(loops(jax.make_jaxpr(ours(f, chunk_size=3))(x).jaxpr)) == 1
        assert loops(jax.make_jaxpr(ours(f, chunk_size=10))(x).jaxpr) == []


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("shape", [(0,), (0, 3)])
def test_size_zero_inputs_and_outputs(jax_t, ours, shape):
    def f(x):
        return x * 2.0, jnp.sum(x)

    x = jnp.ones(shape)
    assert_same(ours(f, chunk_size=2)(x), jax_t(f)(x))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_bad_chunk_size(bad):
    for ours in (chunked_jacfwd, chunked_jacrev):
        with pytest.raises(ValueError, match="chunk_size must be a positive int"):
            ours(jnp.sin, chunk_size=bad)


# --------------------------------------------------------------- dtypes
# jax.enable_x64 is new in JAX 0.8; older JAX (down to the floor) has it in jax.experimental.
_enable_x64 = jax.enable_x64 if hasattr(jax, "enable_x64") else jax.experimental.enable_x64


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
def test_float64_and_mixed_precision(jax_t, ours):
    with _enable_x64(True):

        def f(x, y):
            return x[:3] * y.sum(), y.astype(jnp.float32) * 2

        x = jnp.arange(5, dtype=jnp.float64)
        y = jnp.ones(2, jnp.float32)
        out = ours(f, (0, 1), chunk_size=3)(x, y)
        assert_same(out, jax_t(f, (0, 1))(x, y))
        assert out[0][0].dtype == jnp.float64


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
@pytest.mark.parametrize("chunk", [1, 2, 4])
def test_holomorphic_complex(jax_t, ours, chunk):
    def f(z, w):
        return {"a": jnp.sin(z) * w[0], "b": z.sum() * w}

    z = jnp.array([1 + 2j, 3 - 1j, 0.5j], jnp.complex64)
    w = jnp.array([2 - 1j, 1j], jnp.complex64)
    expected = jax_t(f, (0, 1), holomorphic=True)(z, w)
    assert_same(ours(f, (0, 1), holomorphic=True, chunk_size=chunk)(z, w), expected)


def test_real_to_complex_forward_and_complex_to_real_reverse():
    x = _values((3,), 0)
    z = jnp.array([1 + 2j, 3 - 1j], jnp.complex64)

    def to_complex(x):
        return jnp.exp(1j * x) * x

    def to_real(z):
        return jnp.abs(z) ** 2

    assert_same(chunked_jacfwd(to_complex, chunk_size=2)(x), jax.jacfwd(to_complex)(x))
    assert_same(chunked_jacrev(to_real, chunk_size=1)(z), jax.jacrev(to_real)(z))


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
def test_weak_types_from_python_scalars(jax_t, ours):
    def f(x):
        return x * 2.0

    assert_same(ours(f, chunk_size=2)(3.0), jax_t(f)(3.0))


def test_integer_outputs_forward_are_zeros_of_their_dtype():
    def f(x):
        return x * 2, jnp.arange(2)

    x = _values((3,), 0)
    assert_same(chunked_jacfwd(f, chunk_size=2)(x), jax.jacfwd(f)(x))


@pytest.mark.parametrize("argnums", [1, (0, 1), (1, 0)])
def test_allow_int_reverse(argnums):
    def f(x, i):
        return (x * i).sum() * jnp.ones(2), i

    args = (_values((3,), 0), jnp.arange(3))
    expected = jax.jacrev(f, argnums, has_aux=True, allow_int=True)(*args)
    ours = chunked_jacrev(f, argnums, has_aux=True, allow_int=True, chunk_size=1)
    assert_same(ours(*args), expected)


def test_dtype_errors_as_jax():
    x = jnp.arange(3)
    z = jnp.ones(2, jnp.complex64)
    cases = [
        (chunked_jacfwd(jnp.sin, chunk_size=2), x, "jacfwd requires real-valued inputs"),
        (chunked_jacfwd(jnp.sin, chunk_size=2), z, "jacfwd requires real-valued inputs"),
        (chunked_jacrev(jnp.sin, chunk_size=2), x, "jacrev requires real- or complex"),
        (chunked_jacrev(jnp.sin, chunk_size=2), z, "jacrev requires real-valued outputs"),
        (chunked_jacfwd(jnp.sin, holomorphic=True, chunk_size=2), jnp.ones(2), "complex"),
        (chunked_jacrev(jnp.abs, holomorphic=True, chunk_size=2), z, "outputs with complex"),
    ]
    for fn, arg, message in cases:
        with pytest.raises(TypeError, match=message):
            fn(arg)
    with pytest.raises(TypeError, match="argnums"):
        chunked_jacrev(jnp.sin, argnums=3, chunk_size=2)(jnp.ones(2))


# --------------------------------------------------------------- composition
def test_nested_chunked_hessian_matches_jax():
    def f(x):
        return jnp.sum(jnp.sin(x) * x[::-1]) ** 2

    x = _values((5,), 1)
    hess = chunked_jacfwd(chunked_jacrev(f, chunk_size=2), chunk_size=3)
    assert_same(hess(x), jax.hessian(f)(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("jax_t", "ours"), PAIRS, ids=PAIR_IDS)
def test_under_vmap(jax_t, ours):
    def f(x):
        return jnp.sin(x) * x.sum()

    xs = _values((4, 5), 2)
    assert_same(jax.vmap(ours(f, chunk_size=2))(xs), jax.vmap(jax_t(f))(xs))


# --------------------------------------------------------------- statediff
SD = [(sd.jacfwd, jax.jacfwd), (sd.jacrev, jax.jacrev)]


@FEW
@given(
    m=st.integers(1, 4),
    n=st.integers(1, 4),
    chunk=st.integers(1, 20),
    argnums=st.sampled_from([None, 0, (0,)]),
    mode=st.sampled_from([0, 1]),
)
def test_statediff_chunked_matches_unchunked_and_jax(m, n, chunk, argnums, mode):
    w = sg.ParamState(_values((m, n), 0), name="w")
    b = sg.ParamState(_values((m,), 1), name="b")
    hits = sg.ShortTermState(jnp.zeros(()), name="hits")
    ours, jax_t = SD[mode]

    def f(x):
        hits.value = hits.value + 1.0
        y = jnp.tanh(w.value @ x + b.value)
        return {"y": y, "energy": jnp.sum(y**2) * x}

    def pure(gs, x):
        y = jnp.tanh(gs["w"] @ x + gs["b"])
        return {"y": y, "energy": jnp.sum(y**2) * x}

    x = _values((n,), 2)
    gs = {"w": w, "b": b}
    chunked = ours(f, grad_states=gs, argnums=argnums, return_value=True, chunk_size=chunk)(x)
    assert float(hits.value) == 1.0  # written back once
    plain = ours(f, grad_states=gs, argnums=argnums, return_value=True)(x)
    assert_same(chunked, plain)
    values = {"w": w.value, "b": b.value}
    var_jac = jax.jit(jax_t(pure, argnums=0))(values, x)
    if argnums is None:
        expected = var_jac
    else:
        arg_jac = jax.jit(jax_t(pure, argnums=1 if argnums == 0 else (1,)))(values, x)
        expected = (var_jac, arg_jac)
    assert_same(chunked[0], expected)
    assert_same(chunked[1], jax.jit(pure)(values, x))


@pytest.mark.parametrize(("ours", "jax_t"), SD, ids=PAIR_IDS)
def test_statediff_argnums_only_with_aux(ours, jax_t):
    w = sg.ParamState(_values((3, 2), 0), name="w")

    def f(x, c):
        y = jnp.sin(w.value @ x) * c
        return y, y.sum()

    args = (_values((2,), 1), jnp.float32(1.5))
    out = ours(f, argnums=(0, 1), has_aux=True, chunk_size=2)(*args)
    assert_same(out, ours(f, argnums=(0, 1), has_aux=True)(*args))

    def pure(x, c):
        return jnp.sin(w.value @ x) * c, jnp.sum(jnp.sin(w.value @ x) * c)

    assert_same(out, jax_t(pure, argnums=(0, 1), has_aux=True)(*args))


@pytest.mark.parametrize("ours", [sd.jacfwd, sd.jacrev], ids=PAIR_IDS)
def test_statediff_holomorphic_state(ours):
    w = sg.ParamState(jnp.array([1 + 1j, 2 - 1j, 0.5j], jnp.complex64), name="w")

    def f(z):
        return jnp.sin(w.value) * z

    z = jnp.complex64(2 - 1j)
    out = ours(f, grad_states=w, argnums=0, holomorphic=True, chunk_size=2)(z)
    assert_same(out, ours(f, grad_states=w, argnums=0, holomorphic=True)(z))


def test_statediff_jacrev_allow_int():
    v = sg.ParamState(jnp.ones(3), name="v")

    def g(x, i):
        return v.value * x * i

    args = (2.0, jnp.int32(3))
    out = sd.jacrev(g, grad_states=v, argnums=(0, 1), allow_int=True, chunk_size=2)(*args)
    assert_same(out, sd.jacrev(g, grad_states=v, argnums=(0, 1), allow_int=True)(*args))


def test_statediff_jit_of_chunked_jacfwd():
    w = sg.ParamState(_values((3, 4), 0), name="w")

    def f(x):
        return jnp.sin(w.value @ x)

    x = _values((4,), 1)
    jitted = sj.jit(sd.jacfwd(f, grad_states=w, chunk_size=4))
    expected = jax.jacfwd(lambda wv: jnp.sin(wv @ x))(w.value)
    assert_same(jitted(x), expected)
    assert_same(jitted(x), sd.jacfwd(f, grad_states=w)(x))
    w.value = w.value * 2.0  # the jitted function sees the new state value
    assert_same(jitted(x), jax.jacfwd(lambda wv: jnp.sin(wv @ x))(w.value))


def test_statediff_bad_chunk_size():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(ValueError, match="chunk_size"):
        sd.jacfwd(lambda: w.value, grad_states=w, chunk_size=0)


# --------------------------------------------------------------- memory
def _temp_bytes(lowered):
    analysis = lowered.compile().memory_analysis()
    if analysis is None:
        pytest.skip(f"memory_analysis() is None on the {jax.default_backend()} backend")
    return analysis.temp_size_in_bytes


def test_chunked_jacfwd_bounds_compiled_temp_memory():
    # 64x64 weights: jax.jacfwd pushes the 4096x4096 identity (64 MiB) at once.
    w = sg.ParamState(_values((64, 64), 0) / 8, name="w")

    def layer(x):
        return jnp.tanh(w.value @ x)

    x = _values((64,), 1)
    full = _temp_bytes(sj.jit(sd.jacfwd(layer, grad_states=w)).lower(x))
    small = _temp_bytes(sj.jit(sd.jacfwd(layer, grad_states=w, chunk_size=8)).lower(x))
    large = _temp_bytes(sj.jit(sd.jacfwd(layer, grad_states=w, chunk_size=64)).lower(x))
    assert small < large < full
    assert small * 100 < full
    reference = sd.jacrev(layer, grad_states=w)(x)  # cheap for 64 outputs
    assert_same(sj.jit(sd.jacfwd(layer, grad_states=w, chunk_size=8))(x), reference)


def test_chunked_jacrev_bounds_compiled_temp_memory():
    # A wide hidden layer: jax.jacrev pulls back 256 cotangents through 4096 units at once.
    w1 = sg.ParamState(_values((4096, 16), 0) / 4, name="w1")
    w2 = sg.ParamState(_values((256, 4096), 1) / 64, name="w2")

    def mlp(x):
        return w2.value @ jnp.tanh(w1.value @ x)

    x = _values((16,), 2)
    full = _temp_bytes(sj.jit(sd.jacrev(mlp)).lower(x))
    small = _temp_bytes(sj.jit(sd.jacrev(mlp, chunk_size=8)).lower(x))
    assert small * 10 < full
    assert_same(sj.jit(sd.jacrev(mlp, chunk_size=8))(x), sd.jacrev(mlp)(x), rtol=1e-5)
