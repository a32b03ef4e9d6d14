"""Application, network and gateway load balancers: listeners and the nodes behind them."""

from __future__ import annotations

from typing import Any

from failover.errors import FailoverError
from failover.manifest import Listener, LoadBalancer
from providers.aws.inventory import Context, Found, batches, name_of, tag_dict

TAGS_PER_REQUEST = 20  # the most describe_tags accepts


def collect(ctx: Context, region: str) -> Found:
    pages = ctx.session.pages("elbv2", region, "describe_load_balancers")
    balancers = [lb for page in pages for lb in page["LoadBalancers"]]
    tags = _tags_by_arn(ctx, region, [lb["LoadBalancerArn"] for lb in balancers])
    tagged = [(lb, tags.get(lb["LoadBalancerArn"], {})) for lb in balancers]
    selected = [(lb, lb_tags) for lb, lb_tags in tagged if ctx.selected(lb_tags)]
    return Found(resources=ctx.map(lambda pair: _load_balancer(ctx, region, *pair), selected))


def _tags_by_arn(ctx: Context, region: str, arns: list[str]) -> dict[str, dict[str, str]]:
    answers = ctx.map(lambda batch: _tag_descriptions(ctx, region, batch), batches(arns, TAGS_PER_REQUEST))
    return {item["ResourceArn"]: tag_dict(item.get("Tags")) for answer in answers for item in answer}


def _tag_descriptions(ctx: Context, region: str, arns: list[str]) -> list[dict[str, Any]]:
    return ctx.session.call("elbv2", region, "describe_tags", ResourceArns=arns)["TagDescriptions"]


def _load_balancer(ctx: Context, region: str, lb: dict[str, Any], tags: dict[str, str]) -> LoadBalancer:
    arn = lb["LoadBalancerArn"]
    return LoadBalancer(
        id=arn,
        name=name_of(tags, lb["LoadBalancerName"]),
        region=region,
        tags=tags,
        scheme=lb.get("Scheme"),
        dns_name=lb.get("DNSName"),
        listeners=_listeners(ctx, region, arn),
        targets=_target_nodes(ctx, region, arn),
    )


def _listeners(ctx: Context, region: str, arn: str) -> list[Listener]:
    pages = ctx.session.pages("elbv2", region, "describe_listeners", LoadBalancerArn=arn)
    return [
        Listener(protocol=listener.get("Protocol"), port=listener.get("Port"))
        for page in pages
        for listener in page["Listeners"]
    ]


def _target_nodes(ctx: Context, region: str, arn: str) -> list[str]:
    """Instance ids registered in the balancer's target groups; groups of IP addresses,
    Lambda functions or other balancers name no node."""
    groups = [group for group in _target_groups(ctx, region, arn) if group.get("TargetType") == "instance"]
    nodes: set[str] = set()
    for group in groups:
        health = ctx.session.call("elbv2", region, "describe_target_health", TargetGroupArn=group["TargetGroupArn"])
        nodes.update(description["Target"]["Id"] for description in health["TargetHealthDescriptions"])
    return sorted(nodes)


def _target_groups(ctx: Context, region: str, arn: str) -> list[dict[str, Any]]:
    try:
        pages = ctx.session.pages("elbv2", region, "describe_target_groups", LoadBalancerArn=arn)
        return [group for page in pages for group in page["TargetGroups"]]
    except FailoverError as exc:
        # moto answers TargetGroupNotFound, not an empty list, for a balancer forwarding to no group
        if ctx.session.error_code(exc) == "TargetGroupNotFound":
            return []
        raise
