"""The run journal in the state store: runs, their steps, the resources each step created,
and a timeline of events. It is the one truth for status, resume, rollback and reports.

Every change is its own small committed transaction, written before and after each side
effect, so that a process killed at any instant leaves a journal that says what may have
happened. Nothing here rereads the whole journal to write one event.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from failover.clock import now
from failover.errors import NotFound, Problem
from failover.state import StateStore


class RunStatus(StrEnum):
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class StepStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    INTERRUPTED = "interrupted"
    ROLLED_BACK = "rolled_back"


# Steps whose action may have created something: rollback undoes them, resume redoes the last three.
APPLIED = frozenset({StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.RUNNING, StepStatus.INTERRUPTED})
DONE = frozenset({StepStatus.SUCCEEDED, StepStatus.SKIPPED})
KEEP = object()




@dataclass(frozen=True)
class RunRecord:
    id: str
    service: str
    playbook: str
    definition: dict[str, Any]  # the playbook as it was run, templates unresolved
    target: str
    snapshot_id: str | None
    dry_run: bool
    parallelism: int
    status: RunStatus
    started_at: str
    ended_at: str | None
    error: str | None
    drill_prefix: str | None = None  # a drill's run: its names isolated under this prefix (ActionContext.drill_prefix)


@dataclass(frozen=True)
class StepRecord:
    id: str
    action: str
    status: StepStatus
    attempts: int
    started_at: str | None
    ended_at: str | None
    outputs: dict[str, Any] | None
    error: str | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "action": self.action, "status": str(self.status), "attempts": self.attempts,
            "started_at": self.started_at, "ended_at": self.ended_at, "outputs": self.outputs, "error": self.error,
        }


class Journal:
    def __init__(self, store: StateStore) -> None:
        self.store = store

    # -- runs ----------------------------------------------------------------------------
    def create_run(self, run: RunRecord, steps: list[tuple[str, str]]) -> None:
        """The run and its steps (id, action), all pending, in one transaction."""
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO runs (id, service, playbook, definition, target, snapshot_id, dry_run, parallelism,"
                " status, started_at, drill_prefix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run.id, run.service, run.playbook, json.dumps(run.definition), run.target, run.snapshot_id,
                 int(run.dry_run), run.parallelism, str(run.status), run.started_at, run.drill_prefix),
            )
            db.executemany(
                "INSERT INTO steps (run_id, id, position, action, status) VALUES (?, ?, ?, ?, 'pending')",
                [(run.id, step_id, position, action) for position, (step_id, action) in enumerate(steps)],
            )
            started = {"dry_run": run.dry_run, "target": run.target}
            if run.drill_prefix is not None:
                started["drill_prefix"] = run.drill_prefix
            _event(db, run.id, None, "run-started", started)

    def set_run_status(self, run_id: str, status: RunStatus, *, error: str | None | object = KEEP) -> None:
        """``error`` is kept unless given: a rolled back run still says why it failed."""
        final = status not in (RunStatus.RUNNING, RunStatus.ROLLING_BACK)
        with self.store.transaction() as db:
            db.execute("UPDATE runs SET status = ?, ended_at = ? WHERE id = ?", (str(status), now() if final else None, run_id))
            if error is not KEEP:
                db.execute("UPDATE runs SET error = ? WHERE id = ?", (error, run_id))
            _event(db, run_id, None, f"run-{status}".replace("_", "-"), {"error": error} if error is not KEEP and error else None)

    def note(self, run_id: str, event: str, detail: dict[str, Any] | None = None, step_id: str | None = None) -> None:
        with self.store.transaction() as db:
            _event(db, run_id, step_id, event, detail)

    def run(self, run_id: str) -> RunRecord:
        rows = self.store.query("SELECT * FROM runs WHERE id = ?", (run_id,))
        if not rows:
            raise NotFound([Problem(file="run", field=run_id, message="no such run (see `failover runs`)")])
        row = rows[0]
        return RunRecord(
            id=row["id"], service=row["service"], playbook=row["playbook"], definition=json.loads(row["definition"]),
            target=row["target"], snapshot_id=row["snapshot_id"], dry_run=bool(row["dry_run"]),
            parallelism=row["parallelism"], status=RunStatus(row["status"]), started_at=row["started_at"],
            ended_at=row["ended_at"], error=row["error"], drill_prefix=row["drill_prefix"],
        )

    def resolve_run(self, service: str, ref: str) -> str:
        """A run id, an unambiguous prefix of one, or ``latest``."""
        if ref == "latest":
            rows = self.store.query(
                "SELECT id FROM runs WHERE service = ? ORDER BY started_at DESC, id DESC LIMIT 1", (service,)
            )
        else:
            rows = self.store.query("SELECT id FROM runs WHERE service = ? AND id = ?", (service, ref)) or self.store.query(
                "SELECT id FROM runs WHERE service = ? AND substr(id, 1, ?) = ? LIMIT 2", (service, len(ref), ref)
            )
        if len(rows) == 1:
            return rows[0]["id"]
        why = "ambiguous run id" if rows else f"no run of {service} with that id (see `failover runs`)"
        raise NotFound([Problem(file="run", field=ref, message=why)])

    def runs(self, service: str) -> list[dict[str, Any]]:
        rows = self.store.query(
            "SELECT r.id, r.playbook, r.target, r.snapshot_id, r.dry_run, r.drill_prefix, r.status,"
            " r.started_at, r.ended_at,"
            " (SELECT count(*) FROM steps s WHERE s.run_id = r.id) AS steps,"
            " (SELECT count(*) FROM steps s WHERE s.run_id = r.id AND s.status IN ('succeeded', 'skipped')) AS done"
            " FROM runs r WHERE r.service = ? ORDER BY r.started_at, r.id",
            (service,),
        )
        return [
            {"run_id": r["id"], "playbook": r["playbook"], "target": r["target"], "snapshot": r["snapshot_id"],
             "dry_run": bool(r["dry_run"]), "drill_prefix": r["drill_prefix"], "status": r["status"],
             "started_at": r["started_at"], "ended_at": r["ended_at"], "steps": r["steps"], "steps_done": r["done"]}
            for r in rows
        ]

    # -- steps ---------------------------------------------------------------------------
    def steps(self, run_id: str) -> list[StepRecord]:
        rows = self.store.query("SELECT * FROM steps WHERE run_id = ? ORDER BY position", (run_id,))
        return [
            StepRecord(
                id=r["id"], action=r["action"], status=StepStatus(r["status"]), attempts=r["attempts"],
                started_at=r["started_at"], ended_at=r["ended_at"],
                outputs=json.loads(r["outputs"]) if r["outputs"] is not None else None, error=r["error"],
            )
            for r in rows
        ]

    def step_started(self, run_id: str, step_id: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE steps SET status = 'running', attempts = attempts + 1, started_at = ?, ended_at = NULL,"
                " error = NULL WHERE run_id = ? AND id = ?",
                (now(), run_id, step_id),
            )
            _event(db, run_id, step_id, "step-started")

    def step_retrying(self, run_id: str, step_id: str, error: str, wait: float) -> None:
        with self.store.transaction() as db:
            db.execute("UPDATE steps SET attempts = attempts + 1 WHERE run_id = ? AND id = ?", (run_id, step_id))
            _event(db, run_id, step_id, "step-retry", {"error": error, "wait_s": round(wait, 3)})

    def request_retrying(self, run_id: str, step_id: str, error: str, wait: float) -> None:
        """One provider request of the step retried (the step itself goes on)."""
        with self.store.transaction() as db:
            _event(db, run_id, step_id, "request-retry", {"error": error, "wait_s": round(wait, 3)})

    def step_finished(
        self, run_id: str, step_id: str, status: StepStatus, *, outputs: dict[str, Any] | None = None, error: str | None = None
    ) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE steps SET status = ?, ended_at = ?, outputs = ?, error = ? WHERE run_id = ? AND id = ?",
                (str(status), now(), json.dumps(outputs, default=str) if outputs is not None else None, error, run_id, step_id),
            )
            _event(db, run_id, step_id, f"step-{status}".replace("_", "-"), {"error": error} if error else None)

    def step_rolled_back(self, run_id: str, step_id: str) -> None:
        with self.store.transaction() as db:
            at = now()
            db.execute(
                "UPDATE created_resources SET undone_at = ? WHERE run_id = ? AND step_id = ? AND undone_at IS NULL",
                (at, run_id, step_id),
            )
            db.execute("UPDATE steps SET status = 'rolled_back' WHERE run_id = ? AND id = ?", (run_id, step_id))
            _event(db, run_id, step_id, "step-rolled-back")

    def reset_for_resume(self, run_id: str, step_ids: list[str]) -> None:
        """Steps to be redone go back to pending; their attempts and created resources stay."""
        with self.store.transaction() as db:
            db.executemany(
                "UPDATE steps SET status = 'pending', ended_at = NULL WHERE run_id = ? AND id = ?",
                [(run_id, step_id) for step_id in step_ids],
            )
            db.execute("UPDATE runs SET status = 'running', ended_at = NULL, error = NULL WHERE id = ?", (run_id,))
            _event(db, run_id, None, "run-resumed", {"redo": step_ids})

    # -- created resources -------------------------------------------------------------
    def record_resource(self, run_id: str, step_id: str, item: dict[str, Any]) -> None:
        """Committed before the action goes on: a crash right after still knows the resource."""
        details = {k: v for k, v in item.items() if k not in ("kind", "id")}
        with self.store.transaction() as db:
            db.execute(
                "INSERT INTO created_resources (run_id, step_id, kind, resource_id, details, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (run_id, step_id, kind, resource_id)"
                " DO UPDATE SET details = excluded.details, undone_at = NULL",
                (run_id, step_id, str(item["kind"]), str(item["id"]), json.dumps(details, default=str), now()),
            )

    def created(self, run_id: str, step_id: str) -> list[dict[str, Any]]:
        """What the step created and was not undone, as the action recorded it (``ActionContext.created``)."""
        rows = self.store.query(
            "SELECT kind, resource_id, details FROM created_resources"
            " WHERE run_id = ? AND step_id = ? AND undone_at IS NULL ORDER BY rowid",
            (run_id, step_id),
        )
        return [{"kind": r["kind"], "id": r["resource_id"], **json.loads(r["details"])} for r in rows]

    def events(self, run_id: str) -> list[dict[str, Any]]:
        rows = self.store.query("SELECT * FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        return [
            {"at": r["at"], "step_id": r["step_id"], "event": r["event"],
             **({"detail": json.loads(r["detail"])} if r["detail"] else {})}
            for r in rows
        ]

    # -- the report ------------------------------------------------------------------------
    def document(self, run_id: str) -> dict[str, Any]:
        """The run as ``run --json`` and ``status --json`` print it."""
        run = self.run(run_id)
        created: dict[str, list[dict[str, Any]]] = {}
        for r in self.store.query("SELECT * FROM created_resources WHERE run_id = ? ORDER BY rowid", (run_id,)):
            created.setdefault(r["step_id"], []).append({
                "kind": r["kind"], "id": r["resource_id"], **json.loads(r["details"]),
                "created_at": r["created_at"], "undone_at": r["undone_at"],
            })
        return {
            "run_id": run.id, "service": run.service, "playbook": run.playbook, "target": run.target,
            "snapshot": run.snapshot_id, "dry_run": run.dry_run, "drill_prefix": run.drill_prefix,
            "parallelism": run.parallelism,
            "status": str(run.status), "started_at": run.started_at, "ended_at": run.ended_at, "error": run.error,
            "steps": [{**step.to_dict(), "created": created.get(step.id, [])} for step in self.steps(run_id)],
        }


def _event(db: Any, run_id: str, step_id: str | None, event: str, detail: dict[str, Any] | None = None) -> None:
    db.execute(
        "INSERT INTO events (run_id, step_id, at, event, detail) VALUES (?, ?, ?, ?, ?)",
        (run_id, step_id, now(), event, json.dumps(detail, default=str) if detail else None),
    )
