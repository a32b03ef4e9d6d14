"""Services as AWS's public sample templates build them, deployed through moto's CloudFormation:
nothing that carries the service's tag is left out of the snapshot unseen.

The templates are tests/data/cfn/*.json (written by make_templates.py there); each is deployed
once into one ``moto_server`` for the module, as its own stack whose name is the service's tag.
What is tagged is listed here independently of failover's inventory code (the tagging API plus
each service's own listing), and every such resource must be either a manifest resource or an
``unsupported`` entry.

moto's CloudFormation needed these workarounds (tests/data/cfn/deploy.py):
- templates are JSON; parameters that a console would fill in (the default VPC and its subnets,
  an ACM certificate, CloudFront's managed prefix list id) are read from the account and passed;
- the RDS engine must be spelled ``mysql`` (moto refuses ``MySQL``);
- a Lambda permission has no PhysicalResourceId in describe_stack_resources;
- moto's CloudFormation ignores a bucket's VersioningConfiguration: deploy.py sets it afterwards;
- moto's CloudFormation does not put the template's Tags on classic and v2 load balancers, target
  groups, SNS topics, Lambda functions and hosted zones (HostedZoneTags), and tags an Elastic IP
  under its public address (EC2 DescribeTags then names the address, with an empty resource type):
  deploy.py tags those through each service's own API after the stack is created, as AWS's tag
  propagation would have;
- an instance's SecurityGroupIds are dropped when it also names a SubnetId: deploy.py sets them;
- a security group's ingress rule from a prefix list (SourcePrefixListId) is left out: deploy.py
  authorizes it afterwards;
- an Auto Scaling group's instances launched from a launch template without security groups have
  none in moto (AWS gives them the VPC's default group): the template names the default VPC's
  default group, passed in as a parameter;
- moto's tagging API (get_resources) answers only part of the tagged resources (EC2, S3, ACM,
  CloudFormation stacks), which is why failover also lists each service on its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
import yaml

from failover.testing.servers import MotoServer

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "data" / "cfn"))
import deploy  # noqa: E402

FAILOVER = [sys.executable, "-m", "failover.cli.main"]
TEMPLATES = deploy.template_names()


def service_of(template: str) -> str:
    return f"cfn-{template}"[:40].rstrip("-")


@pytest.fixture(scope="module")
def account(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MotoServer, boto3.session.Session]]:
    server = MotoServer(log=tmp_path_factory.mktemp("moto") / "moto.log").start()
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                            "AWS_ENDPOINT_URL", "AWS_SESSION_TOKEN", "AWS_PROFILE")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1",
                      AWS_ENDPOINT_URL=server.url)
    for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE"):
        os.environ.pop(key, None)
    try:
        session = boto3.session.Session()
        for template in TEMPLATES:
            deploy.deploy(session, template, service_of(template))
        yield server, session
    finally:
        server.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@pytest.fixture(scope="module")
def snapshots(account, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """``failover inventory --json --output manifest.json`` for each service, as a user runs it."""
    server, _ = account
    out: dict[str, dict] = {}
    for template in TEMPLATES:
        service = service_of(template)
        folder = tmp_path_factory.mktemp(template)
        (folder / "failover.yaml").write_text(yaml.safe_dump({
            "service": service, "state": ".failover",
            "source": {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": service}}},
        }))
        proc = subprocess.run([*FAILOVER, "inventory", "--json", "--output", "manifest.json"], cwd=folder,
                              capture_output=True, text=True, timeout=300, env={**os.environ})
        assert proc.returncode == 0, proc.stderr
        out[template] = {"cli": json.loads(proc.stdout),
                         "manifest": json.loads((folder / "manifest.json").read_text(encoding="utf-8"))}
    return out


def tail(identifier: str) -> str:
    return identifier.replace(":", "/").rstrip("/").rsplit("/", 1)[-1]


def tagged_resources(session: boto3.session.Session, service: str, region: str = "us-east-1") -> set[str]:
    """Every resource carrying ``service=<service>``, listed here without failover's code."""
    found: set[str] = set()
    selected = lambda tags: {t["Key"]: t["Value"] for t in tags}.get("service") == service  # noqa: E731
    tagging = session.client("resourcegroupstaggingapi", region_name=region)
    for page in tagging.get_paginator("get_resources").paginate(TagFilters=[{"Key": "service", "Values": [service]}]):
        found |= {m["ResourceARN"] for m in page["ResourceTagMappingList"]}
    ec2 = session.client("ec2", region_name=region)
    tags = ec2.describe_tags(Filters=[{"Name": "key", "Values": ["service"]}, {"Name": "value", "Values": [service]}])
    found |= {t["ResourceId"] for t in tags["Tags"]}
    for group in session.client("autoscaling", region_name=region).describe_auto_scaling_groups()["AutoScalingGroups"]:
        if selected(group.get("Tags", [])):
            found.add(group["AutoScalingGroupName"])
    elb = session.client("elb", region_name=region)
    names = [lb["LoadBalancerName"] for lb in elb.describe_load_balancers()["LoadBalancerDescriptions"]]
    if names:
        found |= {d["LoadBalancerName"] for d in elb.describe_tags(LoadBalancerNames=names)["TagDescriptions"]
                  if selected(d["Tags"])}
    elbv2 = session.client("elbv2", region_name=region)
    arns = [lb["LoadBalancerArn"] for lb in elbv2.describe_load_balancers()["LoadBalancers"]]
    arns += [tg["TargetGroupArn"] for tg in elbv2.describe_target_groups()["TargetGroups"]]
    if arns:
        descriptions = elbv2.describe_tags(ResourceArns=arns)["TagDescriptions"]
        found |= {d["ResourceArn"] for d in descriptions if selected(d["Tags"])}
    sns = session.client("sns", region_name=region)
    found |= {t["TopicArn"] for t in sns.list_topics()["Topics"]
              if selected(sns.list_tags_for_resource(ResourceArn=t["TopicArn"])["Tags"])}
    lam = session.client("lambda", region_name=region)
    found |= {f["FunctionArn"] for f in lam.list_functions()["Functions"]
              if lam.list_tags(Resource=f["FunctionArn"])["Tags"].get("service") == service}
    iam = session.client("iam", region_name=region)
    found |= {r["Arn"] for r in iam.list_roles()["Roles"]
              if selected(iam.list_role_tags(RoleName=r["RoleName"])["Tags"])}
    rds = session.client("rds", region_name=region)
    databases = rds.describe_db_instances()["DBInstances"]
    found |= {db["DBInstanceArn"] for db in databases if selected(db.get("TagList", []))}
    return found


def accounted_for(manifest: dict) -> set[str]:
    names: set[str] = set()
    for resource in manifest["resources"]:
        names |= {resource["id"], tail(resource["id"])}
        names |= {subnet["id"] for subnet in resource.get("subnets", [])}
        # a balancer's groups (objects) are part of it; a node group names its groups by ARN
        names |= {group["id"] if isinstance(group, dict) else group for group in resource.get("target_groups", [])}
        if resource.get("ip"):
            names.add(resource["ip"])  # moto's DescribeTags names an Elastic IP by its address
        if resource.get("launch"):
            names.add(resource["launch"]["id"])  # a node group's launch template is carried in it
    for item in manifest["unsupported"]:
        names |= {item["id"], tail(item["id"])}
    return names


@pytest.mark.parametrize("template", TEMPLATES)
def test_every_tagged_resource_is_a_manifest_resource_or_unsupported(account, snapshots, template: str) -> None:
    _, session = account
    manifest = snapshots[template]["manifest"]
    tagged = tagged_resources(session, service_of(template))
    assert tagged, "the stack's resources carry the service tag"
    known = accounted_for(manifest)
    missing = sorted(r for r in tagged if r not in known and tail(r) not in known)
    assert missing == []
    for item in manifest["unsupported"]:
        assert item["type"].startswith("AWS::") and item["reason"] and item["region"] in ("us-east-1", None)


def unsupported_types(manifest: dict) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in manifest["unsupported"]:
        counts[item["type"]] = counts.get(item["type"], 0) + 1
    return counts


def test_the_kinds_left_behind_are_named_with_their_cloudformation_types(snapshots) -> None:
    wizard = unsupported_types(snapshots["vpc-wizard"]["manifest"])
    assert wizard["AWS::EC2::RouteTable"] == 3 and wizard["AWS::EC2::NatGateway"] == 2
    assert wizard["AWS::EC2::InternetGateway"] == 1
    alb = unsupported_types(snapshots["asg-https-alb-sns"]["manifest"])
    for kind in ("AWS::SNS::Topic", "AWS::IAM::Role"):
        assert alb[kind] == 1, kind
    assert "AWS::AutoScaling::AutoScalingGroup" not in alb  # a node_group of the manifest
    # a balancer's target groups and a classic balancer are manifest resources, not left behind
    assert "AWS::ElasticLoadBalancingV2::TargetGroup" not in alb
    balancers = [r for r in snapshots["asg-https-alb-sns"]["manifest"]["resources"] if r["kind"] == "load_balancer"]
    assert [len(lb["target_groups"]) for lb in balancers] == [1]
    classic = snapshots["classic-elb-two-instances"]["manifest"]
    assert "AWS::ElasticLoadBalancing::LoadBalancer" not in unsupported_types(classic)
    [front] = [r for r in classic["resources"] if r["kind"] == "load_balancer"]
    assert front["type"] == "classic" and len(front["targets"]) == 2 and front["listeners"][0]["port"] == 80
    lam = unsupported_types(snapshots["bucket-lambda-trigger"]["manifest"])
    assert lam["AWS::Lambda::Function"] == 1 and lam["AWS::IAM::Role"] == 1
    # what failover models stays a manifest resource, never an unsupported entry as well
    buckets = snapshots["versioned-buckets"]["manifest"]
    assert [r["versioning"] for r in buckets["resources"] if r["kind"] == "bucket"] == [True, True, True]
    assert set(unsupported_types(buckets)) == {"AWS::CloudFormation::Stack"}


def test_inventory_json_counts_what_is_left_behind_per_type(snapshots) -> None:
    document = snapshots["vpc-wizard"]["cli"]
    assert document["left_behind"]["AWS::EC2::RouteTable"] == 3
    assert sum(document["left_behind"].values()) == document["snapshot"]["counts"]["unsupported"]


def test_a_read_replica_records_what_it_replicates(snapshots) -> None:
    service = service_of("mysql-read-replica")
    resources = snapshots["mysql-read-replica"]["manifest"]["resources"]
    databases = {r["id"]: r for r in resources if r["kind"] == "database"}
    assert databases[f"{service}-replica"]["replica_of"] == f"{service}-master"
    assert "replica_of" not in databases[f"{service}-master"]  # written only for a replica


def dependencies_by_kind(manifest: dict) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for resource in manifest["resources"]:
        if not resource.get("owned", True):
            found.setdefault(resource["kind"], []).append(resource)
    return found


def test_a_shared_untagged_security_group_is_a_dependency_not_owned(snapshots) -> None:
    manifest = snapshots["asg-https-alb-sns"]["manifest"]
    dependencies = dependencies_by_kind(manifest)
    assert [(r["name"], r["tags"]) for r in dependencies["firewall"]] == [("default", {})]
    nodes = [r for r in manifest["resources"] if r["kind"] == "node"]
    assert len(nodes) == 2 and all(node["firewalls"] == [dependencies["firewall"][0]["id"]] for node in nodes)
    owned = snapshots["instances-with-security-groups"]["manifest"]["resources"]
    # groups tagged for the service are its own (owned: true)
    assert all("owned" not in r for r in owned if r["kind"] == "firewall")


@pytest.mark.parametrize("template", TEMPLATES)
def test_what_a_service_uses_but_does_not_own_comes_in_as_a_dependency(account, snapshots, template: str) -> None:
    """Every security group, volume, Elastic IP and VPC a service's nodes use, every security group
    its load balancers are in, and every VPC its security groups are in, is in the snapshot: tagged for the service (its own) or as a dependency
    (owned: false) carrying not the service's tag; nothing else is a dependency."""
    _, session = account
    manifest = snapshots[template]["manifest"]
    service = service_of(template)
    resources = {(r["kind"], r["id"]): r for r in manifest["resources"]}
    nodes = [r for r in manifest["resources"] if r["kind"] == "node"]
    ec2 = session.client("ec2", region_name="us-east-1")
    described = {i["InstanceId"]: i for r in ec2.describe_instances(InstanceIds=[n["id"] for n in nodes])["Reservations"]
                 for i in r["Instances"]} if nodes else {}
    used: set[tuple[str, str]] = set()
    for node in nodes:
        used |= {("firewall", group) for group in node["firewalls"]} | {("volume", v) for v in node["volumes"]}
        used.add(("network", described[node["id"]]["VpcId"]))
    # a load balancer's security groups (ALB/NLB SecurityGroups, a VPC classic ELB's) too
    used |= {("firewall", group) for r in manifest["resources"] if r["kind"] == "load_balancer"
             for group in r.get("security_groups", [])}
    used |= {("network", r["network"]) for r in manifest["resources"] if r["kind"] == "firewall" and r.get("network")}
    addresses = ec2.describe_addresses()["Addresses"]
    used |= {("address", a["AllocationId"]) for a in addresses if a.get("InstanceId") in described}
    missing = sorted(used - set(resources))
    assert missing == []
    for kind, resource_id in used:
        resource = resources[(kind, resource_id)]
        assert resource.get("owned", True) is (resource["tags"].get("service") == service), (kind, resource_id)
    dependencies = {(r["kind"], r["id"]) for r in manifest["resources"] if not r.get("owned", True)}
    certificates = {key for key in dependencies if key[0] == "certificate"}
    assert dependencies - certificates <= used


def test_a_prefix_list_rule_is_resolved_into_its_cidrs_keeping_the_list(account, snapshots) -> None:
    _, session = account
    ec2 = session.client("ec2", region_name="us-east-1")
    cloudfront = ec2.describe_managed_prefix_lists(
        Filters=[{"Name": "prefix-list-name", "Values": [deploy.CLOUDFRONT_PREFIX_LIST]}])["PrefixLists"][0]
    entries = ec2.get_managed_prefix_list_entries(PrefixListId=cloudfront["PrefixListId"])["Entries"]
    cidrs = sorted(entry["Cidr"] for entry in entries)
    assert cidrs, "moto's CloudFront list has entries"
    [group] = [r for r in snapshots["git-server"]["manifest"]["resources"] if r["kind"] == "firewall"]
    [https] = [rule for rule in group["rules"] if rule["direction"] == "ingress"]
    assert https["sources"] == cidrs
    assert https["prefix_lists"] == [
        {"id": cloudfront["PrefixListId"], "name": deploy.CLOUDFRONT_PREFIX_LIST, "cidrs": cidrs}]


def test_auto_scaling_groups_are_node_groups_with_their_launch_data_and_load_balancers(snapshots) -> None:
    def groups(template: str) -> list[dict]:
        return [r for r in snapshots[template]["manifest"]["resources"] if r["kind"] == "node_group"]

    [alb] = groups("asg-https-alb-sns")
    balancers = [r["id"] for r in snapshots["asg-https-alb-sns"]["manifest"]["resources"] if r["kind"] == "load_balancer"]
    assert (alb["desired"], alb["launch"]["source"], alb["launch"]["instance_type"]) == (2, "launch_template", "m5.large")
    assert alb["load_balancers"] == balancers and len(alb["members"]) == 2
    [classic] = groups("asg-classic-elb-log-bucket")
    assert (classic["launch"]["source"], classic["launch"]["instance_type"]) == ("launch_configuration", "t3.small")
    assert len(classic["load_balancers"]) == 1 and len(classic["members"]) == 2  # the classic ELB, by its name
