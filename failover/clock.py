"""Time, in one place: timestamps as the state store and manifests write them, parsing them
back, durations as the config spells them, and durations as people read them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d)?\s*$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


def now(timespec: str = "milliseconds") -> str:
    """The current UTC time in ISO-8601 with a ``Z``: milliseconds for journals and records,
    ``timespec="seconds"`` for manifests (``taken_at``)."""
    return datetime.now(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_iso() -> str:
    """The current UTC time to the second (a manifest's ``taken_at``)."""
    return now("seconds")


def parse_time(text: str) -> datetime:
    """An ISO-8601 time as the state store writes it (``...Z``); naive means UTC."""
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def parse_duration(value: Any) -> float:
    """``90``, ``"90s"``, ``"30m"``, ``"24h"``, ``"2d"`` -> seconds."""
    if isinstance(value, bool):
        raise ValueError("a duration like 30m, 24h or a number of seconds")
    if isinstance(value, (int, float)):
        if value < 0:
            raise ValueError("must not be negative")
        return float(value)
    match = DURATION.match(str(value))
    if not match:
        raise ValueError(f"{value!r} is not a duration (like 90s, 30m, 24h, 2d)")
    return float(match.group(1)) * _UNITS[match.group(2)]


def duration(seconds: float | None) -> str:
    """A measured time, exact enough to compare runs: ``4.2s``, ``3m 5s``, ``1h 2m``; an em
    dash when unknown (drill reports and tables)."""
    if seconds is None:
        return "—"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s" if secs else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes}m" if minutes else f"{hours}h"


def approx_duration(seconds: float | None) -> str:
    """An age or a limit in one short word: ``42s``, ``12m``, ``3.5h``, ``2.1d``; ``?`` when
    unknown (readiness checks)."""
    if seconds is None:
        return "?"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 2 * 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"
