"""The DNS adapter over libcloud's PowerDNS driver against a real pdns_server; answers are
checked by asking that server over DNS, as a resolver would."""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import dns.message
import dns.query
import dns.rcode
import pytest

from failover.config import DnsSpec
from failover.errors import OperationFailed, TransientError
from failover.ports import RecordSet, ZoneInfo
from failover.testing.emulators import PowerDns
from providers.libcloud import connect_dns
from providers.libcloud.dns import LibcloudDns

SUPPORT = Path(__file__).resolve().parents[2] / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

from faultkit import Faults  # noqa: E402


@pytest.fixture
def target(powerdns: PowerDns, monkeypatch: pytest.MonkeyPatch) -> LibcloudDns:
    monkeypatch.setenv("TARGET_PDNS_KEY", powerdns.api_key)
    return connect_dns(DnsSpec(driver="powerdns", options={**powerdns.driver_options, "key": "${env:TARGET_PDNS_KEY}"}))


@pytest.fixture
def zone(target: LibcloudDns, unique: str):
    created = target.create_zone(f"shop-{unique}.example")
    yield created
    target.delete_zone(created)


def answers(powerdns: PowerDns, name: str, kind: str) -> tuple[int, set[str], int | None]:
    """(rcode, values, ttl) of the server's authoritative answer."""
    response = dns.query.udp(dns.message.make_query(name, kind), "127.0.0.1", port=powerdns.dns_port, timeout=5)
    rrset = next((r for r in response.answer if r.rdtype == dns.rdatatype.from_text(kind)), None)
    return response.rcode(), {item.to_text() for item in rrset or ()}, rrset.ttl if rrset else None


def test_a_zone_is_created_found_and_deleted_idempotently(target: LibcloudDns, unique: str) -> None:
    assert target.find_zone(f"new-{unique}.example") is None

    zone = target.create_zone(f"New-{unique}.Example", ttl=300)

    assert zone == ZoneInfo(id=f"new-{unique}.example.", domain=f"new-{unique}.example.", ttl=None)
    assert target.find_zone(f"new-{unique}.example.") == zone
    assert target.delete_zone(zone) is True
    assert target.delete_zone(zone) is False
    assert target.find_zone(f"new-{unique}.example") is None


def test_creating_an_existing_zone_says_so(target: LibcloudDns, zone: ZoneInfo) -> None:
    with pytest.raises(OperationFailed, match=f"zone {zone.domain} exists already"):
        target.create_zone(zone.domain)


def zone_requests(action: str, params: dict, method: str) -> str:
    return f"{method} {action.rsplit('/', 1)[-1]}"


@pytest.mark.parametrize("executed", [False, True], ids=["not-executed", "answer-lost"])
def test_a_503_on_creating_a_zone_creates_it_once(target: LibcloudDns, unique: str, monkeypatch, executed) -> None:
    faults = Faults(target.session.driver, monkeypatch, name_of=zone_requests)
    faults.fail("POST zones", executed=executed)

    zone = target.create_zone(f"lost-{unique}.example")  # not "exists already": it is this request's own

    assert faults.injected == ["POST zones"]
    assert zone.domain == f"lost-{unique}.example."
    assert [z.domain for z in target.list_zones()].count(zone.domain) == 1
    target.delete_zone(zone)


def test_set_record_writes_the_whole_set_and_the_server_answers_it(
    target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns
) -> None:
    www = f"www.{zone.domain}"

    written = target.set_record(zone, "www", "A", 300, ["192.0.2.10", "192.0.2.11"])

    assert written == RecordSet(name=www, type="A", ttl=300, values=("192.0.2.10", "192.0.2.11"))
    assert answers(powerdns, www, "A") == (dns.rcode.NOERROR, {"192.0.2.10", "192.0.2.11"}, 300)


def test_set_record_replaces_values_and_ttl(target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns) -> None:
    target.set_record(zone, f"api.{zone.domain}", "A", 300, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])

    target.set_record(zone, f"api.{zone.domain}", "A", 60, ["198.51.100.7"])

    assert answers(powerdns, f"api.{zone.domain}", "A") == (dns.rcode.NOERROR, {"198.51.100.7"}, 60)
    sets = [r for r in target.list_records(zone) if r.name == f"api.{zone.domain}"]
    assert sets == [RecordSet(name=f"api.{zone.domain}", type="A", ttl=60, values=("198.51.100.7",))]


def test_list_records_gives_every_set_fully_qualified(target: LibcloudDns, zone: ZoneInfo) -> None:
    target.set_record(zone, zone.domain, "MX", 3600, ["10 mail.example.net.", "20 backup.example.net."])
    target.set_record(zone, f"_sip._tcp.{zone.domain}", "SRV", 600, ["10 5 5060 sip.example.net."])
    target.set_record(zone, f"txt.{zone.domain}", "TXT", 120, ['"v=spf1 -all"'])
    target.set_record(zone, f"blog.{zone.domain}", "CNAME", 300, ["www.example.net."])

    listed = {(r.name, r.type): r for r in target.list_records(zone)}

    assert listed[(zone.domain, "MX")].values == ("10 mail.example.net.", "20 backup.example.net.")
    assert listed[(f"_sip._tcp.{zone.domain}", "SRV")].values == ("10 5 5060 sip.example.net.",)
    assert listed[(f"txt.{zone.domain}", "TXT")] == RecordSet(f"txt.{zone.domain}", "TXT", 120, ('"v=spf1 -all"',))
    assert listed[(f"blog.{zone.domain}", "CNAME")].values == ("www.example.net.",)
    assert (zone.domain, "SOA") in listed
    assert all(name.endswith(".") for name, _ in listed)


def test_delete_record_is_idempotent_and_leaves_other_types(
    target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns
) -> None:
    host = f"host.{zone.domain}"
    target.set_record(zone, host, "A", 300, ["192.0.2.5"])
    target.set_record(zone, host, "AAAA", 300, ["2001:db8::5"])

    assert target.delete_record(zone, host, "A") is True
    assert target.delete_record(zone, host, "A") is False

    assert answers(powerdns, host, "A")[1] == set()
    assert answers(powerdns, host, "AAAA")[1] == {"2001:db8::5"}


def test_names_outside_the_zone_and_empty_sets_are_refused(target: LibcloudDns, zone: ZoneInfo) -> None:
    with pytest.raises(OperationFailed, match="needs at least one value"):
        target.set_record(zone, "www", "A", 300, [])
    with pytest.raises(OperationFailed, match=f"www.elsewhere.example. is not a name in zone {zone.domain}"):
        target.set_record(zone, "www.elsewhere.example.", "A", 300, ["192.0.2.1"])


def test_parallel_steps_share_the_profile_adapter_each_thread_with_its_own_driver(
    target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns
) -> None:
    options = {**powerdns.driver_options, "key": "${env:TARGET_PDNS_KEY}"}
    again = connect_dns(DnsSpec(driver="powerdns", options=options))
    drivers, failures = [], []

    def step(index: int) -> None:
        try:
            for round_ in range(5):
                value = f"192.0.2.{index * 10 + round_}"
                retried(lambda value=value: again.set_record(zone, f"n{index}", "A", 60, [value]))
            drivers.append(again.session.driver)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=step, args=(index,)) for index in range(1, 5)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert again is target and not failures
    assert len({id(driver) for driver in drivers}) == 4
    final = {r.name: r.values for r in target.list_records(zone) if r.type == "A"}
    assert final == {f"n{i}.{zone.domain}": (f"192.0.2.{i * 10 + 4}",) for i in range(1, 5)}


def retried(call, attempts: int = 20) -> None:
    """As the engine does: PowerDNS on SQLite answers concurrent writes to one zone with
    500 "database is locked", which the adapter reports as a TransientError."""
    for attempt in range(attempts):
        try:
            return call()
        except TransientError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05)


def test_a_zone_gets_the_profiles_nameservers_as_its_apex_ns_records(
    powerdns: PowerDns, unique: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TARGET_PDNS_KEY", powerdns.api_key)
    spec = DnsSpec(driver="powerdns", options={**powerdns.driver_options, "key": "${env:TARGET_PDNS_KEY}"},
                   nameservers=["NS1.fallback-dns.example", "ns2.fallback-dns.example."])
    target = connect_dns(spec)
    zone = target.create_zone(f"delegated-{unique}.example")
    try:
        assert answers(powerdns, zone.domain, "NS")[:2] == (
            dns.rcode.NOERROR, {"ns1.fallback-dns.example.", "ns2.fallback-dns.example."})
        apex_ns = [rs for rs in target.list_records(zone) if rs.name == zone.domain and rs.type == "NS"]
        assert [sorted(rs.values) for rs in apex_ns] == [["ns1.fallback-dns.example.", "ns2.fallback-dns.example."]]
    finally:
        target.delete_zone(zone)


def test_without_nameservers_a_zone_has_no_ns_records(target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns) -> None:
    assert answers(powerdns, zone.domain, "NS")[1] == set()


def test_set_records_writes_many_sets_in_one_patch_per_batch_and_rewriting_them_is_harmless(
    target: LibcloudDns, zone: ZoneInfo, powerdns: PowerDns, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover.ports import RecordChange
    from providers.libcloud import dns as libcloud_dns

    target.set_record(zone, f"www.{zone.domain}", "CNAME", 300, [f"lb.{zone.domain}"])
    monkeypatch.setattr(libcloud_dns, "WRITE_BATCH", 50)
    patches: list[int] = []
    connection = target.session.driver.connection
    original = connection.request

    def counted(action: str, params: Any = None, data: Any = None, headers: Any = None, method: str = "GET") -> Any:
        if method == "PATCH":
            patches.append(len(json.loads(data)["rrsets"]))
        return original(action, params=params, data=data, headers=headers, method=method)

    monkeypatch.setattr(connection, "request", counted)
    changes = [RecordChange(f"www.{zone.domain}", "CNAME", 60)]  # deleted first, then its name gets an A set
    changes += [RecordChange(f"www.{zone.domain}", "A", 60, ("192.0.2.10",))]
    changes += [RecordChange(f"n{i}.{zone.domain}", "A", 60, (f"198.51.100.{i}",)) for i in range(1, 100)]

    target.set_records(zone, changes)
    target.set_records(zone, changes)  # an answer lost, the batch sent again: the same end state

    assert patches == [50, 50, 1, 50, 50, 1]
    assert answers(powerdns, f"www.{zone.domain}", "A") == (dns.rcode.NOERROR, {"192.0.2.10"}, 60)
    assert answers(powerdns, f"n99.{zone.domain}", "A") == (dns.rcode.NOERROR, {"198.51.100.99"}, 60)
    assert not {(s.name, s.type) for s in target.list_records(zone)} & {(f"www.{zone.domain}", "CNAME")}
