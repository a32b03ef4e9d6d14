"""``failover demo``: the whole story offline, checked from its JSON document; its clean-up,
on success and on Ctrl-C; and the pieces it is built from (the file DNS driver, the run's
timeline and critical path)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from clikit import FAILOVER

from failover.config import DnsSpec
from failover.demo import StepTime, critical_path
from failover.errors import OperationFailed
from failover.testing.memdns import FileDNSDriver, read_records
from providers.libcloud.dns import LibcloudDns

STANDARD_STEPS = ["data", "nodes", "firewall", "databases", "dns-copy", "front-door", "healthy", "cutover"]


def start_demo(tmp_path: Path, *args: str) -> subprocess.Popen:
    """``failover demo`` in a session of its own (its processes are then the group's), its
    temporary files in ``tmp_path/tmp``, with an AWS endpoint in the environment it must ignore."""
    (tmp_path / "tmp").mkdir()
    env = {**os.environ, "TMPDIR": str(tmp_path / "tmp"), "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "COLUMNS": "120"}
    return subprocess.Popen([*FAILOVER, "demo", *args], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def processes_in_group(group: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) == group:
                    found.append(int(entry.name))
            except ProcessLookupError:
                pass
    return found


def assert_cleaned_up(demo: subprocess.Popen, tmp_path: Path) -> None:
    assert processes_in_group(demo.pid) == [], "the demo left processes running"
    assert list((tmp_path / "tmp").iterdir()) == [], "the demo left temporary files"


@pytest.mark.slow
def test_demo_tells_the_whole_story_offline(tmp_path: Path) -> None:
    demo = start_demo(tmp_path, "--json")
    stdout, stderr = demo.communicate(timeout=300)
    assert demo.returncode == 0, stderr
    doc = json.loads(stdout)  # exactly one document on stdout
    assert doc["ok"] is True
    assert doc["elapsed_s"] > 0  # measured (how long is the benchmarks' business, never a test's)

    # the snapshot: the service, not its staging neighbour
    counts = doc["snapshot"]["counts"]
    assert counts["node"] == 4 and counts["bucket"] == 1 and counts["dns_zone"] == 1 and counts["database"] == 1

    # the account was gone for the whole run, and the run did not need it
    source = doc["source"]
    assert source["terminated"] is True
    assert source["reachable_during_run"] is False and source["probes_during_run"] > 0 and source["answers_during_run"] == 0
    assert doc["run"]["status"] == "succeeded" and doc["run"]["error"] is None

    # nodes: every node and the database on the target, with new addresses
    nodes = {node["source_name"]: node for node in doc["nodes"]}
    assert set(nodes) == {"web-1", "web-2", "worker-1", "reports-1", "orders-db"}
    assert nodes["orders-db"]["kind"] == "database" and nodes["orders-db"]["dump"].startswith("failover-dumps/orders-db/")
    new_ips = [node["new_ip"] for node in doc["nodes"]]
    assert all(new_ips) and len(set(new_ips)) == len(new_ips)
    assert all(node["new_ip"] != node["old_ip"] and node["name"].startswith("social-app-") for node in doc["nodes"])

    # DNS: the apex pointed at web-1's Elastic IP; it answers with web-1's new address now
    web_1 = nodes["web-1"]
    apex = next(change for change in doc["dns"]["changed"] if change["name"] == "social.example." and change["type"] == "A")
    assert apex["before"] == [web_1["old_ip"]] and apex["after"] == [web_1["new_ip"]]
    assert doc["dns"]["served"]["social.example. A"] == [web_1["new_ip"]]
    assert doc["dns"]["served"]["www.social.example. CNAME"] == ["social.example."]
    assert doc["dns"]["rewritten_to_new_ips"] is True

    # the front door: the HTTPS load balancer came back as one (a HAProxy node, the certificate from
    # the profile), and its alias points at it
    [front] = doc["front_door"]
    assert front["name"] == "social-app-lb-social-web" and front["via"] == "node" and front["address"]
    assert front["address"] not in new_ips
    assert [(item["protocol"], item["port"], item["tls"], item["backends"]) for item in front["listeners"]] == [
        ("HTTP", 80, None, 2), ("HTTPS", 443, "profile", 2)]
    assert doc["dns"]["served"]["app.social.example. A"] == [front["address"]]

    # data: read from the replica (the source was gone), every object's bytes as on the source
    objects = doc["objects"]
    assert objects["read_from"] == "replica"
    assert objects["expected"] == objects["verified"] == 13
    assert objects["missing"] == objects["differing"] == objects["extra"] == []
    assert doc["replication"]["buckets"][0]["copied"] == 13  # by evacuate, before the deadline
    assert doc["replication"]["complete"] is True and doc["replication"]["zones"] == ["social.example."]
    assert doc["replication"]["stopped_by"] == "source_gone" and doc["replication"]["passes"] >= 2

    # the timeline, from the journal: every step ran once and after the steps it needs
    steps = {step["id"]: step for step in doc["timeline"]}
    assert list(steps) == STANDARD_STEPS
    assert all(step["status"] == "succeeded" and step["attempts"] == 1 for step in steps.values())
    for step in steps.values():
        assert all(step["start_s"] >= steps[need]["end_s"] for need in step["needs"])
    assert doc["run"]["healthy_after_s"] == steps["healthy"]["end_s"] <= doc["run"]["duration_s"]
    assert doc["health"]["status"] == 200

    # before the account went: a drill, torn down, the target as before; after: check says ready
    assert doc["drill"]["status"] == "succeeded" and doc["drill"]["clean"] is True
    assert 0 < doc["drill"]["rto_s"] <= doc["drill"]["rto_objective_s"]
    assert doc["check"]["ready"] is True and doc["check"]["counts"]["fail"] == 0
    assert doc["check"]["checks"]["last-drill"] == doc["check"]["checks"]["replicas"] == "pass"
    assert not any(node["name"].startswith("drill-") for node in doc["nodes"])

    assert "The account is terminated" in stderr and "Traceback" not in stderr
    assert_cleaned_up(demo, tmp_path)


@pytest.mark.slow
def test_demo_prints_the_story_for_people(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    stdout, stderr = demo.communicate(timeout=300)
    assert demo.returncode == 0, stderr
    assert stdout == ""  # people read stderr
    for text in ("The provider gives notice", "$ failover evacuate --target fallback --deadline 24h",
                 "the source does not answer", "$ failover drill standard",
                 "the target as before: yes", "The account is terminated", "$ failover check standard --target fallback",
                 "$ failover run standard --target fallback", "the timeline from its journal", "13 of 13 objects",
                 "never answered during the run", "back online", "Front door: social-web-", "HTTPS:443 (certificate: profile)"):
        assert text in stderr
    assert_cleaned_up(demo, tmp_path)


@pytest.mark.slow
def test_ctrl_c_stops_every_process_and_removes_every_file(tmp_path: Path) -> None:
    demo = start_demo(tmp_path)
    deadline = time.monotonic() + 120
    for line in demo.stderr:  # wait until the account is being seeded: both servers run then
        if line.startswith("1.") or time.monotonic() > deadline:
            break
    os.kill(demo.pid, signal.SIGINT)  # the demo alone: it must stop its servers itself
    _, stderr = demo.communicate(timeout=60)
    assert demo.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert_cleaned_up(demo, tmp_path)


def test_keep_must_name_a_new_or_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "file").write_text("x")
    result = subprocess.run([*FAILOVER, "demo", "--keep", str(tmp_path / "full")], capture_output=True, text=True)
    assert result.returncode == 2 and "--keep" in result.stderr


# -- the file DNS driver, through failover's DNS adapter ---------------------------------------


def test_file_dns_driver_keeps_zones_and_record_sets(tmp_path: Path) -> None:
    path = tmp_path / "dns.json"
    dns = LibcloudDns(DnsSpec(driver="failover.testing.memdns:FileDNSDriver", options={"path": str(path)}))

    zone = dns.create_zone("example.com.")
    assert zone.domain == "example.com." and dns.find_zone("example.com") == zone
    own = {(rs.name, rs.type) for rs in dns.list_records(zone)}
    assert own == {("example.com.", "SOA"), ("example.com.", "NS")}  # like a provider, its own apex records
    with pytest.raises(OperationFailed, match="exists already"):
        dns.create_zone("example.com.")

    dns.set_record(zone, "www.example.com.", "A", 60, ["192.0.2.1", "192.0.2.2"])
    dns.set_record(zone, "example.com.", "MX", 300, ["10 mail.example.com.", "20 backup.example.com."])
    dns.set_record(zone, "www.example.com.", "A", 30, ["192.0.2.3"])  # replaces the whole set
    sets = {(rs.name, rs.type): rs for rs in dns.list_records(zone)}
    assert sets[("www.example.com.", "A")].values == ("192.0.2.3",) and sets[("www.example.com.", "A")].ttl == 30
    assert sorted(sets[("example.com.", "MX")].values) == ["10 mail.example.com.", "20 backup.example.com."]

    # another driver on the same file (failover keeps one per thread) sees it all, in libcloud's conventions
    stored = read_records(path)["example.com"]
    assert {"name": "www", "type": "A", "ttl": 30, "data": "192.0.2.3"} in stored
    assert any(r["type"] == "MX" and r["data"] == "mail.example.com." for r in stored)  # the priority is kept apart

    assert dns.delete_record(zone, "www.example.com.", "A") is True
    assert dns.delete_record(zone, "www.example.com.", "A") is False
    assert dns.delete_zone(zone) is True and dns.find_zone("example.com.") is None
    assert FileDNSDriver(path).list_zones() == []


# -- the run's timeline ------------------------------------------------------------------------


def step(step_id: str, start: float, end: float, *needs: str) -> StepTime:
    return StepTime(id=step_id, action="pause", status="succeeded", attempts=1, needs=needs, start_s=start, end_s=end)


def test_critical_path_is_the_longest_path_weighted_by_durations() -> None:
    steps = [
        step("data", 0.0, 2.0),
        step("nodes", 0.0, 3.0),
        step("firewall", 3.0, 3.5, "nodes"),
        step("dns-copy", 0.0, 4.0),
        step("healthy", 3.5, 4.5, "nodes", "firewall", "data"),
        step("cutover", 4.5, 5.0, "nodes", "dns-copy", "healthy"),
    ]
    seconds, path = critical_path(steps)
    assert path == ["nodes", "firewall", "healthy", "cutover"]
    assert seconds == pytest.approx(3.0 + 0.5 + 1.0 + 0.5)
    assert critical_path([]) == (0.0, [])
