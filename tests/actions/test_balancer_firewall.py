"""The load-balancer node's firewall, and the backends admitting it, on the shape of AWS's own
samples: an ALB in a security group of its own (untagged, open on port 80), instances in a group
of the service's that admits port 80 from the ALB's group. The snapshot is taken by the real AWS
inventory (moto in-process, once for the module); the target is libcloud's EC2 driver against a
``moto_server`` process (a firewall API, firewalls at node creation), and, for cloud-init
nftables, the same driver seen without its firewall API. What the emulated EC2 holds is read
back after each step."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import boto3
import pytest
from targetkit import (
    RUN_ID,
    SERVICE,
    UBUNTU_TRUSTY_ID,
    compute_spec,
    context,
    ec2,
    live_instances,
    permissions,
    tags_of,
    user_data_of,
    write_config,
)

from failover.actions.apply_firewall import ApplyFirewall, ApplyFirewallParams
from failover.actions.provision_load_balancers import ProvisionLoadBalancers, ProvisionLoadBalancersParams
from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.cloudinit import RULESET_PATH, cloud_config_parts
from failover.haproxy import CONFIG_PATH
from failover.manifest import FirewallRule, Manifest
from failover.naming import firewall_names

LB_NAME = f"{SERVICE}-lb-front"
HOSTILE = "\x1b]0;owned\x07$(reboot);`id`\n"


@pytest.fixture(scope="module")
def shape() -> dict[str, Any]:
    """AWS's sample shape, inventoried: {manifest, alb_group, web_group}."""
    from moto import mock_aws

    import providers.aws.inventory as aws_inventory
    from providers.aws.inventory import AwsInventory
    from providers.aws.session import AwsSession

    tag = [{"Key": "service", "Value": SERVICE}]
    with pytest.MonkeyPatch.context() as patch:
        for key, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                           "AWS_DEFAULT_REGION": "us-east-1"}.items():
            patch.setenv(key, value)
        for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
            patch.delenv(key, raising=False)
        # the two collectors that both bring the ALB's group in (the others have nothing to find here)
        patch.setattr(aws_inventory, "COLLECTORS", [c for c in aws_inventory.COLLECTORS if c[0] in ("ec2", "elbv2")])
        with mock_aws():
            session = boto3.session.Session(region_name="us-east-1")
            source, elbv2 = session.client("ec2"), session.client("elbv2")
            vpc = source.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
            subnets = [s["SubnetId"] for s in source.describe_subnets(
                Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]][:2]
            alb_group = source.create_security_group(GroupName="alb-sg", Description="ALB", VpcId=vpc)["GroupId"]
            source.authorize_security_group_ingress(GroupId=alb_group, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}],
                 "Ipv6Ranges": [{"CidrIpv6": "::/0"}]}])
            web_group = source.create_security_group(
                GroupName="web-sg", Description="web", VpcId=vpc,
                TagSpecifications=[{"ResourceType": "security-group", "Tags": tag}])["GroupId"]
            source.authorize_security_group_ingress(GroupId=web_group, IpPermissions=[
                {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "UserIdGroupPairs": [{"GroupId": alb_group}]},
                {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "IpRanges": [{"CidrIp": "203.0.113.0/24"}]}])
            instances = source.run_instances(
                ImageId=UBUNTU_TRUSTY_ID, MinCount=2, MaxCount=2, InstanceType="t3.medium", SubnetId=subnets[0],
                SecurityGroupIds=[web_group],
                TagSpecifications=[{"ResourceType": "instance", "Tags": tag}])["Instances"]
            balancer = elbv2.create_load_balancer(
                Name="front", Subnets=subnets, SecurityGroups=[alb_group], Scheme="internet-facing",
                Tags=tag)["LoadBalancers"][0]["LoadBalancerArn"]
            group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc,
                                              TargetType="instance")["TargetGroups"][0]["TargetGroupArn"]
            elbv2.register_targets(TargetGroupArn=group, Targets=[{"Id": i["InstanceId"]} for i in instances])
            elbv2.create_listener(LoadBalancerArn=balancer, Protocol="HTTP", Port=80,
                                  DefaultActions=[{"Type": "forward", "TargetGroupArn": group}])
            manifest = AwsInventory(service=SERVICE, regions=["us-east-1"], selector={"service": SERVICE},
                                    session=AwsSession(max_backoff=0.05)).inventory()
    return {"manifest": manifest, "alb_group": alb_group, "web_group": web_group}


@pytest.fixture
def config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


@pytest.fixture
def no_firewall_api(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target, driver="targetkit:NoFirewallApiDriver")})


def hostile(shape: dict[str, Any]) -> Manifest:
    """The snapshot with the balancer's group named and described by an attacker, and one of its
    rules naming a 'group' that is a terminal escape and a shell word."""
    data = shape["manifest"].model_copy(deep=True)
    group = data.find("firewall", shape["alb_group"])
    group.name, group.description = f"alb{HOSTILE}", HOSTILE
    group.rules.append(FirewallRule(direction="ingress", protocol="tcp", port_from=80, port_to=80, sources=[HOSTILE]))
    web = data.find("firewall", shape["web_group"])  # and a backend rule from the balancer's group, its protocol a shell word
    web.rules.append(FirewallRule(direction="ingress", protocol=HOSTILE, port_from=80, port_to=80,
                                  sources=[shape["alb_group"]]))
    return data


def build(config, manifest: Manifest, log: list[str] | None = None) -> tuple[dict[str, Any], Any, dict[str, Any]]:
    """provision-nodes, apply-firewall, then front-door, as playbooks/standard.yaml orders them."""
    nodes = ProvisionNodes().apply(context(config, manifest, step_id="nodes"), ProvisionNodesParams())
    ApplyFirewall().apply(context(config, manifest, step_id="firewall", outputs={"nodes": nodes}), ApplyFirewallParams())
    ctx = context(config, manifest, step_id="front-door", outputs={"nodes": nodes}, log=log)
    return nodes, ctx, ProvisionLoadBalancers().apply(ctx, ProvisionLoadBalancersParams())


def groups(server) -> dict[str, dict[str, Any]]:
    return {g["GroupName"]: g for g in ec2(server).describe_security_groups()["SecurityGroups"]}



def balancer_node(server) -> dict[str, Any]:
    [instance] = [i for i in live_instances(server) if tags_of(i).get("Name") == LB_NAME]
    return instance


def test_inventory_records_the_balancer_groups_and_brings_its_untagged_group_in_once(shape) -> None:
    manifest = shape["manifest"]
    [balancer] = manifest.of_kind("load_balancer")
    assert balancer.security_groups == [shape["alb_group"]]
    firewalls = {fw.id: fw for fw in manifest.of_kind("firewall")}
    assert len(manifest.of_kind("firewall")) == len(firewalls)  # the ALB's group once, though two collectors saw it
    assert firewalls[shape["alb_group"]].owned is False and firewalls[shape["web_group"]].owned is True
    assert manifest.to_dict()["resources"].count(next(
        r for r in manifest.to_dict()["resources"] if r["id"] == shape["alb_group"])) == 1
    written = next(r for r in manifest.to_dict()["resources"] if r["kind"] == "load_balancer")
    assert written["security_groups"] == [shape["alb_group"]]


def test_plan_names_the_firewall_its_rules_and_the_backend_rule(config, target, shape) -> None:
    changes = ProvisionLoadBalancers().plan(context(config, shape["manifest"], step_id="front-door"),
                                            ProvisionLoadBalancersParams())

    web = firewall_names(shape["manifest"], SERVICE)[shape["web_group"]]
    [own] = [c for c in changes if c.kind == "firewall" and c.operation == "create"]
    assert own.name == LB_NAME and "firewall API" in own.detail and "node is created inside it" in own.detail
    assert "ingress tcp port 80 from 0.0.0.0/0; egress -1 all ports from 0.0.0.0/0" in own.detail
    assert any("IPv6 sources left out" in c.detail for c in changes if c.kind == "firewall" and c.operation == "check")
    [backend] = [c for c in changes if c.kind == "firewall_rule"]
    assert (backend.operation, backend.name) == ("create", web)
    assert backend.detail.startswith("ingress tcp port 80 from the load-balancer node's private address")
    assert groups(target).keys() == {"default"}  # a plan creates nothing


def test_the_node_is_created_inside_its_firewall_and_the_backends_admit_it_until_undo(config, target, shape) -> None:
    manifest = shape["manifest"]
    web = firewall_names(manifest, SERVICE)[shape["web_group"]]
    nodes, ctx, outputs = build(config, manifest)

    instance = balancer_node(target)
    found = groups(target)
    own = found[LB_NAME]
    assert [g["GroupName"] for g in instance["SecurityGroups"]] == [LB_NAME]  # from creation on
    assert permissions(own) == {("tcp", 80, 80, "0.0.0.0/0")}  # exactly the listener's port
    assert permissions(own, "egress") == {("-1", None, None, "0.0.0.0/0")}
    assert tags_of(own).items() >= {"failover-run": RUN_ID, "failover-step": "front-door"}.items()
    private_ip = instance["PrivateIpAddress"]
    web_before = {("tcp", 22, 22, "203.0.113.0/24")}  # apply-firewall dropped the rule from the ALB's group
    assert permissions(found[web]) == web_before | {("tcp", 80, 80, f"{private_ip}/32")}
    entry = outputs["load_balancers"][manifest.of_kind("load_balancer")[0].id]
    assert entry["firewall"] == {"via": "firewall API", "id": own["GroupId"], "name": LB_NAME,
                                 "rules": ["ingress tcp port 80 from 0.0.0.0/0", "egress -1 all ports from 0.0.0.0/0"],
                                 "notes": ["IPv6 sources left out: the target's firewall API takes IPv4 addresses only"]}
    assert entry["backend_rules"] == [{"firewall": web, "id": found[web]["GroupId"], "added": 1,
                                       "rules": [f"ingress tcp port 80 from {private_ip}/32"]}]
    assert sorted(item["kind"] for item in ctx.created) == ["firewall", "firewall_rules", "node"]

    # a rerun (a resume after a crash, or a retry after a 503) adds nothing twice
    again = ProvisionLoadBalancers().apply(ctx, ProvisionLoadBalancersParams())
    assert again["load_balancers"][manifest.of_kind("load_balancer")[0].id]["backend_rules"][0]["added"] == 0
    assert permissions(groups(target)[web]) == web_before | {("tcp", 80, 80, f"{private_ip}/32")}
    assert [g for g in groups(target) if g.startswith(LB_NAME)] == [LB_NAME]
    assert sorted(item["kind"] for item in ctx.created) == ["firewall", "firewall_rules", "node"]

    ProvisionLoadBalancers().undo(ctx, ProvisionLoadBalancersParams())
    ProvisionLoadBalancers().undo(ctx, ProvisionLoadBalancersParams())  # idempotent
    after = groups(target)
    assert LB_NAME not in after and permissions(after[web]) == web_before
    assert [i for i in live_instances(target) if tags_of(i).get("Name") == LB_NAME] == []
    assert len(live_instances(target)) == 2 and nodes["nodes"]  # the web nodes are the nodes step's


def test_a_crash_before_the_journal_heard_of_the_firewall_adopts_it(config, target, shape) -> None:
    manifest = shape["manifest"]
    nodes, _, _ = build(config, manifest)  # then kill -9: the journal lost the firewall and the node
    resumed = context(config, manifest, step_id="front-door", created=[], outputs={"nodes": nodes})

    outputs = ProvisionLoadBalancers().apply(resumed, ProvisionLoadBalancersParams())

    [entry] = outputs["load_balancers"].values()
    assert entry["adopted"] is True and [g for g in groups(target) if g.startswith(LB_NAME)] == [LB_NAME]
    assert entry["backend_rules"][0]["added"] == 0
    assert sorted((item["kind"], item["name"]) for item in resumed.created) == [("firewall", LB_NAME), ("node", LB_NAME)]
    ProvisionLoadBalancers().undo(resumed, ProvisionLoadBalancersParams())
    assert LB_NAME not in groups(target)


def test_without_a_firewall_api_the_node_carries_nftables_and_hostile_text_stays_data(no_firewall_api, target,
                                                                                      shape) -> None:
    manifest = hostile(shape)
    log: list[str] = []
    changes = ProvisionLoadBalancers().plan(context(no_firewall_api, manifest, step_id="front-door"),
                                            ProvisionLoadBalancersParams())
    _, ctx, outputs = build(no_firewall_api, manifest, log)

    instance = balancer_node(target)
    parts = cloud_config_parts(user_data_of(target, instance["InstanceId"]))
    files = {item["path"]: item["content"] for part in parts for item in part.get("write_files", [])}
    ruleset = files[RULESET_PATH]
    assert "ip saddr 0.0.0.0/0 tcp dport 80 accept" in ruleset and "ip6 saddr ::/0 tcp dport 80 accept" in ruleset
    assert [line for line in ruleset.splitlines() if "saddr" in line] == [
        "        ip saddr 0.0.0.0/0 tcp dport 80 accept", "        ip6 saddr ::/0 tcp dport 80 accept"]
    assert CONFIG_PATH in files  # HAProxy's configuration beside it
    [entry] = outputs["load_balancers"].values()
    assert entry["firewall"]["via"] == "cloud-init nftables" and entry["firewall"]["id"] is None
    assert entry["backend_rules"][0]["added"] == 0 and "private networks" in entry["backend_rules"][0]["note"]
    [backend] = [c for c in changes if c.kind == "firewall_rule" and c.operation != "none"]
    assert backend.operation == "check" and "nothing wider is opened" in backend.detail
    # the attacker's name, description and 'group' never reach a rule, a config or a message as themselves
    written = "\n".join([*files.values(), repr(outputs), *log, *(c.detail for c in changes), repr(ctx.created)])
    for piece in ("\x1b", "$(reboot)", "`id`", "\x07"):
        assert piece not in written
    assert any("left out" in c.detail for c in changes if c.kind == "firewall")
    assert [c.detail for c in changes if c.kind == "firewall_rule" and c.operation == "none"] == [
        f"refused: {shape['web_group']}: a rule from the balancer's group: protocol is neither a known name nor a number 0-255"]


def test_where_the_driver_takes_no_firewall_at_creation_it_is_attached_right_after(tmp_path: Path, target,
                                                                                   shape) -> None:
    attach_only = write_config(tmp_path, {
        "compute": compute_spec(target, driver="firewallkit:NoFirewallsAtCreationDriver")})
    changes = ProvisionLoadBalancers().plan(context(attach_only, shape["manifest"], step_id="front-door"),
                                            ProvisionLoadBalancersParams())
    _, ctx, outputs = build(attach_only, shape["manifest"])

    assert any("attached right after the node is created" in c.detail for c in changes if c.kind == "firewall")
    instance = balancer_node(target)
    assert LB_NAME in {g["GroupName"] for g in instance["SecurityGroups"]}
    [entry] = outputs["load_balancers"].values()
    assert entry["firewall"]["id"] == groups(target)[LB_NAME]["GroupId"] and entry["backend_rules"][0]["added"] == 1
    ProvisionLoadBalancers().undo(ctx, ProvisionLoadBalancersParams())
    assert LB_NAME not in groups(target)


def test_a_503_whose_request_was_executed_adds_the_backend_rule_once(config, target, shape, monkeypatch) -> None:
    from faultkit import Faults

    manifest = shape["manifest"]
    web = firewall_names(manifest, SERVICE)[shape["web_group"]]
    nodes = ProvisionNodes().apply(context(config, manifest, step_id="nodes"), ProvisionNodesParams())
    ApplyFirewall().apply(context(config, manifest, step_id="firewall", outputs={"nodes": nodes}), ApplyFirewallParams())
    ctx = context(config, manifest, step_id="front-door", outputs={"nodes": nodes})
    faults = Faults(ctx.targets.compute.session.driver, monkeypatch)
    faults.fail("AuthorizeSecurityGroupIngress", executed=True, after=1)  # the first is the node's own firewall's

    outputs = ProvisionLoadBalancers().apply(ctx, ProvisionLoadBalancersParams())

    assert faults.injected == ["AuthorizeSecurityGroupIngress"]
    private_ip = balancer_node(target)["PrivateIpAddress"]
    assert permissions(groups(target)[web]) == {("tcp", 22, 22, "203.0.113.0/24"), ("tcp", 80, 80, f"{private_ip}/32")}
    [entry] = outputs["load_balancers"].values()
    assert entry["backend_rules"][0]["added"] == 1
    assert [item["rules"] for item in ctx.created if item["kind"] == "firewall_rules"] == [
        [["ingress", "tcp", 80, 80, f"{private_ip}/32"]]]
