"""``record``: a test action that writes every apply and undo as a line to the file named
by ``$FAILOVER_RECORD_FILE``, so tests can count what really happened.

Like a real action it is idempotent: an apply finds its earlier apply by the marker
``RUN/STEP`` (as a real one finds a resource by its ``failover-run`` label) and does not
write it twice; an undo likewise. Load it with ``FAILOVER_ACTION_MODULES=recording_action``
and ``tests/support`` on ``PYTHONPATH``.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import Interrupted, OperationFailed, TransientError

RECORD_FILE = "FAILOVER_RECORD_FILE"

_lock = threading.Lock()
_attempts: Counter[str] = Counter()


class RecordParams(Params):
    name: str
    fail: bool = False  # apply writes its line, then fails
    fail_undo: bool = False
    fail_plan: bool = False  # the read-only check fails
    sleep: float = 0.0  # seconds, before applying and before undoing; a cancel ends it
    transient_failures: int = 0  # the first attempts of this process fail with a TransientError


def record_file() -> Path:
    return Path(os.environ[RECORD_FILE])


def lines() -> list[str]:
    path = record_file()
    return path.read_text().splitlines() if path.exists() else []


def _append(line: str) -> None:
    with _lock, record_file().open("a") as file:
        file.write(line + "\n")


def _marker(ctx: ActionContext) -> str:
    return f"{ctx.run_id}/{ctx.step_id}"


@ACTIONS.register("record")
class Record(Action):
    summary = "Test action: records applies and undos in $FAILOVER_RECORD_FILE."
    Params = RecordParams
    example: ClassVar[dict[str, Any]] = {"name": "a"}

    def plan(self, ctx: ActionContext, params: RecordParams) -> list[Change]:
        _append(f"plan {_marker(ctx)}")
        if params.fail_plan:
            raise OperationFailed(f"{params.name} cannot be done")
        return [Change("create", "record", params.name, f"marker {_marker(ctx)}")]

    def apply(self, ctx: ActionContext, params: RecordParams) -> dict[str, Any]:
        marker = _marker(ctx)
        if params.sleep and ctx.cancel.wait(params.sleep):
            raise Interrupted("cancelled")
        with _lock:
            _attempts[marker] += 1
            if _attempts[marker] <= params.transient_failures:
                raise TransientError("throttled", retry_after=0.01)
        if f"apply {marker}" not in lines():
            _append(f"apply {marker}")
        ctx.record("record", marker, name=params.name)
        if params.fail:
            raise OperationFailed(f"{params.name} failed as asked")
        return {"name": params.name, "marker": marker}

    def undo(self, ctx: ActionContext, params: RecordParams) -> None:
        marker = _marker(ctx)
        if params.sleep and ctx.cancel.wait(params.sleep):
            raise Interrupted("cancelled")
        if params.fail_undo:
            raise OperationFailed(f"undo of {params.name} failed as asked")
        done = lines()
        if f"apply {marker}" in done and f"undo {marker}" not in done:
            _append(f"undo {marker}")
