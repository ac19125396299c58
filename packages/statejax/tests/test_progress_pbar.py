"""statejax.ProgressBar(freq, count, desc) and pbar= on for_loop / scan (brainstate's API)."""

from __future__ import annotations

import io

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import stategraph as sg
import statejax as sj

pytest.importorskip("tqdm")


def _bar(**kw):
    out = io.StringIO()
    return sj.ProgressBar(file=out, mininterval=0, **kw), out


@pytest.mark.parametrize(
    "kwargs",
    [
        {"freq": "a"},
        {"freq": 2.5},
        {"freq": True},
        {"count": "x"},
        {"freq": 0},
        {"freq": -3},
        {"count": 0},
        {"freq": 2, "count": 3},
        {"desc": 3},
        {"desc": ("{i}", 3)},
        {"desc": (3, lambda d: d)},
        {"not_a_tqdm_arg": 1},
    ],
)
def test_bad_arguments_are_type_errors_at_construction(kwargs):
    with pytest.raises(TypeError, match="statejax.ProgressBar"):
        sj.ProgressBar(**kwargs)


def test_range_errors_are_also_value_errors_as_in_brainstate():
    with pytest.raises(ValueError, match="freq must be a positive int"):
        sj.ProgressBar(freq=0)
    with pytest.raises(ValueError, match="not both"):
        sj.ProgressBar(freq=2, count=3)


def test_for_loop_pbar_freq_updates():
    bar, out = _bar(freq=3, desc="sim")
    ys = sj.for_loop(lambda x: x * 2, jnp.arange(10.0), pbar=bar)
    jax.effects_barrier()
    np.testing.assert_allclose(ys, jnp.arange(10.0) * 2)
    text = out.getvalue()
    assert "sim" in text and "10/10" in text
    for shown in ("1/10", "4/10", "7/10"):
        assert shown in text
    assert "5/10" not in text


def test_pbar_int_is_the_frequency(capsys):
    ys = sj.for_loop(lambda x: x + 1, jnp.zeros(6), pbar=2)
    jax.effects_barrier()
    assert "6/6" in capsys.readouterr().err
    np.testing.assert_allclose(ys, jnp.ones(6))


def test_progress_bar_alias_still_works_and_conflict_is_an_error(capsys):
    sj.for_loop(lambda x: x, jnp.zeros(4), progress_bar=True)
    jax.effects_barrier()
    assert "4/4" in capsys.readouterr().err
    with pytest.raises(TypeError, match="same argument"):
        sj.for_loop(lambda x: x, jnp.zeros(4), pbar=2, progress_bar=3)
    with pytest.raises(TypeError, match="pbar must be"):
        sj.for_loop(lambda x: x, jnp.zeros(4), pbar="yes")


def test_count_sets_the_number_of_updates():
    bar, out = _bar(count=2)
    sj.for_loop(lambda x: x, jnp.zeros(10), pbar=bar)
    jax.effects_barrier()
    text = out.getvalue()
    assert "10/10" in text and "6/10" in text and "3/10" not in text
    big, out2 = _bar(count=50)  # more updates than steps: every step
    sj.for_loop(lambda x: x, jnp.zeros(4), pbar=big)
    jax.effects_barrier()
    assert "2/4" in out2.getvalue()


def test_scan_pbar_with_desc_function_inside_jit():
    acc = sg.ShortTermState(jnp.zeros(()), name="acc")
    bar, out = _bar(
        freq=1, desc=("step {i} carry {c:.1f}", lambda d: {"i": d["i"], "c": d["carry"]})
    )

    def step(c, x):
        acc.value = acc.value + x
        return c + x, c

    @sj.jit
    def run(xs):
        return sj.scan(step, 0.0, xs, pbar=bar)

    c, ys = run(jnp.ones(5))
    jax.effects_barrier()
    assert float(c) == 5.0 and float(acc.value) == 5.0
    ref_c, ref_ys = jax.lax.scan(lambda c, x: (c + x, c), 0.0, jnp.ones(5))
    np.testing.assert_allclose(ys, ref_ys)
    assert "step 4 carry 5.0" in out.getvalue()


def test_for_loop_desc_gets_the_written_state_as_carry():
    s = sg.ShortTermState(jnp.zeros(()), name="s")
    bar, out = _bar(freq=1, desc=("s={s:.1f}", lambda d: {"s": d["carry"]}))

    def f(x):
        s.value = s.value + x
        return s.value

    sj.for_loop(f, jnp.ones(3), pbar=bar)
    jax.effects_barrier()
    assert "s=3.0" in out.getvalue()


def test_desc_function_must_return_a_dict():
    bar = sj.ProgressBar(desc=("{i}", lambda d: 3))
    with pytest.raises(TypeError, match="must return a dict"):
        sj.for_loop(lambda x: x, jnp.zeros(3), pbar=bar)


def test_repr_and_alias_attribute():
    bar = sj.ProgressBar(interval=4)
    assert bar.freq == 4 and bar.interval == 4 and "freq=4" in repr(bar)
    assert bar.print_freq == 4 and sj.ProgressBar(count=3).print_count == 3


def test_desc_fields_missing_from_the_dict_fail_at_trace_time():
    bar = sj.ProgressBar(desc=("{i} {loss}", lambda d: {"i": d["i"]}))
    with pytest.raises(TypeError, match="loss"):
        sj.for_loop(lambda x: x, jnp.zeros(3), pbar=bar)
