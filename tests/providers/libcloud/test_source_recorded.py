"""A libcloud SOURCE read from libcloud's own recorded vendor API responses (the fixtures its
wheel ships in ``libcloud/test``): DigitalOcean (v2), Linode (v4) and Vultr (v2) services are
inventoried through the real vendor drivers, selected by tags or by name prefix, zones with
every record. Subclasses of libcloud's mocks only add what the recordings lack (tags on a
droplet, a firewall, one image by id), each said where it is done."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http import HTTPStatus

import pytest

from failover.config import DriverSpec, Selector, SourceComputeSpec
from failover.errors import ConfigError
from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses
from providers.libcloud.source.inventory import LibcloudInventory

ensure_libcloud_test_secrets()

from libcloud.common.google import GoogleBaseAuthConnection  # noqa: E402
from libcloud.compute.drivers.digitalocean import DigitalOcean_v2_NodeDriver  # noqa: E402
from libcloud.compute.drivers.gce import GCENodeDriver  # noqa: E402
from libcloud.compute.drivers.linode import LinodeNodeDriverV4  # noqa: E402
from libcloud.compute.drivers.vultr import VultrNodeDriverV2  # noqa: E402
from libcloud.dns.drivers.digitalocean import DigitalOceanDNSDriver  # noqa: E402
from libcloud.test.common.test_google import GoogleAuthMockHttp, GoogleTestCase  # noqa: E402
from libcloud.test.compute.test_digitalocean_v2 import DigitalOceanComputeMockHttp  # noqa: E402
from libcloud.test.compute.test_gce import GCEMockHttp  # noqa: E402
from libcloud.test.compute.test_linode_v4 import LinodeMockHttpV4  # noqa: E402
from libcloud.test.compute.test_vultr_v2 import VultrMockHttpV2  # noqa: E402
from libcloud.test.dns.test_digitalocean import DigitalOceanDNSMockHttp  # noqa: E402

OK = (HTTPStatus.OK.value, {}, HTTPStatus.OK.phrase)

# A firewall as DigitalOcean's API documents GET /v2/firewalls (the recordings have none):
# applied to droplets tagged service:social-app, web and SSH in, everything out.
DO_FIREWALLS = {
    "firewalls": [{
        "id": "bb4b2611-3d72-467b-8602-280330ecd65c", "name": "social-web", "status": "succeeded",
        "inbound_rules": [
            {"protocol": "tcp", "ports": "80", "sources": {"addresses": ["0.0.0.0/0", "::/0"]}},
            {"protocol": "tcp", "ports": "8000-8080", "sources": {"addresses": ["10.0.0.5"]}},
            {"protocol": "tcp", "ports": "22", "sources": {"tags": ["bastion"]}},
            {"protocol": "tcp", "ports": "80;rm -rf /", "sources": {"addresses": ["0.0.0.0/0"]}},  # hostile: refused
        ],
        "outbound_rules": [
            {"protocol": "tcp", "ports": "all", "destinations": {"addresses": ["0.0.0.0/0"]}},
            {"protocol": "icmp", "ports": "0", "destinations": {"addresses": ["0.0.0.0/0"]}},
        ],
        "droplet_ids": [], "tags": ["service:social-app"],
    }, {
        "id": "fb6045f1-cf1d-4ca3-bfac-18832663025b", "name": "someone-else", "status": "succeeded",
        "inbound_rules": [], "outbound_rules": [], "droplet_ids": [42], "tags": ["other"],
    }],
    "links": {}, "meta": {"total": 2},
}


class TaggedDropletsMockHttp(DigitalOceanComputeMockHttp):
    """The recorded droplet, tagged like a service's (the recording's droplet has no tags)."""

    tags: list[str] = ["service:social-app", "role:web"]

    def _v2_droplets(self, method, url, body, headers):
        data = json.loads(self.fixtures.load("list_nodes.json"))
        for droplet in data["droplets"]:
            droplet["tags"] = list(self.tags)
        return OK[0], json.dumps(data), OK[1], OK[2]

    def _v2_regions(self, method, url, body, headers):
        """The recorded regions and the droplet's own (sfo3: the recording's region list predates it)."""
        data = json.loads(self.fixtures.load("list_locations.json"))
        data["regions"].append({"slug": "sfo3", "name": "San Francisco 3", "sizes": [], "available": True, "features": []})
        return OK[0], json.dumps(data), OK[1], OK[2]

    def _v2_firewalls(self, method, url, body, headers):
        return OK[0], json.dumps(DO_FIREWALLS), OK[1], OK[2]


class LinodeWithImageMockHttp(LinodeMockHttpV4):
    """GET /v4/images/linode/centos7 answered from the recorded image list (not recorded on its own)."""

    def _v4_images_linode_centos7(self, method, url, body, headers):
        images = json.loads(self.fixtures.load("list_images.json"))["data"]
        return OK[0], json.dumps(next(image for image in images if image["id"] == "linode/centos7")), OK[1], OK[2]


class TaggedVultrMockHttp(VultrMockHttpV2):
    """The recorded instances, the first one tagged ``service:social-app``."""

    def _v2_instances(self, method, url, body, headers):
        data = json.loads(self.fixtures.load("list_nodes.json"))
        data["instances"][0]["tag"] = "service:social-app"
        return OK[0], json.dumps(data), OK[1], OK[2]


class LabelledGceMockHttp(GCEMockHttp):
    """The recorded instance of us-central1-a, labelled like a service's and given user data."""

    def _zones_us_central1_a_instances(self, method, url, body, headers):
        data = json.loads(self.fixtures.load("zones_us-central1-a_instances.json"))
        for item in data["items"]:
            item["labels"] = {"service": "social-app"}
            item.setdefault("metadata", {})["items"] = [{"key": "user-data", "value": "#cloud-config\n"}]
        return OK[0], json.dumps(data), self.json_hdr, OK[2]


class _NoAssertions:
    """GCEMockHttp asserts on a unittest case it is given; here the assertions are the test's own."""

    def assertEqual(self, *args: object) -> None:  # noqa: N802 - unittest's name
        return None


@pytest.fixture
def gce(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The GCE driver on its recordings, with libcloud's own stand-ins for Google's OAuth (its
    GoogleTestCase patchers: no token file, no clock, no metadata server)."""
    monkeypatch.setattr(GoogleBaseAuthConnection, "conn_class", GoogleAuthMockHttp)
    monkeypatch.setattr(LabelledGceMockHttp, "test", _NoAssertions(), raising=False)
    patchers = [getattr(GoogleTestCase, name) for name in dir(GoogleTestCase) if name.endswith("_patcher")]
    for patcher in patchers:
        patcher.start()
    try:
        with recorded_responses(GCENodeDriver, LabelledGceMockHttp):
            yield {"user_id": "email@developer.gserviceaccount.com", "key": "key", "project": "project_name",
                   "auth_type": "IA", "datacenter": "us-central1-a"}
    finally:
        for patcher in patchers:
            patcher.stop()


@pytest.fixture
def digitalocean() -> Iterator[None]:
    with recorded_responses(DigitalOcean_v2_NodeDriver, TaggedDropletsMockHttp):
        yield


@pytest.fixture
def digitalocean_dns() -> Iterator[None]:
    # DigitalOcean's compute and DNS drivers share one connection class: one mock at a time
    with recorded_responses(DigitalOceanDNSDriver, DigitalOceanDNSMockHttp):
        yield


@pytest.fixture
def linode() -> Iterator[None]:
    with recorded_responses(LinodeNodeDriverV4, LinodeWithImageMockHttp):
        yield


@pytest.fixture
def vultr() -> Iterator[None]:
    with recorded_responses(VultrNodeDriverV2, TaggedVultrMockHttp):
        yield


def inventory(driver: str | None, select: Selector, *, locations: list[str] | None = None, dns: str | None = None,
              options: dict[str, str] | None = None):
    options = options or {"key": "recorded-token"}
    compute = SourceComputeSpec(driver=driver, options=options, locations=locations or []) if driver else None
    dns_spec = DriverSpec(driver=dns, options={"key": "recorded-token"}) if dns else None
    return LibcloudInventory("social-app", select, compute=compute, dns=dns_spec).inventory().to_dict()


def test_digitalocean_service_by_tags_with_sizes_image_and_firewall(digitalocean) -> None:
    manifest = inventory("digitalocean", Selector(tags={"service": "social-app"}), locations=["sfo3"])

    assert manifest["source"]["provider"] == "libcloud"
    assert manifest["source"]["regions"] == ["sfo3"]  # the droplet's region, written "San Francisco 3"
    node, firewall = manifest["resources"]
    assert node == {
        "id": "3164444", "name": "ubuntu-s-1vcpu-1gb-sfo3-01", "region": "sfo3",
        "tags": {"role": "web", "service": "social-app"}, "kind": "node", "instance_type": "s-1vcpu-1gb",
        "vcpus": 1, "memory_mib": 1024, "image_id": "69463186", "image_name": "20.04 (LTS) x64",
        "image_description": "Ubuntu 20.04 (LTS) x64", "architecture": None, "private_ip": "10.124.0.2",
        "public_ip": "128.199.13.158", "firewalls": ["bb4b2611-3d72-467b-8602-280330ecd65c"], "volumes": [],
        "root_volume_gib": 25, "user_data": None, "state": "running", "zone": None,
    }
    assert (firewall["kind"], firewall["name"], firewall["tags"]) == ("firewall", "social-web", {"service": "social-app"})
    assert firewall["rules"] == [
        {"direction": "egress", "protocol": "icmp", "port_from": None, "port_to": None, "sources": ["0.0.0.0/0"]},
        {"direction": "egress", "protocol": "tcp", "port_from": None, "port_to": None, "sources": ["0.0.0.0/0"]},
        {"direction": "ingress", "protocol": "tcp", "port_from": 22, "port_to": 22, "sources": ["tag:bastion"]},
        {"direction": "ingress", "protocol": "tcp", "port_from": 80, "port_to": 80, "sources": ["0.0.0.0/0", "::/0"]},
        {"direction": "ingress", "protocol": "tcp", "port_from": 8000, "port_to": 8080, "sources": ["10.0.0.5/32"]},
    ]
    (refused,) = manifest["unsupported"]  # the rest of the firewall is carried
    assert (refused["type"], refused["id"], refused["name"]) == (
        "digitalocean:firewall-rule", "bb4b2611-3d72-467b-8602-280330ecd65c", "social-web")
    assert "ingress rule left out (the node admits less)" in refused["reason"]
    # what the driver cannot tell is null and said, never guessed
    assert set(manifest["source"]["unknown"]) == {"node.user_data", "node.architecture"}


def test_digitalocean_other_tags_and_other_locations_select_nothing(digitalocean) -> None:
    assert inventory("digitalocean", Selector(tags={"service": "social"}))["resources"] == []
    assert inventory("digitalocean", Selector(tags={"service": "social-app"}), locations=["fra1"])["resources"] == []


def test_linode_plain_string_tags_and_name_prefix(linode) -> None:
    tagged = inventory("linode", Selector(tags={"testing": ""}))
    assert [node["name"] for node in tagged["resources"]] == ["test_2", "test_1"]  # by id
    one = inventory("linode", Selector(name_prefix="test_1"))
    (node,) = one["resources"]
    assert {key: node[key] for key in ("id", "region", "tags", "instance_type", "vcpus", "memory_mib", "image_id",
                                       "public_ip", "private_ip", "root_volume_gib")} == {
        "id": "22344421", "region": "eu-west", "tags": {"123": "", "abcdefg": "", "testing": ""},
        "instance_type": "g6-nanode-1", "vcpus": 1, "memory_mib": 1024, "image_id": "linode/centos7",
        "public_ip": "156.12.197.243", "private_ip": None, "root_volume_gib": 25,
    }
    assert node["image_name"] == "CentOS 7"
    assert "node.firewalls" in one["source"]["unknown"] and "node.user_data" in one["source"]["unknown"]


def test_vultr_single_tag_and_name_prefix(vultr) -> None:
    (node,) = inventory("vultr", Selector(tags={"service": "social-app"}))["resources"]
    assert (node["id"], node["name"], node["region"], node["instance_type"], node["vcpus"], node["memory_mib"]) == (
        "123", "test1", "fra", "vc2-1c-2gb", 1, 2048)
    assert node["image_name"] == "Debian 11 x64 (bullseye)" and node["public_ip"] == "45.76.83.44"
    by_name = inventory("vultr", Selector(name_prefix="test"), locations=["lhr"])
    assert [(node["name"], node["region"]) for node in by_name["resources"]] == [("test3", "lhr")]


def test_digitalocean_zone_with_every_record(digitalocean_dns) -> None:
    manifest = inventory(None, Selector(zones=["testdomain"]), dns="digitalocean")

    (zone,) = manifest["resources"]
    assert (zone["kind"], zone["id"], zone["name"], zone["region"]) == ("dns_zone", "testdomain", "testdomain.", "global")
    assert zone["records"] == [
        {"name": "testdomain.", "type": "A", "ttl": 1800, "values": ["123.45.67.89", "123.45.67.99"]},
        {"name": "testdomain.", "type": "NS", "ttl": 1800,
         "values": ["ns1.digitalocean.com", "ns2.digitalocean.com", "ns3.digitalocean.com"]},
    ]


def test_a_zone_the_source_lacks_is_an_input_error_naming_it(digitalocean_dns) -> None:
    with pytest.raises(ConfigError, match="source.select.zones.*no zone 'nope.example.' on the source"):
        inventory(None, Selector(zones=["nope.example"]), dns="digitalocean")


def test_gce_service_by_labels_with_zone_size_image_user_data_and_firewalls(gce) -> None:
    manifest = inventory("gce", Selector(tags={"service": "social-app"}), options=gce)

    node, *firewalls = manifest["resources"]
    assert {key: node[key] for key in ("name", "region", "tags", "instance_type", "vcpus", "memory_mib", "image_id",
                                       "image_description", "private_ip", "public_ip", "user_data")} == {
        "name": "node-name", "region": "us-central1-a", "tags": {"service": "social-app"},
        "instance_type": "n1-standard-1", "vcpus": 1, "memory_mib": 3840, "image_id": "debian-7-wheezy-v20131120",
        "image_description": "Debian GNU/Linux 7.2 (wheezy) built on 2013-11-20", "private_ip": "10.240.72.75",
        "public_ip": "23.236.58.15", "user_data": "#cloud-config\n",
    }
    # the default network's firewalls without target tags apply to it; none is the service's own
    assert {firewall["name"] for firewall in firewalls} == {"default-allow-internal", "default-ssh"}
    assert node["firewalls"] == sorted(firewall["id"] for firewall in firewalls)
    ssh = next(firewall for firewall in firewalls if firewall["name"] == "default-ssh")
    assert ssh["owned"] is False and ssh["rules"] == [
        {"direction": "ingress", "protocol": "tcp", "port_from": 22, "port_to": 22, "sources": ["0.0.0.0/0"]}]
    assert set(manifest["source"].get("unknown", {})) == {"node.architecture"}
    assert inventory("gce", Selector(tags={"service": "other"}), options=gce)["resources"] == []
