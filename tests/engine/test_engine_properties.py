"""Properties of whole journaled runs over random DAGs: every step runs exactly once, never
before its needs, never above the parallelism bound; a run that failed somewhere, resumed,
still applies every step exactly once."""

from __future__ import annotations

import itertools
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar

from enginekit import write_config
from hypothesis import given, settings
from hypothesis import strategies as st

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.config import load_config
from failover.engine import Backoff, Engine, RunStatus
from failover.errors import OperationFailed
from failover.playbook import Playbook
from failover.state import StateStore


class ProbeParams(Params):
    seconds: float = 0.0
    fail_first: bool = False


class Probe(Action):
    """Records, on one logical clock, when each step's apply began and ended, and how many ran at once."""

    Params = ProbeParams
    lock = threading.Lock()
    clock = itertools.count()
    applied: ClassVar[Counter[str]] = Counter()
    began: ClassVar[dict[str, int]] = {}
    ended: ClassVar[dict[str, int]] = {}
    active = 0
    peak = 0

    @classmethod
    def reset(cls) -> None:
        cls.applied, cls.began, cls.ended, cls.active, cls.peak = Counter(), {}, {}, 0, 0

    def plan(self, ctx: ActionContext, params: ProbeParams) -> list[Change]:
        return []

    def apply(self, ctx: ActionContext, params: ProbeParams) -> dict[str, Any]:
        cls = type(self)
        with cls.lock:
            first = ctx.step_id not in cls.began
            cls.active += 1
            cls.peak = max(cls.peak, cls.active)
            cls.began[ctx.step_id] = next(cls.clock)
        time.sleep(params.seconds)
        with cls.lock:
            cls.active -= 1
            cls.ended[ctx.step_id] = next(cls.clock)
            if params.fail_first and first:
                raise OperationFailed("first attempt fails")
            cls.applied[ctx.step_id] += 1
        return {}

    def undo(self, ctx: ActionContext, params: ProbeParams) -> None:
        pass


ACTIONS.register("probe")(Probe)


@st.composite
def playbooks(draw: st.DrawFn, max_steps: int = 16) -> Playbook:
    count = draw(st.integers(1, max_steps))
    ids = [f"s{i}" for i in range(count)]
    failing = draw(st.sets(st.sampled_from(ids), max_size=2))
    steps = []
    for i, step_id in enumerate(ids):
        needs = draw(st.lists(st.sampled_from(ids[:i]), unique=True, max_size=3)) if i else []
        seconds = draw(st.sampled_from([0, 0, 0.001, 0.003]))
        steps.append({"id": step_id, "action": "probe", "needs": needs,
                      "with": {"seconds": seconds, "fail_first": step_id in failing}})
    return Playbook.model_validate({"name": "random", "steps": draw(st.permutations(steps))})


def run_to_the_end(playbook: Playbook, parallelism: int) -> tuple[int, RunStatus]:
    """Runs, then resumes until done; how many times it was resumed, and how it ended."""
    with tempfile.TemporaryDirectory() as directory:
        config = load_config(write_config(Path(directory)))
        with StateStore(config.state_dir) as store:
            engine = Engine(store, config, backoff=Backoff(0.001, 0.001, 0))
            run = engine.start(playbook, target="t", parallelism=parallelism)
            resumes = 0
            while run.status is RunStatus.FAILED and resumes < 10:
                run = engine.resume(run.id)
                resumes += 1
            return resumes, run.status


@settings(max_examples=40, deadline=None)
@given(playbook=playbooks(), parallelism=st.integers(1, 5))
def test_each_step_once_after_its_needs_within_the_bound_even_across_resumes(playbook: Playbook, parallelism: int) -> None:
    Probe.reset()
    resumes, status = run_to_the_end(playbook, parallelism)

    assert status is RunStatus.SUCCEEDED
    assert Probe.applied == Counter({step.id: 1 for step in playbook.steps})
    for step in playbook.steps:
        for need in step.needs:
            assert Probe.ended[need] < Probe.began[step.id], f"{step.id} began before {need} ended"
    assert Probe.peak <= parallelism
    failing = [s for s in playbook.steps if s.with_["fail_first"]]
    assert (resumes > 0) == bool(failing)
