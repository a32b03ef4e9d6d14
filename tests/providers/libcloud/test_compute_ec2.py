"""The compute adapter over libcloud's EC2 driver (through the test shim) against moto_server;
what it created is checked with boto3, as a user of the target account would see it."""

from __future__ import annotations

import base64
import dataclasses
import sys
import threading
import time
from pathlib import Path

import boto3
import pytest

from failover.config import ComputeSpec
from failover.errors import ConfigError, Interrupted, OperationFailed, TransientError
from failover.ports import FirewallRuleInfo
from failover.testing.servers import MotoServer
from providers.libcloud import connect_compute
from providers.libcloud.compute import LibcloudCompute

from .conftest import EC2_SHIM

SUPPORT = Path(__file__).resolve().parents[2] / "support"
if str(SUPPORT) not in sys.path:
    sys.path.insert(0, str(SUPPORT))

from faultkit import Faults  # noqa: E402

IMAGE = "ami-03cf127a"  # in moto's catalogue
USER_DATA = "#!/bin/sh\necho 'héllo' > /tmp/greeting\n"


@pytest.fixture
def compute(moto: MotoServer, monkeypatch: pytest.MonkeyPatch) -> LibcloudCompute:
    monkeypatch.setenv("TARGET_EC2_SECRET", "testing")
    spec = ComputeSpec(
        driver=EC2_SHIM, location="us-east-1a",
        options={"key": "testing", "secret": "${env:TARGET_EC2_SECRET}", "port": moto.port},
    )
    return connect_compute(spec)


@pytest.fixture
def ec2(moto: MotoServer):
    return boto3.client(
        "ec2", region_name="us-east-1", endpoint_url=moto.url, aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def test_create_node_with_name_user_data_and_labels(compute: LibcloudCompute, ec2, unique: str) -> None:
    node = compute.create_node(f"web-{unique}", "t3.micro", IMAGE, user_data=USER_DATA, labels={"failover-run": unique})

    assert (node.name, node.size_id, node.image_id) == (f"web-{unique}", "t3.micro", IMAGE)
    assert node.labels["failover-run"] == unique
    described = ec2.describe_instances(InstanceIds=[node.id])["Reservations"][0]["Instances"][0]
    assert {t["Key"]: t["Value"] for t in described["Tags"]} == {"Name": f"web-{unique}", "failover-run": unique}
    assert described["Placement"]["AvailabilityZone"] == "us-east-1a"
    user_data = ec2.describe_instance_attribute(InstanceId=node.id, Attribute="userData")["UserData"]["Value"]
    assert base64.b64decode(user_data).decode() == USER_DATA


def test_find_node_by_name_and_wait_running(compute: LibcloudCompute, unique: str) -> None:
    assert compute.find_node(f"app-{unique}") is None
    created = compute.create_node(f"app-{unique}", "t3.small", IMAGE)

    running = compute.wait_running(created.id, timeout=30)
    found = compute.find_node(f"app-{unique}")

    assert running.state == "running" and running.public_ips
    assert found is not None and found.id == created.id


def test_destroy_is_idempotent_and_a_destroyed_node_is_not_found(compute: LibcloudCompute, ec2, unique: str) -> None:
    node = compute.create_node(f"gone-{unique}", "t3.micro", IMAGE)

    assert compute.destroy_node(node.id) is True
    assert compute.destroy_node(node.id) is False
    assert compute.destroy_node("i-00000000000000000") is False
    assert compute.find_node(f"gone-{unique}") is None
    state = ec2.describe_instances(InstanceIds=[node.id])["Reservations"][0]["Instances"][0]["State"]["Name"]
    assert state == "terminated"


def test_waiting_for_a_node_that_disappears_fails(compute: LibcloudCompute, unique: str) -> None:
    node = compute.create_node(f"short-{unique}", "t3.micro", IMAGE)
    compute.destroy_node(node.id)
    with pytest.raises(OperationFailed, match="disappeared"):
        compute.wait_running(node.id, timeout=5)


def test_a_cancelled_wait_stops_at_once(compute: LibcloudCompute, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    node = compute.create_node(f"pending-{unique}", "t3.micro", IMAGE)
    # moto starts nodes at once; a node that stays pending needs the poll to say so.
    monkeypatch.setattr(compute, "_node", lambda node_id: dataclasses.replace(node, state="pending"))
    compute.poll_interval = 60
    cancel = threading.Event()
    cancel.set()
    started = time.monotonic()
    with pytest.raises(Interrupted):
        compute.wait_running(node.id, timeout=120, cancel=cancel)
    assert time.monotonic() - started < 5


def test_a_wait_times_out(compute: LibcloudCompute, unique: str, monkeypatch: pytest.MonkeyPatch) -> None:
    node = compute.create_node(f"late-{unique}", "t3.micro", IMAGE)
    monkeypatch.setattr(compute, "_node", lambda node_id: dataclasses.replace(node, state="pending"))
    compute.poll_interval = 0.01
    with pytest.raises(OperationFailed, match="not running after 0.1s"):
        compute.wait_running(node.id, timeout=0.1)


def test_sizes_images_and_location_are_listed_once(compute: LibcloudCompute) -> None:
    sizes, images = compute.sizes(), compute.images()
    driver = compute.session.driver
    driver.list_sizes = driver.list_images = driver.list_locations = _must_not_be_called

    assert compute.sizes() == sizes and compute.images() == images
    micro = next(size for size in sizes if size.id == "t3.micro")
    assert (micro.vcpus, micro.ram_mib) == (2, 1024)
    assert any(image.id == IMAGE for image in images)
    assert compute.location().name == "us-east-1a"


def test_unknown_location_is_a_config_error_naming_the_known_ones(moto: MotoServer) -> None:
    options = {"key": "testing", "secret": "testing", "port": moto.port}
    spec = ComputeSpec(driver=EC2_SHIM, location="mars-1a", options=options)
    with pytest.raises(ConfigError, match="compute.location: 'mars-1a' is not a location.*us-east-1a"):
        connect_compute(spec).sizes()


def test_unknown_size_fails_before_any_node_is_created(compute: LibcloudCompute, unique: str) -> None:
    with pytest.raises(OperationFailed, match="no size 'x9.huge'"):
        compute.create_node(f"nope-{unique}", "x9.huge", IMAGE)
    assert compute.find_node(f"nope-{unique}") is None


def test_security_groups_as_firewalls(compute: LibcloudCompute, ec2, unique: str) -> None:
    rules = [
        FirewallRuleInfo("ingress", "tcp", 443, 443, ("0.0.0.0/0",)),
        FirewallRuleInfo("ingress", "tcp", 22, 22, ("10.0.0.0/8",)),
        FirewallRuleInfo("egress", "-1", None, None, ("0.0.0.0/0",)),
    ]
    node = compute.create_node(f"fw-{unique}", "t3.micro", IMAGE)
    assert compute.supports_firewalls and compute.find_firewall(f"web-{unique}") is None

    firewall = compute.create_firewall(f"web-{unique}", rules, labels={"failover-run": unique})
    compute.attach_firewall(firewall.id, node.id)

    assert compute.find_firewall(f"web-{unique}") == firewall
    assert set(firewall.rules) == set(rules) and firewall.labels == {"failover-run": unique}
    described = ec2.describe_instances(InstanceIds=[node.id])["Reservations"][0]["Instances"][0]
    assert firewall.id in [group["GroupId"] for group in described["SecurityGroups"]]
    compute.destroy_node(node.id)
    assert compute.delete_firewall(firewall.id) is True
    assert compute.delete_firewall(firewall.id) is False


def test_a_firewall_without_the_default_egress_has_none(compute: LibcloudCompute, unique: str) -> None:
    rules = [FirewallRuleInfo("ingress", "tcp", 80, 80, ("0.0.0.0/0",))]
    firewall = compute.create_firewall(f"closed-{unique}", rules)
    assert firewall.rules == tuple(rules)
    compute.delete_firewall(firewall.id)


def _must_not_be_called(*args, **kwargs):
    raise AssertionError("the catalogue should have been cached")


# -- faults: a 503 before a request is executed, or after (its answer lost) ----------------------


def named(ec2, name: str, kind: str = "instance") -> list[str]:
    """Ids of the live instances, or of the security groups, of that name, as EC2 lists them."""
    if kind == "group":
        groups = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]
        return [group["GroupId"] for group in groups]
    reservations = ec2.describe_instances(Filters=[{"Name": "tag:Name", "Values": [name]}])["Reservations"]
    return [i["InstanceId"] for r in reservations for i in r["Instances"] if i["State"]["Name"] != "terminated"]


@pytest.mark.parametrize("executed", [False, True], ids=["not-executed", "answer-lost"])
def test_a_labelled_node_is_created_once_whatever_the_503_hid(compute, ec2, unique, monkeypatch, executed) -> None:
    faults = Faults(compute.session.driver, monkeypatch)
    faults.fail("RunInstances", executed=executed)

    node = compute.create_node(f"once-{unique}", "t3.micro", IMAGE, labels={"failover-run": unique})

    assert faults.injected == ["RunInstances"]
    assert named(ec2, f"once-{unique}") == [node.id]
    assert node.labels["failover-run"] == unique


def test_an_unlabelled_node_is_not_retried_blindly(compute, ec2, unique, monkeypatch) -> None:
    faults = Faults(compute.session.driver, monkeypatch)
    faults.fail("RunInstances", executed=True)

    with pytest.raises(TransientError):  # a node of that name could be anyone's: the caller decides
        compute.create_node(f"bare-{unique}", "t3.micro", IMAGE)
    assert len(named(ec2, f"bare-{unique}")) == 1


@pytest.mark.parametrize(
    "failing", ["CreateSecurityGroup", "RevokeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"]
)
@pytest.mark.parametrize("executed", [False, True], ids=["not-executed", "answer-lost"])
def test_a_firewall_is_created_once_with_exactly_its_rules(compute, ec2, unique, monkeypatch, failing, executed):
    rules = [FirewallRuleInfo("ingress", "tcp", 443, 443, ("0.0.0.0/0", "10.0.0.0/8"))]
    faults = Faults(compute.session.driver, monkeypatch)
    faults.fail(failing, executed=executed)
    journaled = []

    labels = {"failover-run": unique}
    firewall = compute.create_firewall(f"fw-{unique}", rules, labels=labels, on_created=journaled.append)

    assert faults.injected == [failing]
    assert named(ec2, f"fw-{unique}", "group") == journaled == [firewall.id]
    assert {(rule.port_from, source) for rule in firewall.rules for source in rule.sources} == {
        (443, "0.0.0.0/0"), (443, "10.0.0.0/8")}  # the default egress revoked
    assert firewall.labels == labels  # tagged in the creating request
    compute.delete_firewall(firewall.id)


def test_set_firewall_rules_converges_from_any_state(compute: LibcloudCompute, unique: str) -> None:
    half = compute.create_firewall(f"half-{unique}", [
        FirewallRuleInfo("ingress", "tcp", 22, 22, ("0.0.0.0/0",)),  # not wanted
        FirewallRuleInfo("ingress", "tcp", 443, 443, ("10.0.0.0/8",)),  # wanted, one source short
    ])
    wanted = [
        FirewallRuleInfo("ingress", "tcp", 443, 443, ("10.0.0.0/8",)),
        FirewallRuleInfo("ingress", "tcp", 443, 443, ("192.168.0.0/16",)),
        FirewallRuleInfo("egress", "udp", 53, 53, ("0.0.0.0/0",)),
    ]

    converged = compute.set_firewall_rules(half.id, wanted, labels={"failover-run": unique})
    again = compute.set_firewall_rules(half.id, wanted, labels={"failover-run": unique})

    assert converged.id == half.id == again.id
    assert facts(converged.rules) == facts(wanted) == facts(again.rules)
    assert converged.labels == {"failover-run": unique}
    compute.delete_firewall(half.id)


def facts(rules) -> set[tuple]:
    """Rules as (direction, protocol, from, to, source): providers group sources differently."""
    return {(r.direction, r.protocol, r.port_from, r.port_to, source) for r in rules for source in r.sources}
