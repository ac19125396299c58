"""The bad inputs of issue 11: each is refused with a message that names the public API, the
rule, what was received (the user's value, never a tracer) and the fix; JAX's own behaviour is
the reference where it accepts the input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import statediff as sd
import statediff_units as sdu
import stategraph as sg
import statejax as sj


def no_jargon(message):
    assert "Tracer" not in message and "PyTreeDef" not in message and "(traced)" not in message
    assert "compose.py" not in message


def add(x, y):
    return x + y


def test_out_of_range_static_argnums_is_refused_at_construction():
    with pytest.raises(ValueError, match=r"statejax.jit: static_argnums=\(5,\).*2 positional"):
        sj.jit(add, static_argnums=5)
    with pytest.raises(ValueError):  # the reference: plain JAX refuses it too
        jax.jit(add, static_argnums=5)(1.0, 2.0)


def test_unknown_static_argnames_is_refused():
    with pytest.raises(ValueError, match=r"statejax.jit: static_argnames names \['zz'\]"):
        sj.jit(add, static_argnames="zz")
    with pytest.raises(ValueError):
        jax.jit(add, static_argnames="zz")(1.0, 2.0)


def test_negative_donate_argnums_counts_from_the_end_as_in_jax():
    x = jnp.ones(3)
    assert np.array_equal(sj.jit(add, donate_argnums=-1)(x, jnp.ones(3)), jax.jit(add)(x, x))
    with pytest.raises(ValueError, match="statejax.jit: donate_argnums=-3"):
        sj.jit(add, donate_argnums=-3)


def test_pure_checks_the_state_values():
    w = sg.ParamState(jnp.ones(3), name="w")
    sf = sj.StatefulFunction(lambda x: w.value * x)
    out, _ = sf.pure([jnp.full(3, 2.0)], 3.0)
    assert np.array_equal(out, jnp.full(3, 6.0))
    with pytest.raises(ValueError, match=r"pure: the value for ParamState 'w' must be f32\[3\]"):
        sf.pure([jnp.ones(4)], 3.0)
    with pytest.raises(ValueError, match=r"pure: expected one value per read state.*got 0"):
        sf.pure([], 3.0)


def test_weak_typed_while_init_is_promoted_as_jax_does():
    got = sj.while_loop(lambda i: i < 3, lambda i: i + 1.0, 0)
    want = jax.lax.while_loop(lambda i: i < 3, lambda i: i + 1.0, 0)
    assert got.dtype == want.dtype and float(got) == float(want)


def test_weak_typed_scan_init_is_promoted_as_jax_does():
    got, _ = sj.scan(lambda c, x: (c + x, None), 0, jnp.arange(3.0))
    want, _ = jax.lax.scan(lambda c, x: (c + x, None), 0, jnp.arange(3.0))
    assert got.dtype == want.dtype and float(got) == float(want)


def test_cond_branch_mismatch_names_the_users_functions():
    def up(x):
        return x

    def pair(x):
        return x, x

    pattern = r"statejax.cond: .*true_fun \S*up \(.*test_bad_inputs"
    with pytest.raises(TypeError, match=pattern) as e:
        sj.cond(True, up, pair, 1.0)
    assert "pair (" in str(e.value) and "false_fun" in str(e.value)
    no_jargon(str(e.value))


def test_switch_branch_mismatch_names_the_branches():
    with pytest.raises(TypeError, match=r"statejax.switch: .*branches\[1\]") as e:
        sj.switch(0, [lambda x: x, lambda x: (x, x)], 1.0)
    no_jargon(str(e.value))


def test_scan_and_while_carry_errors_use_the_users_carry():
    with pytest.raises(TypeError, match=r"statejax.scan: the carry that f returns") as e:
        sj.scan(lambda c, x: ((c, c), x), 0.0, jnp.arange(3.0))
    assert "carry[1]" not in str(e.value)
    no_jargon(str(e.value))
    with pytest.raises(TypeError, match=r"statejax.scan: .*starts as f32\[\].*returns i32\[\]"):
        sj.scan(lambda c, x: (c.astype(jnp.int32), x), jnp.float32(0), jnp.arange(3.0))
    with pytest.raises(TypeError, match=r"statejax.while_loop: body_fun's output") as e:
        sj.while_loop(lambda c: c[0] < 3, lambda c: (c[0] + 1, (c[1],)), (0, 1.0))
    assert "carry[0]" not in str(e.value)


def test_vmap_in_axes_prefix_error_names_the_argument():
    with pytest.raises(ValueError, match=r"statejax.vmap: in_axes\[0\] is \{'a': 0\}") as e:
        sj.vmap(lambda a, b: a + b, in_axes=({"a": 0}, 0))(jnp.ones(2), jnp.ones(2))
    no_jargon(str(e.value))


def test_non_scalar_pred_and_float_index_show_the_users_value():
    with pytest.raises(TypeError, match=r"statejax.cond: pred must be a scalar.*True") as e:
        sj.cond(jnp.ones(2) > 0, lambda x: x, lambda x: x, 1.0)
    no_jargon(str(e.value))
    with pytest.raises(TypeError, match=r"statejax.switch: index must be an integer.*1\.0") as e:
        sj.switch(1.0, [lambda x: x, lambda x: x], 1.0)
    no_jargon(str(e.value))
    # Inside a transform the value is described in plain words, never as a tracer.
    with pytest.raises(TypeError, match="computed inside a transform") as e:
        sj.jit(lambda p: sj.cond(p, lambda x: x, lambda x: x, 1.0))(jnp.ones(2) > 0)
    no_jargon(str(e.value))


def test_grad_of_a_tuple_or_vector_output():
    with pytest.raises(TypeError, match=r"statediff.grad: .*one scalar output.*has_aux") as e:
        sd.grad(lambda x: (x, x))(1.0)
    no_jargon(str(e.value))
    with pytest.raises(TypeError, match=r"statediff.grad: .*shape \(2,\).*vector_grad.*jacrev"):
        sd.grad(lambda x: x * jnp.ones(2))(1.0)
    # The documented fixes work, against plain JAX.
    assert float(sd.grad(lambda x: (x * 2.0, x), has_aux=True)(1.0)[0]) == 2.0
    np.testing.assert_allclose(
        sd.vector_grad(lambda x: x * jnp.ones(2))(1.0),
        jax.grad(lambda x: jnp.sum(x * jnp.ones(2)))(1.0),
    )


def test_holomorphic_with_real_inputs():
    with pytest.raises(TypeError, match=r"statediff.grad: holomorphic=True requires complex"):
        sd.grad(lambda x: x**2, holomorphic=True)(1.0)
    z = jnp.complex64(1.0 + 1.0j)
    np.testing.assert_allclose(
        sd.grad(lambda x: x**2, holomorphic=True)(z), jax.grad(lambda x: x**2, holomorphic=True)(z)
    )


def test_non_callable_gradient_transform():
    with pytest.raises(TypeError, match=r"statediff.GradientTransform: transform must be"):
        sd.GradientTransform(lambda x: x, 3)


def test_filter_of_the_wrong_arity():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(TypeError, match=r"sg.states: a function filter is called as filter\("):
        sg.states({"w": w}, lambda s: True)
    assert sg.states({"w": w}, lambda path, state: True) == {"w": w}


def test_sgd_step_with_a_string_learning_rate():
    w = sg.ParamState(jnp.ones(2), name="w")
    with pytest.raises(TypeError, match=r"sgd_step: the learning rate must be a number.*'0.1'"):
        sdu.sgd_step(w, jnp.ones(2), "0.1")
    assert np.array_equal(w.value, jnp.ones(2))
