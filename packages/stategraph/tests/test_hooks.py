"""State hooks: kinds, priority order, transformation, cancellation, exceptions, zero cost."""

from __future__ import annotations

import gc
import warnings

import jax.numpy as jnp
import pytest

import stategraph as sg
from stategraph.extend import ACTIVE


@pytest.fixture(autouse=True)
def _no_global_hooks():
    yield
    sg.clear_state_hooks()
    gc.collect()  # states kept alive by a caught exception's traceback drop their hooks


def test_read_hook_sees_the_value_and_the_state():
    s = sg.State(jnp.ones(2), name="s")
    seen = []
    h = s.register_hook("read", lambda ctx: seen.append((ctx.operation, ctx.state, ctx.value)))
    _ = s.value
    assert seen[0][0] == "read" and seen[0][1] is s and seen[0][2].tolist() == [1.0, 1.0]
    h.remove()
    _ = s.value
    assert len(seen) == 1


def test_priority_order_and_registration_order():
    s = sg.State(0.0)
    order = []
    for name, prio in [("low", -1), ("a", 5), ("mid", 0), ("b", 5)]:
        s.register_hook(
            "write_after", lambda ctx, n=name: order.append(n), priority=prio, name=name
        )
    s.value = 1.0
    assert order == ["a", "b", "mid", "low"]
    assert [h.name for h in s.list_hooks("write_after")] == ["a", "b", "mid", "low"]


def test_global_hooks_run_before_the_state_hooks():
    s = sg.State(0.0)
    order = []
    s.register_hook("write_before", lambda ctx: order.append("own"), priority=100)
    g = sg.register_state_hook("write_before", lambda ctx: order.append("global"))
    s.value = 1.0
    assert order == ["global", "own"]
    assert sg.has_state_hooks("write_before") and sg.list_state_hooks()[0].name == g.name
    assert sg.unregister_state_hook(g)
    assert not sg.has_state_hooks()


def test_write_before_transforms_in_a_chain():
    s = sg.State(jnp.zeros(3))
    s.register_hook(
        "write_before",
        lambda ctx: setattr(ctx, "transformed_value", ctx.transformed_value * 10),
        priority=1,
    )
    s.register_hook(
        "write_before",
        lambda ctx: setattr(ctx, "transformed_value", jnp.clip(ctx.transformed_value, -1, 1)),
    )
    s.value = jnp.array([0.05, 0.5, -2.0])
    assert s.value.tolist() == pytest.approx([0.5, 1.0, -1.0])


def test_write_before_sees_the_original_and_old_value():
    s = sg.State(1.0)
    got = {}

    def hook(ctx):
        got.update(value=ctx.value, old=ctx.old_value, current=ctx.transformed_value)

    s.register_hook("write_before", hook)
    s.value = 2.0
    assert got == {"value": 2.0, "old": 1.0, "current": 2.0}


def test_cancel_refuses_the_write():
    s = sg.State(jnp.ones(2), name="pos")

    def positive(ctx):
        if (ctx.transformed_value < 0).any():
            ctx.cancel = True
            ctx.cancel_reason = "values must be positive"

    s.register_hook("write_before", positive, name="positive")
    with pytest.raises(
        sg.HookCancellationError, match="'positive' of State 'pos'.*values must be positive"
    ):
        s.value = jnp.array([1.0, -1.0])
    assert s.value.tolist() == [1.0, 1.0]
    s.value = jnp.array([2.0, 3.0])
    assert s.value.tolist() == [2.0, 3.0]


def test_exceptions_propagate_and_leave_the_state_unchanged():
    s = sg.State(1.0, name="s")

    def boom(ctx):
        raise RuntimeError("no")

    h = s.register_hook("write_before", boom, name="boom")
    with pytest.raises(RuntimeError, match="no") as info:
        s.value = 2.0
    assert any("boom" in note and "'s'" in note for note in info.value.__notes__)
    assert s.value == 1.0
    h.remove()
    s.register_hook("write_after", boom)
    with pytest.raises(RuntimeError):
        s.value = 3.0
    assert s.value == 1.0  # a failing write_after hook undoes the write


def test_log_mode_warns_and_goes_on():
    s = sg.State(1.0)
    s.hooks.config.on_error = "log"
    s.register_hook("write_before", lambda ctx: 1 / 0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        s.value = 2.0
    assert s.value == 2.0
    assert any(issubclass(w.category, sg.HookWarning) for w in caught)


def test_enable_disable_remove_and_temporary_hooks():
    s = sg.State(0.0)
    calls = []
    h = s.register_hook("read", lambda ctx: calls.append(1), enabled=False)
    _ = s.value
    assert calls == [] and not h.is_enabled()
    h.enable()
    _ = s.value
    assert calls == [1]
    h.disable()
    _ = s.value
    assert calls == [1]
    assert s.unregister_hook(h) and h.is_removed() and not h.remove()
    with pytest.raises(sg.HookError, match="removed"):
        h.enable()
    with s.temporary_hook("read", lambda ctx: calls.append(2)) as t:
        _ = s.value
    _ = s.value
    assert calls == [1, 2] and t.is_removed()


def test_restore_and_init_hooks():
    s = sg.State(1.0)
    seen = []
    s.register_hook("restore", lambda ctx: seen.append((ctx.operation, ctx.value, ctx.old_value)))
    s.restore_value(5.0)
    assert seen == [("restore", 5.0, 1.0)]
    made = []
    sg.register_state_hook(
        "init", lambda ctx: made.append((ctx.state_name, ctx.value, ctx.init_metadata))
    )
    sg.ParamState(2.0, name="p", tag="x")
    assert made == [("p", 2.0, {"_name": "p", "tag": {"x"}})]


def test_bad_registrations_are_refused():
    s = sg.State(0.0)
    with pytest.raises(sg.HookRegistrationError, match="unknown hook kind 'wrote'"):
        s.register_hook("wrote", print)
    with pytest.raises(sg.HookRegistrationError, match="callable"):
        s.register_hook("read", 3)
    with pytest.raises(TypeError, match="HookHandle"):
        s.unregister_hook("x")


def test_no_hook_means_the_fast_path():
    base = ACTIVE.count
    s = sg.State(0.0)
    h = s.register_hook("read", lambda ctx: None)
    assert ACTIVE.count == base + 1
    h2 = sg.register_state_hook("read", lambda ctx: None)
    assert ACTIVE.count == base + 1
    h.remove()
    h2.remove()
    assert ACTIVE.count == base


def test_a_collected_state_stops_counting_its_hooks():
    base = ACTIVE.count
    s = sg.State(0.0)
    s.register_hook("read", lambda ctx: None)
    assert ACTIVE.count == base + 1
    del s
    gc.collect()
    assert ACTIVE.count == base


def test_context_holds_the_state_weakly():
    s = sg.State(0.0)
    box = []
    s.register_hook("read", box.append)
    _ = s.value
    ctx = box[0]
    del s, box
    gc.collect()
    assert ctx.state is None and ctx.state_name is None


def test_without_hooks_no_hook_code_runs(monkeypatch):
    import stategraph._src.state as state_module

    def never(*args, **kwargs):
        raise AssertionError("hook code ran although no hook is registered")

    for name in ("run_read", "run_init", "write_with_hooks"):
        monkeypatch.setattr(state_module, name, never)
    s = sg.State(jnp.zeros(2))
    _ = s.value
    s.value = jnp.ones(2)
    with sg.StateTrace():
        sg.State(1.0)
        _ = s.value
        s.value = jnp.zeros(2)
