"""The DNS adapter over libcloud's Route53 driver (through the moto shim) against a real
``moto_server``; what was written is read back with boto3 from the emulator, not through
the adapter under test."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from failover.config import DnsSpec
from failover.errors import OperationFailed
from failover.ports import RecordSet, ZoneInfo
from failover.testing.servers import MotoServer
from providers.libcloud import connect_dns
from providers.libcloud.dns import LibcloudDns

ROUTE53_SHIM = "failover.testing.route53_shim:MotoRoute53DNSDriver"


@pytest.fixture
def target(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> LibcloudDns:
    monkeypatch.setenv("TARGET_R53_SECRET", "testing")
    options = {"key": "testing", "secret": "${env:TARGET_R53_SECRET}", "host": "127.0.0.1", "port": moto.port}
    return connect_dns(DnsSpec(driver=ROUTE53_SHIM, options=options))


@pytest.fixture
def route53(moto: MotoServer) -> Any:
    return boto3.client("route53", endpoint_url=moto.url, region_name="us-east-1",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def zone(target: LibcloudDns, unique: str):
    created = target.create_zone(f"shop-{unique}.example")
    yield created
    target.delete_zone(created)


def rrsets(route53: Any, zone: ZoneInfo) -> dict[tuple[str, str], tuple[int | None, list[str]]]:
    """The zone's record sets as moto holds them: (name, type) -> (ttl, values)."""
    listed = route53.list_resource_record_sets(HostedZoneId=zone.id)["ResourceRecordSets"]
    return {(r["Name"], r["Type"]): (r.get("TTL"), [v["Value"] for v in r.get("ResourceRecords", [])]) for r in listed}


def test_a_zone_is_created_found_and_deleted_idempotently(target: LibcloudDns, route53: Any, unique: str) -> None:
    domain = f"new-{unique}.example."
    assert target.find_zone(domain) is None

    zone = target.create_zone(f"New-{unique}.Example")

    assert zone.domain == domain
    assert target.find_zone(domain) == zone
    hosted = route53.get_hosted_zone(Id=zone.id)["HostedZone"]
    assert hosted["Name"] == domain
    assert {t for _, t in rrsets(route53, zone)} == {"SOA", "NS"}  # Route53's own apex records
    assert target.delete_zone(zone) is True
    assert target.delete_zone(zone) is False
    assert target.find_zone(domain) is None


def test_creating_an_existing_zone_says_so(target: LibcloudDns, zone: ZoneInfo) -> None:
    with pytest.raises(OperationFailed):
        target.create_zone(zone.domain)


def test_a_set_of_several_values_is_one_record_set(target: LibcloudDns, zone: ZoneInfo, route53: Any) -> None:
    www = f"www.{zone.domain}"

    written = target.set_record(zone, "www", "A", 300, ["192.0.2.10", "192.0.2.11"])

    assert written == RecordSet(name=www, type="A", ttl=300, values=("192.0.2.10", "192.0.2.11"))
    assert rrsets(route53, zone)[(www, "A")] == (300, ["192.0.2.10", "192.0.2.11"])
    assert [r for r in target.list_records(zone) if r.name == www] == [written]


def test_set_record_replaces_values_and_ttl(target: LibcloudDns, zone: ZoneInfo, route53: Any) -> None:
    api = f"api.{zone.domain}"
    target.set_record(zone, api, "A", 300, ["192.0.2.1", "192.0.2.2", "192.0.2.3"])

    target.set_record(zone, api, "A", 60, ["198.51.100.7"])

    assert rrsets(route53, zone)[(api, "A")] == (60, ["198.51.100.7"])
    listed = [r for r in target.list_records(zone) if r.name == api]
    assert listed == [RecordSet(name=api, type="A", ttl=60, values=("198.51.100.7",))]


def test_list_records_gives_every_set_fully_qualified(target: LibcloudDns, zone: ZoneInfo) -> None:
    target.set_record(zone, zone.domain, "MX", 3600, ["10 mail.example.net.", "20 backup.example.net."])
    target.set_record(zone, f"_sip._tcp.{zone.domain}", "SRV", 600, ["10 5 5060 sip.example.net."])
    target.set_record(zone, f"txt.{zone.domain}", "TXT", 120, ['"v=spf1 -all"', '"two" "strings"'])
    target.set_record(zone, f"*.{zone.domain}", "CNAME", 300, ["www.example.net."])

    listed = {(r.name, r.type): r for r in target.list_records(zone)}

    assert listed[(zone.domain, "MX")].values == ("10 mail.example.net.", "20 backup.example.net.")
    assert listed[(f"_sip._tcp.{zone.domain}", "SRV")].values == ("10 5 5060 sip.example.net.",)
    assert listed[(f"txt.{zone.domain}", "TXT")] == RecordSet(
        f"txt.{zone.domain}", "TXT", 120, ('"v=spf1 -all"', '"two" "strings"'))
    assert listed[(f"*.{zone.domain}", "CNAME")].values == ("www.example.net.",)
    assert {(zone.domain, "SOA"), (zone.domain, "NS")} <= set(listed)
    assert all(name.endswith(".") for name, _ in listed)


def test_delete_record_is_idempotent_and_leaves_other_types(target: LibcloudDns, zone: ZoneInfo, route53: Any) -> None:
    host = f"host.{zone.domain}"
    target.set_record(zone, host, "A", 300, ["192.0.2.5", "192.0.2.6"])
    target.set_record(zone, host, "AAAA", 300, ["2001:db8::5"])

    assert target.delete_record(zone, host, "A") is True
    assert target.delete_record(zone, host, "A") is False

    held = rrsets(route53, zone)
    assert (host, "A") not in held
    assert held[(host, "AAAA")] == (300, ["2001:db8::5"])


def test_a_zone_with_record_sets_is_deleted_with_them(target: LibcloudDns, route53: Any, unique: str) -> None:
    zone = target.create_zone(f"full-{unique}.example")
    target.set_record(zone, f"a.{zone.domain}", "A", 300, ["192.0.2.1", "192.0.2.2"])
    target.set_record(zone, zone.domain, "TXT", 300, ['"hello"'])

    assert target.delete_zone(zone) is True

    assert target.find_zone(zone.domain) is None
    assert all(z["Name"] != zone.domain for z in route53.list_hosted_zones()["HostedZones"])


def test_names_outside_the_zone_and_empty_sets_are_refused(target: LibcloudDns, zone: ZoneInfo) -> None:
    with pytest.raises(OperationFailed):
        target.set_record(zone, "www.elsewhere.example.", "A", 300, ["192.0.2.1"])
    with pytest.raises(OperationFailed):
        target.set_record(zone, "www", "A", 300, [])


def test_route53s_octal_escapes_are_read_back_as_the_characters() -> None:
    from types import SimpleNamespace

    from providers.libcloud.dns import Route53Records

    dialect = Route53Records()
    assert dialect.name_of(SimpleNamespace(name="\\052"), "example.com.") == "*.example.com."
    assert dialect.name_of(SimpleNamespace(name="\\052.api"), "example.com.") == "*.api.example.com."
    assert dialect.name_of(SimpleNamespace(name=""), "example.com.") == "example.com."


def test_a_set_is_written_back_to_values_it_had_before(target: LibcloudDns, zone: ZoneInfo, route53: Any) -> None:
    """The undo of a cutover: the apex back to the values it had (moto refuses a CREATE of a set
    it saw created before while one exists, even when the same batch deletes it: UPSERT here)."""
    target.set_record(zone, zone.domain, "A", 300, ["198.51.100.1"])
    target.set_record(zone, zone.domain, "A", 60, ["192.0.2.7"])

    target.set_record(zone, zone.domain, "A", 300, ["198.51.100.1"])

    assert rrsets(route53, zone)[(zone.domain, "A")] == (300, ["198.51.100.1"])


def test_before_upsert_a_set_is_replaced_by_delete_and_create_in_one_batch(
    target: LibcloudDns, zone: ZoneInfo, route53: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from failover.testing.route53_shim import MotoRoute53Connection

    monkeypatch.setattr(MotoRoute53Connection, "version", "2012-02-29")  # the API version libcloud's driver speaks
    api = f"api.{zone.domain}"
    target.set_record(zone, api, "A", 300, ["192.0.2.1", "192.0.2.2"])

    target.set_record(zone, api, "A", 60, ["198.51.100.7"])

    assert rrsets(route53, zone)[(api, "A")] == (60, ["198.51.100.7"])


@pytest.mark.parametrize("api", ["2013-04-01", "2012-02-29"], ids=["upsert", "delete-and-create"])
def test_set_records_writes_many_sets_in_one_change_batch_and_a_batch_sent_again_is_harmless(
    target: LibcloudDns, zone: ZoneInfo, route53: Any, monkeypatch: pytest.MonkeyPatch, api: str
) -> None:
    from failover.ports import RecordChange
    from failover.testing.route53_shim import MotoRoute53Connection
    from providers.libcloud import dns as libcloud_dns

    monkeypatch.setattr(MotoRoute53Connection, "version", api)
    monkeypatch.setattr(libcloud_dns, "WRITE_BATCH", 40)
    www = f"www.{zone.domain}"
    target.set_record(zone, www, "CNAME", 300, [f"lb.{zone.domain}"])
    target.set_record(zone, f"n1.{zone.domain}", "A", 300, ["192.0.2.1", "192.0.2.2"])
    batches: list[int] = []
    connection = target.session.driver.connection
    original = connection.request

    def counted(action: str, *args: Any, method: str = "GET", **kwargs: Any) -> Any:
        if method == "POST" and action.endswith("/rrset"):
            batches.append(1)
        return original(action, *args, method=method, **kwargs)

    monkeypatch.setattr(connection, "request", counted)
    changes = [RecordChange(www, "CNAME", 60), RecordChange(www, "A", 60, ("192.0.2.10",))]
    changes += [RecordChange(f"n{i}.{zone.domain}", "A", 60, (f"198.51.100.{i}",)) for i in range(1, 80)]

    target.set_records(zone, changes)
    assert len(batches) == 3  # 81 sets in batches of 40
    target.set_records(zone, changes)  # sent again (an answer lost): nothing is deleted twice or replaced by itself

    assert len(batches) == 3
    held = rrsets(route53, zone)
    assert (www, "CNAME") not in held
    assert held[(www, "A")] == (60, ["192.0.2.10"])
    assert held[(f"n1.{zone.domain}", "A")] == (60, ["198.51.100.1"])
    assert held[(f"n79.{zone.domain}", "A")] == (60, ["198.51.100.79"])
