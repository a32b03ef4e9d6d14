"""Listings read to their last page, against a real ``moto_server``: EC2 pages DescribeInstances
at 100 reservations, Route53 pages hosted zones at 100 and record sets at 300, ELB pages
DescribeLoadBalancers at 50 (moto does not page DescribeSecurityGroups: that one is not shown). Each test seeds
more than a page (once per module: one EC2 reservation per node, since moto pages reservations),
shows that libcloud's own call stops at the first page (so the test can fail), and checks what
failover reads against the emulator's own listing through boto3."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import islice
from typing import Any

import boto3
import pytest

from failover import drill
from failover.config import ComputeSpec, DnsSpec, DriverSpec, Selector, SourceComputeSpec
from failover.testing.servers import MotoServer
from providers.libcloud import connect_compute, connect_dns
from providers.libcloud.compute import LibcloudCompute
from providers.libcloud.loadbalancer import connect_loadbalancer
from providers.libcloud.source.inventory import LibcloudInventory

from .conftest import EC2_SHIM

ROUTE53_SHIM = "failover.testing.route53_shim:MotoRoute53DNSDriver"
IMAGE = "ami-03cf127a"  # in moto's catalogue
SERVICE = "pages"
RESERVATIONS = 103  # moto's page: 100 reservations
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


def client(moto: MotoServer, service: str) -> Any:
    return boto3.client(service, endpoint_url=moto.url, **CREDENTIALS)


@pytest.fixture(scope="module")
def many_nodes(moto_server: MotoServer) -> Iterator[list[str]]:
    """RESERVATIONS nodes of the service, each in a reservation of its own; their ids."""
    moto_server.reset()
    ec2 = client(moto_server, "ec2")
    group = ec2.create_security_group(GroupName="pages-web", Description="web")["GroupId"]

    def launch(index: int) -> str:
        tags = [{"Key": "Name", "Value": f"web-{index}"}, {"Key": "service", "Value": SERVICE}]
        answer = ec2.run_instances(ImageId=IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                                   SecurityGroupIds=[group], TagSpecifications=[{"ResourceType": "instance", "Tags": tags}])
        return answer["Instances"][0]["InstanceId"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(launch, range(RESERVATIONS)))
    yield ids
    moto_server.reset()


@pytest.fixture
def compute(moto: MotoServer) -> LibcloudCompute:
    return connect_compute(ComputeSpec(driver=EC2_SHIM, options={"key": "testing", "secret": "testing", "port": moto.port}))


def test_every_node_is_listed_past_the_first_page(compute: LibcloudCompute, many_nodes: list[str]) -> None:
    first_page = compute.session.driver.list_nodes()  # libcloud's own call: one page
    listed = compute.list_nodes()

    assert len(first_page) == 100
    assert {node.id for node in listed} == set(many_nodes)  # as moto's RunInstances answered them
    assert len(listed) == RESERVATIONS


def test_a_drill_sees_every_node_left_on_the_target(compute: LibcloudCompute, many_nodes: list[str]) -> None:
    assert set(drill.list_nodes(compute)) == set(many_nodes)


def test_the_last_node_is_found_by_name_and_seen_running(compute: LibcloudCompute, many_nodes: list[str]) -> None:
    last = f"web-{RESERVATIONS - 1}"

    found = compute.find_node(last)

    assert found is not None and found.id == many_nodes[-1]
    assert compute.wait_running(found.id, timeout=30).state == "running"
    assert set(compute.attached_firewalls(many_nodes)) == set(many_nodes)


def test_a_libcloud_source_inventories_every_node(many_nodes: list[str], moto: MotoServer) -> None:
    spec = SourceComputeSpec(driver=EC2_SHIM, options={"key": "testing", "secret": "testing", "port": moto.port})

    manifest = LibcloudInventory(SERVICE, Selector(tags={"service": SERVICE}), compute=spec).inventory()

    nodes = manifest.of_kind("node")
    assert sorted(node.id for node in nodes) == sorted(many_nodes)
    assert {tuple(node.firewalls) for node in nodes} == {(manifest.of_kind("firewall")[0].id,)}


# -- Route53 through libcloud's driver -----------------------------------------------------------

ZONES = 102  # moto's page of hosted zones: 100
RECORD_NAMES = 160  # two sets each (A and TXT): 320 sets, one more and the apex's SOA and NS, past moto's page of 300


@pytest.fixture
def dns(moto: MotoServer) -> Any:
    options = {"key": "testing", "secret": "testing", "host": "127.0.0.1", "port": moto.port}
    return connect_dns(DnsSpec(driver=ROUTE53_SHIM, options=options))


@pytest.fixture(scope="module")
def many_zones(moto_server: MotoServer) -> list[str]:
    """ZONES hosted zones; the last holds RECORD_NAMES names of an A and a TXT set each, and one more."""
    route53 = client(moto_server, "route53")
    names = [f"z{index:03d}.pages.example." for index in range(ZONES)]
    zone_ids = [route53.create_hosted_zone(Name=name, CallerReference=name)["HostedZone"]["Id"] for name in names]
    changes = [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"h{index:03d}.{names[-1]}", "Type": kind, "TTL": 60,
                                                   "ResourceRecords": [{"Value": value}]}}
        for index in range(RECORD_NAMES) for kind, value in (("A", f"10.0.{index // 250}.{index % 250}"),
                                                             ("TXT", f'"n{index}"'))
    ]
    # One more set before them, so that a page ends between a name's A and TXT sets.
    changes.append({"Action": "CREATE", "ResourceRecordSet": {"Name": f"a.{names[-1]}", "Type": "A", "TTL": 60,
                                                              "ResourceRecords": [{"Value": "10.1.0.1"}]}})
    route53.change_resource_record_sets(HostedZoneId=zone_ids[-1], ChangeBatch={"Changes": changes})
    return names


def test_every_hosted_zone_is_listed_past_the_first_page(dns: Any, many_zones: list[str], moto: MotoServer) -> None:
    # libcloud's own iteration asks for the next page by a name ListHostedZones does not give: the first page again.
    stock = [zone.id for zone in islice(dns.session.driver.iterate_zones(), ZONES + 100)]
    listed = dns.list_zones()

    assert len(set(stock)) == 100 < len(stock)
    assert sorted(zone.domain for zone in listed) == sorted(many_zones)
    assert dns.find_zone(many_zones[-1]) is not None


def test_every_record_set_is_read_once_past_the_first_page(dns: Any, many_zones: list[str], moto: MotoServer) -> None:
    route53 = client(moto, "route53")
    zone = dns.find_zone(many_zones[-1])
    pages = route53.get_paginator("list_resource_record_sets").paginate(HostedZoneId=zone.id)
    held = {(s["Name"], s["Type"]): sorted(v["Value"] for v in s["ResourceRecords"])
            for page in pages for s in page["ResourceRecordSets"]}

    stock = dns.session.driver.list_records(dns._native_zone(zone))  # libcloud's own: the next page by name alone
    listed = dns.list_records(zone)

    assert len(stock) > sum(len(values) for values in held.values())
    assert len(held) == 2 * RECORD_NAMES + 3
    assert {(rs.name, rs.type): sorted(rs.values) for rs in listed} == held
    assert len(listed) == len(held)  # no set twice, no value twice


# -- classic ELB through libcloud's driver -------------------------------------------------------

ELB_SHIM = "failover.testing.elb_shim:MotoELBDriver"
BALANCERS = 53  # moto's page of DescribeLoadBalancers: 50


@pytest.fixture(scope="module")
def many_balancers(moto_server: MotoServer) -> list[str]:
    elb = client(moto_server, "elb")
    names = [f"pages-lb-{index:02d}" for index in range(BALANCERS)]
    for name in names:
        elb.create_load_balancer(LoadBalancerName=name, AvailabilityZones=["us-east-1a"],
                                 Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstancePort": 80}])
    return names


def test_every_load_balancer_is_listed_past_the_first_page(many_balancers: list[str], moto: MotoServer) -> None:
    balancers = connect_loadbalancer(DriverSpec(driver=ELB_SHIM, options={"key": "testing", "secret": "testing",
                                                                         "port": moto.port}))
    held = {d["LoadBalancerName"] for page in client(moto, "elb").get_paginator("describe_load_balancers").paginate()
            for d in page["LoadBalancerDescriptions"]}

    stock = balancers.session.driver.list_balancers()  # libcloud's own: one page
    listed = balancers.list_balancers()

    assert len(stock) == 50
    assert {balancer.name for balancer in listed} == held == set(many_balancers)
    assert balancers.find_balancer(many_balancers[-1]) is not None
