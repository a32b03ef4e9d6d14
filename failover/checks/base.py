"""The readiness check API: what ``failover check`` runs, one check per class.

A check answers one question about whether the service could fail over right now
(is the snapshot fresh, do the replicas hold the data, can the target be reached...),
read-only: it reads the state store and the target, never the source, and never
creates, changes or deletes anything anywhere.

A check is a class with a kebab-case ``name`` registered in :data:`CHECKS`, whose
``run`` returns an :class:`Outcome` (``pass``, ``warn`` or ``fail``, a one-line detail,
and a JSON-able ``data`` dict)::

    @CHECKS.register("certificates-valid")
    class CertificatesValid(Check):
        summary = "Every certificate of the snapshot is valid for 30 more days."
        needs_snapshot = True

        def run(self, ctx: CheckContext) -> Outcome:
            ...
            return passed("3 certificates, the next expiring in 41 days", certificates=3)

Teams add checks as they add actions: a module registering its classes, found through
the entry-point group ``failover.checks`` or ``$FAILOVER_CHECK_MODULES``
(see :mod:`failover.registry`). A check that raises fails with the error as its detail;
it never stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, ClassVar

from failover.clock import parse_time
from failover.config import ENV_REF, Config, Readiness, missing_secrets
from failover.manifest import Manifest
from failover.registry import Registry
from failover.state import SnapshotInfo, StateStore

CHECKS: Registry = Registry("check", "failover.checks")

PASS, WARN, FAIL = "pass", "warn", "fail"
STATUSES = (PASS, WARN, FAIL)
REDACTED = "***"


@dataclass(frozen=True)
class Outcome:
    """What a check found: its status, one line for people, and data for scripts."""

    status: str
    detail: str
    data: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"a check's status is one of {', '.join(STATUSES)}, not {self.status!r}")


def passed(detail: str, **data: Any) -> Outcome:
    return Outcome(PASS, detail, data)


def warned(detail: str, **data: Any) -> Outcome:
    return Outcome(WARN, detail, data)


def failed(detail: str, **data: Any) -> Outcome:
    return Outcome(FAIL, detail, data)


def worst(statuses: list[str]) -> str:
    """``fail`` over ``warn`` over ``pass``."""
    return max(statuses, key=STATUSES.index, default=PASS)


def summarize(rows: list[dict[str, Any]], **data: Any) -> Outcome:
    """One outcome of per-item rows (each with ``status`` and ``detail``): the worst status,
    and the details of the items that have it (all of them when every item passed)."""
    status = worst([row["status"] for row in rows])
    detail = "; ".join(row["detail"] for row in rows if row["status"] == status or status == PASS)
    return Outcome(status, detail, data)


@dataclass(frozen=True)
class CheckResult:
    """A check's outcome as reported: by name, with the seconds it took."""

    name: str
    status: str
    detail: str
    elapsed_s: float
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "detail": self.detail,
                "elapsed_s": round(self.elapsed_s, 3), "data": self.data}


@dataclass
class CheckContext:
    """What every check sees. ``manifest`` is None when the state store holds no snapshot
    (the checks that need one are not run then: they fail naming ``snapshot-age``)."""

    config: Config
    target_name: str
    targets: Any  # failover.targets.Targets: the profile's compute, storage and dns adapters
    store: StateStore
    playbook: str  # the PLAYBOOK argument: a path or a built-in name
    vars: dict[str, str] = field(default_factory=dict)  # --var overrides
    snapshot: SnapshotInfo | None = None
    manifest: Manifest | None = None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # one clock for every check

    @property
    def service(self) -> str:
        return self.config.service

    @property
    def readiness(self) -> Readiness:
        return self.config.readiness

    @property
    def profile(self) -> Any:
        return self.targets.profile

    def field(self, *parts: str) -> str:
        """A config field path of the target profile: ``targets.fallback.storage``."""
        return ".".join(["targets", self.target_name, *parts])

    def no_capability(self, capability: str, why: str) -> Outcome:
        """The failure of a check that needs a capability the profile lacks."""
        return failed(f"the target profile has no {capability} ({self.field(capability)}), and {why}")

    def age_s(self, when: str | datetime | None) -> float | None:
        """Seconds from ``when`` (ISO-8601 or an aware datetime) to now; None for None."""
        if when is None:
            return None
        moment = parse_time(when) if isinstance(when, str) else when
        return max(0.0, (self.now - moment).total_seconds())

    def secret_values(self) -> list[str]:
        """The values of every ``${env:NAME}`` the config refers to, read now, to keep them
        out of every detail (never stored)."""
        texts: list[str] = []
        _strings(self.config.model_dump(mode="json"), texts)
        values = {os.environ.get(ref.group(1), "") for text in texts for ref in ENV_REF.finditer(text)}
        return sorted((v for v in values if len(v) >= 4), key=len, reverse=True)


def _strings(value: Any, out: list[str]) -> None:
    if isinstance(value, str):
        out.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            _strings(item, out)
    elif isinstance(value, list):
        for item in value:
            _strings(item, out)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, REDACTED)
    return text


class Check:
    """Subclass, set ``summary`` (and ``order`` for a built-in), implement ``run``, register.

    ``needs_snapshot``: ``run`` is only called with a snapshot (``ctx.manifest``);
    without one the check fails, naming ``snapshot-age``.
    """

    name: ClassVar[str]
    summary: ClassVar[str] = ""
    order: ClassVar[int] = 1000  # the built-ins 10..100, in the order they are reported; plugins after
    needs_snapshot: ClassVar[bool] = False

    def run(self, ctx: CheckContext) -> Outcome:
        raise NotImplementedError


def ordered_checks() -> list[type[Check]]:
    """Every registered check, in report order: the built-ins' order, then by name."""
    return sorted((cls for _, cls in CHECKS), key=lambda cls: (cls.order, cls.name))


# -- small helpers the checks share ----------------------------------------------------------






def some(items: list[str], limit: int = 5) -> str:
    """``a, b, c`` or ``a, b, c, d, e and 3 more``."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def plural(count: int, word: str, many: str | None = None) -> str:
    return f"{count} {word if count == 1 else many or word + 's'}"


def unset_secrets(ctx: CheckContext, capability: str) -> list[tuple[str, str]]:
    """(config field, variable) of each ``${env:NAME}`` of a capability's options that the
    environment does not set now."""
    spec = getattr(ctx.profile, capability)
    if spec is None:
        return []
    unset = missing_secrets(spec.model_dump(mode="json", exclude_none=True))
    return [(f"{ctx.field(capability)}.{where}", name) for where, name in unset]
