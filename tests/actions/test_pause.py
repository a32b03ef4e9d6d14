"""``pause``: waits, and stops waiting as soon as the run is cancelled."""

from __future__ import annotations

import threading
import time

import pytest
from pydantic import ValidationError

from failover.actions.base import ACTIONS, ActionContext, Change
from failover.errors import Interrupted

Pause = ACTIONS.get("pause")


def ctx() -> ActionContext:
    return ActionContext(run_id="r1", step_id="settle", service="svc")


def test_plan_says_how_long() -> None:
    assert Pause().plan(ctx(), Pause.Params(seconds=30)) == [Change("none", "pause", "settle", "wait 30s")]
    assert Pause().plan(ctx(), Pause.Params(seconds=1.5))[0].detail == "wait 1.5s"


def test_reads_only() -> None:
    assert Pause.mutates is False


def test_waits() -> None:
    started = time.monotonic()
    outputs = Pause().apply(ctx(), Pause.Params(seconds=0.05))
    assert time.monotonic() - started >= 0.05
    assert outputs["waited_s"] >= 0.05


def test_stops_at_once_unfinished_when_cancelled() -> None:
    context = ctx()
    threading.Timer(0.05, context.cancel.set).start()
    with pytest.raises(Interrupted, match="pause cut short"):  # so a resume waits again
        Pause().apply(context, Pause.Params(seconds=3600))


def test_undo_does_nothing() -> None:
    assert Pause().undo(ctx(), Pause.Params(seconds=1)) is None


@pytest.mark.parametrize("params", [{}, {"seconds": -1}, {"seconds": "soon"}, {"seconds": 1, "extra": 2}, {"seconds": 86401}])
def test_parameters_are_checked(params: dict) -> None:
    with pytest.raises(ValidationError):
        Pause.Params.model_validate(params)
