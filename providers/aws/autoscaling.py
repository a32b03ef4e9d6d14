"""Auto Scaling groups (node groups): their bounds, what they launch (a launch template's
version, read through EC2, or a launch configuration), the load balancers they register
with (target groups mapped to their ALB or NLB), and the instances they ran.

The group's members are nodes of their own in the manifest (the EC2 collector reads them);
:func:`mark_members` sets each member's ``group`` once every collector has answered, so that
provision-nodes builds the group's ``desired`` nodes from its launch specification instead of
copying whichever instances ran that minute. User data is decoded as a node's is.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from failover.errors import FailoverError
from failover.manifest import LaunchSpec, Node, NodeGroup
from providers.aws.ec2 import decode_user_data
from providers.aws.inventory import Context, Found, batches, name_of, tag_dict

Item = dict[str, Any]
TARGET_GROUPS_PER_REQUEST = 20
MISSING_TEMPLATE = ("InvalidLaunchTemplateId.NotFound", "InvalidLaunchTemplateId.VersionNotFound",
                    "InvalidLaunchTemplateName.NotFoundException")


def collect(ctx: Context, region: str) -> Found:
    pages = ctx.session.pages("autoscaling", region, "describe_auto_scaling_groups")
    groups = [group for page in pages for group in page.get("AutoScalingGroups", [])
              if ctx.selected(tag_dict(group.get("Tags")))]
    if not groups:
        return Found()
    balancers = _balancers_of_target_groups(ctx, region, sorted({arn for g in groups for arn in g.get("TargetGroupARNs", [])}))
    launches = ctx.map(lambda group: _launch(ctx, region, group), groups)
    return Found(resources=[
        _node_group(group, region, launch, balancers) for group, launch in zip(groups, launches, strict=True)
    ])


def mark_members(resources: Iterable[Any]) -> None:
    """Each node that a node group ran gets the group's id as its ``group``."""
    resources = list(resources)
    groups = {(r.region, member): r.id for r in resources if isinstance(r, NodeGroup) for member in r.members}
    for resource in resources:
        if isinstance(resource, Node) and (resource.region, resource.id) in groups:
            resource.group = groups[(resource.region, resource.id)]


def _node_group(group: Item, region: str, launch: LaunchSpec | None, balancers: dict[str, str]) -> NodeGroup:
    tags = tag_dict(group.get("Tags"))
    target_groups = list(group.get("TargetGroupARNs", []))
    load_balancers = {balancers[arn] for arn in target_groups if arn in balancers}
    load_balancers |= set(group.get("LoadBalancerNames", []))  # classic load balancers, by name
    subnets = [s.strip() for s in (group.get("VPCZoneIdentifier") or "").split(",") if s.strip()]
    return NodeGroup(
        id=group["AutoScalingGroupName"],
        name=name_of(tags, group["AutoScalingGroupName"]),
        region=region,
        tags=tags,
        min_size=group.get("MinSize", 0),
        max_size=group.get("MaxSize", 0),
        desired=group.get("DesiredCapacity", 0),
        launch=launch,
        subnet_ids=subnets,
        load_balancers=sorted(load_balancers),
        target_groups=target_groups,
        health_check=group.get("HealthCheckType"),
        members=[instance["InstanceId"] for instance in group.get("Instances", [])
                 if instance.get("LifecycleState") not in ("Terminating", "Terminated")],
    )


def _balancers_of_target_groups(ctx: Context, region: str, arns: list[str]) -> dict[str, str]:
    """Target group ARN -> the ARN of the (first) load balancer that forwards to it."""
    found: dict[str, str] = {}
    for chunk in batches(arns, TARGET_GROUPS_PER_REQUEST):
        try:
            answer = ctx.session.call("elbv2", region, "describe_target_groups", TargetGroupArns=chunk)
        except FailoverError as exc:
            if ctx.session.error_code(exc) != "TargetGroupNotFound":
                raise
            answer = {}
        for group in (answer or {}).get("TargetGroups", []):
            if group.get("LoadBalancerArns"):
                found[group["TargetGroupArn"]] = group["LoadBalancerArns"][0]
    return found


# -- launch specifications -------------------------------------------------------------------

def _launch(ctx: Context, region: str, group: Item) -> LaunchSpec | None:
    template = group.get("LaunchTemplate") or (group.get("MixedInstancesPolicy") or {}).get(
        "LaunchTemplate", {}).get("LaunchTemplateSpecification")
    if template:
        return _from_template(ctx, region, template)
    if group.get("LaunchConfigurationName"):
        return _from_configuration(ctx, region, group["LaunchConfigurationName"])
    return None


def _from_template(ctx: Context, region: str, template: Item) -> LaunchSpec | None:
    by = {"LaunchTemplateId": template["LaunchTemplateId"]} if template.get("LaunchTemplateId") \
        else {"LaunchTemplateName": template["LaunchTemplateName"]}
    answer = ctx.session.call("ec2", region, "describe_launch_template_versions", **by,
                              Versions=[str(template.get("Version") or "$Default")], absent=MISSING_TEMPLATE)
    versions = (answer or {}).get("LaunchTemplateVersions", [])
    if not versions:
        return None
    version = versions[0]
    data = version.get("LaunchTemplateData", {})
    groups = list(data.get("SecurityGroupIds", []))
    groups += [g for interface in data.get("NetworkInterfaces", []) for g in interface.get("Groups", [])]
    groups += _group_ids(ctx, region, data.get("SecurityGroups", []))
    return _spec(
        ctx, region, source="launch_template", id=version["LaunchTemplateId"], name=version.get("LaunchTemplateName"),
        version=str(version.get("VersionNumber")) if version.get("VersionNumber") is not None else None,
        instance_type=data.get("InstanceType"), image_id=data.get("ImageId"), encoded_user_data=data.get("UserData"),
        firewalls=groups, root_gib=_root_size(data.get("BlockDeviceMappings", [])),
    )


def _from_configuration(ctx: Context, region: str, name: str) -> LaunchSpec | None:
    answer = ctx.session.call("autoscaling", region, "describe_launch_configurations", LaunchConfigurationNames=[name])
    configurations = (answer or {}).get("LaunchConfigurations", [])
    if not configurations:
        return None
    lc = configurations[0]
    listed = lc.get("SecurityGroups", [])
    groups = [g for g in listed if g.startswith("sg-")] + _group_ids(ctx, region, [g for g in listed if not g.startswith("sg-")])
    return _spec(
        ctx, region, source="launch_configuration", id=lc["LaunchConfigurationName"], name=lc["LaunchConfigurationName"],
        version=None, instance_type=lc.get("InstanceType"), image_id=lc.get("ImageId"),
        encoded_user_data=lc.get("UserData"), firewalls=groups, root_gib=_root_size(lc.get("BlockDeviceMappings", [])),
    )


def _spec(ctx: Context, region: str, *, encoded_user_data: str | None, root_gib: int | None, **fields: Any) -> LaunchSpec:
    instance_type = _instance_type(ctx, region, fields.get("instance_type"))
    image = _image(ctx, region, fields.get("image_id"))
    return LaunchSpec(
        **{**fields, "firewalls": sorted(set(fields["firewalls"]))},
        vcpus=instance_type.get("VCpuInfo", {}).get("DefaultVCpus"),
        memory_mib=instance_type.get("MemoryInfo", {}).get("SizeInMiB"),
        image_name=image.get("Name"),
        image_description=image.get("Description"),
        architecture=image.get("Architecture"),
        root_volume_gib=root_gib,
        user_data=decode_user_data(encoded_user_data) if encoded_user_data else None,
    )


def _instance_type(ctx: Context, region: str, name: str | None) -> Item:
    if not name:
        return {}
    answer = ctx.session.call("ec2", region, "describe_instance_types", InstanceTypes=[name],
                              absent=("InvalidInstanceType",))
    return next(iter((answer or {}).get("InstanceTypes", [])), {})


def _image(ctx: Context, region: str, image_id: str | None) -> Item:
    if not image_id:
        return {}
    answer = ctx.session.call("ec2", region, "describe_images", ImageIds=[image_id],
                              absent=("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed"))
    return next(iter((answer or {}).get("Images", [])), {})


def _group_ids(ctx: Context, region: str, names: list[str]) -> list[str]:
    """Security group names (a default VPC's launch data may name groups) -> their ids."""
    if not names:
        return []
    answer = ctx.session.call("ec2", region, "describe_security_groups", Filters=[{"Name": "group-name", "Values": names}])
    return [group["GroupId"] for group in (answer or {}).get("SecurityGroups", [])]


def _root_size(mappings: list[Item]) -> int | None:
    sizes = [m.get("Ebs", {}).get("VolumeSize") for m in mappings]
    return next((size for size in sizes if size), None)
