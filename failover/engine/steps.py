"""What the engine does with one step in each of its passes: apply it, plan it (``plan``
and the dry run) or undo it (rollback).

A pass gives the scheduler its ``work``, run in a worker thread right before the action
is called (templates are resolved there, with the outputs known at that moment, and the
result is kept only for that call: it holds the secrets), and the ``started`` and
``finished`` hooks, run on the scheduler's thread, that journal the step.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from failover.actions.base import ACTIONS, Action, ActionContext, Change
from failover.engine.journal import Journal, RunRecord, StepStatus
from failover.engine.observer import Observer
from failover.engine.scheduler import Task
from failover.errors import FailoverError, NothingToDo, TransientError
from failover.playbook import Playbook, Step
from failover.retry import Backoff, call_with_retries, request_retry_listener
from failover.templates import evaluate_when, find_refs, resolve

_SKIPPED = object()


@dataclass(frozen=True)
class Skipped:
    """A step whose action had nothing to do (``NothingToDo``), and why."""

    reason: str


def describe(error: BaseException) -> str:
    """The one line the journal and the user see for a step's error."""
    if isinstance(error, FailoverError):
        return str(error)
    if isinstance(error, ValidationError):
        details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'with'}: {e['msg']}" for e in error.errors())
        return f"invalid parameters: {details}"
    return f"{type(error).__name__}: {error}"


@dataclass
class Failure:
    step_id: str
    message: str


class StepPass:
    """One pass over a playbook's steps; subclasses give the scheduler its ``work`` and hooks."""

    def __init__(
        self,
        run: RunRecord,
        playbook: Playbook,
        *,
        journal: Journal | None,
        config: Any,
        manifest: Any,
        targets: Any,
        observer: Observer,
        backoff: Backoff,
        outputs: dict[str, Any] | None = None,
    ) -> None:
        self.run = run
        self.playbook = playbook
        self.steps = {step.id: step for step in playbook.steps}
        self.journal = journal
        self.config = config
        self.manifest = manifest
        self.targets = targets
        self.observer = observer
        self.backoff = backoff
        self.outputs: dict[str, Any] = dict(outputs or {})  # step id -> outputs, of steps done
        self.failures: list[Failure] = []
        self.interrupted = False  # set by the engine when the scheduler was interrupted

    def work(self, task: Task, cancel: threading.Event) -> Any:
        raise NotImplementedError

    def started(self, task: Task) -> None:
        raise NotImplementedError

    def finished(self, task: Task, result: Any, error: BaseException | None) -> None:
        raise NotImplementedError

    def action(self, step: Step) -> Action:
        action_class = ACTIONS.get(step.action)
        if action_class is None:
            raise FailoverError(f"unknown action {step.action!r}")
        return action_class()

    def context(
        self, step: Step, cancel: threading.Event, *, created: list[dict[str, Any]], dry_run: bool = False
    ) -> ActionContext:
        journal = None if dry_run else self.journal

        def record(item: dict[str, Any]) -> None:
            journal.record_resource(self.run.id, step.id, item)

        return ActionContext(
            run_id=self.run.id, step_id=step.id, service=self.run.service, dry_run=dry_run, config=self.config,
            target_name=self.run.target, manifest=self.manifest, targets=self.targets,
            outputs={need: self.outputs[need] for need in step.needs if need in self.outputs}, created=created,
            needs={need: self.steps[need].action for need in step.needs if need in self.steps},
            recorder=record if journal is not None else None, cancel=cancel,
            log=lambda message: self.observer.step_log(step.id, message), drill_prefix=self.run.drill_prefix,
        )

    def call(self, step: Step, cancel: threading.Event, call: Callable[[], Any]) -> Any:
        def on_retry(error: TransientError, wait: float) -> None:
            if self.journal is not None:
                self.journal.step_retrying(self.run.id, step.id, describe(error), wait)
            self.observer.step_retrying(step.id, describe(error), wait)

        def on_request_retry(error: TransientError, wait: float) -> None:
            if self.journal is not None:
                self.journal.request_retrying(self.run.id, step.id, describe(error), wait)

        listening = request_retry_listener.set(on_request_retry)
        try:
            return call_with_retries(call, retries=step.retries, cancel=cancel, on_retry=on_retry, backoff=self.backoff)
        finally:
            request_retry_listener.reset(listening)

    def resolved(self, step: Step) -> dict[str, Any]:
        return resolve(step.with_, vars=self.playbook.vars, outputs=self.outputs)

    def fail(self, task: Task, error: BaseException) -> tuple[StepStatus, str]:
        message = describe(error)
        status = StepStatus.INTERRUPTED if self.interrupted else StepStatus.FAILED
        if status is StepStatus.FAILED:
            self.failures.append(Failure(task.id, message))
        return status, message


class ApplyPass(StepPass):
    """The run itself: each step's action applied, idempotently."""

    def __init__(self, *args: Any, attempted: set[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.attempted = attempted  # steps tried before (a resume): they may have created something

    def started(self, task: Task) -> None:
        self.journal.step_started(self.run.id, task.id)
        self.observer.step_started(task.id)

    def work(self, task: Task, cancel: threading.Event) -> Any:
        step = self.steps[task.id]
        if step.when is not None and not evaluate_when(step.when, vars=self.playbook.vars, outputs=self.outputs):
            return _SKIPPED
        action = self.action(step)
        params = action.Params.model_validate(self.resolved(step))
        created = self.journal.created(self.run.id, step.id) if step.id in self.attempted else []
        ctx = self.context(step, cancel, created=created)
        try:
            return self.call(step, cancel, lambda: action.apply(ctx, params)) or {}
        except NothingToDo as nothing:
            return Skipped(nothing.reason)

    def finished(self, task: Task, result: Any, error: BaseException | None) -> None:
        outputs = None
        if error is not None:
            status, message = self.fail(task, error)
        elif result is _SKIPPED:
            status, message = StepStatus.SKIPPED, None
        elif isinstance(result, Skipped):
            status, message, outputs = StepStatus.SKIPPED, None, {"skipped": result.reason}
            self.observer.step_log(task.id, f"skipped: {result.reason}")
        else:
            status, message, outputs = StepStatus.SUCCEEDED, None, result
            self.outputs[task.id] = result
        self.journal.step_finished(self.run.id, task.id, status, outputs=outputs, error=message)
        self.observer.step_finished(task.id, status, message)


@dataclass
class StepPlan:
    """One step of a plan: what it would create or change, as far as can be known before the run."""

    id: str
    action: str
    status: str  # planned, skipped, deferred (its parameters need outputs of steps not run yet), failed
    changes: list[Change] = field(default_factory=list)
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "status": self.status,
                "changes": [c.to_dict() for c in self.changes], "note": self.note}


@dataclass
class Plan:
    playbook: str
    target: str
    snapshot: str | None
    steps: list[StepPlan]
    left_behind: dict[str, int] = field(default_factory=dict)  # unsupported resources of the snapshot, per type
    unknown: dict[str, str] = field(default_factory=dict)  # what the source could not tell (field -> why)

    @property
    def failed(self) -> list[StepPlan]:
        return [step for step in self.steps if step.status == "failed"]

    def to_dict(self) -> dict[str, Any]:
        document = {"playbook": self.playbook, "target": self.target, "snapshot": self.snapshot,
                    "steps": [step.to_dict() for step in self.steps], "left_behind": self.left_behind}
        if self.unknown:
            document["unknown"] = self.unknown
        return document


class PlanPass(StepPass):
    """Each step's read-only ``plan``: no journal, no mutating call."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.plans: dict[str, StepPlan] = {}

    def started(self, task: Task) -> None:
        self.observer.step_started(task.id)

    def work(self, task: Task, cancel: threading.Event) -> StepPlan:
        step = self.steps[task.id]
        unknown = self.unknown_steps(step.when)
        if step.when is not None and not unknown and not evaluate_when(step.when, vars=self.playbook.vars, outputs=self.outputs):
            return StepPlan(step.id, step.action, "skipped", note=f"when: {step.when}")
        action = self.action(step)
        unknown |= self.unknown_steps(step.with_)
        try:
            params = action.Params.model_validate(resolve_known(step.with_, vars=self.playbook.vars, outputs=self.outputs))
        except ValidationError:
            if not unknown:
                raise
            return StepPlan(step.id, step.action, "deferred", note=f"known after {', '.join(sorted(unknown))} ran")
        ctx = self.context(step, cancel, created=[], dry_run=True)
        try:
            changes = self.call(step, cancel, lambda: action.plan(ctx, params))
        except NothingToDo as nothing:
            return StepPlan(step.id, step.action, "skipped", note=nothing.reason)
        note = f"when depends on {', '.join(sorted(unknown))}" if step.when is not None and unknown else None
        return StepPlan(step.id, step.action, "planned", list(changes or []), note)

    def finished(self, task: Task, result: StepPlan | None, error: BaseException | None) -> None:
        step = self.steps[task.id]
        if error is not None:
            result = StepPlan(step.id, step.action, "failed", note=self.fail(task, error)[1])
        self.plans[task.id] = result
        self.observer.step_finished(task.id, _PLAN_STATUS[result.status], result.note if error else None)

    def unknown_steps(self, value: Any) -> set[str]:
        """Steps whose outputs ``value`` refers to and that have not run."""
        return {ref.name for _, ref in find_refs(value) if ref.kind == "steps" and ref.name not in self.outputs}


_PLAN_STATUS = {"planned": StepStatus.SUCCEEDED, "deferred": StepStatus.SUCCEEDED,
                "skipped": StepStatus.SKIPPED, "failed": StepStatus.FAILED}


class DryRunPass(PlanPass):
    """The plan, journaled as a run: each step's outputs are its planned changes."""

    def started(self, task: Task) -> None:
        self.journal.step_started(self.run.id, task.id)
        super().started(task)

    def finished(self, task: Task, result: StepPlan | None, error: BaseException | None) -> None:
        super().finished(task, result, error)
        plan = self.plans[task.id]
        status = StepStatus.INTERRUPTED if error is not None and self.interrupted else _PLAN_STATUS[plan.status]
        outputs = None
        if error is None:
            outputs = {"plan": plan.status, "changes": [c.to_dict() for c in plan.changes], "note": plan.note}
        self.journal.step_finished(self.run.id, task.id, status, outputs=outputs, error=plan.note if error else None)


class UndoPass(StepPass):
    """Rollback: the steps that may have created something, undone in reverse dependency order."""

    def __init__(self, *args: Any, applied: set[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.applied = applied

    def started(self, task: Task) -> None:
        if task.id in self.applied:
            self.journal.note(self.run.id, "step-undo-started", step_id=task.id)
            self.observer.step_started(task.id)

    def work(self, task: Task, cancel: threading.Event) -> Any:
        if task.id not in self.applied:
            return None
        step = self.steps[task.id]
        action = self.action(step)
        if not action.mutates:
            return None
        params = action.Params.model_validate(self.resolved(step))
        ctx = self.context(step, cancel, created=self.journal.created(self.run.id, step.id))
        return self.call(step, cancel, lambda: action.undo(ctx, params))

    def finished(self, task: Task, result: Any, error: BaseException | None) -> None:
        if task.id not in self.applied:
            return
        if error is None:
            self.journal.step_rolled_back(self.run.id, task.id)
            self.observer.step_finished(task.id, StepStatus.ROLLED_BACK, None)
            return
        status, message = self.fail(task, error)
        self.journal.note(self.run.id, "step-undo-interrupted" if status is StepStatus.INTERRUPTED else "step-undo-failed",
                          {"error": message}, step_id=task.id)
        self.observer.step_finished(task.id, status, f"undo: {message}")


def resolve_known(value: Any, *, vars: Mapping[str, Any], outputs: Mapping[str, Any]) -> Any:
    """Resolve what can be known before the run. A string referring to outputs of a step
    that has not run stays as written, as the plan's "known after" marker."""
    if isinstance(value, str):
        if any(ref.kind == "steps" and ref.name not in outputs for _, ref in find_refs(value)):
            return value
        return resolve(value, vars=vars, outputs=outputs)
    if isinstance(value, Mapping):
        return {key: resolve_known(item, vars=vars, outputs=outputs) for key, item in value.items()}
    if isinstance(value, list):
        return [resolve_known(item, vars=vars, outputs=outputs) for item in value]
    return value
