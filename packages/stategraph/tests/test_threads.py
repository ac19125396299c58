"""Traces and catchers are per thread."""

from __future__ import annotations

import threading

import numpy as np

import stategraph as sg
from stategraph.extend import ACTIVE, open_traces

ITERATIONS = 200


def test_two_threads_tracing_at_once_never_see_each_others_states():
    shared_only_by_0 = sg.State(np.zeros(2), name="shared")
    results: dict[int, list] = {0: [], 1: []}
    barrier = threading.Barrier(2, timeout=30)

    def worker(k):
        try:
            for i in range(ITERATIONS):
                mine = [sg.State(float(i), name=f"t{k}_{j}") for j in range(3)]
                barrier.wait()
                with sg.StateTrace() as trace:
                    barrier.wait()  # both traces are open now
                    if k == 0:
                        shared_only_by_0.value
                    mine[0].value
                    mine[1].value = mine[1].value + 1.0
                    with sg.StateTrace() as inner:
                        mine[2].value = 2.0
                    barrier.wait()  # both threads did all their accesses
                    assert open_traces() == (trace,)
                expected = ([shared_only_by_0] if k == 0 else []) + mine
                results[k].append(
                    (
                        trace.states == tuple(expected),
                        trace.written_states == (mine[1], mine[2]),
                        inner.states == (mine[2],),
                    )
                )
        except BaseException:
            barrier.abort()
            raise

    errors = []

    def guarded(k):
        try:
            worker(k)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    for k in (0, 1):
        assert len(results[k]) == ITERATIONS
        assert all(all(r) for r in results[k]), f"thread {k} saw a foreign state"
    assert ACTIVE.count == 0


def test_open_traces_are_per_thread():
    seen = {}
    barrier = threading.Barrier(2, timeout=30)

    def other():
        barrier.wait()  # main's trace is open
        seen["other"] = open_traces()
        barrier.wait()

    thread = threading.Thread(target=other)
    thread.start()
    with sg.StateTrace() as t:
        barrier.wait()
        barrier.wait()
        assert open_traces() == (t,)
    thread.join()
    assert seen["other"] == ()


def test_a_state_used_in_another_thread_is_not_recorded():
    s = sg.State(1.0, name="s")
    done = threading.Event()

    def other():
        s.value = s.value + 1.0
        done.set()

    with sg.StateTrace() as t:
        thread = threading.Thread(target=other)
        thread.start()
        done.wait(30)
        thread.join()
    assert t.states == ()
    assert s.value == 2.0


def test_a_state_created_in_another_thread_during_a_trace_is_recorded_when_read_here():
    # Created while this thread's trace is open, but not *inside* it: the
    # state belongs to no code of this trace, so reading it here is recorded.
    box = {}
    created = threading.Event()

    def other():
        box["state"] = sg.State(np.ones(2), name="from_other")
        created.set()

    with sg.StateTrace() as t:
        thread = threading.Thread(target=other)
        thread.start()
        created.wait(30)
        thread.join()
        box["state"].value
    assert t.states == (box["state"],)


def test_catchers_are_per_thread():
    box = {}
    barrier = threading.Barrier(2, timeout=30)

    def other():
        barrier.wait()  # main's catcher is open
        box["state"] = sg.State(1.0)
        barrier.wait()

    thread = threading.Thread(target=other)
    thread.start()
    with sg.catch_new_states("main") as new:
        barrier.wait()
        barrier.wait()
    thread.join()
    assert new.states == []
    assert box["state"].tag is None


def test_structure_checks_apply_only_to_the_tracing_thread():
    s = sg.State(np.zeros(2), name="s")
    barrier = threading.Barrier(2, timeout=30)
    errors = []

    def other():
        barrier.wait()  # main's trace is open
        try:
            s.value = np.zeros(5)  # no trace here: allowed
        except BaseException as err:
            errors.append(err)
        barrier.wait()

    thread = threading.Thread(target=other)
    thread.start()
    with sg.StateTrace() as t:
        barrier.wait()
        barrier.wait()
    thread.join()
    assert not errors
    assert s.value.shape == (5,)
    assert t.states == ()
