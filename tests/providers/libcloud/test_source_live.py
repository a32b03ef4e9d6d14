"""The libcloud source's readers for ``replicate`` against real peers: a container on Azurite
listed and streamed (``LibcloudObjects``), a zone on PowerDNS read again (``LibcloudZones``),
and what each says when the source is gone; and a node reader registered for a driver."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from failover.config import DnsSpec, DriverSpec, StorageSpec
from failover.errors import ProviderError
from failover.manifest import DnsZone
from failover.ports import ZoneGone
from failover.testing.servers import free_port
from providers.libcloud.dns import LibcloudDns
from providers.libcloud.source import readers
from providers.libcloud.source.inventory import source_dns
from providers.libcloud.source.storage import LibcloudObjects
from providers.libcloud.source.zones import LibcloudZones
from providers.libcloud.storage import LibcloudStorage

BODIES = {"a.txt": b"alpha", "dir/b.bin": bytes(range(256)) * 50, "empty": b""}


def test_a_container_is_listed_and_streamed_with_its_md5_and_type(azurite, unique: str) -> None:
    bucket = f"src-{unique}"
    writer = LibcloudStorage(StorageSpec(driver="azure_blobs", options=azurite.driver_options))
    writer.ensure_container(bucket)
    for key, body in BODIES.items():
        writer.upload_stream(bucket, key, [body], "application/x-test", size=len(body),
                             md5=hashlib.md5(body, usedforsecurity=False).hexdigest())
    source = LibcloudObjects(StorageSpec(driver="azure_blobs", options=azurite.driver_options))

    assert source.probe(bucket) is None
    listed = {item.key: item for item in source.iter_objects(bucket)}
    assert {key: (item.size, item.md5) for key, item in listed.items()} == {
        key: (len(body), hashlib.md5(body, usedforsecurity=False).hexdigest()) for key, body in BODIES.items()}
    with source.open(bucket, "dir/b.bin") as opened:
        assert b"".join(opened.chunks) == BODIES["dir/b.bin"]
        assert opened.info.content_type == "application/x-test"
    assert source.open(bucket, "missing") is None
    assert "container" in (source.probe(f"none-{unique}") or "")


def test_a_source_that_is_gone_answers_the_probe_in_seconds_with_why(azurite) -> None:
    gone = {**azurite.driver_options, "port": free_port()}
    why = LibcloudObjects(StorageSpec(driver="azure_blobs", options=gone)).probe("anything")
    assert why is not None and "storage source (azure_blobs)" in why


def test_a_zone_is_read_again_and_a_zone_gone_says_so(powerdns, unique: str) -> None:
    name = f"src-{unique}.example."
    writer = LibcloudDns(DnsSpec(driver="powerdns", options=powerdns.driver_options, nameservers=["ns1.example.net."]))
    zone = writer.create_zone(name)
    writer.set_record(zone, f"www.{name}", "A", 60, ["192.0.2.1", "192.0.2.2"])
    zones = LibcloudZones(source_dns(DriverSpec(driver="powerdns", options=powerdns.driver_options), "failover.yaml"))
    snapshot_zone = DnsZone(id=zone.id, name=name, region="global")

    fresh = zones.read(snapshot_zone)
    records = {(record.name, record.type): (record.ttl, sorted(record.values)) for record in fresh.records}
    assert records[(f"www.{name}", "A")] == (60, ["192.0.2.1", "192.0.2.2"])
    assert (name, "SOA") in records and (name, "NS") in records

    writer.delete_zone(zone)
    with pytest.raises(ZoneGone, match=f"zone {name} is no longer on the source"):
        zones.read(snapshot_zone)


def test_an_unreachable_dns_source_is_a_provider_error(powerdns) -> None:
    gone = {**powerdns.driver_options, "port": free_port()}
    zones = LibcloudZones(source_dns(DriverSpec(driver="powerdns", options=gone), "failover.yaml"))
    with pytest.raises(ProviderError, match=r"dns source \(powerdns\)"):
        zones.read(DnsZone(id="x.example.", name="x.example.", region="global"))


class _Nodes(readers.NodeReader):
    user_data_unknown = None

    def user_data(self, node: Any) -> str | None:
        return "from the registered reader"


def test_a_node_reader_is_registered_by_the_driver_s_provider_name(monkeypatch: pytest.MonkeyPatch) -> None:
    class Driver:
        type = "mycloud"

    monkeypatch.setitem(readers.NODE_READERS, "mycloud", f"{__name__}:_Nodes")
    assert type(readers.reader_for(Driver(), "mycloud")) is _Nodes
    Driver.type = "othercloud"
    assert type(readers.reader_for(Driver(), "othercloud")) is readers.NodeReader


def test_tags_come_from_the_first_place_that_holds_any() -> None:
    class Node:
        extra = {"tags": [], "metadata": {"service": "social-app"}}  # OpenStack's shape

    reader = readers.NodeReader(driver=None, name="openstack")
    assert reader.tags(Node()) == {"service": "social-app"}
    Node.extra = {"labels": {"a": "1"}, "tags": ["b:2"]}
    assert reader.tags(Node()) == {"a": "1"}
    Node.extra = {"tags": ["role:web", "edge"]}
    assert reader.tags(Node()) == {"role": "web", "edge": ""}
