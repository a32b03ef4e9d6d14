"""Classic load balancers (ELB): listeners (with the instances' protocol and port and an HTTPS
listener's certificate), the registered instances, the health check, a stickiness policy, and
the security groups (a VPC balancer's; the untagged ones as dependencies, as for ALBs)."""

from __future__ import annotations

import re
from typing import Any

from failover.manifest import HealthCheck, Listener, LoadBalancer, Stickiness
from providers.aws.elbv2 import dependency_groups
from providers.aws.inventory import Context, Found, batches, name_of, tag_dict

NAMES_PER_REQUEST = 20  # the most DescribeTags accepts
# A classic health check's target: "HTTP:80/health", "HTTPS:443/", "TCP:22", "SSL:443".
HEALTH_TARGET = re.compile(r"^(?P<protocol>[A-Za-z]+):(?P<port>\d{1,5})(?P<path>/.*)?$")


def collect(ctx: Context, region: str) -> Found:
    pages = ctx.session.pages("elb", region, "describe_load_balancers")
    balancers = [lb for page in pages for lb in page.get("LoadBalancerDescriptions", [])]
    tags = _tags_by_name(ctx, region, [lb["LoadBalancerName"] for lb in balancers])
    selected = [(lb, tags.get(lb["LoadBalancerName"], {})) for lb in balancers]
    selected = [(lb, lb_tags) for lb, lb_tags in selected if ctx.selected(lb_tags)]
    balancers = [_load_balancer(region, lb, lb_tags) for lb, lb_tags in selected]
    return Found(resources=[*balancers, *dependency_groups(ctx, region, balancers)])


def _tags_by_name(ctx: Context, region: str, names: list[str]) -> dict[str, dict[str, str]]:
    answers = ctx.map(
        lambda batch: ctx.session.call("elb", region, "describe_tags", LoadBalancerNames=batch),
        batches(names, NAMES_PER_REQUEST),
    )
    return {
        item["LoadBalancerName"]: tag_dict(item.get("Tags"))
        for answer in answers for item in (answer or {}).get("TagDescriptions", [])
    }


def _load_balancer(region: str, lb: dict[str, Any], tags: dict[str, str]) -> LoadBalancer:
    name = lb["LoadBalancerName"]
    return LoadBalancer(
        id=name,  # a classic balancer's name is its id (AWS's listings and tags name it so)
        name=name_of(tags, name),
        region=region,
        tags=tags,
        scheme=lb.get("Scheme"),
        dns_name=lb.get("DNSName"),
        type="classic",
        listeners=[_listener(item["Listener"]) for item in lb.get("ListenerDescriptions", []) if "Listener" in item],
        targets=sorted({instance["InstanceId"] for instance in lb.get("Instances", [])}),
        health_check=_health_check(lb.get("HealthCheck")),
        stickiness=_stickiness(lb.get("Policies") or {}),
        security_groups=sorted(lb.get("SecurityGroups") or []),
    )


def _listener(listener: dict[str, Any]) -> Listener:
    return Listener(
        protocol=listener.get("Protocol"), port=listener.get("LoadBalancerPort"),
        instance_protocol=listener.get("InstanceProtocol"), instance_port=listener.get("InstancePort"),
        certificate=listener.get("SSLCertificateId") or None,
    )


def _health_check(check: dict[str, Any] | None) -> HealthCheck | None:
    if not check:
        return None
    target = HEALTH_TARGET.match(str(check.get("Target", "")))
    return HealthCheck(
        protocol=target["protocol"].upper() if target else None,
        port=int(target["port"]) if target else None,
        path=target["path"] if target else None,
        interval_s=check.get("Interval"),
        timeout_s=check.get("Timeout"),
        healthy_threshold=check.get("HealthyThreshold"),
        unhealthy_threshold=check.get("UnhealthyThreshold"),
    )


def _stickiness(policies: dict[str, Any]) -> Stickiness | None:
    for policy in policies.get("LBCookieStickinessPolicies") or []:
        period = policy.get("CookieExpirationPeriod")
        return Stickiness(type="lb_cookie", duration_s=int(period) if period else None)
    for policy in policies.get("AppCookieStickinessPolicies") or []:
        return Stickiness(type="app_cookie", cookie_name=policy.get("CookieName"))
    return None
