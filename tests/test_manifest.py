from __future__ import annotations

import json
from pathlib import Path

import pytest

from failover.errors import ManifestError
from failover.manifest import Manifest, diff, load_manifest, parse_manifest

BASE = {
    "schema_version": 1, "service": "svc", "taken_at": "2026-01-01T00:00:00Z",
    "source": {"provider": "aws", "account": "123", "regions": ["us-east-1"]},
    "resources": [
        {"kind": "firewall", "id": "sg-1", "name": "web", "region": "us-east-1", "tags": {"b": "2", "a": "1"},
         "rules": [
             {"direction": "ingress", "protocol": "tcp", "port_from": 443, "port_to": 443, "sources": ["0.0.0.0/0"]},
             {"direction": "egress", "protocol": "-1", "port_from": None, "port_to": None, "sources": ["0.0.0.0/0"]},
             {"direction": "ingress", "protocol": "tcp", "port_from": 80, "port_to": 80, "sources": ["10.0.0.0/8", "0.0.0.0/0"]},
         ]},
        {"kind": "bucket", "id": "media", "name": "media", "region": "us-east-1", "tags": {}, "objects": 2, "bytes": 10, "versioning": False},
        {"kind": "address", "id": "eipalloc-1", "name": "ip", "region": "us-east-1", "tags": {}, "ip": "1.2.3.4", "attached_to": None},
    ],
    "unsupported": [],
}


def test_canonical_order_is_stable() -> None:
    shuffled = json.loads(json.dumps(BASE))
    shuffled["resources"].reverse()
    shuffled["resources"][-1]["rules"].reverse()
    a = parse_manifest(BASE, "a").to_json()
    b = parse_manifest(shuffled, "b").to_json()
    assert a == b
    doc = json.loads(a)
    assert [r["kind"] for r in doc["resources"]] == ["firewall", "address", "bucket"]
    assert list(doc["resources"][0]["tags"]) == ["a", "b"]
    rules = doc["resources"][0]["rules"]
    assert [r["direction"] for r in rules] == ["egress", "ingress", "ingress"]
    assert rules[1]["sources"] == ["0.0.0.0/0", "10.0.0.0/8"]


def test_counts() -> None:
    assert parse_manifest(BASE, "a").counts() == {"firewall": 1, "address": 1, "bucket": 1}


def test_diff_has_field_level_detail() -> None:
    after = json.loads(json.dumps(BASE))
    after["resources"][1]["objects"] = 3
    after["resources"][0]["rules"].append(
        {"direction": "ingress", "protocol": "tcp", "port_from": 22, "port_to": 22, "sources": ["203.0.113.0/24"]})
    del after["resources"][2]
    after["resources"].append({"kind": "bucket", "id": "logs", "name": "logs", "region": "us-east-1", "tags": {},
                               "objects": 0, "bytes": 0, "versioning": True})
    result = diff(parse_manifest(BASE, "a"), parse_manifest(after, "b"))
    assert [r["id"] for r in result["added"]] == ["logs"]
    assert [r["id"] for r in result["removed"]] == ["eipalloc-1"]
    changed = {r["id"]: r["changes"] for r in result["changed"]}
    assert changed["media"] == [{"field": "objects", "before": 2, "after": 3}]
    assert changed["sg-1"][0]["field"] == "rules"
    assert changed["sg-1"][0]["added"][0]["port_from"] == 22
    assert changed["sg-1"][0]["removed"] == []


def test_diff_of_identical_manifests_is_empty() -> None:
    m = parse_manifest(BASE, "a")
    assert diff(m, m) == {"added": [], "removed": [], "changed": []}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(schema_version=3), "unsupported schema version 3"),
        (lambda d: d["resources"][1].pop("objects"), "resources[1].objects: Field required"),
        (lambda d: d["resources"][0].update(kind="spaceship"), "resources[0]"),
        (lambda d: d["resources"][2].update(colour="red"), "resources[2].colour: Extra inputs"),
    ],
    ids=["version", "missing-field", "unknown-kind", "unknown-field"],
)
def test_bad_manifests_name_the_field(mutate, message: str) -> None:
    data = json.loads(json.dumps(BASE))
    mutate(data)
    with pytest.raises(ManifestError) as info:
        parse_manifest(data, "m.json")
    assert any(message in line for line in info.value.lines()), info.value.lines()


def test_load_manifest_reports_json_line(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text('{\n  "schema_version": 1,\n  oops\n}')
    with pytest.raises(ManifestError, match=r"m.json:3: invalid JSON"):
        load_manifest(path)


def test_yaml_round_trip_is_the_same_manifest() -> None:
    import yaml

    m = parse_manifest(BASE, "a")
    assert Manifest.model_validate(yaml.safe_load(m.to_yaml())).to_json() == m.to_json()


def test_a_version_1_snapshot_is_migrated_to_the_current_schema() -> None:
    old = json.loads(json.dumps(BASE))
    migrated = parse_manifest(old, "snapshot snap-1")
    assert migrated.schema_version == 2
    assert old["schema_version"] == 1  # the stored document is not changed
    assert all(resource.owned for resource in migrated.resources)
    assert all("owned" not in r for r in migrated.to_dict()["resources"])  # written only when false
