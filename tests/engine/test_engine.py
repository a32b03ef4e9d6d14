"""The engine in-process, with the ``record`` action: journal, retries, timeouts, failure,
dry run, resume and rollback, as the journal and the record file tell them."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest
from enginekit import Records, playbook_data, record_step

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.engine import Engine, Observer, RunStatus, StepStatus
from failover.engine.journal import Journal
from failover.errors import InputError, Interrupted, NotFound
from failover.manifest import parse_manifest
from failover.playbook import Playbook


def book(*steps: dict, **kwargs) -> Playbook:
    return Playbook.model_validate(playbook_data(*steps, **kwargs))


def statuses(engine: Engine, run_id: str) -> dict[str, str]:
    return {step.id: str(step.status) for step in engine.journal.steps(run_id)}


def events(engine: Engine, run_id: str, kind: str) -> list[dict]:
    return [e for e in engine.journal.events(run_id) if e["event"] == kind]


DIAMOND = (record_step("a"), record_step("b", ["a"]), record_step("c", ["a"]), record_step("d", ["b", "c"]))


def test_a_run_applies_each_step_once_and_journals_it(engine: Engine, records: Records) -> None:
    run = engine.start(book(*DIAMOND), target="t")

    assert run.status is RunStatus.SUCCEEDED
    assert records.count("apply", run.id) == {"a": 1, "b": 1, "c": 1, "d": 1}
    document = engine.journal.document(run.id)
    assert {"run_id", "status", "started_at", "ended_at", "steps"} <= set(document)
    for step in document["steps"]:
        assert step["status"] == "succeeded" and step["attempts"] == 1 and step["error"] is None
        assert step["started_at"] <= step["ended_at"]
        assert step["outputs"] == {"name": step["id"], "marker": f"{run.id}/{step['id']}"}
        assert [item["id"] for item in step["created"]] == [f"{run.id}/{step['id']}"]


def test_templates_see_vars_and_the_outputs_of_needs(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a", name="${vars.prefix}-a"), record_step("b", ["a"], name="${steps.a.outputs.name}+b"),
                    vars={"prefix": "p"})
    run = engine.start(playbook, target="t")
    assert engine.journal.document(run.id)["steps"][1]["outputs"]["name"] == "p-a+b"


def test_a_step_whose_when_is_false_is_skipped_and_its_dependents_run(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a", when="${vars.go}"), record_step("b", ["a"]), vars={"go": False})
    run = engine.start(playbook, target="t")
    assert run.status is RunStatus.SUCCEEDED
    assert statuses(engine, run.id) == {"a": "skipped", "b": "succeeded"}
    assert records.count("apply", run.id) == {"b": 1}


def test_transient_errors_are_retried_and_the_retries_journaled(engine: Engine, records: Records) -> None:
    run = engine.start(book(record_step("a", transient_failures=2)), target="t")

    assert run.status is RunStatus.SUCCEEDED
    assert engine.journal.steps(run.id)[0].attempts == 3
    retries = events(engine, run.id, "step-retry")
    assert len(retries) == 2 and retries[0]["detail"]["error"] == "throttled"
    assert retries[0]["detail"]["wait_s"] >= 0.01  # the provider's retry_after is honoured
    assert records.count("apply", run.id) == {"a": 1}


def test_retries_are_bounded_by_the_steps_retries(engine: Engine, records: Records) -> None:
    run = engine.start(book(record_step("a", transient_failures=5, retries=2)), target="t")

    assert run.status is RunStatus.FAILED
    step = engine.journal.steps(run.id)[0]
    assert step.status is StepStatus.FAILED and step.attempts == 3 and step.error == "throttled"
    assert run.error == "step a failed: throttled"


def test_other_errors_fail_the_step_at_once(engine: Engine, records: Records) -> None:
    run = engine.start(book(record_step("a", fail=True)), target="t")
    step = engine.journal.steps(run.id)[0]
    assert (step.status, step.attempts, step.error) == (StepStatus.FAILED, 1, "a failed as asked")
    assert not events(engine, run.id, "step-retry")


def test_after_a_failure_no_step_starts_and_running_ones_finish(engine: Engine, records: Records) -> None:
    playbook = book(record_step("bad", fail=True, sleep=0.1), record_step("slow", sleep=0.3),
                    record_step("after-bad", ["bad"]), record_step("after-slow", ["slow"]))
    run = engine.start(playbook, target="t", parallelism=2)

    assert run.status is RunStatus.FAILED
    assert statuses(engine, run.id) == {"bad": "failed", "slow": "succeeded", "after-bad": "pending", "after-slow": "pending"}


def test_a_step_past_its_timeout_is_cancelled_and_fails(engine: Engine, records: Records) -> None:
    began = time.monotonic()
    run = engine.start(book(record_step("a", sleep=5, timeout=0.1)), target="t")

    assert time.monotonic() - began < 2
    step = engine.journal.steps(run.id)[0]
    assert step.status is StepStatus.FAILED and step.error == "timed out after 0.1s"
    assert records.count("apply", run.id) == {}


def test_invalid_parameters_at_run_time_fail_the_step(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a", sleep="${vars.wait}"), vars={"wait": "soon"})
    run = engine.start(playbook, target="t")
    assert engine.journal.steps(run.id)[0].error.startswith("invalid parameters: sleep:")


def test_a_dry_run_calls_plan_only_and_is_journaled_as_one(engine: Engine, records: Records) -> None:
    run = engine.start(book(*DIAMOND), target="t", dry_run=True)

    assert run.status is RunStatus.SUCCEEDED and run.dry_run
    assert records.count("apply") == {} and records.count("plan", run.id) == {"a": 1, "b": 1, "c": 1, "d": 1}
    step = engine.journal.document(run.id)["steps"][0]
    assert step["outputs"]["changes"] == [{"operation": "create", "kind": "record", "name": "a", "detail": f"marker {run.id}/a"}]
    assert engine.lock.holder() is None  # a dry run takes no lock


def test_plan_marks_parameters_known_only_after_a_step_ran(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a"), record_step("b", ["a"], name="${steps.a.outputs.name}-b"),
                    record_step("c", ["a"], sleep="${steps.a.outputs.wait}"))
    plan = engine.plan(playbook, target="t")
    assert [(s.id, s.status) for s in plan.steps] == [("a", "planned"), ("b", "planned"), ("c", "deferred")]
    assert plan.steps[1].changes[0].name == "${steps.a.outputs.name}-b"
    assert plan.steps[2].note == "known after a ran"
    assert records.count("apply") == {}


def test_resume_skips_done_steps_and_redoes_the_failed(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a"), record_step("b", ["a"], transient_failures=2, retries=0), record_step("c", ["b"]))
    run = engine.start(playbook, target="t")
    assert statuses(engine, run.id) == {"a": "succeeded", "b": "failed", "c": "pending"}

    assert engine.resume(run.id).status is RunStatus.FAILED  # b's second attempt is throttled too
    assert engine.resume(run.id).status is RunStatus.SUCCEEDED
    assert records.count("apply", run.id) == {"a": 1, "b": 1, "c": 1}
    assert [step.attempts for step in engine.journal.steps(run.id)] == [1, 3, 1]
    assert len(events(engine, run.id, "run-resumed")) == 2
    assert engine.journal.run(run.id).error is None


def test_resume_of_a_step_left_running_applies_it_again_idempotently(engine: Engine, records: Records) -> None:
    """As after kill -9: the journal says running, the action had already applied."""
    run = engine.start(book(*DIAMOND), target="t")
    with engine.store.transaction() as db:  # rewind the journal to "b and d were running"
        db.execute("UPDATE steps SET status = 'running', outputs = NULL WHERE run_id = ? AND id IN ('b', 'd')", (run.id,))
        db.execute("UPDATE runs SET status = 'running' WHERE id = ?", (run.id,))

    assert engine.resume(run.id).status is RunStatus.SUCCEEDED
    assert records.count("apply", run.id) == {"a": 1, "b": 1, "c": 1, "d": 1}
    assert statuses(engine, run.id) == dict.fromkeys("abcd", "succeeded")


def test_resume_refuses_dry_runs_and_rolled_back_runs(engine: Engine, records: Records) -> None:
    dry = engine.start(book(*DIAMOND), target="t", dry_run=True)
    with pytest.raises(InputError, match="dry run"):
        engine.resume(dry.id)
    run = engine.start(book(*DIAMOND), target="t")
    engine.rollback(run.id)
    with pytest.raises(InputError, match="rolled_back"):
        engine.resume(run.id)


def test_rollback_after_success_undoes_every_step_once_in_reverse_order(engine: Engine, records: Records) -> None:
    run = engine.start(book(*DIAMOND), target="t")
    rolled = engine.rollback(run.id)

    assert rolled.status is RunStatus.ROLLED_BACK
    assert records.count("undo", run.id) == records.count("apply", run.id)
    order = [line.split("/")[1] for line in records.lines() if line.startswith("undo")]
    assert order.index("d") < min(order.index("b"), order.index("c")) and order.index("a") == 3
    assert all(item["undone_at"] for step in engine.journal.document(run.id)["steps"] for item in step["created"])

    assert engine.rollback(run.id).status is RunStatus.ROLLED_BACK  # again: nothing more happens
    assert records.count("undo", run.id) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_rollback_after_a_failure_undoes_what_was_applied_failed_steps_included(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a", sleep=0.1), record_step("b", ["a"], fail=True), record_step("c", ["b"]),
                    record_step("x"))
    run = engine.start(playbook, target="t")
    assert run.status is RunStatus.FAILED

    rolled = engine.rollback(run.id)
    assert rolled.status is RunStatus.ROLLED_BACK and rolled.error == "step b failed: b failed as asked"
    assert records.count("apply", run.id) == {"a": 1, "b": 1, "x": 1}
    assert records.count("undo", run.id) == {"a": 1, "b": 1, "x": 1}
    assert statuses(engine, run.id) == {"a": "rolled_back", "b": "rolled_back", "c": "pending", "x": "rolled_back"}


def test_rollback_on_failure_is_automatic(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a"), record_step("b", ["a"], fail=True))
    run = engine.start(playbook, target="t", rollback_on_failure=True)
    assert run.status is RunStatus.ROLLED_BACK and run.error.startswith("step b failed")
    assert records.count("undo", run.id) == {"a": 1, "b": 1}


def test_a_failed_undo_keeps_what_it_needs_and_the_rollback_can_be_repeated(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a"), record_step("b", ["a"], fail_undo=True), record_step("x"))
    run = engine.start(playbook, target="t")
    rolled = engine.rollback(run.id)

    assert rolled.status is RunStatus.ROLLBACK_FAILED and rolled.error == "undo of step b failed: undo of b failed as asked"
    assert records.count("undo", run.id) == {"x": 1}  # a stays: b, which needs it, is still there
    assert statuses(engine, run.id) == {"a": "succeeded", "b": "succeeded", "x": "rolled_back"}
    assert events(engine, run.id, "step-undo-failed")[0]["step_id"] == "b"


def test_an_unknown_action_is_invalid_input_before_anything_runs(engine: Engine, records: Records) -> None:
    playbook = book({"id": "a", "action": "no-such-action"})
    with pytest.raises(InputError, match="unknown action"):
        engine.start(playbook, target="t")
    assert engine.journal.runs("svc") == []


def test_an_unknown_snapshot_is_not_found(engine: Engine, records: Records) -> None:
    with pytest.raises(NotFound):
        engine.start(book(*DIAMOND), target="t", snapshot="snap-nope")


class CtrlC(Observer):
    """Presses Ctrl-C shortly after the run started (only then: a stray SIGINT would stop pytest)."""

    def run_started(self, run_id: str, steps: list, *, phase: str) -> None:
        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)).start()


def test_ctrl_c_stops_gracefully_and_resume_finishes(engine: Engine, records: Records) -> None:
    playbook = book(record_step("a", sleep=1), record_step("b", sleep=1), record_step("c", ["a"]))
    engine.observer = CtrlC()
    with pytest.raises(Interrupted, match="resume"):
        engine.start(playbook, target="t", parallelism=2)
    engine.observer = Observer()

    run_id = engine.journal.runs("svc")[0]["run_id"]
    assert engine.journal.run(run_id).status is RunStatus.INTERRUPTED
    # cancelled, not waited out: neither applied
    assert statuses(engine, run_id) == {"a": "interrupted", "b": "interrupted", "c": "pending"}
    assert records.count("apply", run_id) == {}
    assert engine.lock.holder() is None
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

    assert engine.resume(run_id).status is RunStatus.SUCCEEDED
    assert records.count("apply", run_id) == {"a": 1, "b": 1, "c": 1}


def test_journal_lists_and_finds_runs(engine: Engine, records: Records) -> None:
    first = engine.start(book(*DIAMOND), target="t")
    second = engine.start(book(*DIAMOND), target="t", dry_run=True)
    journal = Journal(engine.store)
    assert [r["run_id"] for r in journal.runs("svc")] == [first.id, second.id]
    assert journal.runs("svc")[0]["steps_done"] == 4
    assert journal.resolve_run("svc", "latest") == second.id
    assert journal.resolve_run("svc", first.id) == first.id
    with pytest.raises(NotFound):
        journal.resolve_run("svc", "run-nope")


class PeekParams(Params):
    pass


@ACTIONS.register("peek")
class Peek(Action):
    """Shows what the action context carries."""

    Params = PeekParams
    mutates = False

    def plan(self, ctx: ActionContext, params: PeekParams) -> list[Change]:
        return []

    def apply(self, ctx: ActionContext, params: PeekParams) -> dict:
        manifest = ctx.manifest
        return {"target": ctx.target_name, "service": ctx.service, "labels": ctx.labels, "targets": ctx.targets.name,
                "needs_outputs": ctx.outputs, "snapshot_resources": None if manifest is None else len(manifest.resources)}

    def undo(self, ctx: ActionContext, params: PeekParams) -> None:
        raise AssertionError("a step that mutates nothing is not undone")


SNAPSHOT = {
    "schema_version": 1, "service": "svc", "taken_at": "2026-01-01T00:00:00Z",
    "source": {"provider": "aws", "account": "123", "regions": ["us-east-1"]},
    "resources": [{"kind": "bucket", "id": "media", "name": "media", "region": "us-east-1", "tags": {},
                   "objects": 2, "bytes": 10, "versioning": False}],
    "unsupported": [],
}


def test_actions_get_the_snapshot_the_target_and_the_outputs_of_their_needs(engine: Engine, records: Records) -> None:
    peek = book(record_step("a"), record_step("b"), {"id": "p", "action": "peek", "needs": ["a"]})
    run = engine.start(peek, target="t")
    assert run.snapshot_id is None
    outputs = engine.journal.steps(run.id)[2].outputs
    assert outputs["snapshot_resources"] is None
    assert outputs["targets"] == "t" and outputs["needs_outputs"] == {"a": {"name": "a", "marker": f"{run.id}/a"}}

    info = engine.store.save_snapshot(parse_manifest(SNAPSHOT, "test"))
    run = engine.start(peek, target="t")
    outputs = engine.journal.steps(run.id)[2].outputs
    assert run.snapshot_id == info.id and outputs["snapshot_resources"] == 1
    assert outputs["target"] == "t" and outputs["labels"] == {"failover-run": run.id, "failover-service": "svc", "failover-step": "p"}
    assert engine.start(peek, target="t", snapshot=info.id[:12]).snapshot_id == info.id
    assert engine.rollback(run.id).status is RunStatus.ROLLED_BACK


def test_an_interrupted_rollback_is_finished_by_rollback_again(engine: Engine, records: Records) -> None:
    run = engine.start(book(*DIAMOND), target="t")
    with engine.store.transaction() as db:  # as if Ctrl-C came after d and b were undone
        db.execute("UPDATE runs SET status = 'rolling_back' WHERE id = ?", (run.id,))
    engine.journal.step_rolled_back(run.id, "d")
    records.path.write_text(records.path.read_text() + f"undo {run.id}/d\n")

    with pytest.raises(InputError, match="rollback"):
        engine.resume(run.id)
    assert engine.rollback(run.id).status is RunStatus.ROLLED_BACK
    assert records.count("undo", run.id) == {"a": 1, "b": 1, "c": 1, "d": 1}
