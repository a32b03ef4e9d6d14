"""Retries of transient errors: bounded, backed off with jitter, after ``retry_after``, cancellable."""

from __future__ import annotations

import threading
import time

import pytest

from failover.errors import Interrupted, OperationFailed, TransientError
from failover.retry import Backoff, call_with_retries


def flaky(failures: int, error: Exception):
    calls = []

    def call() -> str:
        calls.append(time.monotonic())
        if len(calls) <= failures:
            raise error
        return "ok"

    return call, calls


def test_transient_errors_are_retried_with_growing_jittered_waits() -> None:
    call, calls = flaky(3, TransientError("503"))
    waits: list[float] = []
    backoff = Backoff(initial=0.01, maximum=1, jitter=0.005)

    result = call_with_retries(call, retries=3, cancel=threading.Event(), on_retry=lambda e, w: waits.append(w), backoff=backoff)

    assert result == "ok" and len(calls) == 4
    for wait, base in zip(waits, (0.01, 0.02, 0.04), strict=True):
        assert base <= wait <= base + 0.005


def test_retry_after_is_honoured() -> None:
    call, calls = flaky(1, TransientError("throttled", retry_after=0.2))
    waits: list[float] = []
    call_with_retries(call, retries=1, cancel=threading.Event(), on_retry=lambda e, w: waits.append(w), backoff=Backoff(0.001))
    assert 0.2 <= waits[0] <= 0.22
    assert calls[1] - calls[0] >= 0.2


def test_the_last_transient_error_is_raised_when_retries_run_out() -> None:
    call, calls = flaky(5, TransientError("503"))
    with pytest.raises(TransientError):
        call_with_retries(call, retries=2, cancel=threading.Event(), on_retry=lambda e, w: None, backoff=Backoff(0.001, 0.001, 0))
    assert len(calls) == 3


def test_other_errors_are_not_retried() -> None:
    call, calls = flaky(1, OperationFailed("no"))
    with pytest.raises(OperationFailed):
        call_with_retries(call, retries=5, cancel=threading.Event(), on_retry=lambda e, w: None)
    assert len(calls) == 1


def test_a_cancel_ends_the_wait_and_stops_retrying() -> None:
    call, calls = flaky(1, TransientError("throttled", retry_after=30))
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(Interrupted):
        call_with_retries(call, retries=3, cancel=cancel, on_retry=lambda e, w: None)
    assert time.monotonic() - began < 1 and len(calls) == 1
