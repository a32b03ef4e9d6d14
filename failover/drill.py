"""``failover drill``: a real failover into isolated names, timed, then torn down.

A drill runs a playbook with the engine for real, with a drill prefix: nodes and
firewalls are named ``<prefix>-<service>-...``, DNS zones are copied and cut over under
``<prefix>.<zone>``, buckets are only checked (their replicas), notifications say
"drill". It measures each step and the recovery time (RTO: from the run's start until
its first ``wait-healthy`` step succeeded), then tears the run down with the engine's
rollback, always: also when a step failed, and on Ctrl-C or SIGTERM (a first signal
during the teardown is only reported, a second abandons it). A drill whose process died
before its teardown (``kill -9``) is torn down by the next drill, before anything else.

The target is listed before and after (nodes, firewalls, containers and their objects,
zones and their record sets), and the drill is ``clean`` only when both listings are
equal: the acceptance that a drill leaves the target as it found it is checked on the
target itself, not taken from the journal. The drill holds the service's lock from
the first listing to the last, so no other run changes the target in between.

The outcome is a ``DrillRecord`` in the state store (``check`` reads its RTO) and a
report in ``<state>/reports/`` (``failover.report``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from failover import signals
from failover.config import Config
from failover.dnsnames import check_prefix
from failover.engine import DEFAULT_PARALLELISM, Engine, Observer, RunStatus, StepStatus
from failover.engine.journal import RunRecord, StepRecord, now
from failover.errors import FailoverError, InputError, Interrupted, OperationFailed, Problem
from failover.playbook import Playbook, Step
from failover.ports import ComputeTarget, DnsTarget, FirewallRuleInfo, StorageTarget
from failover.state import DrillRecord, StateStore, new_id
from failover.targets import Targets

DEFAULT_PREFIX = "drill"
MAX_LABEL = 63
HEALTH_ACTION = "wait-healthy"
# A destroyed node may take a while to leave the listings (EC2's shutting-down): the listing
# after the teardown is taken again, for at most this long, while only such nodes differ.
SETTLE_S = 60.0
SETTLE_INTERVAL_S = 3.0
SETTLED_STATES = frozenset({"running", "stopped", "suspended", "error"})


class DrillStatus:
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # the run failed (or was interrupted); the teardown left the target as found
    TEARDOWN_FAILED = "teardown_failed"  # the rollback failed, or the target is not as found


@dataclass(frozen=True)
class StepTiming:
    """One step of the drill's run, as the journal timed it; offsets from the run's start."""

    id: str
    action: str
    status: str
    started_at: str | None
    ended_at: str | None
    offset_s: float | None
    duration_s: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "action": self.action, "status": self.status, "started_at": self.started_at,
                "ended_at": self.ended_at, "offset_s": self.offset_s, "duration_s": self.duration_s}


@dataclass
class DrillResult:
    record: DrillRecord
    rto_objective_s: float
    steps: list[StepTiming] = field(default_factory=list)
    differences: list[dict[str, Any]] = field(default_factory=list)
    run_started_at: str | None = None
    teardown_started_at: str | None = None
    teardown_ended_at: str | None = None
    interrupted: bool = False
    report_html: Path | None = None
    report_markdown: Path | None = None

    @property
    def ok(self) -> bool:
        return self.record.status == DrillStatus.SUCCEEDED

    @property
    def teardown_offset_s(self) -> float | None:
        """When the teardown started, in seconds from the run's start."""
        if self.run_started_at is None or self.teardown_started_at is None:
            return None
        return round(_seconds(self.run_started_at, self.teardown_started_at), 3)

    @property
    def rto_met(self) -> bool | None:
        return None if self.record.rto_s is None else self.record.rto_s <= self.rto_objective_s

    def to_dict(self) -> dict[str, Any]:
        """``drill --json``."""
        record = self.record
        return {
            "drill": record.id, "run": record.run_id, "playbook": record.playbook, "target": record.target,
            "prefix": record.prefix, "status": record.status, "error": record.error,
            "started_at": record.started_at, "ended_at": record.ended_at,
            "rto_s": record.rto_s, "rto_objective_s": self.rto_objective_s, "rto_met": self.rto_met,
            "teardown_s": record.teardown_s, "clean": record.clean, "differences": self.differences,
            "steps": [step.to_dict() for step in self.steps],
            "report": {"html": _text(self.report_html), "markdown": _text(self.report_markdown)},
        }


def check_drill_prefix(prefix: str) -> str:
    """The prefix as DNS labels (``drill``, ``drill.eu``); InputError naming ``--prefix`` otherwise."""
    try:
        checked = check_prefix(prefix)
    except ValueError as exc:
        raise InputError([Problem(file="arguments", field="--prefix", message=str(exc))]) from None
    if not checked:
        raise InputError([Problem(file="arguments", field="--prefix", message="must not be empty")])
    if any(len(label) > MAX_LABEL for label in checked.split(".")):
        raise InputError([Problem(file="arguments", field="--prefix",
                                  message=f"a DNS label is at most {MAX_LABEL} characters")])
    return checked


# -- the drill ------------------------------------------------------------------------------


class Drill:
    """One drill of ``playbook`` on ``target``; ``run()`` does it all and returns the result
    (the report is written by the caller, with ``failover.report``)."""

    def __init__(
        self, store: StateStore, config: Config, playbook: Playbook, *, target: str, prefix: str = DEFAULT_PREFIX,
        parallelism: int = DEFAULT_PARALLELISM, snapshot: str | None = None, observer: Observer | None = None,
        settle_s: float = SETTLE_S,
    ) -> None:
        self.store = store
        self.config = config
        self.playbook = playbook
        self.target = target
        self.prefix = check_drill_prefix(prefix)
        self.parallelism = parallelism
        self.snapshot = snapshot
        self.observer = observer or Observer()
        self.settle_s = settle_s
        self.id = new_id("drill")
        self.record: DrillRecord | None = None
        self.result: DrillResult | None = None  # once the teardown ended (also when ``run`` raises Interrupted)
        self.started_at = now()

    def run(self, write_report: Callable[[DrillResult], None] | None = None) -> DrillResult:
        """The drill: InputError, NotFound or a provider error before anything was created
        (nothing recorded then); otherwise a result, whatever happened to the run. Raises
        Interrupted (after the teardown and the report) when a signal stopped it."""
        engine = Engine(self.store, self.config, observer=_RunWatcher(self.observer, self._run_started))
        snapshot_id = engine.check(self.playbook, target=self.target, snapshot=self.snapshot)
        targets = Targets(self.config, self.target)
        self.signals = _DrillSignals(self.observer)
        with signals.handling(self.signals.handle), engine.holding_lock(self.id) as took_over:
            self.started_at = now()
            if took_over is not None:
                self.observer.warning(f"took over the lock of {self.config.service} left by {took_over}, "
                                      "whose process is gone")
            self._tear_down_abandoned(engine)
            before = capture(targets)
            result = self.result = self._run_and_tear_down(engine, targets, before, snapshot_id)
        if write_report is not None:
            write_report(result)
            self.record = replace(result.record, report=_text(result.report_html))
            result.record = self.record
            self.store.save_drill(self.record)
        if result.interrupted:
            raise Interrupted(f"drill {self.id} interrupted; its run {result.record.run_id} was torn down"
                              if result.record.status != DrillStatus.TEARDOWN_FAILED else
                              f"drill {self.id} interrupted before its teardown ended; "
                              f"`failover rollback {result.record.run_id}` finishes it")
        return result

    # -- phases -------------------------------------------------------------------------------
    def _tear_down_abandoned(self, engine: Engine) -> None:
        """Drills still ``running`` while this one holds the lock lost their process before their
        teardown (killed, or the machine went down): their runs are torn down now, before
        anything is listed or created, and their records say so."""
        for stale in self.store.drills(self.config.service):
            if stale.status != DrillStatus.RUNNING or stale.run_id is None:
                continue
            self.observer.warning(f"drill {stale.id} ended before its teardown: tearing down its run {stale.run_id} first")
            teardown = _Teardown()
            error = teardown.run(engine, stale.run_id)
            why = f"its process ended before the teardown; drill {self.id} tore its run down"
            self.store.save_drill(replace(
                stale, status=DrillStatus.TEARDOWN_FAILED if error else DrillStatus.FAILED, ended_at=now(),
                teardown_s=teardown.duration_s, error=f"{why}: {error}" if error else why,
            ))
            if error is not None:
                raise OperationFailed(f"the run {stale.run_id} of an abandoned drill could not be torn down: {error}; "
                                      f"`failover rollback {stale.run_id}`, then drill again")

    def _run_started(self, run_id: str) -> None:
        """The run is journaled: the drill is recorded with it, so a drill killed right now
        still names the run to roll back."""
        self.record = DrillRecord(
            id=self.id, service=self.config.service, target=self.target, playbook=self.playbook.name,
            prefix=self.prefix, run_id=run_id, status=DrillStatus.RUNNING, started_at=self.started_at,
        )
        self.store.save_drill(self.record)
        self.signals.tear_down(run_id)  # from now on (outside the engine's run) a signal no longer stops the drill

    def _run_and_tear_down(
        self, engine: Engine, targets: Targets, before: dict[str, Any], snapshot_id: str | None
    ) -> DrillResult:
        run: RunRecord | None = None
        run_error: str | None = None
        interrupted = False
        try:
            run = engine.start(self.playbook, target=self.target, snapshot=snapshot_id, parallelism=self.parallelism,
                               drill_prefix=self.prefix)
        except Interrupted:
            interrupted, run_error = True, "the run was interrupted"
        except Exception as exc:  # whatever stopped the run, what it created is torn down
            if self.record is None:
                raise  # nothing ran, nothing was created: an ordinary error of the command
            run_error = str(exc) if isinstance(exc, FailoverError) else f"{type(exc).__name__}: {exc}"
        if self.record is None:  # stopped before the run was journaled: nothing to tear down
            raise Interrupted("drill interrupted before its run started; nothing was created")
        run_id = self.record.run_id
        run = engine.journal.run(run_id)  # the run as it ended, before its rollback changes the statuses
        steps = engine.journal.steps(run_id)
        if run_error is None and run.status is not RunStatus.SUCCEEDED:
            run_error = run.error or f"the run ended {run.status}"

        teardown = _Teardown()
        teardown_error = teardown.run(engine, run_id)
        try:
            after, differences = self._settled(targets, before)
        except KeyboardInterrupt:
            teardown_error = teardown_error or "interrupted while listing the target after the teardown"
            after, differences = None, []
        except FailoverError as exc:
            teardown_error = teardown_error or f"cannot list the target after the teardown: {exc}"
            after, differences = None, []

        clean = None if after is None else not differences
        if teardown_error is not None or clean is not True:
            status = DrillStatus.TEARDOWN_FAILED
        elif run_error is not None:
            status = DrillStatus.FAILED
        else:
            status = DrillStatus.SUCCEEDED
        errors = [run_error, teardown_error and f"teardown: {teardown_error}"]
        if clean is False:
            errors.append(f"the target differs from before the drill in {len(differences)} places")
        self.record = replace(
            self.record, status=status, ended_at=now(),
            rto_s=recovery_time(run, steps) if run_error is None else None,
            teardown_s=teardown.duration_s, clean=clean, error="; ".join(e for e in errors if e) or None,
        )
        self.store.save_drill(self.record)
        return DrillResult(
            record=self.record, rto_objective_s=self.config.readiness.rto, steps=step_timings(run, steps),
            differences=differences, run_started_at=run.started_at, teardown_started_at=teardown.started_at,
            teardown_ended_at=teardown.ended_at, interrupted=interrupted or self.signals.received > 0,
        )

    def _settled(self, targets: Targets, before: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The target after the teardown, and how it differs from ``before``; listed again for a
        while when only nodes still on their way out differ."""
        deadline = time.monotonic() + self.settle_s
        while True:
            after = capture(targets)
            found = differences(before, after)
            if not found or not _only_nodes_leaving(found, after) or time.monotonic() >= deadline:
                return after, found
            time.sleep(SETTLE_INTERVAL_S)


class _DrillSignals:
    """SIGINT and SIGTERM outside the engine's run (which handles them itself): before the run
    is journaled, they stop the drill (nothing was created); from then on the teardown must
    happen, so the first is only reported, and a second abandons it (the journal then says
    what is left, and ``failover rollback`` finishes it)."""

    def __init__(self, observer: Observer) -> None:
        self.observer = observer
        self.received = 0
        self.run_id: str | None = None

    def tear_down(self, run_id: str) -> None:
        self.run_id = run_id

    def handle(self, signum: int) -> None:
        # Runs between two bytecodes of the main thread.
        if self.run_id is None:
            raise Interrupted("drill interrupted before its run started; nothing was created")
        self.received += 1
        if self.received > 1:
            raise KeyboardInterrupt
        self.observer.warning(f"the drill tears down run {self.run_id} first (signal again to abandon the "
                              f"teardown; `failover rollback {self.run_id}` finishes it then)")


class _Teardown:
    """The rollback of the drill's run, timed, with the drill handling the signals."""

    def __init__(self) -> None:
        self.started_at: str | None = None
        self.ended_at: str | None = None
        self.duration_s: float | None = None

    def run(self, engine: Engine, run_id: str) -> str | None:
        """Rolls the run back; the error that stopped it, or None."""
        engine.handle_signals = False
        self.started_at, started = now(), time.monotonic()
        try:
            rolled = engine.rollback(run_id)
        except (FailoverError, KeyboardInterrupt) as exc:
            return f"{exc}" or "abandoned"
        finally:
            engine.handle_signals = True
            self.ended_at, self.duration_s = now(), round(time.monotonic() - started, 3)
        if rolled.status is not RunStatus.ROLLED_BACK:
            return rolled.error or f"the rollback ended {rolled.status}"
        return None


class _RunWatcher(Observer):
    """The caller's observer, and the moment the drill's run is journaled (its id known)."""

    def __init__(self, inner: Observer, on_run: Callable[[str], None]) -> None:
        self.inner = inner
        self.on_run = on_run
        self.seen_run = False

    def run_started(self, run_id: str, steps: list[Step], *, phase: str) -> None:
        if phase == "run" and not self.seen_run:
            self.seen_run = True
            self.on_run(run_id)
        self.inner.run_started(run_id, steps, phase=phase)

    def step_started(self, step_id: str) -> None:
        self.inner.step_started(step_id)

    def step_retrying(self, step_id: str, error: str, wait: float) -> None:
        self.inner.step_retrying(step_id, error, wait)

    def step_log(self, step_id: str, message: str) -> None:
        self.inner.step_log(step_id, message)

    def step_finished(self, step_id: str, status: str, error: str | None) -> None:
        self.inner.step_finished(step_id, status, error)

    def stopping(self, running: list[str]) -> None:
        self.inner.stopping(running)

    def run_ended(self) -> None:
        self.inner.run_ended()

    def warning(self, message: str) -> None:
        self.inner.warning(message)




# -- timings ---------------------------------------------------------------------------------


def recovery_time(run: RunRecord, steps: list[StepRecord]) -> float | None:
    """Seconds from the run's start until its first ``wait-healthy`` step succeeded, or until
    the run ended where it has none (or none ran); None unless the run succeeded."""
    if run.status is not RunStatus.SUCCEEDED:
        return None
    healthy = [step.ended_at for step in steps
               if step.action == HEALTH_ACTION and step.status is StepStatus.SUCCEEDED and step.ended_at]
    until = min(healthy, key=_instant) if healthy else run.ended_at
    return None if until is None else round(_seconds(run.started_at, until), 3)


def step_timings(run: RunRecord, steps: list[StepRecord]) -> list[StepTiming]:
    timings = []
    for step in steps:
        offset = _seconds(run.started_at, step.started_at) if step.started_at else None
        duration = _seconds(step.started_at, step.ended_at) if step.started_at and step.ended_at else None
        timings.append(StepTiming(
            id=step.id, action=step.action, status=str(step.status), started_at=step.started_at,
            ended_at=step.ended_at, offset_s=_round(offset), duration_s=_round(duration),
        ))
    return timings


def _instant(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp)


def _seconds(start: str, end: str) -> float:
    return (_instant(end) - _instant(start)).total_seconds()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _text(path: Path | None) -> str | None:
    return None if path is None else str(path)


# -- the target, listed ------------------------------------------------------------------------
# A drill must see everything, not only what it named: the adapters' listing methods
# (``list_nodes``, ``list_firewalls``, ``list_containers``, ``list_zones`` of the ports).


def capture(targets: Targets) -> dict[str, Any]:
    """What the target holds, for comparison: ``nodes`` (id -> name, state; terminated ones left
    out), ``firewalls`` (id -> name, rules; None where the driver has no firewall API),
    ``containers`` (those of the profile's ``container_prefix``: name -> key -> [size, hash])
    and ``zones`` (domain -> record sets, the SOA serial masked). A capability the profile
    lacks is left out."""
    state: dict[str, Any] = {}
    if targets.has("compute"):
        state["nodes"] = list_nodes(targets.compute)
        state["firewalls"] = list_firewalls(targets.compute)
    if targets.has("storage"):
        state["containers"] = list_containers(targets.storage, targets.profile.storage.container_prefix)
    if targets.has("dns"):
        state["zones"] = list_zones(targets.dns)
    return state


def list_nodes(compute: ComputeTarget) -> dict[str, dict[str, Any]]:
    return {node.id: {"name": node.name, "state": node.state}
            for node in compute.list_nodes() if node.state != "terminated"}


def list_firewalls(compute: ComputeTarget) -> dict[str, dict[str, Any]] | None:
    if not compute.supports_firewalls:
        return None
    return {
        firewall.id: {"name": firewall.name, "rules": sorted(_rule_text(rule) for rule in firewall.rules)}
        for firewall in compute.list_firewalls()
    }


def _rule_text(rule: FirewallRuleInfo) -> str:
    fields = asdict(rule)
    fields["sources"] = sorted(fields["sources"])
    return json.dumps(fields, sort_keys=True, default=str)


def list_containers(storage: StorageTarget, prefix: str) -> dict[str, dict[str, list[Any]]]:
    containers = {}
    for name in sorted(n for n in storage.list_containers() if n.startswith(prefix)):
        bucket = name[len(prefix):]
        containers[name] = {item.key: [item.size, item.hash] for item in storage.iter_objects(bucket)}
    return containers


def list_zones(dns: DnsTarget) -> dict[str, list[list[Any]]]:
    listed = {}
    for zone in dns.list_zones():
        sets = [[rs.name, rs.type, rs.ttl, *sorted(_value(rs.type, v) for v in rs.values)]
                for rs in dns.list_records(zone)]
        listed[zone.domain] = sorted(sets, key=lambda s: json.dumps(s, default=str))
    return listed


def _value(type: str, value: str) -> str:
    """A record's value; an SOA's serial masked (the DNS server bumps it on any write)."""
    if type.upper() != "SOA":
        return value
    fields = value.split()
    if len(fields) >= 3 and fields[2].isdigit():
        fields[2] = "<serial>"
    return " ".join(fields)


# -- comparing -------------------------------------------------------------------------------

_KINDS = (("nodes", "node"), ("firewalls", "firewall"), ("containers", "container"), ("zones", "zone"))


def differences(before: dict[str, Any], after: dict[str, Any]) -> list[dict[str, Any]]:
    """What differs between two ``capture``s: ``{kind, name, change: added|removed|changed, detail}``."""
    found: list[dict[str, Any]] = []
    for key, kind in _KINDS:
        old, new = before.get(key), after.get(key)
        if old is None and new is None:
            continue
        if old is None or new is None:
            found.append({"kind": kind, "name": "*", "change": "changed",
                          "detail": f"{key} could be listed {'after' if old is None else 'before'} the drill only"})
            continue
        for ident in sorted(old.keys() | new.keys()):
            if old.get(ident) == new.get(ident):
                continue
            name = _name(kind, ident, new.get(ident) or old.get(ident))
            if ident not in old:
                found.append({"kind": kind, "name": name, "change": "added", "detail": _summary(kind, new[ident])})
            elif ident not in new:
                found.append({"kind": kind, "name": name, "change": "removed", "detail": _summary(kind, old[ident])})
            else:
                found.append({"kind": kind, "name": name, "change": "changed",
                              "detail": _changes(kind, old[ident], new[ident])})
    return found


def describe_difference(difference: dict[str, Any]) -> str:
    detail = f": {difference['detail']}" if difference.get("detail") else ""
    return f"{difference['kind']} {difference['name']} {difference['change']}{detail}"


def _name(kind: str, ident: str, value: Any) -> str:
    if kind in ("node", "firewall"):
        return f"{value['name']} ({ident})"
    return ident


def _summary(kind: str, value: Any) -> str:
    if kind == "node":
        return value["state"]
    if kind == "firewall":
        return f"{len(value['rules'])} rules"
    if kind == "container":
        return f"{len(value)} objects"
    return f"{len(value)} record sets"


def _changes(kind: str, old: Any, new: Any) -> str:
    if kind == "node":
        return "; ".join(f"{k} {old.get(k)} -> {new.get(k)}" for k in ("name", "state") if old.get(k) != new.get(k))
    if kind == "firewall":
        return _listed_changes("rules", set(old["rules"]), set(new["rules"]), [])
    if kind == "container":
        changed = sorted(key for key in old.keys() & new.keys() if old[key] != new[key])
        return _listed_changes("objects", set(old), set(new), changed)
    old_sets = {json.dumps(s[:2]): s for s in old}
    new_sets = {json.dumps(s[:2]): s for s in new}
    changed = sorted(k for k in old_sets.keys() & new_sets.keys() if old_sets[k] != new_sets[k])
    return _listed_changes("record sets", set(old_sets), set(new_sets), changed, label=lambda k: " ".join(json.loads(k)))


def _listed_changes(what: str, old: set[str], new: set[str], changed: list[str],
                    label: Callable[[str], str] = str, limit: int = 5) -> str:
    parts = []
    for verb, items in (("added", sorted(new - old)), ("removed", sorted(old - new)), ("changed", changed)):
        if items:
            shown = ", ".join(label(item) for item in items[:limit])
            more = f" and {len(items) - limit} more" if len(items) > limit else ""
            parts.append(f"{what} {verb}: {shown}{more}")
    return "; ".join(parts)


def _only_nodes_leaving(found: list[dict[str, Any]], after: dict[str, Any]) -> bool:
    """Every difference is a node the listing still shows in a passing state (shutting down)."""
    for difference in found:
        if difference["kind"] != "node" or difference["change"] == "removed":
            return False
        ident = difference["name"].rsplit("(", 1)[-1].rstrip(")")
        if after["nodes"].get(ident, {}).get("state") in SETTLED_STATES:
            return False
    return True
