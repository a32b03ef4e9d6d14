"""Transient errors (throttling, 5xx, reset connections) retried with exponential backoff
and jitter, or after the provider's own ``retry_after``; any other error at once."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential, wait_random

from failover.errors import Interrupted, TransientError

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    initial: float = 1.0  # seconds before the first retry
    maximum: float = 30.0
    jitter: float = 1.0


DEFAULT_BACKOFF = Backoff()


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
        sleep=cancel.wait,
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
