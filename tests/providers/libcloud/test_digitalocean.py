"""DigitalOcean through the adapters: libcloud's real DigitalOcean drivers answered by the
recorded API responses the apache-libcloud wheel ships (``libcloud.test``). Subclasses of
libcloud's mocks only add what the recordings lack (a create answered with a droplet, a
delete with 204) and write down what the driver sent."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest

from failover.config import ComputeSpec, DnsSpec
from failover.errors import CredentialsRefused, OperationFailed
from failover.ports import RecordSet, ZoneInfo
from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses
from providers.libcloud import connect_compute, connect_dns

ensure_libcloud_test_secrets()

from libcloud.compute.drivers.digitalocean import DigitalOcean_v2_NodeDriver  # noqa: E402
from libcloud.dns.drivers.digitalocean import DigitalOceanDNSDriver  # noqa: E402
from libcloud.test.compute.test_digitalocean_v2 import DigitalOceanComputeMockHttp  # noqa: E402
from libcloud.test.dns.test_digitalocean import DigitalOceanDNSMockHttp  # noqa: E402

Sent = list[tuple[str, str, Any]]


def _answer(status: HTTPStatus, body: str = "") -> tuple[int, str, dict, str]:
    return status.value, body, {}, status.phrase


def _sent(sent: Sent, method: str, url: str, body: Any) -> None:
    sent.append((method, url.split("?")[0], json.loads(body) if body else None))


class DropletsMockHttp(DigitalOceanComputeMockHttp):
    sent: Sent = []

    def _v2_droplets(self, method, url, body, headers):
        if method == "POST":
            _sent(self.sent, method, url, body)
            return _answer(HTTPStatus.ACCEPTED, self.fixtures.load("list_node.json"))
        return super()._v2_droplets(method, url, body, headers)

    def _v2_droplets_3164444(self, method, url, body, headers):
        if method == "DELETE":
            _sent(self.sent, method, url, body)
            return _answer(HTTPStatus.NO_CONTENT)
        return super()._v2_droplets_3164444(method, url, body, headers)


class DomainRecordsMockHttp(DigitalOceanDNSMockHttp):
    sent: Sent = []

    def _v2_domains_testdomain_records(self, method, url, body, headers):
        if method == "POST":
            _sent(self.sent, method, url, body)
            return _answer(HTTPStatus.CREATED, self.fixtures.load("_v2_domains_testdomain_records_CREATE.json"))
        return super()._v2_domains_testdomain_records(method, url, body, headers)

    def _v2_domains_testdomain_records_1234564(self, method, url, body, headers):
        return self._change(method, url, body)

    def _v2_domains_testdomain_records_1234567(self, method, url, body, headers):
        return self._change(method, url, body)

    def _change(self, method, url, body):
        _sent(self.sent, method, url, body)
        if method == "DELETE":
            return _answer(HTTPStatus.NO_CONTENT)
        return _answer(HTTPStatus.OK, self.fixtures.load("_v2_domains_testdomain_records_1234564_UPDATE.json"))


@pytest.fixture
def droplets() -> Iterator[type[DropletsMockHttp]]:
    DropletsMockHttp.sent = []
    with recorded_responses(DigitalOcean_v2_NodeDriver, DropletsMockHttp) as mock:
        yield mock


@pytest.fixture
def compute(droplets, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TARGET_DO_TOKEN", "recorded-token")
    return connect_compute(ComputeSpec(driver="digitalocean", location="nyc1", options={"key": "${env:TARGET_DO_TOKEN}"}))


@pytest.fixture
def domains() -> Iterator[type[DomainRecordsMockHttp]]:
    DomainRecordsMockHttp.sent = []
    with recorded_responses(DigitalOceanDNSDriver, DomainRecordsMockHttp) as mock:
        yield mock


@pytest.fixture
def dns_target(domains):
    return connect_dns(DnsSpec(driver="digitalocean", options={"key": "recorded-token"}))


def test_catalogues_in_neutral_form(compute) -> None:
    sizes, images = compute.sizes(), compute.images()

    small = next(size for size in sizes if size.id == "512mb")
    assert (small.vcpus, small.ram_mib, small.disk_gib, small.price_hourly) == (1, 512, 20, 0.00744)
    assert "nyc1" in small.extra["locations"]
    ubuntu = next(image for image in images if image.id == "119192817")
    assert ubuntu.extra["aliases"] == ["ubuntu-14-04-x64"] and ubuntu.description == "Ubuntu 14.04 x64"
    assert compute.location().name == "New York 1"
    assert "nyc1" in {location.id for location in compute.locations()}


def test_create_node_sends_name_size_image_region_user_data_and_tags(compute, droplets) -> None:
    node = compute.create_node("web-1", "512mb", "119192817", user_data="#cloud-config\n", labels={"failover-run": "r-42"})

    (method, path, body), = droplets.sent
    assert (method, path) == ("POST", "/v2/droplets")
    assert body == {
        "name": "web-1", "size": "512mb", "image": "119192817", "region": "nyc1",
        "user_data": "#cloud-config\n", "tags": ["failover-run:r-42"],
    }
    assert node.id == "3164444" and node.state == "running"


def test_find_and_destroy_nodes(compute, droplets) -> None:
    found = compute.find_node("ubuntu-s-1vcpu-1gb-sfo3-01")

    assert found is not None and found.public_ips == ("128.199.13.158",) and found.size_id == "s-1vcpu-1gb"
    assert compute.find_node("web-1") is None
    assert compute.destroy_node(found.id) is True
    assert droplets.sent == [("DELETE", "/v2/droplets/3164444", None)]
    assert compute.destroy_node("999") is False


def test_labels_are_read_back_from_string_tags() -> None:
    from providers.libcloud.values import labels_of

    assert labels_of({"tags": ["failover-run:r-42", "web"]}) == {"failover-run": "r-42", "web": ""}


def test_digitalocean_has_no_firewall_api_in_libcloud(compute) -> None:
    assert compute.supports_firewalls is False
    with pytest.raises(OperationFailed, match="no firewall API"):
        compute.create_firewall("web", [])


def test_a_refused_token_is_credentials_refused_without_the_token(compute, droplets) -> None:
    droplets.type = "UNAUTHORIZED"
    with pytest.raises(CredentialsRefused) as refused:
        compute.find_node("web-1")
    assert refused.value.exit_code == 4
    assert "recorded-token" not in str(refused.value)


def test_record_sets_from_single_records(dns_target) -> None:
    zone = dns_target.find_zone("testdomain")

    sets = {(r.name, r.type): r for r in dns_target.list_records(zone)}

    assert zone == ZoneInfo(id="testdomain", domain="testdomain.", ttl=1800)
    assert sets[("testdomain.", "NS")].values == ("ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com")
    assert sets[("testdomain.", "A")] == RecordSet("testdomain.", "A", 1800, ("123.45.67.89", "123.45.67.99"))


def test_set_record_updates_in_place_and_keeps_what_is_right(dns_target, domains) -> None:
    zone = dns_target.find_zone("testdomain")

    dns_target.set_record(zone, "testdomain.", "A", 1800, ["123.45.67.89", "198.51.100.1"])

    # 1234564 (…89, ttl 1800) is kept; 1234567 becomes the new value in place.
    (method, path, body), = domains.sent
    assert (method, path) == ("PUT", "/v2/domains/testdomain/records/1234567")
    assert (body["data"], body["ttl"], body["name"]) == ("198.51.100.1", 1800, "@")


def test_set_record_creates_relative_names_and_delete_removes_every_value(dns_target, domains) -> None:
    zone = dns_target.find_zone("testdomain")

    dns_target.set_record(zone, "www.testdomain.", "A", 300, ["192.0.2.1"])
    dns_target.delete_record(zone, "testdomain.", "A")

    assert [(m, p) for m, p, _ in domains.sent] == [
        ("POST", "/v2/domains/testdomain/records"),
        ("DELETE", "/v2/domains/testdomain/records/1234564"),
        ("DELETE", "/v2/domains/testdomain/records/1234567"),
    ]
    assert {key: domains.sent[0][2][key] for key in ("name", "type", "data", "ttl")} == {
        "name": "www", "type": "A", "data": "192.0.2.1", "ttl": 300,
    }
