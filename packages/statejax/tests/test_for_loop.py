"""statejax.for_loop (brainstate-style) and its progress bar."""

from __future__ import annotations

import io
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import stategraph as sg
import statejax as sj

SETTINGS = settings(max_examples=8, deadline=None)


@SETTINGS
@given(length=st.integers(1, 8), reverse=st.booleans())
def test_for_loop_matches_lax_scan(length, reverse):
    v = sg.ShortTermState(jnp.zeros(2), name="v")
    tau = sg.ParamState(jnp.array([2.0, 4.0]), name="tau")
    inp = jnp.linspace(0.0, 1.0, length * 2).reshape(length, 2)
    gain = jnp.arange(length, dtype=jnp.float32)

    def step(i, g):
        v.value = v.value + (i * g - v.value) / tau.value
        return v.value.sum()

    ys = sj.for_loop(step, inp, gain, reverse=reverse)

    def ref(v0, x):
        i, g = x
        v1 = v0 + (i * g - v0) / jnp.array([2.0, 4.0])
        return v1, v1.sum()

    r_v, r_ys = jax.lax.scan(ref, jnp.zeros(2), (inp, gain), reverse=reverse)
    np.testing.assert_allclose(ys, r_ys, rtol=1e-6)
    np.testing.assert_allclose(v.value, r_v, rtol=1e-6)


def test_for_loop_with_length_only_and_pytree_outputs():
    n = sg.ShortTermState(jnp.zeros((), jnp.int32), name="n")

    def tick():
        n.value = n.value + 1
        return {"n": n.value, "sq": n.value**2}

    ys = sj.for_loop(tick, length=4)
    assert ys["n"].tolist() == [1, 2, 3, 4] and ys["sq"].tolist() == [1, 4, 9, 16]
    assert int(n.value) == 4


def test_for_loop_eager_calls_trace_once():
    calls = [0]
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def f(x):
        calls[0] += 1
        acc.value = acc.value + x
        return acc.value

    for _ in range(4):
        sj.for_loop(f, jnp.ones(3))
    assert calls[0] == 1 and float(acc.value) == 12.0


def test_for_loop_argument_errors():
    with pytest.raises(ValueError, match="pass length"):
        sj.for_loop(lambda: 1.0)
    with pytest.raises(ValueError, match="different leading sizes"):
        sj.for_loop(lambda a, b: a + b, jnp.ones(2), jnp.ones(3))
    with pytest.raises(TypeError, match="progress_bar must be"):
        sj.for_loop(lambda a: a, jnp.ones(2), progress_bar="yes")
    with pytest.raises(ValueError, match="must be positive"):
        sj.for_loop(lambda a: a, jnp.ones(2), progress_bar=-1)


def test_missing_tqdm_gives_a_clear_import_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with pytest.raises(ImportError, match=r"pip install tqdm"):
        sj.for_loop(lambda a: a, jnp.ones(2), progress_bar=True)
    with pytest.raises(ImportError, match="tqdm"):
        sj.ProgressBar()
    # Without a progress bar tqdm is not needed.
    np.testing.assert_allclose(sj.for_loop(lambda a: 2 * a, jnp.ones(2)), [2.0, 2.0])


# ------------------------------------------------------------------ progress bar


def test_progress_bar_inside_jit_writes_to_stderr(capsys):
    pytest.importorskip("tqdm")
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")

    def f(x):
        acc.value = acc.value + x
        return acc.value

    @sj.jit
    def run(xs):
        return sj.for_loop(f, xs, progress_bar=True)

    ys = run(jnp.ones(40))
    jax.block_until_ready(ys)
    jax.effects_barrier()
    err = capsys.readouterr().err
    assert "40/40" in err
    np.testing.assert_allclose(ys, jnp.arange(1.0, 41.0))
    assert float(acc.value) == 40.0
    # A second call draws a fresh bar (no retrace needed).
    run(jnp.ones(40))
    jax.effects_barrier()
    assert "40/40" in capsys.readouterr().err


def test_progress_bar_interval_and_configured_object():
    pytest.importorskip("tqdm")
    out = io.StringIO()
    bar = sj.ProgressBar(interval=3, desc="sim", file=out, mininterval=0)
    ys = sj.for_loop(lambda x: x * 2, jnp.arange(10.0), progress_bar=bar, reverse=True)
    jax.effects_barrier()
    np.testing.assert_allclose(ys, jnp.arange(10.0) * 2)
    text = out.getvalue()
    assert "sim" in text and "10/10" in text
    for shown in ("1/10", "4/10", "7/10"):  # updates at i = 0, 3, 6, 9
        assert shown in text
    assert "5/10" not in text

    with pytest.raises(ValueError, match="positive int"):
        sj.ProgressBar(interval=0)


def test_progress_bar_int_interval(capsys):
    pytest.importorskip("tqdm")
    ys = sj.for_loop(lambda x: x + 1, jnp.zeros(6), progress_bar=2)
    jax.effects_barrier()
    assert "6/6" in capsys.readouterr().err
    np.testing.assert_allclose(ys, jnp.ones(6))
