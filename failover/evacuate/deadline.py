"""The deadline and the estimate against it: when the evacuation must be over, how fast the copy
goes (measured as it goes), when it will be done, and what will not make it.

``--deadline`` is an ISO-8601 time with its offset (``2026-12-07T18:00:00+01:00``, or ``Z``) or a
duration from now (``20h``, ``90m``, ``45s``, ``2d``; ``1h30m`` too).
"""

from __future__ import annotations

import re
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from failover.errors import InputError, Problem

COMPOUND_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*"
                               r"(?:(\d+(?:\.\d+)?)s?)?\s*$")
RATE_WINDOW_S = 30.0  # the rate is what the last half minute of copying achieved
MIN_MEASURED_S = 1.0  # no rate from less: the first object's connection set-up is no rate


def parse_deadline(text: str, *, now: datetime | None = None) -> datetime:
    """``--deadline WHEN`` as an aware UTC time; InputError (exit 2) naming the argument otherwise."""
    now = now or datetime.now(UTC)
    value = text.strip()
    duration = COMPOUND_DURATION.match(value) if value else None
    if duration and any(duration.groups()):
        days, hours, minutes, seconds = (float(part or 0) for part in duration.groups())
        return now + timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    try:
        moment = datetime.fromisoformat(value.replace("z", "Z"))
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        why = ("an ISO-8601 time needs its offset (Z, +01:00)" if moment is not None
               else "neither an ISO-8601 time with an offset nor a duration (20h, 90m, 1h30m)")
        raise InputError([Problem(file="arguments", field="--deadline", message=f"{text!r}: {why}")])
    moment = moment.astimezone(UTC)
    if moment <= now:
        raise InputError([Problem(file="arguments", field="--deadline",
                                  message=f"{text!r} has passed already ({moment.isoformat(timespec='seconds')})")])
    return moment


@dataclass(frozen=True)
class Shortfall:
    """A bucket that will not be complete by the deadline at the measured rate: what it lacks."""

    bucket: str
    objects: int  # objects that will not be copied
    bytes: int
    objects_left: int  # all this bucket still has to copy
    bytes_left: int

    def to_dict(self) -> dict[str, object]:
        return {"bucket": self.bucket, "objects_short": self.objects, "bytes_short": self.bytes,
                "objects_left": self.objects_left, "bytes_left": self.bytes_left}


@dataclass(frozen=True)
class Rate:
    """Bytes and objects per second, measured over the same time."""

    bytes_per_s: float
    objects_per_s: float

    def seconds(self, objects: int, size: int) -> float:
        """How long ``objects`` objects of ``size`` bytes in all take: the larger of the two
        times, as a copy of small objects is bound by requests and one of large ones by bytes."""
        by_bytes = size / self.bytes_per_s if self.bytes_per_s > 0 else 0.0
        by_objects = objects / self.objects_per_s if self.objects_per_s > 0 else 0.0
        return max(by_bytes, by_objects)


class RateMeter:
    """Objects and bytes copied over time, counted from the copy's threads; ``rate`` is over
    the last ``window`` seconds, so the estimate follows a link that slows down or speeds up;
    ``start`` (each pass's copy) keeps the pauses between passes out of it."""

    def __init__(self, window: float = RATE_WINDOW_S, clock: Callable[[], float] = time.monotonic) -> None:
        self._window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._samples: deque[tuple[float, int, int]] = deque()  # (when, bytes then, objects then)
        self.bytes = 0
        self.objects = 0

    def start(self) -> None:
        with self._lock:
            self._samples.clear()
            self._samples.append((self._clock(), self.bytes, self.objects))

    def add(self, objects: int, size: int) -> None:
        with self._lock:
            self.bytes += size
            self.objects += objects
            now = self._clock()
            self._samples.append((now, self.bytes, self.objects))
            while len(self._samples) > 2 and self._samples[1][0] < now - self._window:
                self._samples.popleft()

    def rate(self) -> Rate | None:
        """The rate, or None before one object was copied."""
        with self._lock:
            if len(self._samples) < 2:
                return None
            first, size, objects = self._samples[0]
            elapsed = self._clock() - first
            if elapsed < MIN_MEASURED_S or self.objects == objects:
                return None
            return Rate((self.bytes - size) / elapsed, (self.objects - objects) / elapsed)


@dataclass(frozen=True)
class Estimate:
    """Where the copy stands against the deadline: the rate, the expected finish, the margin
    (positive: time to spare; negative: that much too late) and what will not make it."""

    rate: Rate | None
    eta: datetime | None
    margin_s: float | None
    shortfall: tuple[Shortfall, ...]
    left_s: float | None = None  # the time the copy still needs


def estimate(left: Sequence[tuple[str, int, int]], rate: Rate | None, deadline: datetime,
             *, now: datetime | None = None) -> Estimate:
    """``left``: per bucket in the order they are copied, (bucket, objects left, bytes left).
    At ``rate`` they give the finish; walking the buckets in order, the time before the
    deadline is spent on them, and what does not fit is short (objects counted at the
    bucket's average size)."""
    now = now or datetime.now(UTC)
    if not any(objects for _, objects, _ in left):
        return Estimate(rate, now, (deadline - now).total_seconds(), (), 0.0)
    if rate is None:
        return Estimate(None, None, None, ())
    needed = sum(rate.seconds(objects, size) for _, objects, size in left)
    eta = now + timedelta(seconds=needed)
    budget = max(0.0, (deadline - now).total_seconds())
    shortfall = []
    for bucket, objects, size in left:
        seconds = rate.seconds(objects, size)
        if seconds <= budget:
            budget -= seconds
            continue
        share_done = budget / seconds if seconds > 0 else 1.0
        budget = 0.0
        short_objects = objects - int(objects * share_done)
        shortfall.append(Shortfall(bucket, short_objects, size - int(size * share_done), objects, size))
    return Estimate(rate, eta, (deadline - eta).total_seconds(), tuple(shortfall), needed)
