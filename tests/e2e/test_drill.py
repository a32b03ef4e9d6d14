"""``failover drill`` with the real CLI on an emulated world whose AWS account is gone (the
snapshot and the replicas are all there is): the standard playbook into isolated names,
health-checked, timed and torn down; a drill whose health check fails; a drill refused
by the lock. After each, the target is listed here, straight from the emulators, and
must be exactly as it was before."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2ekit import BUCKET, ZONE, inventory, started_world

from failover.engine.lock import process_start_time
from failover.state import StateStore
from failover.testing.world import EmulatedWorld, failover_command

STANDARD_STEPS = ["data", "nodes", "firewall", "databases", "dns-copy", "front-door", "healthy", "cutover"]
DRILL_ZONE = f"drill.{ZONE}"


@pytest.fixture(scope="module")
def world() -> Iterator[EmulatedWorld]:
    """The sample service snapshotted and replicated (bucket, zone, database dump), then its
    account terminated: a drill must need nothing but the snapshot and the target."""
    with started_world(storage="azurite") as started:
        inventory(started)
        replicated = started.failover("replicate", "--target", started.target)
        assert replicated.code == 0, replicated.stderr
        started.source.stop()
        yield started


# -- the target, read from the emulators -------------------------------------------------------


def target_state(world: EmulatedWorld) -> dict[str, Any]:
    """Every live node, security group (with its rules), container (every object's size and
    SHA-256 of its content) and DNS zone (every record set; the SOA serial masked) on the target."""
    ec2 = world.compute_client()
    nodes = {node["InstanceId"]: (_name(node), node["State"]["Name"]) for node in world.target_instances()}
    groups = {
        group["GroupId"]: (group["GroupName"], json.dumps([group["IpPermissions"], group["IpPermissionsEgress"]],
                                                          sort_keys=True))
        for group in ec2.describe_security_groups()["SecurityGroups"]
    }
    prefix = world.container_name("")
    containers = {
        name: {key: (blob.size, blob.sha256) for key, blob in world.target_objects(name[len(prefix):]).items()}
        for name in world.containers()
    }
    zones = {zone: pdns_rrsets(world, zone) for zone in world.zones()}
    return {"nodes": nodes, "firewalls": groups, "containers": containers, "zones": zones}


def _name(node: dict[str, Any]) -> str:
    return next((tag["Value"] for tag in node.get("Tags", []) if tag["Key"] == "Name"), node["InstanceId"])


def pdns_rrsets(world: EmulatedWorld, zone: str) -> list[tuple[str, str, int, tuple[str, ...]]]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{world.pdns.api_port}/api/v1/servers/localhost/zones/{zone}",
        headers={"X-API-Key": world.pdns.api_key},
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        rrsets = json.loads(answer.read())["rrsets"]
    return sorted(
        (rrset["name"], rrset["type"], rrset["ttl"],
         tuple(sorted(_masked(rrset["type"], record["content"]) for record in rrset["records"])))
        for rrset in rrsets
    )


def _masked(type: str, content: str) -> str:
    if type != "SOA":
        return content
    fields = content.split()
    fields[2] = "<serial>"
    return " ".join(fields)


# -- helpers --------------------------------------------------------------------------------


def drill(world: EmulatedWorld, playbook: str, *args: str) -> tuple[int, dict[str, Any] | None, str]:
    done = world.failover("drill", playbook, "--target", world.target, "--json", *args)
    document = json.loads(done.stdout) if done.stdout.strip() else None  # one JSON document, or nothing
    return done.code, document, done.stderr


def created_by(world: EmulatedWorld, run_id: str) -> dict[str, list[dict[str, Any]]]:
    """What the run's journal says each step created (names as the actions recorded them)."""
    status = world.failover("status", run_id, "--json")
    assert status.code == 0, status.stderr
    document = status.json()
    assert document["drill_prefix"] == "drill"
    assert document["status"] == "rolled_back"
    return {step["id"]: step["created"] for step in document["steps"]}


def slow_playbook(world: EmulatedWorld) -> Path:
    """A node, the zone copied, then a health check that waits for ever (nothing answers)."""
    playbook = world.workdir / "slow-drill.yaml"
    playbook.write_text(yaml.safe_dump({
        "name": "slow-drill",
        "steps": [
            {"id": "nodes", "action": "provision-nodes", "with": {"select": {"names": ["web-1"]}}},
            {"id": "dns-copy", "action": "copy-dns-zones"},
            {"id": "healthy", "action": "wait-healthy", "needs": ["nodes", "dns-copy"], "retries": 0,
             "with": {"url": f"http://127.0.0.1:{closed_port()}/", "timeout": 600, "interval": 0.2}},
        ],
    }, sort_keys=False))
    return playbook


def wait_for_health_check(process: subprocess.Popen) -> list[str]:
    """Reads the drill's stderr until its health check waits; the lines read."""
    lines = []
    for line in process.stderr:
        lines.append(line)
        if line.startswith("step healthy: waiting"):
            return lines
    raise AssertionError("the drill ended before its health check: " + "".join(lines))


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- the drills ---------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_drill_of_the_standard_playbook_measures_the_recovery_and_leaves_the_target_as_it_was(
    world: EmulatedWorld,
) -> None:
    before = target_state(world)
    assert ZONE in before["zones"] and world.container_name(BUCKET) in before["containers"]  # the replicas
    health_checks = world.app.requests

    code, document, stderr = drill(world, "standard", *world.run_vars)

    assert code == 0, stderr
    assert document["status"] == "succeeded", document["error"]
    assert (document["playbook"], document["target"], document["prefix"]) == ("standard", world.target, "drill")
    assert document["clean"] is True and document["differences"] == []
    assert [step["id"] for step in document["steps"]] == STANDARD_STEPS
    assert {step["status"] for step in document["steps"]} == {"succeeded"}
    timings = {step["id"]: step for step in document["steps"]}
    healthy_end = timings["healthy"]["offset_s"] + timings["healthy"]["duration_s"]
    assert document["rto_s"] == pytest.approx(healthy_end, abs=0.01)  # run start -> healthy
    assert timings["nodes"]["duration_s"] < document["rto_s"]
    assert document["rto_objective_s"] == 1800 and document["teardown_s"] > 0
    assert world.app.requests > health_checks  # the health check asked the application

    # Everything the drill created carried its prefix, and it is all gone.
    created = created_by(world, document["run"])
    nodes = [item["name"] for item in created["nodes"] if item["kind"] == "node"]
    assert sorted(nodes) == ["drill-social-app-reports-1", "drill-social-app-web-1", "drill-social-app-web-2",
                             "drill-social-app-worker-1"]
    # made before the nodes, which were created in it (issue 16); apply-firewall added its member rules
    assert [item["name"] for item in created["nodes"] if item["kind"] == "firewall"] == ["drill-social-app-social-web"]
    assert created["firewall"] == []
    assert [item["id"] for item in created["dns-copy"]] == [DRILL_ZONE]
    assert all(item["name"].startswith("drill-") for item in created["databases"] if item["kind"] == "node")
    assert created["data"] == []  # a drill writes no bucket data
    assert target_state(world) == before  # the real zone, the replicas, the dump: as they were

    # Kept for `check`, and reported.
    [record] = StateStore(world.state_dir).drills(world.service, world.target)[:1]
    assert (record.id, record.run_id, record.status) == (document["drill"], document["run"], "succeeded")
    assert (record.rto_s, record.teardown_s, record.clean) == (document["rto_s"], document["teardown_s"], True)
    html, markdown = Path(document["report"]["html"]), Path(document["report"]["markdown"])
    assert html == world.state_dir / "reports" / f"{document['drill']}.html" and record.report == str(html)
    assert str(html) in stderr
    page, table = html.read_text(), markdown.read_text()
    assert "<svg" in page and page.count('class="bar step"') == len(STANDARD_STEPS)
    for step_id in STANDARD_STEPS:
        assert f'data-step="{step_id}"' in page
        assert f"| {step_id} | {timings[step_id]['action']} | succeeded |" in table
    assert world.env["FAILOVER_E2E_PDNS_KEY"] not in page + table  # no secret in the reports


@pytest.mark.slow
def test_a_drill_whose_health_check_fails_is_torn_down_all_the_same(world: EmulatedWorld) -> None:
    playbook = world.workdir / "failing-drill.yaml"
    playbook.write_text(yaml.safe_dump({
        "name": "failing-drill",
        "vars": {"health_url": f"http://127.0.0.1:{closed_port()}/healthz"},
        "steps": [
            {"id": "nodes", "action": "provision-nodes", "with": {"select": {"tags": {"role": "web"}}}},
            {"id": "firewall", "action": "apply-firewall", "needs": ["nodes"],
             "with": {"select": {"tags": {"role": "web"}}}},
            {"id": "dns-copy", "action": "copy-dns-zones"},
            {"id": "healthy", "action": "wait-healthy", "needs": ["firewall", "dns-copy"], "retries": 0,
             "with": {"url": "${vars.health_url}", "timeout": 1, "interval": 0.2}},
            {"id": "cutover", "action": "cutover-dns", "needs": ["nodes", "healthy"], "with": {"ttl": 60}},
        ],
    }, sort_keys=False))
    before = target_state(world)

    code, document, stderr = drill(world, str(playbook))

    assert code == 1
    assert document["status"] == "failed"
    assert "step healthy failed" in document["error"]
    assert f"failover: error: drill {document['drill']} failed: step healthy failed" in stderr
    assert {step["id"]: step["status"] for step in document["steps"]} == {
        "nodes": "succeeded", "firewall": "succeeded", "dns-copy": "succeeded", "healthy": "failed",
        "cutover": "pending",
    }
    assert document["rto_s"] is None and document["teardown_s"] > 0
    assert document["clean"] is True and document["differences"] == []
    created = created_by(world, document["run"])
    assert sorted(item["name"] for item in created["nodes"]) == [  # the firewall made first, the nodes in it
        "drill-social-app-social-web", "drill-social-app-web-1", "drill-social-app-web-2"]
    assert target_state(world) == before

    record = StateStore(world.state_dir).drills(world.service)[0]
    assert (record.id, record.status, record.rto_s, record.clean) == (document["drill"], "failed", None, True)
    assert Path(document["report"]["html"]).is_file() and Path(document["report"]["markdown"]).is_file()


@pytest.mark.slow
def test_a_drill_stopped_by_sigterm_is_torn_down_before_it_exits(world: EmulatedWorld) -> None:
    playbook = slow_playbook(world)
    before = target_state(world)

    process = world.start_failover("drill", str(playbook), "--target", world.target, "--json")
    lines = wait_for_health_check(process)
    assert target_state(world)["nodes"] != before["nodes"]  # the drill's node is up
    process.send_signal(signal.SIGTERM)
    stdout, rest = process.communicate(timeout=120)
    stderr = "".join(lines) + rest

    assert process.returncode == 130, stderr
    document = json.loads(stdout)
    assert document["status"] == "failed" and document["error"] == "the run was interrupted"
    assert {step["id"]: step["status"] for step in document["steps"]}["healthy"] == "interrupted"
    assert document["clean"] is True and document["teardown_s"] > 0
    assert f"drill {document['drill']} interrupted; its run {document['run']} was torn down" in stderr
    assert target_state(world) == before
    assert StateStore(world.state_dir).drill(document["drill"]).status == "failed"


@pytest.mark.slow
def test_a_drill_killed_before_its_teardown_is_torn_down_by_the_next_drill(world: EmulatedWorld) -> None:
    playbook = slow_playbook(world)
    before = target_state(world)
    process = world.start_failover("drill", str(playbook), "--target", world.target, "--json")
    wait_for_health_check(process)
    process.kill()  # SIGKILL: no teardown can run in this process
    process.communicate(timeout=60)
    [killed] = [d for d in StateStore(world.state_dir).drills(world.service) if d.status == "running"]
    assert target_state(world) != before  # its node and its zone are still there

    code, document, stderr = drill(world, "standard", *world.run_vars)

    assert code == 0, stderr
    assert f"drill {killed.id} ended before its teardown: tearing down its run {killed.run_id} first" in stderr
    assert document["clean"] is True
    assert target_state(world) == before
    record = StateStore(world.state_dir).drill(killed.id)
    assert record.status == "failed" and f"drill {document['drill']} tore its run down" in record.error


@pytest.mark.slow
def test_a_drill_waits_for_no_one_another_run_holds_the_lock(world: EmulatedWorld) -> None:
    with StateStore(world.state_dir) as store, store.transaction() as db:
        db.execute("INSERT INTO locks (service, run_id, host, pid, process_started, since) VALUES (?, ?, ?, ?, ?, ?)",
                   (world.service, "run-elsewhere", socket.gethostname(), os.getpid(),
                    process_start_time(os.getpid()), "2026-01-01T00:00:00Z"))
    drills = len(StateStore(world.state_dir).drills(world.service))
    before = target_state(world)
    try:
        code, document, stderr = drill(world, "standard", *world.run_vars)
    finally:
        with StateStore(world.state_dir) as store, store.transaction() as db:
            db.execute("DELETE FROM locks WHERE run_id = 'run-elsewhere'")

    assert code == 3, stderr
    assert document is None and "locked by run run-elsewhere" in stderr
    assert len(StateStore(world.state_dir).drills(world.service)) == drills
    assert target_state(world) == before


def test_a_bad_prefix_is_invalid_input_before_anything_else(tmp_path: Path) -> None:
    done = subprocess.run([*failover_command(), "drill", "standard", "--target", "t", "--prefix", "not a label"],
                          check=False, cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "FAILOVER_CONFIG": str(tmp_path / "missing.yaml")})
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert "--prefix" in line and "DNS labels" in line
    assert not (tmp_path / ".failover").exists()
