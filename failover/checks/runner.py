"""Running every readiness check at once and reporting them in a fixed order.

Checks run concurrently on a thread pool (each may wait on a slow target). A check that
raises fails, with the error as its detail; the others go on. Every detail has the
config's secrets (the values of its ``${env:NAME}`` references, read at call time)
replaced by ``***``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from failover.checks.base import (
    FAIL,
    PASS,
    WARN,
    Check,
    CheckContext,
    CheckResult,
    Outcome,
    ordered_checks,
    redact,
)
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
) -> Report:
    """Every check (default: every registered one), concurrently; results in report order."""
    classes = ordered_checks() if checks is None else list(checks)
    checked_at, started = now_iso(), time.monotonic()
    secrets = ctx.secret_values()

    def one(cls: type[Check]) -> CheckResult:
        result = run_one(cls, ctx, secrets)
        if on_done is not None:
            on_done(result)
        return result

    pool = ThreadPoolExecutor(max_workers=max(1, min(MAX_WORKERS, len(classes))), thread_name_prefix="failover-check")
    try:
        futures = [pool.submit(in_context(one), cls) for cls in classes]
        results = [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: do not wait for a slow target
        raise
    pool.shutdown(wait=True)
    return Report(
        service=ctx.service, target=ctx.target_name, playbook=ctx.playbook,
        snapshot=ctx.snapshot.id if ctx.snapshot is not None else None, checked_at=checked_at, checks=results,
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
