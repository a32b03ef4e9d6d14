"""Retries of transient errors: bounded, backed off with jitter, after ``retry_after``, cancellable."""

from __future__ import annotations

import threading
import time

import pytest

from failover.errors import Interrupted, OperationFailed, TransientError
from failover.retry import SLEEP_SCALE_VARIABLE, Backoff, call_with_retries


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


def test_retry_after_is_honoured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLEEP_SCALE_VARIABLE, "1")  # the real sleep, as users get it
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


def test_a_cancel_ends_the_wait_and_stops_retrying(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(SLEEP_SCALE_VARIABLE, "1")  # the whole 30 s wait, so only the cancel can end it early
    call, calls = flaky(1, TransientError("throttled", retry_after=30))
    cancel = threading.Event()
    threading.Timer(0.05, cancel.set).start()
    began = time.monotonic()
    with pytest.raises(Interrupted):
        call_with_retries(call, retries=3, cancel=cancel, on_retry=lambda e, w: None)
    assert time.monotonic() - began < 1 and len(calls) == 1


class RecordingEvent(threading.Event):
    """An event that records how long each wait on it was asked to be."""

    def __init__(self) -> None:
        super().__init__()
        self.asked: list[float] = []

    def wait(self, timeout: float | None = None) -> bool:
        self.asked.append(timeout)
        return super().wait(0)


@pytest.mark.parametrize(("scale", "factor"), [("0.01", 0.01), ("1", 1.0), ("", 1.0), ("nonsense", 1.0), ("2", 1.0)])
def test_the_test_knob_scales_the_sleep_but_not_the_wait_reported(monkeypatch: pytest.MonkeyPatch, scale: str,
                                                                    factor: float) -> None:
    monkeypatch.setenv(SLEEP_SCALE_VARIABLE, scale)
    call, calls = flaky(1, TransientError("throttled", retry_after=7))
    cancel, reported = RecordingEvent(), []

    assert call_with_retries(call, retries=1, cancel=cancel, on_retry=lambda e, w: reported.append(w)) == "ok"

    assert len(calls) == 2 and len(reported) == 1 and 7 <= reported[0] <= 7.7
    assert cancel.asked == [pytest.approx(reported[0] * factor)]
