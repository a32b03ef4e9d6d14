"""The DAG scheduler: a task starts the moment its needs are done, at most ``parallelism``
at a time, each in a worker thread.

It knows nothing of steps or journals. The ``started`` and ``finished`` hooks run on the
scheduler's own thread (the caller's), so one thread owns every state change and a worker
only runs ``work``. After a failure no new task starts (with ``keep_going``, only the
failed task's dependents are held back); running tasks are waited for. ``interrupt()``,
safe to call from a signal handler, stops new starts and cancels the running tasks. A
task past its timeout is cancelled and reported failed at once: a worker that ignores
its cancel event must not hold the run hostage.
"""

from __future__ import annotations

import heapq
import queue
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from failover.errors import OperationFailed


@dataclass(frozen=True)
class Task:
    id: str
    needs: tuple[str, ...] = ()
    timeout: float | None = None  # seconds


class TaskTimedOut(OperationFailed):
    pass


Work = Callable[[Task, threading.Event], Any]
Started = Callable[[Task], None]
Finished = Callable[[Task, Any, BaseException | None], None]


@dataclass
class Outcome:
    succeeded: set[str] = field(default_factory=set)
    failed: set[str] = field(default_factory=set)
    not_started: set[str] = field(default_factory=set)
    interrupted: bool = False


@dataclass
class _Running:
    task: Task
    cancel: threading.Event


_INTERRUPT = object()


def _ignore(*_: Any) -> None:
    return None


class Scheduler:
    def __init__(
        self,
        tasks: Iterable[Task],
        work: Work,
        *,
        parallelism: int,
        done: Iterable[str] = (),
        started: Started = _ignore,
        finished: Finished = _ignore,
        interrupted: Callable[[list[str]], None] = _ignore,
        keep_going: bool = False,
    ) -> None:
        if parallelism < 1:
            raise ValueError("parallelism must be at least 1")
        self.tasks = {task.id: task for task in tasks}
        self.work = work
        self.parallelism = parallelism
        self.started = started
        self.finished = finished
        self.interrupted = interrupted
        self.keep_going = keep_going
        done = set(done)
        self._unmet = {t.id: sum(1 for need in set(t.needs) if need not in done) for t in self.tasks.values()}
        self._dependents: dict[str, list[str]] = {}
        for t in self.tasks.values():
            for need in set(t.needs):
                self._dependents.setdefault(need, []).append(t.id)
        # SimpleQueue.put is reentrant: interrupt() may run inside a signal handler.
        self._events: queue.SimpleQueue = queue.SimpleQueue()
        self._running: dict[str, _Running] = {}
        self._deadlines: list[tuple[float, str]] = []  # a heap
        self._outcome = Outcome()
        self._interrupt_requested = False
        # Worker threads are reused: Thread.start() waits until the new thread runs, which
        # on a busy interpreter costs a GIL switch interval, on the critical path.
        self._jobs: queue.SimpleQueue = queue.SimpleQueue()
        self._idle_workers = 0
        self._workers = 0
        self._pool_lock = threading.Lock()

    def interrupt(self) -> None:
        self._interrupt_requested = True  # seen by the start loop at once
        self._events.put(_INTERRUPT)  # wakes the wait, which cancels the running tasks

    def run(self) -> Outcome:
        # Of the tasks ready together, those heading the longest chains start first.
        heights = self._heights()
        priority = {task_id: (-heights.get(task_id, 0), position) for position, task_id in enumerate(self.tasks)}
        ready = [priority[task_id] + (task_id,) for task_id, unmet in self._unmet.items() if unmet == 0]
        heapq.heapify(ready)
        while True:
            if ready and len(self._running) < self.parallelism and not self._stopping:
                self._start(self.tasks[heapq.heappop(ready)[-1]])
                wait = False  # in a burst of starts, still see completions: they may free a longer chain
            elif self._running:
                wait = True
            else:
                break
            for task_id in self._handle_events(wait):
                for dependent in self._newly_ready(task_id):
                    heapq.heappush(ready, priority[dependent] + (dependent,))
        for _ in range(self._workers):
            self._jobs.put(None)  # idle workers end; one stuck past its timeout ends when it can
        outcome = self._outcome
        outcome.interrupted = self._interrupt_requested
        outcome.not_started = set(self.tasks) - outcome.succeeded - outcome.failed
        return outcome

    def _heights(self) -> dict[str, int]:
        """Each task's longest chain of dependents, itself included, in tasks."""
        unmet = {task_id: sum(1 for need in set(task.needs) if need in self.tasks) for task_id, task in self.tasks.items()}
        stack = [task_id for task_id, count in unmet.items() if count == 0]
        order = []  # topological
        while stack:
            task_id = stack.pop()
            order.append(task_id)
            for dependent in self._dependents.get(task_id, ()):
                unmet[dependent] -= 1
                if unmet[dependent] == 0:
                    stack.append(dependent)
        heights: dict[str, int] = {}
        for task_id in reversed(order):
            heights[task_id] = 1 + max((heights[d] for d in self._dependents.get(task_id, ())), default=0)
        return heights

    @property
    def _stopping(self) -> bool:
        return self._interrupt_requested or (bool(self._outcome.failed) and not self.keep_going)

    def _start(self, task: Task) -> None:
        self.started(task)
        cancel = threading.Event()
        self._running[task.id] = _Running(task, cancel)
        if task.timeout:
            heapq.heappush(self._deadlines, (time.monotonic() + task.timeout, task.id))
        with self._pool_lock:
            reuse = self._idle_workers > 0
            self._idle_workers -= reuse
        self._jobs.put((task, cancel))
        if not reuse:
            self._workers += 1
            threading.Thread(target=self._serve, name="failover-worker", daemon=True).start()

    def _serve(self) -> None:
        while (job := self._jobs.get()) is not None:
            task, cancel = job
            try:
                event = (task.id, self.work(task, cancel), None)
            except BaseException as exc:  # noqa: BLE001 - every outcome goes back to the scheduler thread
                event = (task.id, None, exc)
            with self._pool_lock:
                self._idle_workers += 1  # before reporting: the next start may reuse this thread
            self._events.put(event)

    def _handle_events(self, wait: bool) -> list[str]:
        """Handles the completions and interrupts reported so far (waiting for one first if
        ``wait``) and the timeouts due; returns the ids of the tasks that succeeded."""
        events = []
        try:
            if wait:
                events.append(self._events.get(timeout=self._time_to_next_deadline()))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        succeeded = [task_id for event in events for task_id in self._handle(event)]
        self._expire_deadlines()
        return succeeded

    def _handle(self, event: Any) -> list[str]:
        if event is _INTERRUPT:
            if not self._outcome.interrupted:
                self._outcome.interrupted = True
                for running in self._running.values():
                    running.cancel.set()
                self.interrupted(list(self._running))
            return []
        task_id, result, error = event
        if task_id not in self._running:  # finished after its timeout: already reported
            return []
        self._finish(self._running.pop(task_id).task, result, error)
        return [task_id] if error is None else []

    def _time_to_next_deadline(self) -> float | None:
        while self._deadlines and self._deadlines[0][1] not in self._running:
            heapq.heappop(self._deadlines)
        return max(0.0, self._deadlines[0][0] - time.monotonic()) if self._deadlines else None

    def _expire_deadlines(self) -> None:
        now = time.monotonic()
        while self._deadlines and self._deadlines[0][0] <= now:
            _, task_id = heapq.heappop(self._deadlines)
            running = self._running.pop(task_id, None)
            if running is not None:
                running.cancel.set()
                self._finish(running.task, None, TaskTimedOut(f"timed out after {running.task.timeout:g}s"))

    def _finish(self, task: Task, result: Any, error: BaseException | None) -> None:
        (self._outcome.failed if error is not None else self._outcome.succeeded).add(task.id)
        self.finished(task, result, error)

    def _newly_ready(self, task_id: str) -> list[str]:
        ready = []
        for dependent in self._dependents.get(task_id, ()):
            self._unmet[dependent] -= 1
            if self._unmet[dependent] == 0:
                ready.append(dependent)
        return ready
