"""The journal's records: runs, steps, created resources, events."""

from __future__ import annotations

import pytest

from failover.engine.journal import Journal, RunRecord, RunStatus, StepStatus, now
from failover.errors import NotFound
from failover.state import StateStore


def new_run(journal: Journal, run_id: str = "run-20260101T000000Z-aaaaaa") -> RunRecord:
    run = RunRecord(id=run_id, service="svc", playbook="p", definition={"name": "p", "steps": []}, target="t",
                    snapshot_id=None, dry_run=False, parallelism=2, status=RunStatus.RUNNING, started_at=now(),
                    ended_at=None, error=None)
    journal.create_run(run, [("a", "record"), ("b", "record")])
    return run


def test_created_resources_are_kept_as_recorded_once_each(store: StateStore) -> None:
    journal = Journal(store)
    run = new_run(journal)
    journal.record_resource(run.id, "a", {"kind": "node", "id": "n-1", "name": "web-1"})
    journal.record_resource(run.id, "a", {"kind": "node", "id": "n-2", "name": "web-2"})
    journal.record_resource(run.id, "a", {"kind": "node", "id": "n-1", "name": "web-1", "ip": "10.0.0.1"})  # again, after a crash

    assert journal.created(run.id, "a") == [{"kind": "node", "id": "n-1", "name": "web-1", "ip": "10.0.0.1"},
                                            {"kind": "node", "id": "n-2", "name": "web-2"}]
    assert journal.created(run.id, "b") == []

    journal.step_rolled_back(run.id, "a")
    assert journal.created(run.id, "a") == []
    step = journal.document(run.id)["steps"][0]
    assert step["status"] == "rolled_back" and all(item["undone_at"] for item in step["created"])


def test_step_records_count_attempts_across_retries_and_resumes(store: StateStore) -> None:
    journal = Journal(store)
    run = new_run(journal)
    journal.step_started(run.id, "a")
    journal.step_retrying(run.id, "a", "throttled", 0.5)
    journal.step_finished(run.id, "a", StepStatus.FAILED, error="boom")
    journal.reset_for_resume(run.id, ["a", "b"])
    journal.step_started(run.id, "a")
    journal.step_finished(run.id, "a", StepStatus.SUCCEEDED, outputs={"x": 1})

    a = journal.steps(run.id)[0]
    assert (a.status, a.attempts, a.outputs, a.error) == (StepStatus.SUCCEEDED, 3, {"x": 1}, None)
    assert [e["event"] for e in journal.events(run.id)] == [
        "run-started", "step-started", "step-retry", "step-failed", "run-resumed", "step-started", "step-succeeded"]


def test_run_status_keeps_the_error_unless_told(store: StateStore) -> None:
    journal = Journal(store)
    run = new_run(journal)
    journal.set_run_status(run.id, RunStatus.FAILED, error="step a failed: boom")
    journal.set_run_status(run.id, RunStatus.ROLLING_BACK)
    assert journal.run(run.id).ended_at is None
    journal.set_run_status(run.id, RunStatus.ROLLED_BACK)
    record = journal.run(run.id)
    assert (record.status, record.error) == (RunStatus.ROLLED_BACK, "step a failed: boom") and record.ended_at


def test_runs_are_found_by_id_prefix_or_latest(store: StateStore) -> None:
    journal = Journal(store)
    first = new_run(journal, "run-20260101T000000Z-aaaaaa")
    second = new_run(journal, "run-20260102T000000Z-bbbbbb")
    assert journal.resolve_run("svc", "run-20260101") == first.id
    assert journal.resolve_run("svc", "latest") == second.id
    with pytest.raises(NotFound, match="ambiguous"):
        journal.resolve_run("svc", "run-2026")
    with pytest.raises(NotFound):
        journal.resolve_run("other-service", first.id)
