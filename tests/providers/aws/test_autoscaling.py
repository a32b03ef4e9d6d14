"""Auto Scaling groups against moto, through the whole inventory: a group with a launch template
behind an ALB's target group and one with a launch configuration become ``node_group``
resources (bounds, launch specification with its user data decoded, load balancers, members),
their instances stay nodes marked with their group, and neither group nor its launch template
is left behind as unsupported."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import boto3
import pytest

from providers.aws.inventory import AwsInventory
from providers.aws.session import AwsSession

SERVICE = {"Key": "service", "Value": "svc"}
IMAGE = "ami-12c6146b"
WEB_USER_DATA = "#!/bin/sh\necho DB=orders.abc.us-east-1.rds.amazonaws.com > /etc/app.env\n"
WORKER_USER_DATA = "#!/bin/sh\necho worker\n"


@pytest.fixture(scope="module")
def taken() -> Iterator[tuple[dict, object]]:
    """One mock account with both groups and a node of no group, inventoried once for the module."""
    from moto import mock_aws

    with pytest.MonkeyPatch.context() as patch:
        for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
            patch.setenv(key, "testing")  # fake credentials: nothing can reach a real account
        for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            patch.delenv(key, raising=False)
        with mock_aws():
            session = boto3.session.Session()
            made = build(lambda service: session.client(service, region_name="us-east-1"))
            inventory = AwsInventory(service="svc", regions=["us-east-1"], selector={"service": "svc"},
                                     session=AwsSession(max_backoff=0.05))
            yield made, inventory.inventory()


def build(aws) -> dict:
    ec2, elbv2, autoscaling = aws("ec2"), aws("elbv2"), aws("autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnets = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]["SubnetId"]
               for i, zone in enumerate(["us-east-1a", "us-east-1b"])]
    group = ec2.create_security_group(GroupName="web", Description="web", VpcId=vpc,
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": [SERVICE]}])["GroupId"]
    template = ec2.create_launch_template(
        LaunchTemplateName="web-template",
        LaunchTemplateData={"ImageId": IMAGE, "InstanceType": "t3.medium", "SecurityGroupIds": [group],
                            "UserData": base64.b64encode(WEB_USER_DATA.encode()).decode()},
        TagSpecifications=[{"ResourceType": "launch-template", "Tags": [SERVICE]}],
    )["LaunchTemplate"]["LaunchTemplateId"]
    lb = elbv2.create_load_balancer(Name="web-lb", Subnets=subnets, Tags=[SERVICE])["LoadBalancers"][0]["LoadBalancerArn"]
    target_group = elbv2.create_target_group(Name="web", Protocol="HTTP", Port=80, VpcId=vpc,
                                             HealthCheckPath="/healthz")["TargetGroups"][0]["TargetGroupArn"]
    elbv2.create_listener(LoadBalancerArn=lb, Protocol="HTTP", Port=80,
                          DefaultActions=[{"Type": "forward", "TargetGroupArn": target_group}])
    propagated = [{**SERVICE, "PropagateAtLaunch": True}]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="web", MinSize=2, MaxSize=6, DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateId": template, "Version": "$Latest"}, TargetGroupARNs=[target_group],
        VPCZoneIdentifier=",".join(subnets), Tags=[*propagated, {"Key": "Name", "Value": "web", "PropagateAtLaunch": True}],
    )
    autoscaling.create_launch_configuration(
        LaunchConfigurationName="worker-config", ImageId=IMAGE, InstanceType="t3.small", SecurityGroups=[group],
        UserData=WORKER_USER_DATA,
    )
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName="workers", MinSize=1, MaxSize=4, DesiredCapacity=2,
        LaunchConfigurationName="worker-config", VPCZoneIdentifier=subnets[0], Tags=propagated,
    )
    ec2.run_instances(ImageId=IMAGE, MinCount=1, MaxCount=1, InstanceType="t3.micro",
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [SERVICE]}])
    return {"lb": lb, "target_group": target_group, "template": template, "group": group}


def by_kind(manifest, kind: str) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == kind]


def test_groups_become_node_groups_with_their_launch_specification(taken) -> None:
    groups, manifest = taken
    node_groups = {g["id"]: g for g in by_kind(manifest, "node_group")}
    assert sorted(node_groups) == ["web", "workers"]

    web = node_groups["web"]
    assert (web["min_size"], web["max_size"], web["desired"]) == (2, 6, 3)
    assert web["load_balancers"] == [groups["lb"]] and web["target_groups"] == [groups["target_group"]]
    launch = web["launch"]
    assert launch["source"] == "launch_template" and launch["id"] == groups["template"] and launch["version"] == "1"
    assert (launch["instance_type"], launch["image_id"], launch["vcpus"]) == ("t3.medium", IMAGE, 2)
    assert launch["user_data"] == WEB_USER_DATA and launch["firewalls"] == [groups["group"]]
    assert len(web["subnet_ids"]) == 2 and len(web["members"]) == 3

    workers = node_groups["workers"]
    assert workers["launch"]["source"] == "launch_configuration" and workers["launch"]["id"] == "worker-config"
    assert workers["launch"]["instance_type"] == "t3.small" and workers["load_balancers"] == []
    assert workers["launch"]["user_data"] == WORKER_USER_DATA


def test_members_stay_nodes_marked_with_their_group(taken) -> None:
    groups, manifest = taken
    node_groups = {g["id"]: g for g in by_kind(manifest, "node_group")}
    nodes = by_kind(manifest, "node")
    assert len(nodes) == 6
    members = [node for node in nodes if "group" in node]
    assert len(members) == 5  # the sixth, of no group, carries no group field
    for node in members:
        assert node["id"] in node_groups[node["group"]]["members"]
    assert by_kind(manifest, "load_balancer")[0]["id"] == groups["lb"]


def test_neither_the_group_nor_its_launch_template_is_left_behind(taken) -> None:
    _, manifest = taken
    left = {(item.type, item.id) for item in manifest.unsupported}
    assert not [item for item in left if item[0] in ("AWS::AutoScaling::AutoScalingGroup", "AWS::EC2::LaunchTemplate")]
