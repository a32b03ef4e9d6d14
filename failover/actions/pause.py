"""``pause``: wait a while (for caches to drain, TTLs to expire, a human to look)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import Interrupted


class PauseParams(Params):
    seconds: float = Field(ge=0, le=86400, description="How long to wait, in seconds (at most a day).")


@ACTIONS.register("pause")
class Pause(Action):
    """Wait a number of seconds; a cancelled run stops waiting at once."""

    summary = "Wait a number of seconds (stops at once, unfinished, when the run is cancelled)."
    Params = PauseParams
    example = {"seconds": 30}
    mutates = False

    def plan(self, ctx: ActionContext, params: PauseParams) -> list[Change]:
        return [Change("none", "pause", ctx.step_id, f"wait {params.seconds:g}s")]

    def apply(self, ctx: ActionContext, params: PauseParams) -> dict[str, Any]:
        started = time.monotonic()
        if ctx.cancel.wait(params.seconds):
            # not done: a resume waits again (the pause may be waiting out a DNS TTL)
            raise Interrupted(f"pause cut short after {time.monotonic() - started:.1f}s")
        return {"waited_s": round(time.monotonic() - started, 3)}

    def undo(self, ctx: ActionContext, params: PauseParams) -> None:
        """Nothing was created."""
