"""Transient errors (throttling, 5xx, reset connections) retried with exponential backoff
and jitter, or after the provider's own ``retry_after``; any other error at once."""

from __future__ import annotations

import contextvars
import math
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
    wait_random,
)

from failover.errors import Interrupted, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0  # seconds before the first retry
    maximum: float = 30.0
    jitter: float = 1.0


DEFAULT_BACKOFF = Backoff()

# A test knob: the suite sets it (say 0.01) so retries wait a hundredth of the time, in its own process and in the
# CLI processes it starts. It scales the sleep only: the wait reported (journaled, shown) stays the one chosen.
SLEEP_SCALE_VARIABLE = "FAILOVER_TEST_RETRY_SLEEP_SCALE"


def _sleep_scale() -> float:
    try:
        scale = float(os.environ.get(SLEEP_SCALE_VARIABLE) or 1.0)
    except ValueError:
        return 1.0
    return scale if math.isfinite(scale) and 0.0 <= scale <= 1.0 else 1.0


def call_with_retries(
    call: Callable[[], T],
    *,
    retries: int,
    cancel: threading.Event,
    on_retry: Callable[[TransientError, float], None],
    backoff: Backoff = DEFAULT_BACKOFF,
) -> T:
    """``call()``, retried up to ``retries`` times on TransientError. A set ``cancel`` ends
    the wait between attempts and raises Interrupted instead of trying again."""

    def attempt() -> T:
        if cancel.is_set():
            raise Interrupted("cancelled")
        return call()

    retrying = Retrying(
        stop=stop_after_attempt(retries + 1),
        retry=retry_if_exception_type(TransientError),
        wait=_wait(backoff),
        sleep=lambda seconds: cancel.wait(seconds * _sleep_scale()),
        before_sleep=lambda state: on_retry(state.outcome.exception(), state.next_action.sleep),
        reraise=True,
    )
    return retrying(attempt)


def _wait(backoff: Backoff) -> Callable[[RetryCallState], float]:
    exponential = wait_exponential(multiplier=backoff.initial, max=backoff.maximum) + wait_random(0, backoff.jitter)

    def wait(state: RetryCallState) -> float:
        retry_after = getattr(state.outcome.exception(), "retry_after", None)
        if retry_after is not None:
            # A little jitter, so steps throttled together do not all come back together.
            return retry_after * (1 + random.uniform(0, 0.1))
        return exponential(state)

    return wait


# -- per-request retries ------------------------------------------------------------------
# Adapters retry each idempotent provider request on its own (a 503 on one of a step's
# hundred requests should not redo the step). Whoever runs the work (the engine, for a
# step) may listen, to journal those retries; the listener follows the context, so an
# action's own thread pool passes it on with ``in_context``.

REQUEST_RETRIES = 4
REQUEST_BACKOFF = Backoff(initial=0.2, maximum=5.0, jitter=0.2)
_NEVER = threading.Event()

request_retry_listener: contextvars.ContextVar[Callable[[TransientError, float], None] | None] = contextvars.ContextVar(
    "request_retry_listener", default=None
)


def retry_requests(call: Callable[[], T], *, what: str = "request") -> T:
    """``call()`` (one idempotent provider request) retried on TransientError, reported to the listener."""

    def on_retry(error: TransientError, wait: float) -> None:
        listener = request_retry_listener.get()
        if listener is not None:
            listener(error, wait)

    return call_with_retries(call, retries=REQUEST_RETRIES, cancel=_NEVER, on_retry=on_retry, backoff=REQUEST_BACKOFF)


def in_context(fn: Callable[..., T]) -> Callable[..., T]:
    """``fn`` bound to a copy of the caller's context, for a worker thread (pools do not pass it on)."""
    context = contextvars.copy_context()
    return lambda *args, **kwargs: context.run(fn, *args, **kwargs)
