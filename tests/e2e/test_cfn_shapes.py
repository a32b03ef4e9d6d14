"""Every shape of service plans and runs: services deployed through moto's CloudFormation from
tests/data/cfn (buckets only, DNS only, a network only, nodes without DNS) fail over with the
standard playbook onto the emulated target; a step with nothing to do is skipped with its reason,
``plan`` predicts exactly which steps ``run`` skips, and what moved is read back from the emulators.

One world for the module; each service is its own stack in the world's source account and gets
its own config (service name and selector) before its inventory. moto's CloudFormation
workarounds are those of tests/providers/aws/test_cfn_services.py (tests/data/cfn/deploy.py).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from e2ekit import run_standard, started_world, statuses

from failover.testing.world import EmulatedWorld

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "cfn"))
import deploy  # noqa: E402


class SourceSession:
    """A boto3 session whose clients talk to the world's source account."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = boto3.session.Session(aws_access_key_id="testing", aws_secret_access_key="testing")

    def client(self, service: str, region_name: str = "us-east-1") -> Any:
        return self.session.client(service, region_name=region_name, endpoint_url=self.url)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedWorld]:
    with started_world(workdir=tmp_path_factory.mktemp("world")) as started:
        yield started


def fail_over(world: EmulatedWorld, template: str) -> tuple[dict, dict, dict, dict]:
    """Deploy ``template`` as service ``shape-<template>``, then inventory, plan and run it."""
    service = f"shape-{template}"
    deploy.deploy(SourceSession(world.source.url), template, service)
    config = yaml.safe_load(world.config_path.read_text(encoding="utf-8"))
    config["service"] = service
    config["source"]["select"] = {"tags": {"service": service}}
    config["source"]["regions"] = ["us-east-1"]
    config.pop("databases", None)
    world.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    taken = world.failover("inventory", "--json", "--output", f"{service}.json")
    assert taken.code == 0, taken.stderr
    manifest = json.loads((world.workdir / f"{service}.json").read_text(encoding="utf-8"))
    planned = world.failover("plan", "standard", "--target", world.target, "--json", *world.run_vars)
    assert planned.code == 0, planned.stderr + planned.stdout
    ran = run_standard(world)
    assert ran.code == 0, ran.stderr + ran.stdout
    return taken.json(), planned.json(), ran.json(), manifest


def skipped(plan: dict) -> dict[str, str]:
    return {step["id"]: step["note"] for step in plan["steps"] if step["status"] == "skipped"}


def run_skipped(run: dict) -> set[str]:
    return {step_id for step_id, status in statuses(run).items() if status == "skipped"}


def assert_plan_predicts_run(plan: dict, run: dict) -> None:
    assert set(skipped(plan)) == run_skipped(run)
    assert all(status in ("succeeded", "skipped") for status in statuses(run).values()), statuses(run)
    for step in run["steps"]:
        if step["status"] == "skipped" and step["id"] in skipped(plan) and skipped(plan)[step["id"]]:
            assert (step.get("outputs") or {}).get("skipped") == skipped(plan)[step["id"]]


def test_buckets_only(world: EmulatedWorld) -> None:
    taken, plan, run, _ = fail_over(world, "versioned-buckets")
    assert taken["snapshot"]["counts"]["bucket"] == 3
    assert skipped(plan)["cutover"] == "no DNS zones in the snapshot"
    assert skipped(plan)["nodes"] == "no nodes in the snapshot"  # provision-nodes: a skip with its reason
    assert_plan_predicts_run(plan, run)
    stack_buckets = [r["PhysicalResourceId"] for r in SourceSession(world.source.url).client("cloudformation")
                     .describe_stack_resources(StackName="shape-versioned-buckets")["StackResources"]]
    assert {world.container_name(bucket) for bucket in stack_buckets} <= set(world.containers())


def test_network_only(world: EmulatedWorld) -> None:
    taken, plan, run, _ = fail_over(world, "vpc-wizard")
    assert taken["snapshot"]["counts"]["network"] == 1
    assert taken["left_behind"]["AWS::EC2::NatGateway"] == 2
    assert plan["left_behind"] == taken["left_behind"]
    assert "cutover" in skipped(plan)
    assert_plan_predicts_run(plan, run)


def test_dns_only(world: EmulatedWorld) -> None:
    taken, plan, run, _ = fail_over(world, "dns-zone")
    assert taken["snapshot"]["counts"]["dns_zone"] == 1
    assert skipped(plan)["cutover"] == (
        "no nodes or load balancers in the snapshot: no record points at anything that moves")
    assert_plan_predicts_run(plan, run)
    assert "shape-dns-zone.example." in world.zones()
    assert world.dns("shape-dns-zone.example.", "A") == ["198.51.100.7"]


def test_nodes_without_dns(world: EmulatedWorld) -> None:
    before = set(world.target_nodes())
    taken, plan, run, _ = fail_over(world, "instances-with-security-groups")
    assert taken["snapshot"]["counts"]["node"] == 2
    assert skipped(plan)["cutover"] == "no DNS zones in the snapshot"
    assert_plan_predicts_run(plan, run)
    new = set(world.target_nodes()) - before
    assert len(new) == 2, new


def test_nodes_on_the_default_vpcs_shared_group_plan_and_run(world: EmulatedWorld) -> None:
    """The ASG's instances use the default VPC's default security group: untagged, shared with other
    services. It is pulled into the snapshot as a dependency (owned: false), and recreated on the target."""
    before = set(world.target_nodes())
    taken, plan, run, manifest = fail_over(world, "asg-https-alb-sns")
    dependencies = [r for r in manifest["resources"] if not r.get("owned", True)]
    [group] = [r for r in dependencies if r["kind"] == "firewall"]
    assert group["name"] == "default"
    nodes = [r for r in manifest["resources"] if r["kind"] == "node"]
    assert len(nodes) == 2 and all(node["firewalls"] == [group["id"]] for node in nodes)
    # the default VPC and the nodes' root volumes are dependencies too; nothing is moved for them
    assert {r["kind"] for r in dependencies} == {"firewall", "network", "volume"}
    assert {r["id"] for r in dependencies if r["kind"] == "volume"} == {v for node in nodes for v in node["volumes"]}
    assert "AWS::AutoScaling::AutoScalingGroup" not in taken["left_behind"]  # a node_group: its 2 nodes are built
    [node_group] = [r for r in manifest["resources"] if r["kind"] == "node_group"]
    assert sorted(node_group["members"]) == sorted(node["id"] for node in nodes)
    assert_plan_predicts_run(plan, run)
    new = set(world.target_nodes()) - before
    assert len(new) == 3, new  # the group's 2 nodes and the ALB's HAProxy node
    assert sum("-lb-" in name for name in new) == 1, new
    assert any(name.endswith("default") for name in world.security_groups()), world.security_groups()


def test_a_prefix_list_ingress_reaches_the_target_as_its_cidrs(world: EmulatedWorld) -> None:
    """The git server's only ingress is CloudFront's prefix list: resolved into its CIDRs at inventory,
    the rule is carried to the target, not dropped."""
    ec2 = SourceSession(world.source.url).client("ec2")
    [cloudfront] = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [deploy.CLOUDFRONT_PREFIX_LIST]}])["PrefixLists"]
    cidrs = {e["Cidr"] for e in ec2.get_managed_prefix_list_entries(PrefixListId=cloudfront["PrefixListId"])["Entries"]}
    taken, plan, run, manifest = fail_over(world, "git-server")
    assert taken["snapshot"]["counts"]["node"] == 1 and taken["snapshot"]["counts"]["network"] == 1
    assert_plan_predicts_run(plan, run)
    groups = [group for name, group in world.security_groups().items() if "git" in name.lower()]
    assert len(groups) == 1, list(world.security_groups())
    https = [p for p in groups[0]["IpPermissions"] if p.get("FromPort") == 443]
    assert {r["CidrIp"] for p in https for r in p.get("IpRanges", [])} == {c for c in cidrs if ":" not in c}


@pytest.mark.parametrize("template", ["elastic-ip", "classic-elb-two-instances", "asg-classic-elb-log-bucket",
                                      "bucket-lambda-trigger"])
def test_other_shapes_plan_and_run_and_their_nodes_and_buckets_are_on_the_target(world: EmulatedWorld,
                                                                                 template: str) -> None:
    before = set(world.target_nodes())
    taken, plan, run, manifest = fail_over(world, template)
    assert_plan_predicts_run(plan, run)
    nodes = [r for r in manifest["resources"] if r["kind"] == "node"]
    balancers = [r for r in manifest["resources"] if r["kind"] == "load_balancer"]
    assert len(set(world.target_nodes()) - before) == len(nodes) + len(balancers)  # a HAProxy node per balancer
    buckets = [r["id"] for r in manifest["resources"] if r["kind"] == "bucket"]
    assert {world.container_name(bucket) for bucket in buckets} <= set(world.containers())
    assert sum(taken["left_behind"].values()) == taken["snapshot"]["counts"]["unsupported"]


def test_databases_without_nodes(world: EmulatedWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    """MySQL with a read replica, and nothing else. No MySQL server is installed here to dump it,
    so a stand-in dump of the primary (gzipped SQL, as ``replicate`` stores one) is placed on the
    target first; the primary gets a database node restoring it, the replica is left behind
    (no dump asked for it), and the steps without work are skipped."""
    import gzip

    from failover.adapters import storage_target
    from failover.config import load_config
    from failover.replicate.dumps import store_dump
    from failover.state import StateStore

    service = "shape-mysql-read-replica"
    primary, replica = f"{service}-master", f"{service}-replica"
    for name, value in world.env.items():  # the profile's secrets, as the CLI gets them
        monkeypatch.setenv(name, value)
    profile = load_config(world.config_path).targets[world.target]
    with StateStore(world.state_dir) as store:
        store_dump(storage_target(profile.storage), store, service=service, target_name=world.target,
                   database=primary, engine="mysql", chunks=[gzip.compress(b"-- MySQL dump (stand-in)\n")])
    before = set(world.target_nodes())

    taken, plan, run, manifest = fail_over(world, "mysql-read-replica")

    databases = {r["id"]: r for r in manifest["resources"] if r["kind"] == "database"}
    assert databases[replica]["replica_of"] == primary and taken["snapshot"]["counts"].get("node", 0) == 0
    assert skipped(plan)["nodes"] == "no nodes in the snapshot"
    assert skipped(plan)["cutover"] == "no DNS zones in the snapshot"
    assert_plan_predicts_run(plan, run)
    restored = next(s for s in run["steps"] if s["id"] == "databases")["outputs"]
    assert set(restored["databases"]) == {primary}
    new = set(world.target_nodes()) - before
    assert len(new) == 1 and next(iter(new)).endswith(primary), new
