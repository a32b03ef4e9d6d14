"""Everything in a region that carries the selector's tags, whatever its kind.

The Resource Groups Tagging API is the account-wide listing; it misses some services
(in moto: Auto Scaling groups, load balancers and target groups, SNS topics, IAM roles,
Elastic IPs, RDS), so each of those is also listed through its own API. EC2 has one call
for every tagged EC2 resource (``DescribeTags``). The inventory compares what is found here
with the manifest's resources: whatever is tagged and not a manifest resource is reported
as unsupported, never silently dropped.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from failover.errors import FailoverError
from providers.aws.inventory import Context, Found, batches, tag_dict

ELB_NAMES_PER_REQUEST = 20  # classic ELB DescribeTags
ELBV2_ARNS_PER_REQUEST = 20
EC2_FILTER_VALUES = 200


@dataclass(frozen=True)
class Tagged:
    """One tagged resource: its CloudFormation-style type, its id or ARN, region and name."""

    type: str
    id: str
    region: str | None
    name: str | None = None

    @property
    def short_id(self) -> str:
        return short_id(self.id)


# (ARN service, resource type) -> CloudFormation type. ARN resource types are AWS's own spelling.
ARN_TYPES: dict[tuple[str, str], str] = {
    ("ec2", "instance"): "AWS::EC2::Instance",
    ("ec2", "volume"): "AWS::EC2::Volume",
    ("ec2", "security-group"): "AWS::EC2::SecurityGroup",
    ("ec2", "vpc"): "AWS::EC2::VPC",
    ("ec2", "subnet"): "AWS::EC2::Subnet",
    ("ec2", "route-table"): "AWS::EC2::RouteTable",
    ("ec2", "natgateway"): "AWS::EC2::NatGateway",
    ("ec2", "internet-gateway"): "AWS::EC2::InternetGateway",
    ("ec2", "egress-only-internet-gateway"): "AWS::EC2::EgressOnlyInternetGateway",
    ("ec2", "elastic-ip"): "AWS::EC2::EIP",
    ("ec2", "network-interface"): "AWS::EC2::NetworkInterface",
    ("ec2", "network-acl"): "AWS::EC2::NetworkAcl",
    ("ec2", "launch-template"): "AWS::EC2::LaunchTemplate",
    ("ec2", "key-pair"): "AWS::EC2::KeyPair",
    ("ec2", "dhcp-options"): "AWS::EC2::DHCPOptions",
    ("ec2", "vpc-endpoint"): "AWS::EC2::VPCEndpoint",
    ("ec2", "vpc-peering-connection"): "AWS::EC2::VPCPeeringConnection",
    ("ec2", "vpn-gateway"): "AWS::EC2::VPNGateway",
    ("ec2", "customer-gateway"): "AWS::EC2::CustomerGateway",
    ("ec2", "transit-gateway"): "AWS::EC2::TransitGateway",
    ("ec2", "prefix-list"): "AWS::EC2::PrefixList",
    ("ec2", "flow-log"): "AWS::EC2::FlowLog",
    ("ec2", "snapshot"): "AWS::EC2::Snapshot",
    ("ec2", "image"): "AWS::EC2::Image",
    ("ec2", "placement-group"): "AWS::EC2::PlacementGroup",
    ("ec2", "spot-instances-request"): "AWS::EC2::SpotInstanceRequest",
    ("elasticloadbalancing", "loadbalancer"): "AWS::ElasticLoadBalancing::LoadBalancer",
    ("elasticloadbalancing", "loadbalancer/app"): "AWS::ElasticLoadBalancingV2::LoadBalancer",
    ("elasticloadbalancing", "loadbalancer/net"): "AWS::ElasticLoadBalancingV2::LoadBalancer",
    ("elasticloadbalancing", "loadbalancer/gwy"): "AWS::ElasticLoadBalancingV2::LoadBalancer",
    ("elasticloadbalancing", "targetgroup"): "AWS::ElasticLoadBalancingV2::TargetGroup",
    ("elasticloadbalancing", "listener"): "AWS::ElasticLoadBalancingV2::Listener",
    ("elasticloadbalancing", "listener-rule"): "AWS::ElasticLoadBalancingV2::ListenerRule",
    ("autoscaling", "autoScalingGroup"): "AWS::AutoScaling::AutoScalingGroup",
    ("autoscaling", "launchConfiguration"): "AWS::AutoScaling::LaunchConfiguration",
    ("iam", "role"): "AWS::IAM::Role",
    ("iam", "user"): "AWS::IAM::User",
    ("iam", "policy"): "AWS::IAM::ManagedPolicy",
    ("iam", "instance-profile"): "AWS::IAM::InstanceProfile",
    ("sns", ""): "AWS::SNS::Topic",
    ("sqs", ""): "AWS::SQS::Queue",
    ("s3", ""): "AWS::S3::Bucket",
    ("lambda", "function"): "AWS::Lambda::Function",
    ("dynamodb", "table"): "AWS::DynamoDB::Table",
    ("rds", "db"): "AWS::RDS::DBInstance",
    ("rds", "cluster"): "AWS::RDS::DBCluster",
    ("rds", "subgrp"): "AWS::RDS::DBSubnetGroup",
    ("rds", "pg"): "AWS::RDS::DBParameterGroup",
    ("rds", "og"): "AWS::RDS::OptionGroup",
    ("rds", "snapshot"): "AWS::RDS::DBSnapshot",
    ("route53", "hostedzone"): "AWS::Route53::HostedZone",
    ("route53", "healthcheck"): "AWS::Route53::HealthCheck",
    ("acm", "certificate"): "AWS::CertificateManager::Certificate",
    ("cloudformation", "stack"): "AWS::CloudFormation::Stack",
    ("logs", "log-group"): "AWS::Logs::LogGroup",
    ("kms", "key"): "AWS::KMS::Key",
    ("secretsmanager", "secret"): "AWS::SecretsManager::Secret",
    ("ssm", "parameter"): "AWS::SSM::Parameter",
    ("events", "rule"): "AWS::Events::Rule",
    ("cloudfront", "distribution"): "AWS::CloudFront::Distribution",
    ("elasticfilesystem", "file-system"): "AWS::EFS::FileSystem",
    ("ecs", "cluster"): "AWS::ECS::Cluster",
    ("ecs", "service"): "AWS::ECS::Service",
    ("ecr", "repository"): "AWS::ECR::Repository",
    ("elasticache", "cluster"): "AWS::ElastiCache::CacheCluster",
    ("kinesis", "stream"): "AWS::Kinesis::Stream",
}

def parse_arn(arn: str) -> tuple[str, str | None, str, str]:
    """``arn:partition:service:region:account:resource`` -> (service, region or None, resource type, id)."""
    parts = arn.split(":", 5)
    service, region, resource = parts[2], parts[3] or None, parts[5]
    if service in ("sns", "sqs", "s3"):
        return service, region, "", resource
    if service == "elasticloadbalancing" and resource.count("/") == 3:  # loadbalancer/app/<name>/<id>
        top, flavour, rest = resource.split("/", 2)
        return service, region, f"{top}/{flavour}", rest
    if service == "autoscaling":  # autoScalingGroup:<uuid>:autoScalingGroupName/<name>
        return service, region, resource.split(":", 1)[0], resource.rsplit("/", 1)[-1]
    for separator in ("/", ":"):
        if separator in resource:
            kind, rest = resource.split(separator, 1)
            return service, region, kind, rest
    return service, region, "", resource


def cfn_type(arn: str) -> str:
    service, _, kind, _ = parse_arn(arn)
    known = ARN_TYPES.get((service, kind))
    if known:
        return known
    words = [w for w in kind.replace("/", "-").split("-") if w]
    namespace = service.upper() if len(service) <= 4 else service.title()
    return f"AWS::{namespace}::{''.join(w[:1].upper() + w[1:] for w in words) or 'Resource'}"


def short_id(resource_id: str) -> str:
    """The part of an id or ARN that AWS's own listings name a resource by (instance id, bucket, table...)."""
    if resource_id.startswith("arn:"):
        return parse_arn(resource_id)[3].rsplit("/", 1)[-1]
    return resource_id.rstrip("/").rsplit("/", 1)[-1]  # an SQS queue URL ends in its name


def collect(ctx: Context, region: str) -> Found:
    listers = [_tagging_api, _ec2, _auto_scaling_groups, _classic_load_balancers, _elbv2, _sns_topics, _rds]
    found = ctx.map(lambda lister: lister(ctx, region), listers)
    return Found(tagged=distinct(item for items in found for item in items))


def _from_arn(arn: str, tags: dict[str, str], region: str | None) -> Tagged:
    return Tagged(type=cfn_type(arn), id=arn, region=parse_arn(arn)[1] or region, name=tags.get("Name"))


def _selected(ctx: Context, region: str, items: Iterable[dict[str, Any]], arn_key: str, tags_key: str) -> list[Tagged]:
    """The listed items that carry the selector's tags, each named by its ARN."""
    return [_from_arn(item[arn_key], tags, region) for item in items
            if ctx.selected(tags := tag_dict(item.get(tags_key)))]


def _tagging_api(ctx: Context, region: str) -> list[Tagged]:
    filters = [{"Key": key, "Values": [value]} for key, value in ctx.selector.items()]
    pages = ctx.session.pages("resourcegroupstaggingapi", region, "get_resources", TagFilters=filters)
    mappings = (mapping for page in pages for mapping in page.get("ResourceTagMappingList", []))
    return _selected(ctx, region, mappings, "ResourceARN", "Tags")


def _ec2(ctx: Context, region: str) -> list[Tagged]:
    """Every tagged EC2 resource, whatever its type, from DescribeTags."""
    matches: dict[str, str] | None = None  # resource id -> resource type, for every selector tag
    for key, value in ctx.selector.items():
        filters = [{"Name": "key", "Values": [key]}, {"Name": "value", "Values": [value]}]
        pages = ctx.session.pages("ec2", region, "describe_tags", Filters=filters)
        listed = [tag for page in pages for tag in page.get("Tags", []) if tag.get("Value") == value]
        found = {tag["ResourceId"]: tag["ResourceType"] for tag in listed}
        matches = found if matches is None else {k: v for k, v in matches.items() if k in found}
    if not matches:
        return []
    names: dict[str, str] = {}
    for chunk in batches(sorted(matches), EC2_FILTER_VALUES):
        filters = [{"Name": "key", "Values": ["Name"]}, {"Name": "resource-id", "Values": chunk}]
        for page in ctx.session.pages("ec2", region, "describe_tags", Filters=filters):
            names.update({t["ResourceId"]: t.get("Value", "") for t in page.get("Tags", [])})
    return [
        Tagged(type=cfn_type(f"arn:aws:ec2:{region}::{kind}/{rid}"), id=rid, region=region, name=names.get(rid))
        for rid, kind in sorted(matches.items())
    ]


def _auto_scaling_groups(ctx: Context, region: str) -> list[Tagged]:
    pages = ctx.session.pages("autoscaling", region, "describe_auto_scaling_groups")
    out = []
    for page in pages:
        for group in page.get("AutoScalingGroups", []):
            tags = tag_dict(group.get("Tags"))
            if ctx.selected(tags):
                out.append(Tagged("AWS::AutoScaling::AutoScalingGroup", group.get("AutoScalingGroupARN")
                                  or group["AutoScalingGroupName"], region, tags.get("Name")))
    return out


def _classic_load_balancers(ctx: Context, region: str) -> list[Tagged]:
    pages = ctx.session.pages("elb", region, "describe_load_balancers")
    names = [lb["LoadBalancerName"] for page in pages for lb in page.get("LoadBalancerDescriptions", [])]
    out = []
    for chunk in batches(names, ELB_NAMES_PER_REQUEST):
        answer = ctx.session.call("elb", region, "describe_tags", LoadBalancerNames=chunk)
        for item in (answer or {}).get("TagDescriptions", []):
            tags = tag_dict(item.get("Tags"))
            if ctx.selected(tags):
                out.append(Tagged("AWS::ElasticLoadBalancing::LoadBalancer", item["LoadBalancerName"], region,
                                  tags.get("Name")))
    return out


def _elbv2(ctx: Context, region: str) -> list[Tagged]:
    arns = [lb["LoadBalancerArn"] for page in ctx.session.pages("elbv2", region, "describe_load_balancers")
            for lb in page.get("LoadBalancers", [])]
    groups = [group for page in _target_group_pages(ctx, region) for group in page.get("TargetGroups", [])]
    arns += [group["TargetGroupArn"] for group in groups]
    answers = (ctx.session.call("elbv2", region, "describe_tags", ResourceArns=chunk)
               for chunk in batches(arns, ELBV2_ARNS_PER_REQUEST))
    items = (item for answer in answers for item in (answer or {}).get("TagDescriptions", []))
    return _selected(ctx, region, items, "ResourceArn", "Tags")


def _target_group_pages(ctx: Context, region: str) -> list[dict[str, Any]]:
    try:
        return list(ctx.session.pages("elbv2", region, "describe_target_groups"))
    except FailoverError as exc:
        if ctx.session.error_code(exc) == "TargetGroupNotFound":
            return []
        raise


def _sns_topics(ctx: Context, region: str) -> list[Tagged]:
    arns = [t["TopicArn"] for page in ctx.session.pages("sns", region, "list_topics") for t in page.get("Topics", [])]
    tagged = ctx.map(lambda arn: (arn, tag_dict(_sns_tags(ctx, region, arn))), arns)
    return [_from_arn(arn, tags, region) for arn, tags in tagged if ctx.selected(tags)]


def _sns_tags(ctx: Context, region: str, arn: str) -> list[dict[str, str]]:
    answer = ctx.session.call("sns", region, "list_tags_for_resource", ResourceArn=arn, absent=("NotFound",))
    return (answer or {}).get("Tags", [])


def _rds(ctx: Context, region: str) -> list[Tagged]:
    pages = ctx.session.pages("rds", region, "describe_db_instances")
    databases = (db for page in pages for db in page.get("DBInstances", []))
    return _selected(ctx, region, databases, "DBInstanceArn", "TagList")


def distinct(items: Iterable[Tagged]) -> list[Tagged]:
    """One entry per resource: the same resource may come from the tagging API and its own listing."""
    seen: dict[tuple[str, str], Tagged] = {}
    for item in items:
        key = (item.type, item.short_id)
        if key not in seen or (seen[key].name is None and item.name):
            seen[key] = item
    return list(seen.values())


# Why each kind stays behind, as the SRE reading the snapshot needs it said.
REASONS: dict[str, str] = {
    "AWS::EC2::RouteTable": "routing is the target network's own; recreate the routes on the target by hand",
    "AWS::EC2::NatGateway": "no failover action moves NAT gateways; give the target's private nodes outbound access "
    "by hand",
    "AWS::EC2::InternetGateway": "the target network's internet access is the target provider's own",
    "AWS::EC2::Subnet": "a subnet is moved with its VPC; this one's VPC is not in the manifest",
    "AWS::EC2::LaunchTemplate": "no failover action moves launch templates; nodes are re-created from the manifest",
    "AWS::ElasticLoadBalancingV2::TargetGroup": "target groups are AWS's; the target's load balancing is set up by "
    "hand",
    "AWS::ElasticLoadBalancingV2::Listener": "listeners are AWS's; the target's load balancing is set up by hand",
    "AWS::IAM::Role": "IAM roles exist only in AWS; grant the equivalent access on the target by hand",
    "AWS::SNS::Topic": "no failover action moves SNS topics; recreate the notifications on the target",
    "AWS::CloudFormation::Stack": "the stack that built these resources; its template is not replayed on the target",
    "AWS::Lambda::Function": "no failover action moves Lambda functions; redeploy them from source",
}
MODELLED = {
    "AWS::EC2::Instance", "AWS::EC2::Volume", "AWS::EC2::SecurityGroup", "AWS::EC2::VPC", "AWS::EC2::EIP",
    "AWS::S3::Bucket", "AWS::Route53::HostedZone", "AWS::RDS::DBInstance", "AWS::ElasticLoadBalancingV2::LoadBalancer",
    "AWS::ElasticLoadBalancing::LoadBalancer",
    "AWS::CertificateManager::Certificate", "AWS::AutoScaling::AutoScalingGroup",
}
MODELLED_REASON = "tagged, but not taken into the manifest (terminated, deleted meanwhile, or not readable)"


def reason(resource_type: str) -> str:
    if resource_type in REASONS:
        return REASONS[resource_type]
    if resource_type in MODELLED:
        return MODELLED_REASON
    return f"no failover action moves {resource_type}; recreate it on the target by hand"


def left_behind(tagged: Iterable[Tagged], resources: Iterable[Any], unsupported: Iterable[Any]) -> list[Tagged]:
    """The tagged resources that are neither manifest resources nor already reported unsupported."""
    covered: set[str] = set()
    for resource in resources:
        covered |= {resource.id, short_id(resource.id)}
        if resource.kind == "network":
            covered |= {subnet.id for subnet in resource.subnets}
        # a balancer's own target groups (objects), a node group's (ARNs)
        covered |= {getattr(group, "id", group) for group in getattr(resource, "target_groups", [])}
        if getattr(resource, "ip", None):  # moto's DescribeTags names an Elastic IP by its address
            covered.add(resource.ip)
        if getattr(resource, "launch", None) is not None:  # a node group's launch template is carried with it
            covered.add(resource.launch.id)
    reported = {(item.type, short_id(item.id)) for item in unsupported}
    return [
        item for item in distinct(tagged)
        if item.id not in covered and item.short_id not in covered and (item.type, item.short_id) not in reported
    ]
