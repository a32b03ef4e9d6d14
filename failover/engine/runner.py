"""The engine: runs a playbook through the scheduler, and resumes or rolls back a run from
its journal alone.

A run holds the service's lock (a dry run changes nothing and takes none). Ctrl-C (or
SIGTERM) stops starting steps, cancels the running ones and waits for them; a second
Ctrl-C stops waiting. Either way the run is marked ``interrupted`` and ``resume``
continues it: steps done are skipped, steps that may have started are applied again, and
actions find what an earlier attempt created instead of creating it twice.

A drill's run carries a drill prefix (journaled with the run, so resume and rollback use
it too): its actions name what they create under it and leave real resources alone. A
drill is one operation of several engine commands (its run, then its teardown): it holds
the lock across them with ``holding_lock``, and handles the signals itself during the
teardown (``handle_signals``), which must not stop at the first Ctrl-C.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from failover import signals
from failover.actions.base import ACTIONS
from failover.config import Config
from failover.dnsnames import check_prefix
from failover.engine.journal import APPLIED, DONE, Journal, RunRecord, RunStatus, now
from failover.engine.lock import Holder, ServiceLock
from failover.engine.observer import Observer
from failover.engine.scheduler import Outcome, Scheduler, Task
from failover.engine.steps import ApplyPass, DryRunPass, Plan, PlanPass, StepPass, UndoPass
from failover.errors import InputError, Interrupted, NotFound, Problem
from failover.playbook import Playbook
from failover.retry import DEFAULT_BACKOFF, Backoff
from failover.state import StateStore, new_id
from failover.targets import Targets

DEFAULT_PARALLELISM = 4


class Engine:
    def __init__(
        self, store: StateStore, config: Config, *, observer: Observer | None = None, backoff: Backoff = DEFAULT_BACKOFF
    ) -> None:
        self.store = store
        self.config = config
        self.journal = Journal(store)
        self.lock = ServiceLock(store, config.service)
        self.observer = observer or Observer()
        self.backoff = backoff
        self._scheduler: Scheduler | None = None
        self._stop_requested = False
        self._holding: str | None = None  # the lock, held by ``holding_lock`` across several commands
        self.handle_signals = True  # False: the caller handles SIGINT and SIGTERM (a drill's teardown)

    # -- the commands ----------------------------------------------------------------------
    def plan(
        self, playbook: Playbook, *, target: str, snapshot: str | None = None, parallelism: int = DEFAULT_PARALLELISM,
        drill_prefix: str | None = None,
    ) -> Plan:
        """Every step's read-only plan against the snapshot and the target; nothing journaled."""
        self._check_can_run(playbook, target)
        snapshot_id, manifest = self._snapshot(snapshot)
        run = self._new_run(playbook, target, snapshot_id, dry_run=True, parallelism=parallelism,
                            drill_prefix=drill_prefix)
        planning = PlanPass(run, playbook, journal=None, **self._pass_args(run, manifest))
        self.observer.run_started(run.id, playbook.steps, phase="plan")
        # Plans are independent of each other: every step is planned, at once.
        self._schedule([Task(step.id) for step in playbook.steps], planning, parallelism, keep_going=True)
        self.observer.run_ended()
        steps = [planning.plans[step.id] for step in playbook.steps if step.id in planning.plans]
        return Plan(playbook.name, target, snapshot_id, steps, manifest.left_behind() if manifest else {},
                    unknown=dict(manifest.source.unknown) if manifest else {})

    def check(self, playbook: Playbook, *, target: str, snapshot: str | None = None) -> str | None:
        """What ``start`` checks before anything runs (the target profile, the actions, the
        snapshot), without running: the snapshot's id, or None when there is none."""
        self._check_can_run(playbook, target)
        return self._snapshot(snapshot)[0]

    def start(
        self,
        playbook: Playbook,
        *,
        target: str,
        snapshot: str | None = None,
        parallelism: int = DEFAULT_PARALLELISM,
        dry_run: bool = False,
        rollback_on_failure: bool = False,
        drill_prefix: str | None = None,
    ) -> RunRecord:
        """A new run (or dry run) of ``playbook``; returns the run as it ended. With ``drill_prefix``,
        a drill's run: what it creates is named under the prefix, and nothing real is touched."""
        self._check_can_run(playbook, target)
        snapshot_id, manifest = self._snapshot(snapshot)
        run = self._new_run(playbook, target, snapshot_id, dry_run=dry_run, parallelism=parallelism,
                            drill_prefix=drill_prefix)
        with self._guard(run.id, lock=not dry_run) as took_over:
            self.journal.create_run(run, [(step.id, step.action) for step in playbook.steps])
            self._warn_taken_over(run.id, took_over)
            self.observer.run_started(run.id, playbook.steps, phase="dry run" if dry_run else "run")
            return self._execute(run, playbook, self._pass_args(run, manifest), parallelism, done={}, attempted=set(),
                                 rollback_on_failure=rollback_on_failure)

    def resume(self, run_id: str, *, parallelism: int | None = None, rollback_on_failure: bool = False) -> RunRecord:
        """Continue a stopped run: done steps are skipped, the rest applied (again)."""
        run = self.journal.run(run_id)
        if run.dry_run:
            raise InputError([Problem(file="run", field=run.id, message="a dry run changed nothing; start a new one")])
        if run.status in (RunStatus.ROLLING_BACK, RunStatus.ROLLED_BACK, RunStatus.ROLLBACK_FAILED):
            raise InputError([Problem(file="run", field=run.id, message=f"the run is {run.status}; "
                                      f"`failover rollback {run.id}` finishes a rollback, a new run starts afresh")])
        playbook = Playbook.model_validate(run.definition)
        self._check_actions(playbook)
        manifest = self._snapshot(run.snapshot_id)[1] if run.snapshot_id else None
        parallelism = parallelism or run.parallelism
        with self._guard(run.id, lock=True) as took_over:
            self._warn_taken_over(run.id, took_over)
            steps = self.journal.steps(run.id)
            done = {step.id: step.outputs or {} for step in steps if step.status in DONE}
            if len(done) == len(steps) and run.status is RunStatus.SUCCEEDED:
                self.observer.warning(f"run {run.id} already succeeded: nothing to resume")
                return run
            self.journal.reset_for_resume(run.id, [step.id for step in steps if step.id not in done])
            self.observer.run_started(run.id, playbook.steps, phase="resume")
            attempted = {step.id for step in steps if step.attempts}
            return self._execute(run, playbook, self._pass_args(run, manifest), parallelism, done=done,
                                 attempted=attempted, rollback_on_failure=rollback_on_failure)

    def rollback(self, run_id: str) -> RunRecord:
        """Undo what the run's steps may have created, in reverse dependency order."""
        run = self.journal.run(run_id)
        if run.dry_run:
            raise InputError([Problem(file="run", field=run.id, message="a dry run created nothing to roll back")])
        playbook = Playbook.model_validate(run.definition)
        self._check_actions(playbook)
        manifest = self._snapshot(run.snapshot_id)[1] if run.snapshot_id else None
        with self._guard(run.id, lock=True) as took_over:
            self._warn_taken_over(run.id, took_over)
            return self._rollback(run, playbook, self._pass_args(run, manifest))

    # -- execution -----------------------------------------------------------------------
    def _execute(
        self, run: RunRecord, playbook: Playbook, pass_args: dict[str, Any], parallelism: int, *, done: dict[str, Any],
        attempted: set[str], rollback_on_failure: bool,
    ) -> RunRecord:
        if run.dry_run:
            execution = DryRunPass(run, playbook, journal=self.journal, **pass_args)
        else:
            execution = ApplyPass(run, playbook, journal=self.journal, outputs=done, attempted=attempted, **pass_args)
        tasks = [Task(step.id, tuple(step.needs), step.timeout) for step in playbook.steps if step.id not in done]
        # A dry run changes nothing, so a failed check need not stop the others: it reports them all.
        outcome = self._schedule(tasks, execution, parallelism, keep_going=run.dry_run, done=done)
        if outcome.interrupted:
            self._interrupted(run.id, RunStatus.INTERRUPTED)
        if not execution.failures:
            self.journal.set_run_status(run.id, RunStatus.SUCCEEDED, error=None)
        else:
            first = execution.failures[0]
            self.journal.set_run_status(run.id, RunStatus.FAILED, error=f"step {first.step_id} failed: {first.message}")
            if rollback_on_failure and not run.dry_run:
                self.observer.run_ended()
                return self._rollback(run, playbook, pass_args)
        self.observer.run_ended()
        return self.journal.run(run.id)

    def _rollback(self, run: RunRecord, playbook: Playbook, pass_args: dict[str, Any]) -> RunRecord:
        steps = self.journal.steps(run.id)
        applied = {step.id for step in steps if step.status in APPLIED}
        outputs = {step.id: step.outputs for step in steps if step.outputs is not None}
        self.journal.set_run_status(run.id, RunStatus.ROLLING_BACK)
        undo = UndoPass(run, playbook, journal=self.journal, outputs=outputs, applied=applied, **pass_args)
        self.observer.run_started(run.id, playbook.steps, phase="rollback")
        # A step is undone only once every step that needed it is: the DAG, reversed.
        dependents: dict[str, list[str]] = {step.id: [] for step in playbook.steps}
        for step in playbook.steps:
            for need in step.needs:
                dependents[need].append(step.id)
        tasks = [Task(step.id, tuple(dependents[step.id]), step.timeout) for step in playbook.steps]
        outcome = self._schedule(tasks, undo, run.parallelism, keep_going=True)
        if outcome.interrupted:
            self._interrupted(run.id, RunStatus.ROLLING_BACK)
        if undo.failures:
            first = undo.failures[0]
            error = f"undo of step {first.step_id} failed: {first.message}"
            self.journal.set_run_status(run.id, RunStatus.ROLLBACK_FAILED, error=error)
        else:
            self.journal.set_run_status(run.id, RunStatus.ROLLED_BACK)
        self.observer.run_ended()
        return self.journal.run(run.id)

    def _schedule(
        self, tasks: list[Task], step_pass: StepPass, parallelism: int, *, keep_going: bool, done: Iterable[str] = ()
    ) -> Outcome:
        def interrupted(running: list[str]) -> None:
            step_pass.interrupted = True
            self.observer.stopping(running)

        self._scheduler = Scheduler(
            tasks, step_pass.work, parallelism=parallelism, done=done, started=step_pass.started,
            finished=step_pass.finished, interrupted=interrupted, keep_going=keep_going,
        )
        try:
            return self._scheduler.run()
        finally:
            self._scheduler = None

    def _interrupted(self, run_id: str, status: RunStatus) -> None:
        """Leaves the journal as it is: ``resume`` (or ``rollback``) continues from it."""
        self.journal.set_run_status(run_id, status)
        self.observer.run_ended()
        again = "rollback" if status is RunStatus.ROLLING_BACK else "resume"
        raise Interrupted(f"run {run_id} interrupted; `failover {again} {run_id}` continues it")

    def _abandoned(self, run_id: str) -> None:
        """A second Ctrl-C: steps may still be running; the journal says so, and resume redoes them."""
        try:
            status = self.journal.run(run_id).status
        except NotFound:  # stopped before the run was journaled
            raise Interrupted(f"run {run_id} interrupted before it started") from None
        self._interrupted(run_id, RunStatus.ROLLING_BACK if status is RunStatus.ROLLING_BACK else RunStatus.INTERRUPTED)

    # -- lock, signals ---------------------------------------------------------------------
    @contextmanager
    def holding_lock(self, holder: str) -> Iterator[Holder | None]:
        """The service's lock, held under ``holder`` (a drill's id) until the block ends, for every
        command of this engine in it (they take it no more). Yields the dead holder taken over, if
        any; LockHeld (exit 3) when a live one has it."""
        if self._holding is not None:
            raise RuntimeError(f"the lock is held already, by {self._holding}")
        took_over = self.lock.acquire(holder)
        self._holding = holder
        try:
            yield took_over
        finally:
            self._holding = None
            self.lock.release(holder)

    @contextmanager
    def _guard(self, run_id: str, *, lock: bool) -> Iterator[Any]:
        """Holds the lock (yielding the dead holder taken over, if any) and turns Ctrl-C
        into a graceful stop for as long as the run goes on."""
        lock = lock and self._holding is None
        took_over = self.lock.acquire(run_id) if lock else None
        try:
            with self._signals_handled():
                try:
                    yield took_over
                except KeyboardInterrupt:
                    self._abandoned(run_id)
        finally:
            if lock:
                self.lock.release(run_id)

    @contextmanager
    def _signals_handled(self) -> Iterator[None]:
        if not self.handle_signals or threading.current_thread() is not threading.main_thread():
            yield
            return
        self._stop_requested = False
        with signals.handling(self._on_signal):
            yield

    def _on_signal(self, signum: int) -> None:
        # Runs between two bytecodes of the main thread: only signal-safe calls here.
        if self._stop_requested or self._scheduler is None:
            raise KeyboardInterrupt
        self._stop_requested = True
        self._scheduler.interrupt()

    def _warn_taken_over(self, run_id: str, previous: Any) -> None:
        if previous is None:
            return
        self.journal.note(run_id, "lock-taken-over", {"run_id": previous.run_id, "host": previous.host,
                                                      "pid": previous.pid, "since": previous.since})
        self.observer.warning(f"took over the lock of {self.config.service} left by {previous}, whose process is gone")

    # -- inputs ------------------------------------------------------------------------------
    def _check_can_run(self, playbook: Playbook, target: str) -> None:
        self.config.target(target)
        self._check_actions(playbook)

    def _check_actions(self, playbook: Playbook) -> None:
        problems = [
            Problem(file=playbook.source or "playbook", field=f"steps.{step.id}.action",
                    message=f"unknown action {step.action!r}")
            for step in playbook.steps
            if ACTIONS.get(step.action) is None
        ]
        if problems:
            raise InputError(problems)

    def _snapshot(self, ref: str | None) -> tuple[str | None, Any]:
        """The named snapshot, else the latest one, else none (actions needing one say so)."""
        try:
            info, manifest = self.store.load_snapshot(self.config.service, ref or "latest")
        except NotFound:
            if ref is not None:
                raise
            return None, None
        return info.id, manifest

    def _new_run(
        self, playbook: Playbook, target: str, snapshot_id: str | None, *, dry_run: bool, parallelism: int,
        drill_prefix: str | None = None,
    ) -> RunRecord:
        if parallelism < 1:
            raise InputError([Problem(file="arguments", field="--parallelism", message="must be at least 1")])
        try:
            drill_prefix = check_prefix(drill_prefix)
        except ValueError as exc:
            raise InputError([Problem(file="arguments", field="--prefix", message=str(exc))]) from None
        return RunRecord(
            id=new_id("run"), service=self.config.service, playbook=playbook.name,
            definition=playbook.model_dump(mode="json", by_alias=True), target=target, snapshot_id=snapshot_id,
            dry_run=dry_run, parallelism=parallelism, status=RunStatus.RUNNING, started_at=now(), ended_at=None, error=None,
            drill_prefix=drill_prefix,
        )

    def _pass_args(self, run: RunRecord, manifest: Any) -> dict[str, Any]:
        """What every pass of one command shares; the target's connections among them."""
        return {"config": self.config, "manifest": manifest, "targets": Targets(self.config, run.target),
                "observer": self.observer, "backoff": self.backoff}


