"""``failover.replicate.zones`` in-process, against a real PowerDNS: canonical record sets and
their digest, a zone's pass (only differing sets written, counted at the DnsTarget), the
mass-deletion rule."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from failover.adapters import dns_target
from failover.config import DnsSpec
from failover.manifest import DnsZone, Record
from failover.ports import DnsTarget, RecordSet, ZoneInfo
from failover.replicate.zones import MirrorRefused, canonical_sets, check_deletions, digest, mirror_zone, sets_json
from failover.state import StateStore
from failover.testing.emulators import EmulatorMissing, PowerDns
from providers.libcloud.drivers import forget_adapters

SERVICE, TARGET = "social-app", "fallback"


class CountingDns:
    """The real adapter, every write counted."""

    def __init__(self, inner: DnsTarget) -> None:
        self.inner = inner
        self.writes: list[str] = []

    def find_zone(self, domain: str) -> ZoneInfo | None:
        return self.inner.find_zone(domain)

    def create_zone(self, domain: str, ttl: int | None = None) -> ZoneInfo:
        self.writes.append(f"create {domain}")
        return self.inner.create_zone(domain, ttl)

    def list_records(self, zone: ZoneInfo) -> list[RecordSet]:
        return self.inner.list_records(zone)

    def set_record(self, zone: ZoneInfo, name: str, type: str, ttl: int, values: Sequence[str]) -> RecordSet:
        self.writes.append(f"set {name} {type}")
        return self.inner.set_record(zone, name, type, ttl, values)

    def delete_record(self, zone: ZoneInfo, name: str, type: str) -> bool:
        self.writes.append(f"delete {name} {type}")
        return self.inner.delete_record(zone, name, type)

    def delete_zone(self, zone: ZoneInfo) -> bool:
        self.writes.append(f"delete zone {zone.domain}")
        return self.inner.delete_zone(zone)


@pytest.fixture
def dns() -> Iterator[CountingDns]:
    try:
        server = PowerDns().start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)
    forget_adapters()
    yield CountingDns(dns_target(DnsSpec(driver="powerdns", options=server.driver_options)))
    forget_adapters()
    server.stop()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as opened:
        yield opened


def zone(*records: tuple[str, str, int | None, list[str]], name: str = "example.com.") -> DnsZone:
    apex = [Record(name=name, type="SOA", ttl=900, values=["ns-1.awsdns.com. hostmaster. 1 7200 900 1209600 86400"]),
            Record(name=name, type="NS", ttl=172800, values=["ns-1.awsdns.com."])]
    return DnsZone(id="Z1", name=name, region="global",
                   records=[*apex, *(Record(name=n, type=t, ttl=ttl, values=v) for n, t, ttl, v in records)])


WWW = ("www.example.com.", "A", 300, ["192.0.2.1", "192.0.2.2"])
MAIL = ("example.com.", "MX", 300, ["20 mx2.example.com.", "10 mx1.example.com."])
TXT = ("example.com.", "TXT", 300, ['"v=spf1 -all"'])


def mirror(dns: Any, store: StateStore, source: DnsZone, **options: Any):
    return mirror_zone(dns, store, source, service=SERVICE, target_name=TARGET, read_at="2024-01-15T10:30:00Z", **options)


# -- canonical sets --------------------------------------------------------------------------


def test_canonical_sets_do_not_depend_on_order_or_spelling() -> None:
    one = canonical_sets([
        {"name": "WWW.example.com", "type": "a", "ttl": 300, "values": ["192.0.2.2", "192.0.2.1", "192.0.2.1"]},
        {"name": "example.com.", "type": "MX", "ttl": 300, "values": ["20 mx2.example.com.", "10 mx1.example.com."]},
    ])
    other = canonical_sets([
        RecordSet("example.com.", "MX", 300, ("10 mx1.example.com.", "20 mx2.example.com.")),
        RecordSet("www.example.com.", "A", 300, ("192.0.2.1", "192.0.2.2")),
    ])

    assert one == other == [
        {"name": "example.com.", "type": "MX", "ttl": 300, "values": ["10 mx1.example.com.", "20 mx2.example.com."]},
        {"name": "www.example.com.", "type": "A", "ttl": 300, "values": ["192.0.2.1", "192.0.2.2"]},
    ]
    assert digest(one) == digest(other) == hashlib.sha256(sets_json(one).encode()).hexdigest()
    changed = canonical_sets([RecordSet("www.example.com.", "A", 60, ("192.0.2.1", "192.0.2.2"))])
    assert digest(changed) != digest(canonical_sets([RecordSet("www.example.com.", "A", 300, ("192.0.2.1", "192.0.2.2"))]))


# -- a zone's pass -----------------------------------------------------------------------------


def test_a_pass_creates_the_zone_writes_each_set_once_then_nothing(dns: CountingDns, store: StateStore) -> None:
    first = mirror(dns, store, zone(WWW, MAIL, TXT))

    assert first.created_zone and (first.record_sets, first.written, first.unchanged) == (3, 3, 0)
    assert sorted(dns.writes) == sorted(["create example.com.", "set www.example.com. A", "set example.com. MX",
                                         "set example.com. TXT"])
    dns.writes.clear()

    second = mirror(dns, store, zone(TXT, MAIL, WWW))
    assert dns.writes == [] and (second.written, second.unchanged, second.created_zone) == (0, 3, False)

    third = mirror(dns, store, zone(("www.example.com.", "A", 300, ["192.0.2.9"]), MAIL, TXT))
    assert dns.writes == ["set www.example.com. A"] and third.written_sets == ["www.example.com. A"]

    records = store.zone_mirrors(SERVICE, TARGET)
    assert [(r.written, r.record_sets) for r in records] == [(3, 3), (0, 3), (1, 3)]
    assert records[0].digest == records[1].digest != records[2].digest
    assert records[2].digest == hashlib.sha256(records[2].sets.encode()).hexdigest()
    assert json.loads(records[2].sets)[-1] == {"name": "www.example.com.", "type": "A", "ttl": 300, "values": ["192.0.2.9"]}
    assert records[2].read_at == "2024-01-15T10:30:00Z"


def test_a_refused_mass_deletion_writes_nothing_and_records_nothing(dns: CountingDns, store: StateStore) -> None:
    many = [(f"h{n}.example.com.", "A", 300, [f"192.0.2.{n}"]) for n in range(10)]
    mirror(dns, store, zone(*many))
    dns.writes.clear()

    with pytest.raises(MirrorRefused) as refused:  # 2 of 10 going, and a changed set
        mirror(dns, store, zone(("h0.example.com.", "A", 60, ["192.0.2.0"]), *many[1:8]), delete=True)

    assert refused.value.refused == 2
    assert str(refused.value).startswith("refusing to delete 2 of the 10 record sets of zone example.com. on the target")
    assert dns.writes == [] and len(store.zone_mirrors(SERVICE, TARGET)) == 1

    forced = mirror(dns, store, zone(*many[:8]), delete=True, force=True)
    assert sorted(forced.deleted_sets) == ["h8.example.com. A", "h9.example.com. A"] and forced.deleted == 2


def test_check_deletions_follows_the_buckets_rule() -> None:
    check_deletions("example.com.", 1, 10, 10)  # one of ten: allowed
    with pytest.raises(MirrorRefused, match="more than 10%"):
        check_deletions("example.com.", 2, 10, 10)
    with pytest.raises(MirrorRefused, match="the zone lists no record sets on the source"):
        check_deletions("example.com.", 1, 0, 1)
