"""The checks read from the state store and the playbook alone: snapshot-age,
playbook-valid, source-ttls and last-drill."""

from __future__ import annotations

from pathlib import Path

import pytest
from checkkit import SERVICE, TARGET, Kit, ago, bucket, zone

from failover.checks.playbook_valid import require_playbook
from failover.errors import NotFound
from failover.state import DrillRecord

# -- snapshot-age ----------------------------------------------------------------------------


def test_snapshot_age_fails_without_a_snapshot_and_so_do_the_checks_that_need_one(kit: Kit) -> None:
    result = kit.run("snapshot-age")
    assert result.status == "fail"
    assert f"no snapshot of {SERVICE}" in result.detail and "failover inventory" in result.detail

    needing = kit.run("replicas")
    assert needing.status == "fail"
    assert "no snapshot to check against (see snapshot-age)" in needing.detail


def test_a_recent_snapshot_passes(kit: Kit) -> None:
    built = kit.snapshot(taken_at=ago(minutes=30))
    result = kit.run("snapshot-age")
    assert result.status == "pass", result.detail
    info = kit.store.snapshots(SERVICE)[-1]
    assert result.detail.startswith(f"snapshot {info.id} taken 30m ago")
    assert result.data["taken_at"] == built.taken_at
    assert 1800 <= result.data["age_s"] < 24 * 3600
    assert result.data["max_age_s"] == 24 * 3600


def test_a_snapshot_older_than_max_snapshot_age_fails(kit: Kit) -> None:
    kit.write(readiness={"max_snapshot_age": "24h"})
    kit.snapshot(taken_at=ago(days=2, minutes=1))
    result = kit.run("snapshot-age")
    assert result.status == "fail"
    assert "taken 2.0d ago, older than readiness.max_snapshot_age (24.0h)" in result.detail
    assert "failover inventory" in result.detail


def test_an_older_snapshot_named_with_snapshot_is_the_one_checked(kit: Kit) -> None:
    kit.write(readiness={"max_snapshot_age": "1h"})
    kit.snapshot(taken_at=ago(hours=3))
    kit.snapshot(taken_at=ago(minutes=2))
    old, new = kit.store.snapshots(SERVICE)
    assert kit.run("snapshot-age").status == "pass"
    result = kit.run("snapshot-age", snapshot=old.id)
    assert result.status == "fail"
    assert result.data["snapshot"] == old.id and result.data["newest"] == new.id


# -- playbook-valid --------------------------------------------------------------------------


def test_the_builtin_standard_playbook_is_valid(kit: Kit) -> None:
    result = kit.run("playbook-valid", playbook="standard")
    assert result.status == "pass", result.detail
    assert result.detail.startswith("standard (builtin:standard): ")
    assert "provision-nodes" in result.data["actions"] and "copy-dns-zones" in result.data["actions"]


def test_an_invalid_playbook_fails_naming_every_problem_with_its_line(kit: Kit, tmp_path: Path) -> None:
    book = tmp_path / "broken.yaml"
    book.write_text("name: broken\nsteps:\n  - id: a\n    action: provision-nodez\n  - id: b\n    action: pause\n"
                    "    with: {seconds: 1}\n    needs: [nowhere]\n")
    result = kit.run("playbook-valid", playbook=str(book))
    assert result.status == "fail"
    assert result.detail.startswith("2 problems: ")
    assert f"{book}:4" in result.detail and "provision-nodez" in result.detail
    assert f"{book}:8: steps[1].needs[0]: no step 'nowhere'" in result.detail
    assert len(result.data["problems"]) == 2


def test_var_overrides_are_validated_with_the_playbook(kit: Kit, tmp_path: Path) -> None:
    book = tmp_path / "paused.yaml"
    book.write_text("name: paused\nvars: {wait: 5}\nsteps:\n  - id: p\n    action: pause\n"
                    "    with: {seconds: \"${vars.wait}\"}\n")
    assert kit.run("playbook-valid", playbook=str(book), vars={"wait": "7"}).status == "pass"
    result = kit.run("playbook-valid", playbook=str(book), vars={"wait": "soon"})
    assert result.status == "fail"
    assert "seconds" in result.detail


def test_a_playbook_must_exist_as_a_file_or_a_builtin(tmp_path: Path) -> None:
    require_playbook("standard")
    existing = tmp_path / "mine.yaml"
    existing.write_text("not even yaml: [")
    require_playbook(str(existing))  # exists: whether it is valid is playbook-valid's question
    for missing in ("no-such-builtin", str(tmp_path / "missing.yaml")):
        with pytest.raises(NotFound) as caught:
            require_playbook(missing)
        assert missing in str(caught.value) and "built-in: " in str(caught.value)


# -- source-ttls -----------------------------------------------------------------------------

APEX = "ttl.example."


def ttl_zone(*extra: tuple[str, str, int | None, list[str]]) -> object:
    return zone(
        APEX,
        (APEX, "SOA", 900, ["ns-1.awsdns-01.org. hostmaster. 1 7200 900 1209600 86400"]),
        (APEX, "NS", 172800, ["ns-1.awsdns-01.org."]),
        (APEX, "A", None, ["dualstack.lb-1.us-east-1.elb.amazonaws.com."]),  # an alias: no TTL
        (f"www.{APEX}", "CNAME", 300, [APEX]),
        (f"api.{APEX}", "A", 60, ["198.51.100.7"]),
        *extra,
    )


def test_source_ttls_pass_when_no_record_set_exceeds_max_ttl(kit: Kit) -> None:
    kit.snapshot(ttl_zone(), bucket("b", 1))
    result = kit.run("source-ttls")
    assert result.status == "pass", result.detail
    # the apex SOA and NS (the target's own) and the alias (no TTL) are not counted
    assert result.data["record_sets"] == 2 and result.data["highest_ttl"] == 300
    assert result.detail == "2 record sets in 1 zone, the highest TTL 300s (max 300s)"


def test_source_ttls_fail_naming_the_longest_five(kit: Kit) -> None:
    kit.write(readiness={"max_ttl": 120})
    longer = [(f"h{i}.{APEX}", "A", 1000 + i, ["192.0.2.1"]) for i in range(6)]
    kit.snapshot(ttl_zone(*longer))
    result = kit.run("source-ttls")
    assert result.status == "fail"
    assert result.detail.startswith("7 record sets with a TTL over readiness.max_ttl (120s): "
                                    f"h5.{APEX} A (1005s), h4.{APEX} A (1004s)")
    assert "and 2 more" in result.detail and "up to 17m after the cutover" in result.detail
    assert f"www.{APEX} CNAME" not in result.detail  # the sixth and seventh are counted, not named
    assert {item["name"] for item in result.data["over"]} == {f"h{i}.{APEX}" for i in range(6)} | {f"www.{APEX}"}


def test_source_ttls_ignore_private_zones(kit: Kit) -> None:
    kit.write(readiness={"max_ttl": 60})
    kit.snapshot(zone("internal.", ("db.internal.", "A", 3600, ["10.0.0.5"]), private=True))
    result = kit.run("source-ttls")
    assert (result.status, result.detail) == ("pass", "no zones")


# -- last-drill ------------------------------------------------------------------------------


def drill(drill_id: str, *, status: str = "succeeded", ended: str | None = None, rto_s: float | None = 600,
          clean: bool | None = True, target: str = TARGET, error: str | None = None) -> DrillRecord:
    return DrillRecord(id=drill_id, service=SERVICE, target=target, playbook="standard", prefix="drill",
                       run_id=f"run-{drill_id}", status=status, started_at=ended or ago(days=1, minutes=20),
                       ended_at=ended or ago(days=1), rto_s=rto_s, teardown_s=30, clean=clean, error=error)


def test_never_drilled_warns(kit: Kit) -> None:
    kit.store.save_drill(drill("d-other", target="elsewhere"))  # another target's drill proves nothing here
    result = kit.run("last-drill")
    assert result.status == "warn"
    assert result.detail == f"never drilled onto {TARGET}: run `failover drill`"


def test_a_recent_clean_drill_within_the_rto_passes(kit: Kit) -> None:
    kit.store.save_drill(drill("d-1", rto_s=600))
    result = kit.run("last-drill")
    assert result.status == "pass", result.detail
    assert result.detail == "drill d-1 (24.0h ago) succeeded, recovered in 10m (rto 30m)"
    assert result.data["rto_measured_s"] == 600 and result.data["rto_s"] == 1800


def test_a_drill_slower_than_the_rto_fails_naming_both(kit: Kit) -> None:
    kit.write(readiness={"rto": "15m"})
    kit.store.save_drill(drill("d-1", rto_s=1260))
    result = kit.run("last-drill")
    assert result.status == "fail"
    assert "took 21m to recover, over readiness.rto (15m)" in result.detail


@pytest.mark.parametrize(("record", "expected"), [
    (drill("d-2", status="failed", error="step nodes failed: quota exceeded"),
     "failed: step nodes failed: quota exceeded"),
    (drill("d-2", status="teardown_failed"), "teardown failed"),
    (drill("d-2", clean=False), "left resources on the target (not clean)"),
])
def test_a_failed_or_unclean_last_drill_fails(kit: Kit, record: DrillRecord, expected: str) -> None:
    kit.store.save_drill(drill("d-1", ended=ago(days=3)))  # an older success does not make up for it
    kit.store.save_drill(record)
    result = kit.run("last-drill")
    assert result.status == "fail"
    assert result.detail.startswith("drill d-2 ") and expected in result.detail


def test_an_old_drill_warns_and_a_running_one_is_not_the_last(kit: Kit) -> None:
    kit.write(readiness={"max_drill_age": "7d"})
    kit.store.save_drill(drill("d-1", ended=ago(days=9)))
    kit.store.save_drill(DrillRecord(id="d-2", service=SERVICE, target=TARGET, playbook="standard", prefix="drill",
                                     run_id=None, status="running", started_at=ago(minutes=1)))
    result = kit.run("last-drill")
    assert result.status == "warn"
    assert result.detail.startswith("drill d-1 (9.0d ago) succeeded (recovered in 10m), but is older than "
                                    "readiness.max_drill_age (7.0d)")
