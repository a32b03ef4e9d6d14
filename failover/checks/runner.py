"""Running every readiness check at once and reporting them in a fixed order.

Checks run concurrently on a thread pool (each may wait on a slow target). A check that
raises fails, with the error as its detail; the others go on. Every detail has the
config's secrets (the values of its ``${env:NAME}`` references, read at call time)
replaced by ``***``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from failover.checks.base import FAIL, PASS, WARN, Check, CheckContext, CheckResult, Outcome, ordered_checks, redact
from failover.errors import FailoverError, Interrupted
from failover.manifest import now_iso
from failover.retry import in_context

MAX_WORKERS = 8
MAX_DETAIL = 1000  # characters of a detail line; the data keep the whole story


@dataclass(frozen=True)
class Report:
    """The verdict: ready when no check failed (warnings allowed)."""

    service: str
    target: str
    playbook: str
    snapshot: str | None
    checked_at: str
    checks: list[CheckResult]
    elapsed_s: float = 0.0  # the whole run, wall clock

    @property
    def ready(self) -> bool:
        return not any(check.status == FAIL for check in self.checks)

    @property
    def counts(self) -> dict[str, int]:
        return {status: sum(1 for check in self.checks if check.status == status) for status in (PASS, WARN, FAIL)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service, "target": self.target, "playbook": self.playbook, "snapshot": self.snapshot,
            "checked_at": self.checked_at, "ready": self.ready, "counts": self.counts,
            "checks": [check.to_dict() for check in self.checks],
        }

    def summary(self) -> str:
        counts = self.counts
        warnings = f"{counts[WARN]} warning{'' if counts[WARN] == 1 else 's'}"
        if self.ready:
            return "ready" + (f" ({warnings})" if counts[WARN] else "")
        return f"NOT READY: {counts[FAIL]} failed, {warnings}"


def run_checks(
    ctx: CheckContext,
    checks: list[type[Check]] | None = None,
    *,
    on_done: Callable[[CheckResult], None] | None = None,
    timeout_s: float | None = None,
) -> Report:
    """Every check (default: every registered one), concurrently; results in report order.

    With ``timeout_s``, a check still waiting on its target when the time is up fails
    ("no answer within ..."), and the report is made without it: a cron job never hangs
    on a target that does not answer. The checks run on daemon threads, so one that
    never returns does not keep the process alive either."""
    classes = ordered_checks() if checks is None else list(checks)
    checked_at, started = now_iso(), time.monotonic()
    secrets = ctx.secret_values()
    slots = threading.BoundedSemaphore(MAX_WORKERS)
    finished = threading.Condition()
    results: dict[int, CheckResult] = {}

    def one(index: int, cls: type[Check]) -> None:
        with slots:
            result = run_one(cls, ctx, secrets)
        with finished:
            if index in results:  # reported as timed out already
                return
            results[index] = result
            finished.notify_all()
        if on_done is not None:
            on_done(result)

    for index, cls in enumerate(classes):
        threading.Thread(target=in_context(one), args=(index, cls), name=f"failover-check-{cls.name}",
                         daemon=True).start()
    deadline = None if timeout_s is None else started + timeout_s
    with finished:
        while len(results) < len(classes):
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                break
            finished.wait(remaining)
        for index, cls in enumerate(classes):
            if index not in results:
                results[index] = CheckResult(name=cls.name, status=FAIL, elapsed_s=timeout_s or 0.0,
                                             detail=f"no answer within {timeout_s:g}s (--timeout): the target did not "
                                                    "answer in time, or the check is stuck")
        ordered = [results[index] for index in range(len(classes))]
    return Report(
        service=ctx.service, target=ctx.target_name, playbook=ctx.playbook,
        snapshot=ctx.snapshot.id if ctx.snapshot is not None else None, checked_at=checked_at, checks=ordered,
        elapsed_s=time.monotonic() - started,
    )


def run_one(cls: type[Check], ctx: CheckContext, secrets: list[str]) -> CheckResult:
    """One check; whatever it raises becomes its failure."""
    started = time.monotonic()
    try:
        if cls.needs_snapshot and ctx.manifest is None:
            outcome = Outcome(FAIL, "no snapshot to check against (see snapshot-age): run `failover inventory`")
        else:
            outcome = cls().run(ctx)
            if not isinstance(outcome, Outcome):
                raise TypeError(f"check {cls.name} returned {type(outcome).__name__}, not an Outcome")
    except Interrupted:
        raise
    except FailoverError as exc:
        outcome = Outcome(FAIL, "; ".join(exc.lines()))
    except Exception as exc:  # noqa: BLE001 - a broken check fails, it never stops the others
        outcome = Outcome(FAIL, f"the check crashed: {type(exc).__name__}: {exc}")
    detail = redact(" ".join(outcome.detail.split()), secrets)
    if len(detail) > MAX_DETAIL:
        detail = detail[: MAX_DETAIL - 3] + "..."
    return CheckResult(name=cls.name, status=outcome.status, detail=detail, elapsed_s=time.monotonic() - started,
                       data=_redacted(outcome.data, secrets))


def _redacted(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact(value, secrets)
    if isinstance(value, dict):
        return {str(k): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_redacted(v, secrets) for v in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    return redact(str(value), secrets)  # JSON holds what a plugin's data gave, as text
