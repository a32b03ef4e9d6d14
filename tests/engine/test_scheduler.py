"""The DAG scheduler on random DAGs: every task exactly once, never before its needs,
never above the parallelism bound; and its failure, timeout and interrupt semantics."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.engine.scheduler import Scheduler, Task, TaskTimedOut


@st.composite
def dags(draw: st.DrawFn, max_tasks: int = 24) -> list[Task]:
    """Tasks in a random order; each needs a few of the tasks created before it, so no cycle."""
    count = draw(st.integers(1, max_tasks))
    ids = [f"t{i}" for i in range(count)]
    tasks = [Task(task_id, tuple(draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3))) if i else ())
             for i, task_id in enumerate(ids)]
    return draw(st.permutations(tasks))


class Trace:
    """What the workers did, on one logical clock, so order is exact without timing."""

    def __init__(self, durations: dict[str, float] | None = None, fail: set[str] = frozenset()) -> None:
        self.durations = durations or {}
        self.fail = fail
        self.clock = itertools.count()
        self.lock = threading.Lock()
        self.active = 0
        self.peak = 0
        self.runs: Counter[str] = Counter()
        self.started: dict[str, int] = {}
        self.ended: dict[str, int] = {}

    def work(self, task: Task, cancel: threading.Event) -> str:
        with self.lock:
            self.runs[task.id] += 1
            self.active += 1
            self.peak = max(self.peak, self.active)
            self.started[task.id] = next(self.clock)
        time.sleep(self.durations.get(task.id, 0))
        with self.lock:
            self.active -= 1
            self.ended[task.id] = next(self.clock)
        if task.id in self.fail:
            raise RuntimeError(f"{task.id} failed")
        return task.id


@settings(max_examples=80, deadline=None)
@given(tasks=dags(), parallelism=st.integers(1, 6), durations=st.lists(st.floats(0, 0.002), min_size=24, max_size=24))
def test_every_task_runs_once_after_its_needs_within_the_bound(tasks: list[Task], parallelism: int, durations: list[float]) -> None:
    trace = Trace({task.id: durations[int(task.id[1:])] for task in tasks})

    outcome = Scheduler(tasks, trace.work, parallelism=parallelism).run()

    assert outcome.succeeded == {task.id for task in tasks} and not outcome.failed and not outcome.not_started
    assert all(n == 1 for n in trace.runs.values()) and set(trace.runs) == outcome.succeeded
    for task in tasks:
        for need in task.needs:
            assert trace.ended[need] < trace.started[task.id], f"{task.id} started before its need {need} ended"
    assert trace.peak <= parallelism


@settings(max_examples=40, deadline=None)
@given(tasks=dags(), parallelism=st.integers(1, 4), data=st.data())
def test_after_a_failure_no_task_starts_and_running_ones_finish(tasks: list[Task], parallelism: int, data: st.DataObject) -> None:
    failing = data.draw(st.sampled_from([task.id for task in tasks]))
    trace = Trace({task.id: 0.001 for task in tasks}, fail={failing})
    clock = itertools.count()
    hook_started: dict[str, int] = {}
    failure_seen: list[int] = []

    def finished(task: Task, result: object, error: BaseException | None) -> None:
        if error is not None:
            failure_seen.append(next(clock))

    outcome = Scheduler(tasks, trace.work, parallelism=parallelism,
                        started=lambda task: hook_started.__setitem__(task.id, next(clock)), finished=finished).run()

    assert outcome.failed == {failing}
    assert all(at < failure_seen[0] for at in hook_started.values()), "a task started after the failure"
    assert set(trace.runs) == outcome.succeeded | outcome.failed, "a started task was not waited for"
    assert outcome.not_started == {task.id for task in tasks} - set(trace.runs)


def test_keep_going_holds_back_only_the_dependents_of_a_failure() -> None:
    tasks = [Task("a"), Task("b", ("a",)), Task("c", ("b",)), Task("x"), Task("y", ("x",))]
    trace = Trace(fail={"a"})

    outcome = Scheduler(tasks, trace.work, parallelism=1, keep_going=True).run()

    assert outcome.failed == {"a"}
    assert outcome.succeeded == {"x", "y"}
    assert outcome.not_started == {"b", "c"}


def test_already_done_needs_count_as_met() -> None:
    trace = Trace()
    outcome = Scheduler([Task("b", ("a",))], trace.work, parallelism=2, done={"a"}).run()
    assert outcome.succeeded == {"b"}


def test_a_task_starts_as_soon_as_its_needs_are_done() -> None:
    """b needs the short a; it must not wait for the long, unrelated c."""
    trace = Trace({"a": 0.01, "b": 0.0, "c": 0.5})
    started_at: dict[str, float] = {}
    ended_at: dict[str, float] = {}
    Scheduler([Task("a"), Task("b", ("a",)), Task("c")], trace.work, parallelism=3,
              started=lambda task: started_at.__setitem__(task.id, time.monotonic()),
              finished=lambda task, result, error: ended_at.__setitem__(task.id, time.monotonic())).run()
    assert started_at["b"] - ended_at["a"] < 0.25  # generous for a busy machine; c takes 0.5s
    assert started_at["b"] < ended_at["c"]


def test_a_task_past_its_timeout_is_cancelled_and_failed_at_once() -> None:
    cancelled = threading.Event()

    def stubborn(task: Task, cancel: threading.Event) -> None:
        cancel.wait(5)
        cancelled.set()
        time.sleep(5)  # ignores the cancel: the scheduler must not wait for it

    errors: dict[str, BaseException | None] = {}
    began = time.monotonic()
    outcome = Scheduler([Task("slow", timeout=0.05), Task("after", ("slow",))], stubborn, parallelism=2,
                        finished=lambda task, result, error: errors.__setitem__(task.id, error)).run()

    assert time.monotonic() - began < 1
    assert outcome.failed == {"slow"} and outcome.not_started == {"after"}
    assert isinstance(errors["slow"], TaskTimedOut) and "0.05s" in str(errors["slow"])
    assert cancelled.wait(1)


def test_interrupt_cancels_running_tasks_waits_for_them_and_starts_no_more() -> None:
    finished: list[str] = []
    interrupted_with: list[list[str]] = []

    def wait_for_cancel(task: Task, cancel: threading.Event) -> None:
        if not cancel.wait(5):
            raise AssertionError("never cancelled")
        time.sleep(0.05)  # winding down: the scheduler waits for it
        finished.append(task.id)

    scheduler = Scheduler([Task("a"), Task("b"), Task("c", ("a",))], wait_for_cancel, parallelism=2,
                          interrupted=interrupted_with.append)
    threading.Timer(0.05, scheduler.interrupt).start()
    outcome = scheduler.run()

    assert outcome.interrupted
    assert sorted(finished) == ["a", "b"]
    assert sorted(interrupted_with[0]) == ["a", "b"]
    assert outcome.not_started == {"c"}


def test_parallelism_must_be_positive() -> None:
    with pytest.raises(ValueError):
        Scheduler([], lambda task, cancel: None, parallelism=0)
