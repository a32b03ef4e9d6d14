"""What a drill computes from the journal (the recovery time, each step's timing) and from
two listings of the target (what differs)."""

from __future__ import annotations

import pytest

from failover.drill import check_drill_prefix, describe_difference, differences, recovery_time, step_timings
from failover.engine import RunStatus, StepStatus
from failover.engine.journal import RunRecord, StepRecord
from failover.errors import InputError


def run(status: RunStatus = RunStatus.SUCCEEDED, ended: str | None = "2026-01-01T10:00:30.000Z") -> RunRecord:
    return RunRecord(id="run-1", service="svc", playbook="p", definition={}, target="t", snapshot_id=None,
                     dry_run=False, parallelism=4, status=status, started_at="2026-01-01T10:00:00.000Z",
                     ended_at=ended, error=None, drill_prefix="drill")


def step(step_id: str, action: str, status: StepStatus, start: str | None, end: str | None) -> StepRecord:
    at = "2026-01-01T10:00:{}Z".format
    return StepRecord(step_id, action, status, 1, start and at(start), end and at(end), None, None)


STEPS = [
    step("nodes", "provision-nodes", StepStatus.SUCCEEDED, "00.100", "05.100"),
    step("late-check", "wait-healthy", StepStatus.SUCCEEDED, "05.200", "12.250"),
    step("healthy", "wait-healthy", StepStatus.SUCCEEDED, "05.200", "07.500"),
    step("cutover", "cutover-dns", StepStatus.SUCCEEDED, "07.600", "08.000"),
]


def test_the_recovery_time_ends_when_the_first_health_check_succeeded() -> None:
    assert recovery_time(run(), STEPS) == 7.5


def test_without_a_health_check_the_recovery_time_is_the_whole_run() -> None:
    assert recovery_time(run(), [STEPS[0], STEPS[3]]) == 30.0
    skipped = step("healthy", "wait-healthy", StepStatus.SKIPPED, None, None)
    assert recovery_time(run(), [STEPS[0], skipped]) == 30.0


def test_a_run_that_did_not_succeed_measures_no_recovery_time() -> None:
    assert recovery_time(run(RunStatus.FAILED), STEPS) is None
    assert recovery_time(run(RunStatus.INTERRUPTED), STEPS) is None


def test_step_timings_are_offsets_from_the_run_start_and_durations() -> None:
    pending = step("notify", "notify", StepStatus.PENDING, None, None)
    timings = step_timings(run(), [STEPS[0], STEPS[2], pending])
    assert [(t.id, t.status, t.offset_s, t.duration_s) for t in timings] == [
        ("nodes", "succeeded", 0.1, 5.0), ("healthy", "succeeded", 5.2, 2.3), ("notify", "pending", None, None),
    ]
    assert set(timings[0].to_dict()) >= {"id", "action", "status", "started_at", "ended_at", "duration_s"}


BEFORE = {
    "nodes": {"i-1": {"name": "social-app-web-1", "state": "running"}},
    "firewalls": {"sg-0": {"name": "default", "rules": ['{"direction": "egress"}']}},
    "containers": {"replica-media": {"a.txt": [3, "h1"], "b.txt": [4, "h2"]}},
    "zones": {"social.example.": [["social.example.", "A", 300, "192.0.2.1"],
                                  ["social.example.", "SOA", 3600, "ns1. host. <serial> 1 2 3 4"]]},
}


def test_equal_listings_have_no_differences() -> None:
    assert differences(BEFORE, {key: dict(value) for key, value in BEFORE.items()}) == []


def test_every_kind_of_difference_is_named() -> None:
    after = {
        "nodes": {"i-1": {"name": "social-app-web-1", "state": "stopped"},
                  "i-2": {"name": "drill-social-app-web-1", "state": "running"}},
        "firewalls": {},
        "containers": {"replica-media": {"a.txt": [3, "h1"], "b.txt": [5, "h3"], "c.txt": [1, "h4"]}},
        "zones": {"social.example.": [["social.example.", "A", 60, "192.0.2.9"],
                                      ["social.example.", "SOA", 3600, "ns1. host. <serial> 1 2 3 4"]],
                  "drill.social.example.": []},
    }
    found = {(d["kind"], d["name"], d["change"]): d["detail"] for d in differences(BEFORE, after)}
    assert found == {
        ("node", "social-app-web-1 (i-1)", "changed"): "state running -> stopped",
        ("node", "drill-social-app-web-1 (i-2)", "added"): "running",
        ("firewall", "default (sg-0)", "removed"): "1 rules",
        ("container", "replica-media", "changed"): "objects added: c.txt; objects changed: b.txt",
        ("zone", "social.example.", "changed"): "record sets changed: social.example. A",
        ("zone", "drill.social.example.", "added"): "0 record sets",
    }
    lines = [describe_difference(d) for d in differences(BEFORE, after)]
    assert "node drill-social-app-web-1 (i-2) added: running" in lines


def test_a_capability_listed_only_once_is_a_difference() -> None:
    after = {key: value for key, value in BEFORE.items() if key != "zones"}
    [found] = differences(BEFORE, after)
    assert found["kind"] == "zone" and "before the drill only" in found["detail"]


def test_the_soa_serial_is_masked_when_the_zones_are_listed() -> None:
    from failover.drill import _value

    assert _value("SOA", "a.ns. host. 2024011501 7200 900 1209600 86400") == "a.ns. host. <serial> 7200 900 1209600 86400"
    assert _value("TXT", '"1 2 3"') == '"1 2 3"'


@pytest.mark.parametrize("prefix", ["", "not a label", "x" * 64])
def test_a_bad_prefix_is_invalid_input_naming_the_option(prefix: str) -> None:
    with pytest.raises(InputError, match="--prefix"):
        check_drill_prefix(prefix)


def test_a_prefix_is_normalized_to_dns_labels() -> None:
    assert check_drill_prefix("Drill.EU.") == "drill.eu"
