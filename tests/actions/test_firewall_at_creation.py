"""Issue 16: the firewall rides on node creation. On a target whose driver takes firewalls at
``create_node`` (EC2 on a moto_server process), provision-nodes makes each security group's
firewall first, with its rules of fixed sources, and creates the nodes inside it; apply-firewall
then only adds the rules naming groups (the members' new addresses). Where a driver takes none
at creation, apply-firewall attaches them after the nodes exist, in parallel. What the emulated
EC2 holds is read back after each step."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from targetkit import (
    ALLOW_ALL_EGRESS,
    RUN_ID,
    compute_spec,
    context,
    ec2,
    firewall,
    live_instances,
    manifest,
    node,
    permissions,
    rule,
    tags_of,
    write_config,
)

from failover.actions.apply_firewall import ApplyFirewall, ApplyFirewallParams
from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.errors import OperationFailed
from failover.ports import FirewallRuleInfo
from failover.targets import Targets

WEB = firewall(
    "social-web", "sg-0web",
    ALLOW_ALL_EGRESS,
    rule("ingress", "tcp", 80, 80, "0.0.0.0/0"),
    rule("ingress", "tcp", 22, 22, "203.0.113.0/24"),
    rule("ingress", "tcp", 8080, 8080, "sg-0web"),  # the members talk to each other: set after the nodes exist
)
DB = firewall(
    "social-db", "sg-0db",
    rule("egress", "tcp", 443, 443, "0.0.0.0/0"),  # no allow-all egress
    rule("ingress", "tcp", 5432, 5432, "sg-0web", "10.9.0.0/16"),  # a group and a fixed source
    rule("ingress", "icmp", -1, -1, "10.0.0.0/8"),
)
SNAPSHOT = manifest(
    WEB, DB,
    node("web-1", "i-0001", firewalls=["sg-0web"]),
    node("web-2", "i-0002", firewalls=["sg-0web"]),
    node("db-1", "i-0003", firewalls=["sg-0db"]),
)
WEB_FIXED = {("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 22, 22, "203.0.113.0/24")}
DB_FIXED = {("tcp", 5432, 5432, "10.9.0.0/16"), ("icmp", -1, -1, "10.0.0.0/8")}
IN_THEIR_GROUPS = {
    "social-app-web-1": {"social-app-social-web"}, "social-app-web-2": {"social-app-social-web"},
    "social-app-db-1": {"social-app-social-db"},
}


@pytest.fixture
def config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


@pytest.fixture
def attach_only(tmp_path: Path, target):
    """A target whose driver has a firewall API but takes no firewall at node creation."""
    return write_config(tmp_path, {"compute": compute_spec(target, driver="firewallkit:NoFirewallsAtCreationDriver")})


def nodes_context(config, **kwargs):
    return context(config, SNAPSHOT, step_id="nodes", **kwargs)


def firewall_context(config, nodes_outputs, **kwargs):
    return context(config, SNAPSHOT, step_id="firewall", outputs={"nodes": nodes_outputs}, **kwargs)


def provision(ctx) -> dict[str, Any]:
    return ProvisionNodes().apply(ctx, ProvisionNodesParams())


def apply(ctx) -> dict[str, Any]:
    return ApplyFirewall().apply(ctx, ApplyFirewallParams())


def groups(server) -> dict[str, dict[str, Any]]:
    described = ec2(server).describe_security_groups()["SecurityGroups"]
    return {g["GroupName"]: g for g in described if g["GroupName"] != "default"}



def attached(server) -> dict[str, set[str]]:
    return {tags_of(i)["Name"]: {g["GroupName"] for g in i["SecurityGroups"]} for i in live_instances(server)}


def test_the_nodes_are_created_inside_firewalls_made_first_with_their_fixed_rules(config, target) -> None:
    ctx = nodes_context(config)

    outputs = provision(ctx)

    assert attached(target) == IN_THEIR_GROUPS  # from creation on, not the VPC's default group
    found = groups(target)
    web, db = found["social-app-social-web"], found["social-app-social-db"]
    assert permissions(web) == WEB_FIXED  # 8080 from the members waits for their addresses
    assert permissions(web, "egress") == {("-1", None, None, "0.0.0.0/0")}
    assert permissions(db) == DB_FIXED
    assert permissions(db, "egress") == {("tcp", 443, 443, "0.0.0.0/0")}
    assert tags_of(web).items() >= {"failover-run": RUN_ID, "failover-step": "nodes", "failover-source": "sg-0web"}.items()
    journaled = {item["id"]: item["kind"] for item in ctx.created}
    assert {web["GroupId"], db["GroupId"]} <= journaled.keys()
    assert sorted(journaled.values()) == ["firewall"] * 2 + ["node"] * 3
    assert outputs["web-1"]["firewall_ids"] == [web["GroupId"]]
    assert outputs["db-1"]["firewall_ids"] == [db["GroupId"]]


def test_apply_firewall_then_adds_the_member_rules_and_attaches_nothing(config, target) -> None:
    nodes = provision(nodes_context(config))
    ctx = firewall_context(config, nodes)

    outputs = apply(ctx)

    web_ips = {f"{nodes[name]['private_ip']}/32" for name in ("web-1", "web-2")}
    found = groups(target)
    assert permissions(found["social-app-social-web"]) == WEB_FIXED | {("tcp", 8080, 8080, ip) for ip in web_ips}
    assert permissions(found["social-app-social-db"]) == DB_FIXED | {("tcp", 5432, 5432, ip) for ip in web_ips}
    assert attached(target) == IN_THEIR_GROUPS
    web = outputs["firewalls"]["sg-0web"]
    assert web["id"] == found["social-app-social-web"]["GroupId"] and web["adopted"] is True
    assert web["in_it_already"] == [nodes["web-1"]["id"], nodes["web-2"]["id"]] and web["attached"] == []
    assert ctx.created == []  # provision-nodes made them: its undo removes them, once the nodes are gone
    assert tags_of(found["social-app-social-web"])["failover-step"] == "nodes"


def test_rollback_removes_the_nodes_then_their_firewalls(config, target) -> None:
    nodes_ctx = nodes_context(config)
    nodes = provision(nodes_ctx)
    firewall_ctx = firewall_context(config, nodes)
    apply(firewall_ctx)

    ApplyFirewall().undo(firewall_ctx, ApplyFirewallParams())  # reverse dependency order, as rollback
    assert set(groups(target)) == {"social-app-social-web", "social-app-social-db"}  # the nodes are still in them
    ProvisionNodes().undo(nodes_ctx, ProvisionNodesParams())
    ProvisionNodes().undo(nodes_ctx, ProvisionNodesParams())

    assert live_instances(target) == [] and groups(target) == {}


def test_a_crash_after_the_firewalls_were_made_resumes_with_them(config, target) -> None:
    compute = Targets(config, "fallback").compute
    half = compute.create_firewall(
        "social-app-social-db", [], labels={"failover-run": RUN_ID, "failover-step": "nodes"},
    )  # made, with EC2's allow-all egress; then kill -9 before its rules and before the journal heard of it
    resumed = nodes_context(config, created=[])

    provision(resumed)

    db = groups(target)["social-app-social-db"]
    assert db["GroupId"] == half.id and len(groups(target)) == 2
    assert permissions(db) == DB_FIXED
    assert permissions(db, "egress") == {("tcp", 443, 443, "0.0.0.0/0")}  # converged: the allow-all is gone
    assert attached(target) == IN_THEIR_GROUPS
    assert half.id in [item["id"] for item in resumed.created]
    ProvisionNodes().undo(resumed, ProvisionNodesParams())
    assert groups(target) == {}


def test_a_firewall_this_run_did_not_make_is_adopted_and_attached_after(config, target) -> None:
    edge = firewall("social-edge", "sg-0edge", ALLOW_ALL_EGRESS, rule("ingress", "tcp", 443, 443, "0.0.0.0/0"))
    snapshot = manifest(edge, node("web-1", "i-0001", firewalls=["sg-0edge"]), node("web-2", "i-0002", firewalls=["sg-0edge"]))
    rules = [FirewallRuleInfo("egress", "-1", None, None, ("0.0.0.0/0",)), FirewallRuleInfo("ingress", "tcp", 443, 443, ("0.0.0.0/0",))]
    earlier = Targets(config, "fallback").compute.create_firewall("social-app-social-edge", rules, labels={"failover-run": "run-0"})
    nodes_ctx = context(config, snapshot, step_id="nodes")
    [planned] = [c for c in ProvisionNodes().plan(nodes_ctx, ProvisionNodesParams()) if c.kind == "firewall"]
    assert planned.detail.startswith(f"firewall API, attached after: exists as {earlier.id}, not made by this run")

    nodes = ProvisionNodes().apply(nodes_ctx, ProvisionNodesParams())

    assert all("social-app-social-edge" not in groups_ for groups_ in attached(target).values())  # not in someone's
    assert [item["kind"] for item in nodes_ctx.created] == ["node", "node"]
    outputs = ApplyFirewall().apply(context(config, snapshot, step_id="firewall", outputs={"nodes": nodes}), ApplyFirewallParams())

    entry = outputs["firewalls"]["sg-0edge"]
    assert entry["id"] == earlier.id and entry["adopted"] is True
    assert sorted(entry["attached"]) == sorted(nodes[name]["id"] for name in ("web-1", "web-2"))
    assert all("social-app-social-edge" in groups_ for groups_ in attached(target).values())


def test_a_drill_is_never_created_in_a_firewall_it_did_not_make(config, target) -> None:
    Targets(config, "fallback").compute.create_firewall("drill-social-app-social-web", [], labels={"owner": "someone"})
    ctx = nodes_context(config)
    ctx.drill_prefix = "drill"

    with pytest.raises(OperationFailed, match="firewall drill-social-app-social-web .* exists on the target"):
        provision(ctx)
    assert live_instances(target) == []


def test_the_plans_say_at_node_creation(config) -> None:
    nodes_plan = ProvisionNodes().plan(nodes_context(config), ProvisionNodesParams())
    firewall_plan = ApplyFirewall().plan(context(config, SNAPSHOT, step_id="firewall"), ApplyFirewallParams())

    made_first = {c.name: c.detail for c in nodes_plan if c.kind == "firewall"}
    assert made_first["social-app-social-web"] == (
        "firewall API, at node creation: from sg-0web (social-web), made before the nodes with its 3 rules of fixed "
        "sources (apply-firewall adds the rules naming groups); created in it: social-app-web-1, social-app-web-2"
    )
    assert len(firewall_plan) == 2
    assert all("; at node creation: provision-nodes makes it before the nodes" in c.detail for c in firewall_plan)


# -- a driver that takes no firewall at creation: attached after, in parallel --------------------


def test_without_firewalls_at_creation_the_plans_say_attached_after(attach_only) -> None:
    nodes_plan = ProvisionNodes().plan(nodes_context(attach_only), ProvisionNodesParams())
    firewall_plan = ApplyFirewall().plan(context(attach_only, SNAPSHOT, step_id="firewall"), ApplyFirewallParams())

    assert [c for c in nodes_plan if c.kind == "firewall"] == []
    assert [c.detail.split("; ")[-1] for c in firewall_plan] == [
        "attached after the nodes exist, up to 8 at a time: social-app-db-1",
        "attached after the nodes exist, up to 8 at a time: social-app-web-1, social-app-web-2",
    ]


def test_without_firewalls_at_creation_they_are_attached_in_parallel(attach_only, target, monkeypatch) -> None:
    from providers.libcloud.compute import LibcloudCompute

    nodes = provision(nodes_context(attach_only))
    assert groups(target) == {} and all(groups_ <= {"default"} for groups_ in attached(target).values())
    threads: set[str] = set()
    attach = LibcloudCompute.attach_firewall

    def recording_attach(self, *args, **kwargs):
        threads.add(threading.current_thread().name)
        return attach(self, *args, **kwargs)

    monkeypatch.setattr(LibcloudCompute, "attach_firewall", recording_attach)
    ctx = firewall_context(attach_only, nodes)

    outputs = apply(ctx)

    assert len(threads) > 1
    assert {name: groups_ - {"default"} for name, groups_ in attached(target).items()} == IN_THEIR_GROUPS
    assert outputs["firewalls"]["sg-0db"]["attached"] == [nodes["db-1"]["id"]]
    assert sorted(item["id"] for item in ctx.created) == sorted(g["GroupId"] for g in groups(target).values())

    again = apply(firewall_context(attach_only, nodes))  # a retry attaches nothing twice
    assert all(entry["attached"] == [] for entry in again["firewalls"].values())
    ApplyFirewall().undo(ctx, ApplyFirewallParams())
    assert groups(target) == {}
