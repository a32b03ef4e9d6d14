"""Application, network and gateway load balancers: listeners (protocol, port, certificate,
the target group they forward to), target groups (health check, stickiness, targets) and the
nodes behind them, their security groups (ids), and as dependencies (``owned: false``) the ACM
certificates their listeners serve and the security groups they are in that are not tagged for
the service (a tagged one is the ACM or EC2 collector's)."""

from __future__ import annotations

from typing import Any

from failover.errors import FailoverError
from failover.manifest import Certificate, Firewall, HealthCheck, Listener, LoadBalancer, Stickiness, TargetGroup
from providers.aws import acm, ec2
from providers.aws.inventory import Context, Found, batches, name_of, tag_dict

TAGS_PER_REQUEST = 20  # the most describe_tags accepts


def collect(ctx: Context, region: str) -> Found:
    pages = ctx.session.pages("elbv2", region, "describe_load_balancers")
    balancers = [lb for page in pages for lb in page["LoadBalancers"]]
    tags = _tags_by_arn(ctx, region, [lb["LoadBalancerArn"] for lb in balancers])
    tagged = [(lb, tags.get(lb["LoadBalancerArn"], {})) for lb in balancers]
    selected = [(lb, lb_tags) for lb, lb_tags in tagged if ctx.selected(lb_tags)]
    built = ctx.map(lambda pair: _load_balancer(ctx, region, *pair), selected)
    certificate_arns = sorted({arn for _, arns in built for arn in arns})
    certificates = ctx.map(lambda arn: _dependency_certificate(ctx, arn), certificate_arns)
    groups = dependency_groups(ctx, region, [lb for lb, _ in built])
    return Found(resources=[lb for lb, _ in built] + [c for c in certificates if c is not None] + groups)


def dependency_groups(ctx: Context, region: str, balancers: list[LoadBalancer]) -> list[Firewall]:
    """The balancers' security groups not tagged for the service, as dependencies (``owned:
    false``), as the EC2 collector brings in its nodes' groups (the inventory keeps one copy of a
    group both bring in). Their rules say who may reach the balancer; the nodes' groups name
    them as the source of the balancer's traffic."""
    wanted = sorted({group for lb in balancers for group in lb.security_groups})
    found: list[dict[str, Any]] = []
    for chunk in batches(wanted, ec2.FILTER_VALUES_MAX):
        # A filter rather than GroupIds: a group deleted meanwhile is skipped, not an error.
        found += ec2._listing(ctx, region, "describe_security_groups", "SecurityGroups",
                              Filters=[{"Name": "group-id", "Values": chunk}])
    untagged = [group for group in found if not ctx.selected(tag_dict(group.get("Tags")))]
    if not untagged:
        return []
    prefix_lists = ec2._prefix_lists(ctx, region, untagged)
    return [ec2._firewall(group, region, prefix_lists, owned=False) for group in untagged]


def _dependency_certificate(ctx: Context, arn: str) -> Certificate | None:
    """A listener's ACM certificate not tagged for the service; None for a tagged one (collected
    with ACM's) or one that is not ACM's (an IAM server certificate) or gone."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[2] != "acm":
        return None
    region = parts[3]
    try:
        tags = acm.tags_of(ctx, region, arn)
        return None if ctx.selected(tags) else acm.described(ctx, region, arn, tags, owned=False)
    except FailoverError as exc:
        if ctx.session.error_code(exc) == "ResourceNotFoundException":
            return None
        raise


def _tags_by_arn(ctx: Context, region: str, arns: list[str]) -> dict[str, dict[str, str]]:
    answers = ctx.map(lambda batch: _tag_descriptions(ctx, region, batch), batches(arns, TAGS_PER_REQUEST))
    return {item["ResourceArn"]: tag_dict(item.get("Tags")) for answer in answers for item in answer}


def _tag_descriptions(ctx: Context, region: str, arns: list[str]) -> list[dict[str, Any]]:
    return ctx.session.call("elbv2", region, "describe_tags", ResourceArns=arns)["TagDescriptions"]


def _load_balancer(ctx: Context, region: str, lb: dict[str, Any], tags: dict[str, str]) -> tuple[LoadBalancer, list[str]]:
    """The balancer, and the ARNs of the certificates its listeners serve."""
    arn = lb["LoadBalancerArn"]
    groups = [_target_group(ctx, region, group) for group in _target_groups(ctx, region, arn)]
    pages = ctx.session.pages("elbv2", region, "describe_listeners", LoadBalancerArn=arn)
    listeners = [listener for page in pages for listener in page["Listeners"]]
    balancer = LoadBalancer(
        id=arn,
        name=name_of(tags, lb["LoadBalancerName"]),
        region=region,
        tags=tags,
        scheme=lb.get("Scheme"),
        dns_name=lb.get("DNSName"),
        type=lb.get("Type"),
        listeners=[_listener(listener) for listener in listeners],
        target_groups=groups,
        targets=sorted({node for group in groups for node in group.targets}),
        security_groups=sorted(lb.get("SecurityGroups") or []),
    )
    certificates = [c["CertificateArn"] for listener in listeners for c in listener.get("Certificates") or []
                    if c.get("CertificateArn")]
    return balancer, certificates


def _listener(listener: dict[str, Any]) -> Listener:
    certificates = [c["CertificateArn"] for c in listener.get("Certificates") or [] if c.get("CertificateArn")]
    forwards = [a for a in listener.get("DefaultActions") or [] if a.get("Type") == "forward"]
    group = next((a.get("TargetGroupArn") for a in forwards if a.get("TargetGroupArn")), None)
    if group is None:  # the weighted form: ForwardConfig.TargetGroups
        weighted = [g for a in forwards for g in (a.get("ForwardConfig") or {}).get("TargetGroups", [])]
        group = next((g.get("TargetGroupArn") for g in weighted if g.get("TargetGroupArn")), None)
    return Listener(protocol=listener.get("Protocol"), port=listener.get("Port"),
                    certificate=certificates[0] if certificates else None, target_group=group)


def _target_group(ctx: Context, region: str, group: dict[str, Any]) -> TargetGroup:
    """A target group with its health check, stickiness and (instance groups only) its nodes;
    groups of IP addresses, Lambda functions or other balancers name no node."""
    arn = group["TargetGroupArn"]
    targets: list[str] = []
    if group.get("TargetType", "instance") == "instance":
        health = ctx.session.call("elbv2", region, "describe_target_health", TargetGroupArn=arn)
        targets = sorted({description["Target"]["Id"] for description in health["TargetHealthDescriptions"]})
    check = HealthCheck(
        protocol=group.get("HealthCheckProtocol"),
        port=int(group["HealthCheckPort"]) if str(group.get("HealthCheckPort", "")).isdigit() else None,
        path=group.get("HealthCheckPath"),
        interval_s=group.get("HealthCheckIntervalSeconds"),
        timeout_s=group.get("HealthCheckTimeoutSeconds"),
        healthy_threshold=group.get("HealthyThresholdCount"),
        unhealthy_threshold=group.get("UnhealthyThresholdCount"),
    )
    return TargetGroup(id=arn, name=group.get("TargetGroupName") or arn, protocol=group.get("Protocol"),
                       port=group.get("Port"), health_check=check, stickiness=_stickiness(ctx, region, arn),
                       targets=targets)


def _stickiness(ctx: Context, region: str, arn: str) -> Stickiness | None:
    answer = ctx.session.call("elbv2", region, "describe_target_group_attributes", TargetGroupArn=arn)
    attributes = {a["Key"]: a.get("Value") for a in (answer or {}).get("Attributes", [])}
    if attributes.get("stickiness.enabled") != "true":
        return None
    kind = attributes.get("stickiness.type") or "lb_cookie"
    seconds = attributes.get("stickiness.lb_cookie.duration_seconds") if kind == "lb_cookie" else \
        attributes.get("stickiness.app_cookie.duration_seconds")
    return Stickiness(type=kind, duration_s=int(seconds) if seconds and seconds.isdigit() else None,
                      cookie_name=attributes.get("stickiness.app_cookie.cookie_name") if kind == "app_cookie" else None)


def _target_groups(ctx: Context, region: str, arn: str) -> list[dict[str, Any]]:
    try:
        pages = ctx.session.pages("elbv2", region, "describe_target_groups", LoadBalancerArn=arn)
        return [group for page in pages for group in page["TargetGroups"]]
    except FailoverError as exc:
        # moto answers TargetGroupNotFound, not an empty list, for a balancer forwarding to no group
        if ctx.session.error_code(exc) == "TargetGroupNotFound":
            return []
        raise
