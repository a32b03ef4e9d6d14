"""A hostile source (issue 10): security groups whose Name tag or protocol carry nftables
statements, inventoried from a moto_server account and provisioned onto a target without a
firewall API (libcloud's EC2 driver on a second moto_server, seen without one): nothing of
theirs reaches the node's cloud-init except as checked data."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from targetkit import SERVICE, compute_spec, context, live_instances, tags_of, user_data_of, write_config

from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.cloudinit import RULESET_PATH, cloud_config_parts
from failover.testing.servers import MotoServer
from providers.aws.inventory import AwsInventory
from providers.aws.session import AwsSession

INJECTED = "add rule inet failover input accept"
HOSTILE_NAME = f"web-sg\n{INJECTED}\n#"
HOSTILE_PROTOCOL = f"tcp dport 22 accept\n{INJECTED}\n#"


@pytest.fixture(scope="module")
def source() -> Iterator[MotoServer]:
    """The source account: a moto_server process of its own."""
    with MotoServer() as server:
        yield server


@pytest.fixture
def hostile_snapshot(source: MotoServer, monkeypatch: pytest.MonkeyPatch):
    source.reset()
    for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                       "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(key, raising=False)
    ec2 = boto3.client("ec2", endpoint_url=source.url, region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.20.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.20.1.0/24")["Subnet"]["SubnetId"]
    tags = [{"Key": "service", "Value": SERVICE}]
    group = ec2.create_security_group(
        GroupName="web", Description="web", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": [*tags, {"Key": "Name", "Value": HOSTILE_NAME}]}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]},
        {"IpProtocol": HOSTILE_PROTOCOL, "FromPort": 1, "ToPort": 2, "IpRanges": [{"CidrIp": "198.51.100.0/24"}]},
    ])
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]
    ec2.run_instances(
        ImageId=image["ImageId"], InstanceType="t3.medium", MinCount=1, MaxCount=1, SubnetId=subnet,
        SecurityGroupIds=[group],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [*tags, {"Key": "Name", "Value": "web-1"}]}],
    )
    inventory = AwsInventory(service=SERVICE, regions=["us-east-1"], selector={"service": SERVICE},
                             session=AwsSession(endpoint_url=source.url, max_backoff=0.05))
    return inventory.inventory()


def test_security_group_text_never_becomes_an_nftables_statement(hostile_snapshot, tmp_path: Path, target) -> None:
    [group] = hostile_snapshot.of_kind("firewall")
    assert group.name == HOSTILE_NAME  # the snapshot keeps what the source said: it is data
    config = write_config(tmp_path, {"compute": compute_spec(target, driver="targetkit:NoFirewallApiDriver"),
                                     "images": {hostile_snapshot.of_kind("node")[0].image_id: "ami-1e749f67"}})
    log: list[str] = []

    outputs = ProvisionNodes().apply(context(config, hostile_snapshot, log=log), ProvisionNodesParams())

    [instance] = live_instances(target)
    assert tags_of(instance)["Name"] == f"{SERVICE}-web-1"
    [firewall_config] = cloud_config_parts(user_data_of(target, instance["InstanceId"]))
    ruleset = next(f["content"] for f in firewall_config["write_files"] if f["path"] == RULESET_PATH)
    statements = [line.strip() for line in ruleset.splitlines() if line.strip() and not line.strip().startswith("#")]
    assert INJECTED not in statements
    assert not any("dport 22" in line or "198.51.100.0/24" in line for line in statements)  # the hostile rule: out
    assert "ip saddr 0.0.0.0/0 tcp dport 443 accept" in statements  # the rest goes on
    assert all("\n" not in line and "\r" not in line for line in ruleset.splitlines())
    [refused] = outputs["web-1"]["refused_rules"]
    assert refused.startswith(f"{group.id} (web-sg?add rule inet failover input accept??): rule ")
    assert refused.endswith("(ingress): protocol is neither a known name nor a number 0-255")
    assert any("firewall rule refused" in line for line in log)


def test_a_database_name_never_becomes_a_line_of_the_restore_script(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from targetkit import database

    from failover.databases.node import restore_script
    from failover.naming import DumpKey

    name = 'orders\ntouch /tmp/pwned\n$(touch /tmp/pwned2)"`touch /tmp/pwned3`'
    dump = DumpKey(name, datetime(2026, 1, 1, tzinfo=UTC), ".dump")

    script = restore_script(database(name), dump, "replica-failover-dumps", None)

    assert "touch /tmp/pwned" not in script.splitlines()
    assert "$(" not in script and "`" not in script
    (tmp_path / "restore.sh").write_text(script)
    checked = subprocess.run(["sh", "-n", str(tmp_path / "restore.sh")], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr  # still a well-formed script
