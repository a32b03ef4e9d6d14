"""``failover replicate``, zones section, end to end: the real executable, the source a
``moto_server`` process (Route53) snapshotted by ``failover inventory``, the target DNS a
real PowerDNS server read back through its HTTP API."""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from replicatekit import replicate, replicated, snapshot

from failover.state import StateStore
from failover.testing.emulators import EmulatorMissing, PowerDns

SERVICE_TAGS = [{"Key": "service", "Value": "social-app"}]
ZONE = "shop.example."
BASE_SETS = {
    ("www.shop.example.", "A"): (300, ["192.0.2.10", "192.0.2.11"]),
    ("api.shop.example.", "CNAME"): (300, ["www.shop.example."]),
    ("shop.example.", "MX"): (300, ["10 mail.shop.example."]),
    ("shop.example.", "TXT"): (300, ['"v=spf1 -all"']),
    ("mail.shop.example.", "A"): (600, ["192.0.2.20"]),
}


@pytest.fixture
def powerdns(monkeypatch: pytest.MonkeyPatch) -> Iterator[PowerDns]:
    """A PowerDNS of this test's own (it starts in a fraction of a second), its API key in
    the environment as the config refers to it."""
    try:
        server = PowerDns(api_key="zones-test-key").start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    monkeypatch.setenv("PDNS_KEY", server.api_key)
    yield server
    server.stop()


@pytest.fixture
def config(write_config, tmp_path: Path, powerdns: PowerDns) -> Path:
    return write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {"dns": dns_profile(powerdns)}},
    )


def dns_profile(powerdns: PowerDns) -> dict[str, Any]:
    return {"driver": "powerdns", "options": {**powerdns.driver_options, "key": "${env:PDNS_KEY}"}}


# -- the source --------------------------------------------------------------------------------


def seed_zone(clients, sets: dict[tuple[str, str], tuple[int, list[str]]], name: str = ZONE) -> str:
    route53 = clients("route53")
    zone_id = route53.create_hosted_zone(Name=name, CallerReference=f"ref-{name}")["HostedZone"]["Id"].split("/")[-1]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=SERVICE_TAGS)
    upsert(clients, zone_id, sets)
    return zone_id


def upsert(clients, zone_id: str, sets: dict[tuple[str, str], tuple[int, list[str]]]) -> None:
    changes = [
        {"Action": "UPSERT", "ResourceRecordSet": {
            "Name": name, "Type": type, "TTL": ttl, "ResourceRecords": [{"Value": value} for value in values]}}
        for (name, type), (ttl, values) in sets.items()
    ]
    clients("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


def remove(clients, zone_id: str, sets: dict[tuple[str, str], tuple[int, list[str]]]) -> None:
    changes = [
        {"Action": "DELETE", "ResourceRecordSet": {
            "Name": name, "Type": type, "TTL": ttl, "ResourceRecords": [{"Value": value} for value in values]}}
        for (name, type), (ttl, values) in sets.items()
    ]
    clients("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


def many_sets(count: int) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {(f"h{n:02}.shop.example.", "A"): (300, [f"192.0.2.{100 + n}"]) for n in range(count)}


# -- the target, as PowerDNS itself has it -----------------------------------------------------


def pdns_zone(powerdns: PowerDns, zone: str = ZONE) -> dict[str, Any] | None:
    request = urllib.request.Request(
        f"http://127.0.0.1:{powerdns.api_port}/api/v1/servers/localhost/zones/{zone}",
        headers={"X-API-Key": powerdns.api_key},
    )
    try:
        with urllib.request.urlopen(request) as answer:
            return json.load(answer)
    except urllib.error.HTTPError as exc:
        if exc.code in (404, 422):
            return None
        raise


def pdns_sets(powerdns: PowerDns, zone: str = ZONE) -> dict[tuple[str, str], tuple[int, list[str]]]:
    """(name, type) -> (ttl, sorted values) of every record set but the zone's own SOA and NS."""
    found = pdns_zone(powerdns, zone)
    assert found is not None, f"zone {zone} is not on PowerDNS"
    return {
        (rrset["name"], rrset["type"]): (rrset["ttl"], sorted(record["content"] for record in rrset["records"]))
        for rrset in found["rrsets"]
        if not (rrset["name"] == zone and rrset["type"] in ("SOA", "NS"))
    }


def pdns_serial(powerdns: PowerDns, zone: str = ZONE) -> int:
    """The zone's SOA serial: PowerDNS raises it on every change made through its API, so an
    unchanged serial means that nothing was written."""
    return pdns_zone(powerdns, zone)["serial"]


def expected(sets: dict[tuple[str, str], tuple[int, list[str]]]) -> dict[tuple[str, str], tuple[int, list[str]]]:
    return {key: (ttl, sorted(values)) for key, (ttl, values) in sets.items()}


# -- running the CLI -------------------------------------------------------------------------


def zone_row(document: dict[str, Any]) -> dict[str, Any]:
    [row] = document["zones"]["items"]
    return row


# -- tests -------------------------------------------------------------------------------------


def test_mirrors_a_zone_then_writes_nothing_then_only_what_changed_on_the_source(
    clients, config: Path, failover, powerdns: PowerDns, tmp_path: Path
) -> None:
    zone_id = seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    first = replicated(failover, config)
    row = zone_row(first)
    assert (row["zone"], row["record_sets"], row["written"], row["unchanged"], row["deleted"]) == (ZONE, 5, 5, 0, 0)
    assert row["created_zone"] is True and row["error"] is None and row["refused"] == 0
    assert first["zones"]["totals"]["written"] == 5 and first["buckets"]["items"] == []
    assert pdns_sets(powerdns) == expected(BASE_SETS)

    serial = pdns_serial(powerdns)
    second = zone_row(replicated(failover, config))
    assert (second["written"], second["unchanged"], second["created_zone"]) == (0, 5, False)
    assert pdns_serial(powerdns) == serial  # PowerDNS saw no write at all

    # Changed on the source after the snapshot: replicate reads the source, not the snapshot.
    upsert(clients, zone_id, {("www.shop.example.", "A"): (300, ["192.0.2.99"]),
                              ("new.shop.example.", "TXT"): (60, ['"added later"'])})
    third = zone_row(replicated(failover, config))
    assert (third["record_sets"], third["written"], third["unchanged"]) == (6, 2, 4)
    assert sorted(third["written_sets"]) == ["new.shop.example. TXT", "www.shop.example. A"]
    assert pdns_sets(powerdns)[("www.shop.example.", "A")] == (300, ["192.0.2.99"])
    assert pdns_sets(powerdns)[("new.shop.example.", "TXT")] == (60, ['"added later"'])

    with StateStore(tmp_path / ".failover") as store:
        mirrors = store.zone_mirrors("social-app", "fallback")
    assert [(m.zone, m.record_sets, m.written) for m in mirrors] == [(ZONE, 5, 5), (ZONE, 5, 0), (ZONE, 6, 2)]
    last = mirrors[-1]
    assert last.digest == hashlib.sha256(last.sets.encode()).hexdigest()
    sets = json.loads(last.sets)
    assert [(s["name"], s["type"]) for s in sets] == sorted((s["name"], s["type"]) for s in sets)
    assert {"name": "www.shop.example.", "type": "A", "ttl": 300, "values": ["192.0.2.99"]} in sets
    assert mirrors[0].digest == mirrors[1].digest != last.digest


def test_people_get_a_zones_table_on_stderr(clients, config: Path, failover) -> None:
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    result = replicate(failover, config)

    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "DNS zones" in result.stderr and ZONE in result.stderr and "(created)" in result.stderr


def test_extra_record_sets_stay_unless_delete_and_a_mass_deletion_is_refused(
    clients, config: Path, failover, powerdns: PowerDns
) -> None:
    zone_id = seed_zone(clients, {**BASE_SETS, **many_sets(6)})  # 11 record sets
    snapshot(failover, config)
    replicated(failover, config)

    remove(clients, zone_id, many_sets(1))  # 1 of 11 gone from the source
    kept = replicate(failover, config, "--json")
    assert kept.code == 0, kept.stderr
    assert zone_row(json.loads(kept.stdout))["deleted"] == 0
    assert ("h00.shop.example.", "A") in pdns_sets(powerdns)
    assert "h00.shop.example. A" in kept.stderr and "left alone (--delete deletes them)" in kept.stderr

    pruned = zone_row(replicated(failover, config, "--delete"))
    assert (pruned["deleted"], pruned["deleted_sets"]) == (1, ["h00.shop.example. A"])
    assert ("h00.shop.example.", "A") not in pdns_sets(powerdns)

    remove(clients, zone_id, {key: value for key, value in many_sets(6).items() if key[0] != "h00.shop.example."})
    before, serial = pdns_sets(powerdns), pdns_serial(powerdns)
    refused = replicate(failover, config, "--delete", "--json")
    assert refused.code == 1
    row = zone_row(json.loads(refused.stdout))
    assert row["refused"] == 5 and row["deleted"] == 0 and row["written"] == 0
    assert "refusing to delete 5 of the 10 record sets of zone shop.example." in row["error"]
    assert "refusing to delete 5 of the 10" in refused.stderr and "Traceback" not in refused.stderr
    assert pdns_sets(powerdns) == before and pdns_serial(powerdns) == serial  # untouched

    forced = zone_row(replicated(failover, config, "--delete", "--force"))
    assert forced["deleted"] == 5
    assert pdns_sets(powerdns) == expected(BASE_SETS)


def test_a_source_zone_emptied_is_not_propagated(clients, config: Path, failover, powerdns: PowerDns) -> None:
    zone_id = seed_zone(clients, BASE_SETS)
    snapshot(failover, config)
    replicated(failover, config)
    remove(clients, zone_id, BASE_SETS)  # only its SOA and NS remain

    refused = replicate(failover, config, "--delete", "--json")

    assert refused.code == 1
    assert "refusing to delete all 5 record sets of zone shop.example. on the target: the zone lists no record sets" \
        in zone_row(json.loads(refused.stdout))["error"]
    assert pdns_sets(powerdns) == expected(BASE_SETS)


def test_aliases_become_cnames_below_the_apex_and_are_reported_at_it(clients, config: Path, failover, powerdns: PowerDns) -> None:
    zone_id = seed_zone(clients, BASE_SETS)
    alias = {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": "web-123.us-east-1.elb.amazonaws.com.", "EvaluateTargetHealth": False}
    clients("route53").change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": "A", "AliasTarget": alias}}
        for name in (ZONE, f"app.{ZONE}")
    ]})
    snapshot(failover, config)

    result = replicate(failover, config, "--json")

    assert result.code == 0, result.stderr
    row = zone_row(json.loads(result.stdout))
    assert [(item["name"], item["type"]) for item in row["skipped"]] == [(ZONE, "A")]
    assert pdns_sets(powerdns)[(f"app.{ZONE}", "CNAME")] == (60, ["web-123.us-east-1.elb.amazonaws.com."])
    assert (ZONE, "A") not in pdns_sets(powerdns)
    assert "1 record set(s) not mirrored: shop.example. A (an alias at the zone apex" in result.stderr


def test_private_zones_are_not_mirrored(clients, config: Path, failover, powerdns: PowerDns) -> None:
    route53 = clients("route53")
    vpc = clients("ec2").create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    answer = route53.create_hosted_zone(Name="internal.example.", CallerReference="private",
                                        VPC={"VPCRegion": "us-east-1", "VPCId": vpc},
                                        HostedZoneConfig={"PrivateZone": True, "Comment": ""})
    zone_id = answer["HostedZone"]["Id"].split("/")[-1]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id, AddTags=SERVICE_TAGS)
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    document = replicated(failover, config)

    assert [row["zone"] for row in document["zones"]["items"]] == [ZONE]
    assert pdns_zone(powerdns, "internal.example.") is None


def test_an_unreachable_source_exits_4_and_writes_nothing(clients, config: Path, failover, powerdns: PowerDns) -> None:
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    result = replicate(failover, config, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})

    assert result.code == 4
    assert "cannot reach AWS" in result.stderr and "Traceback" not in result.stderr
    assert pdns_zone(powerdns) is None


def test_a_profile_without_dns_is_invalid_input(clients, write_config, failover, tmp_path: Path) -> None:
    disk = tmp_path / "replicas"
    disk.mkdir()
    config = write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {"storage": {"driver": "local", "options": {"key": str(disk)}}}},
    )
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    result = replicate(failover, config, "--json")

    assert result.code == 2 and result.stdout == ""
    assert f"{config}: targets.fallback.dns: replicate mirrors the snapshot's DNS zones (shop.example.)" in result.stderr
    assert "--only buckets --only databases replicates the rest" in result.stderr
    with StateStore(tmp_path / ".failover") as store:
        assert store.zone_mirrors("social-app") == []

    # the rest, as the message says: no zones part at all
    document = replicated(failover, config, "--only", "buckets", "--only", "databases")
    assert document["parts"] == ["buckets", "databases"] and "zones" not in document
    with StateStore(tmp_path / ".failover") as store:
        assert store.zone_mirrors("social-app") == []


def test_only_replicates_the_parts_named(clients, config: Path, failover, powerdns: PowerDns) -> None:
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)

    document = replicated(failover, config, "--only", "zones")
    assert document["parts"] == ["zones"] and "buckets" not in document and "databases" not in document
    assert zone_row(document)["written"] == len(BASE_SETS)

    unknown = replicate(failover, config, "--only", "zones,dns")
    assert unknown.code == 2 and "--only: no part 'dns' (parts: buckets, zones, databases)" in unknown.stderr


def test_an_unset_dns_secret_is_invalid_input(
    clients, config: Path, failover, powerdns: PowerDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_zone(clients, BASE_SETS)
    snapshot(failover, config)
    monkeypatch.delenv("PDNS_KEY")

    result = replicate(failover, config)

    assert result.code == 2
    assert "targets.fallback.dns.options.key" in result.stderr and "PDNS_KEY is not set" in result.stderr
    assert pdns_zone(powerdns) is None


HOSTILE_SETS = {
    ("<script>.shop.example.", "A"): (300, ["192.0.2.66"]),  # PowerDNS refuses the name
    ("t1.shop.example.", "TXT"): (300, ['"unterminated']),  # not only quoted strings: never rewritten
    ("t2.shop.example.", "TXT"): (300, ['"x" ; rm -rf /']),
}


def test_a_record_set_that_cannot_be_carried_or_is_refused_is_reported_and_the_others_written(
    clients, config: Path, failover, powerdns: PowerDns
) -> None:
    seed_zone(clients, {**BASE_SETS, **HOSTILE_SETS})
    snapshot(failover, config)

    result = replicate(failover, config, "--json")

    assert result.code == 0, result.stderr
    row = zone_row(json.loads(result.stdout))
    assert row["error"] is None
    assert (row["written"], row["refused"]) == (len(BASE_SETS), len(HOSTILE_SETS))
    assert {(item["name"], item["type"]) for item in row["refused_sets"]} == set(HOSTILE_SETS)
    reasons = {item["name"]: item["reason"] for item in row["refused_sets"]}
    assert "the target refused it" in reasons["<script>.shop.example."]
    assert "not only quoted strings" in reasons["t1.shop.example."] and "rm -rf" in reasons["t2.shop.example."]
    assert json.loads(result.stdout)["zones"]["totals"]["refused"] == len(HOSTILE_SETS)
    assert pdns_sets(powerdns) == expected(BASE_SETS)  # every other set written, no TXT rewritten
    assert "3 record set(s) refused" in result.stderr.replace("\n", " ")

    again = zone_row(replicated(failover, config))  # the same refused again, nothing else written
    assert (again["written"], again["unchanged"], again["refused"]) == (0, len(BASE_SETS), len(HOSTILE_SETS))


def test_check_warns_about_record_sets_that_cannot_be_carried(clients, config: Path, failover, powerdns: PowerDns) -> None:
    malformed = {key: value for key, value in HOSTILE_SETS.items() if key[1] == "TXT"}
    seed_zone(clients, {**BASE_SETS, **malformed})
    snapshot(failover, config)
    assert zone_row(replicated(failover, config))["refused"] == len(malformed)

    checked = failover("check", "standard", "--target", "fallback", "-c", str(config), "--json")

    [mirror] = [item for item in json.loads(checked.stdout)["checks"] if item["name"] == "dns-mirror"]
    assert mirror["status"] == "warn", mirror["detail"]
    assert "2 record set(s) of the source cannot be carried" in mirror["detail"]
