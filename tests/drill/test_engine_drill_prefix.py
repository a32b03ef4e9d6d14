"""The engine carries a drill's prefix: journaled with the run, given to every action's
context in the run, its resume and its rollback; and a drill holds the lock across its
run and its teardown."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
import yaml

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.config import Config, load_config
from failover.engine import Backoff, Engine, RunStatus
from failover.errors import InputError, LockHeld, OperationFailed
from failover.playbook import Playbook
from failover.state import StateStore

FAST = Backoff(initial=0.001, maximum=0.01, jitter=0.001)
_seen: list[tuple[str, str, str | None, str, list[str]]] = []  # (pass, step, drill prefix, naming service, created)
_failing: set[str] = set()  # steps whose apply fails, for now
_lock = threading.Lock()


class ProbeParams(Params):
    pass


@ACTIONS.register("drill-probe")
class DrillProbe(Action):
    """Notes what its context says of a drill; creates one resource named from the naming service."""

    Params = ProbeParams
    example: ClassVar[dict[str, Any]] = {}

    def plan(self, ctx: ActionContext, params: ProbeParams) -> list[Change]:
        _note("plan", ctx)
        return [Change("create", "thing", f"{ctx.naming_service}-{ctx.step_id}")]

    def apply(self, ctx: ActionContext, params: ProbeParams) -> dict[str, Any]:
        _note("apply", ctx)
        if not any(item["id"] == f"{ctx.naming_service}-{ctx.step_id}" for item in ctx.created):
            ctx.record("thing", f"{ctx.naming_service}-{ctx.step_id}")
        if ctx.step_id in _failing:
            raise OperationFailed(f"{ctx.step_id} fails as asked")
        return {"name": f"{ctx.naming_service}-{ctx.step_id}"}

    def undo(self, ctx: ActionContext, params: ProbeParams) -> None:
        _note("undo", ctx)


def _note(what: str, ctx: ActionContext) -> None:
    with _lock:
        _seen.append((what, ctx.step_id, ctx.drill_prefix, ctx.naming_service, [item["id"] for item in ctx.created]))


@pytest.fixture(autouse=True)
def _fresh_notes() -> Iterator[None]:
    _seen.clear()
    _failing.clear()
    yield
    _failing.clear()


@pytest.fixture
def config(tmp_path: Path) -> Config:
    path = tmp_path / "failover.yaml"
    path.write_text(yaml.safe_dump({
        "service": "svc", "state": ".failover",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}},
        "targets": {"t": {}},
    }))
    return load_config(path)


@pytest.fixture
def store(config: Config) -> Iterator[StateStore]:
    with StateStore(config.state_dir) as store:
        yield store


@pytest.fixture
def engine(store: StateStore, config: Config) -> Engine:
    return Engine(store, config, backoff=FAST)


PLAYBOOK = Playbook.model_validate({"name": "probe", "steps": [
    {"id": "a", "action": "drill-probe"},
    {"id": "b", "action": "drill-probe", "needs": ["a"], "retries": 0},
]})


def seen(what: str) -> dict[str, tuple[str | None, str, list[str]]]:
    return {step: (prefix, naming, created) for verb, step, prefix, naming, created in _seen if verb == what}


def test_a_drill_run_journals_its_prefix_and_its_actions_name_under_it(engine: Engine) -> None:
    run = engine.start(PLAYBOOK, target="t", drill_prefix="Drill.EU.")

    assert run.status is RunStatus.SUCCEEDED
    assert run.drill_prefix == "drill.eu"  # normalized as DNS labels
    assert engine.journal.run(run.id).drill_prefix == "drill.eu"
    assert seen("apply") == {"a": ("drill.eu", "drill.eu-svc", []), "b": ("drill.eu", "drill.eu-svc", [])}
    document = engine.journal.document(run.id)
    assert document["drill_prefix"] == "drill.eu"
    assert [item["id"] for step in document["steps"] for item in step["created"]] == ["drill.eu-svc-a", "drill.eu-svc-b"]
    assert engine.journal.runs("svc")[0]["drill_prefix"] == "drill.eu"
    started = next(e for e in engine.journal.events(run.id) if e["event"] == "run-started")
    assert started["detail"]["drill_prefix"] == "drill.eu"


def test_an_ordinary_run_has_no_prefix_and_names_from_the_service(engine: Engine) -> None:
    run = engine.start(PLAYBOOK, target="t")

    assert engine.journal.run(run.id).drill_prefix is None
    assert engine.journal.document(run.id)["drill_prefix"] is None
    assert seen("apply") == {"a": (None, "svc", []), "b": (None, "svc", [])}


def test_resume_and_rollback_read_the_prefix_back_from_the_journal(engine: Engine, store: StateStore, config: Config) -> None:
    _failing.add("b")
    run = engine.start(PLAYBOOK, target="t", drill_prefix="drill")
    assert run.status is RunStatus.FAILED

    _failing.clear()
    _seen.clear()
    again = Engine(store, config, backoff=FAST)  # another process: only the journal knows it was a drill
    resumed = again.resume(run.id)
    assert resumed.status is RunStatus.SUCCEEDED
    assert seen("apply") == {"b": ("drill", "drill-svc", ["drill-svc-b"])}

    rolled = Engine(store, config, backoff=FAST).rollback(run.id)
    assert rolled.status is RunStatus.ROLLED_BACK
    assert seen("undo") == {"a": ("drill", "drill-svc", ["drill-svc-a"]), "b": ("drill", "drill-svc", ["drill-svc-b"])}


def test_a_plan_can_be_made_as_a_drill(engine: Engine) -> None:
    plan = engine.plan(PLAYBOOK, target="t", drill_prefix="drill")
    assert [change.name for step in plan.steps for change in step.changes] == ["drill-svc-a", "drill-svc-b"]


@pytest.mark.parametrize("prefix", ["two words", "-dash", "a..b", "ünï"])
def test_a_bad_prefix_is_invalid_input_and_nothing_is_journaled(engine: Engine, prefix: str) -> None:
    with pytest.raises(InputError) as raised:
        engine.start(PLAYBOOK, target="t", drill_prefix=prefix)
    assert "--prefix" in str(raised.value)
    assert engine.journal.runs("svc") == []
    assert _seen == []


def test_holding_the_lock_lets_the_holders_commands_run_and_keeps_others_out(engine: Engine, store: StateStore,
                                                                            config: Config) -> None:
    with engine.holding_lock("drill-1"):
        assert engine.lock.holder().run_id == "drill-1"
        run = engine.start(PLAYBOOK, target="t", drill_prefix="drill")  # does not wait for itself
        assert engine.lock.holder().run_id == "drill-1"  # the run did not release the drill's lock
        with pytest.raises(LockHeld, match="drill-1"):
            Engine(store, config, backoff=FAST).start(PLAYBOOK, target="t")
        assert engine.rollback(run.id).status is RunStatus.ROLLED_BACK
        assert engine.lock.holder().run_id == "drill-1"
    assert engine.lock.holder() is None
    assert Engine(store, config, backoff=FAST).start(PLAYBOOK, target="t").status is RunStatus.SUCCEEDED


def test_holding_the_lock_when_another_holds_it_is_refused(engine: Engine, store: StateStore, config: Config) -> None:
    other = Engine(store, config, backoff=FAST)
    with other.holding_lock("drill-other"), pytest.raises(LockHeld, match="drill-other"), \
            engine.holding_lock("drill-mine"):
        pass
    assert engine.lock.holder() is None


def test_runs_and_status_say_which_run_was_a_drill(engine: Engine, config: Config, capsys: pytest.CaptureFixture[str]) -> None:
    from failover.cli.main import run as cli

    drill = engine.start(PLAYBOOK, target="t", drill_prefix="drill")
    real = engine.start(PLAYBOOK, target="t")
    capsys.readouterr()

    assert cli(["runs", "--config", str(config.path)]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert "(drill drill)" in next(line for line in lines if drill.id in line)
    assert "drill" not in next(line for line in lines if real.id in line).replace(real.id, "")
    assert cli(["status", drill.id, "--config", str(config.path)]) == 0
    assert f"{drill.id} of probe on t (drill drill):" in capsys.readouterr().err
