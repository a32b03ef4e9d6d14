"""``apply-firewall``: security groups recreated through the EC2 driver's firewall API on a
moto_server target (rules translated, attached, adopted, replaced, undone), and the check
of the cloud-init firewall on a target without one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from faultkit import Faults
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

import failover.retry
from failover.actions.apply_firewall import ApplyFirewall, ApplyFirewallParams
from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.errors import OperationFailed, TransientError
from failover.ports import FirewallRuleInfo
from failover.targets import Targets

WEB = firewall(
    "social-web", "sg-0web",
    ALLOW_ALL_EGRESS,
    rule("ingress", "tcp", 80, 80, "0.0.0.0/0"),
    rule("ingress", "tcp", 22, 22, "203.0.113.0/24"),
    rule("ingress", "tcp", 8080, 8080, "sg-0web"),  # the group's members talk to each other
    rule("ingress", "tcp", 9100, 9100, "sg-0monitoring"),  # a group with no member on the target
)
DB = firewall(
    "social-db", "sg-0db",
    rule("egress", "tcp", 443, 443, "0.0.0.0/0"),  # no allow-all egress
    rule("ingress", "tcp", 5432, 5432, "sg-0web"),
    rule("ingress", "icmp", -1, -1, "10.0.0.0/8"),
)
SNAPSHOT = manifest(
    WEB, DB,
    node("web-1", "i-0001", firewalls=["sg-0web"]),
    node("web-2", "i-0002", firewalls=["sg-0web"]),
    node("db-1", "i-0003", firewalls=["sg-0db"]),
)


@pytest.fixture
def config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


def provision(config, snapshot=SNAPSHOT, *, at_creation: bool = False) -> dict[str, Any]:
    """The nodes; by default without their firewalls (apply-firewall attaches them after: the
    way of drivers that take none at creation). ``at_creation``: created inside them."""
    params = ProvisionNodesParams(firewall_at_creation=at_creation)
    return ProvisionNodes().apply(context(config, snapshot), params)


def apply(ctx) -> dict[str, Any]:
    return ApplyFirewall().apply(ctx, ApplyFirewallParams())


def firewall_context(config, outputs=None, **kwargs):
    return context(config, SNAPSHOT, step_id="firewall", outputs={"nodes": outputs} if outputs else {}, **kwargs)


def groups(server) -> dict[str, dict[str, Any]]:
    described = ec2(server).describe_security_groups()["SecurityGroups"]
    return {g["GroupName"]: g for g in described if g["GroupName"] != "default"}



def attached(server) -> dict[str, set[str]]:
    return {tags_of(i)["Name"]: {g["GroupName"] for g in i["SecurityGroups"]} for i in live_instances(server)}


# -- with the EC2 driver's firewall API -------------------------------------------------------


def test_plan_says_firewall_api_and_how_group_sources_are_translated(config) -> None:
    changes = ApplyFirewall().plan(firewall_context(config), ApplyFirewallParams())

    assert [(c.operation, c.kind, c.name) for c in changes] == [
        ("create", "firewall", "social-app-social-db"), ("create", "firewall", "social-app-social-web"),
    ]
    assert changes[0].detail.startswith("firewall API: from sg-0db (social-db), 3 rules")
    assert "sources sg-0web become their members' new private addresses" in changes[0].detail
    assert changes[1].detail.endswith(
        "at node creation: provision-nodes makes it before the nodes with its 3 rules of fixed sources and creates "
        "social-app-web-1, social-app-web-2 in it; this step sets the rest once the nodes exist"
    )


def test_groups_become_target_firewalls_with_translated_rules_attached_to_the_new_nodes(config, target) -> None:
    nodes = provision(config)
    web_ips = {f"{nodes[name]['private_ip']}/32" for name in ("web-1", "web-2")}
    ctx = firewall_context(config, nodes)

    outputs = apply(ctx)

    found = groups(target)
    assert set(found) == {"social-app-social-web", "social-app-social-db"}
    web, db = found["social-app-social-web"], found["social-app-social-db"]
    assert permissions(web, "ingress") == {
        ("tcp", 80, 80, "0.0.0.0/0"), ("tcp", 22, 22, "203.0.113.0/24"),
        *{("tcp", 8080, 8080, ip) for ip in web_ips},
    }
    assert permissions(web, "egress") == {("-1", None, None, "0.0.0.0/0")}
    assert permissions(db, "ingress") == {*{("tcp", 5432, 5432, ip) for ip in web_ips}, ("icmp", -1, -1, "10.0.0.0/8")}
    assert permissions(db, "egress") == {("tcp", 443, 443, "0.0.0.0/0")}  # EC2's default allow-all revoked
    for group in (web, db):
        assert tags_of(group).items() >= {"failover-run": RUN_ID, "failover-step": "firewall"}.items()
    assert tags_of(web)["failover-source"] == "sg-0web"

    assert attached(target) == {
        "social-app-web-1": {"social-app-social-web"}, "social-app-web-2": {"social-app-social-web"},
        "social-app-db-1": {"social-app-social-db"},
    }
    assert outputs["via"] == "firewall API"
    assert outputs["firewalls"]["sg-0web"] == {
        "id": web["GroupId"], "name": "social-app-social-web", "source_name": "social-web", "rules": 4,
        "nodes": [nodes["web-1"]["id"], nodes["web-2"]["id"]],
        "adopted": False,
        "in_it_already": [],
        "attached": [nodes["web-1"]["id"], nodes["web-2"]["id"]],
    }
    assert outputs["nodes"] == {
        "social-app-web-1": ["sg-0web"], "social-app-web-2": ["sg-0web"], "social-app-db-1": ["sg-0db"],
    }
    assert outputs["dropped_rules"] == [
        "sg-0web (social-web): ingress tcp port 9100: no member of sg-0monitoring is on the target",
    ]
    assert sorted(item["id"] for item in ctx.created) == sorted(g["GroupId"] for g in found.values())


def test_without_outputs_the_nodes_are_found_by_their_names(config, target) -> None:
    nodes = provision(config)

    apply(firewall_context(config))  # no provision-nodes outputs

    web_ips = {f"{nodes[name]['private_ip']}/32" for name in ("web-1", "web-2")}
    db = groups(target)["social-app-social-db"]
    assert {fact[3] for fact in permissions(db, "ingress") if fact[0] == "tcp"} == web_ips
    assert attached(target)["social-app-db-1"] == {"social-app-social-db"}


def test_reapply_after_a_crash_adopts_the_firewalls(config, target) -> None:
    nodes = provision(config)
    first = apply(firewall_context(config, nodes))

    resumed = firewall_context(config, nodes, created=[])
    again = apply(resumed)

    assert len(groups(target)) == 2
    assert {k: v["id"] for k, v in again["firewalls"].items()} == {k: v["id"] for k, v in first["firewalls"].items()}
    assert all(v["adopted"] for v in again["firewalls"].values())
    assert sorted(item["id"] for item in resumed.created) == sorted(v["id"] for v in first["firewalls"].values())


def test_a_half_made_firewall_of_this_run_is_converged_in_place(config, target) -> None:
    nodes = provision(config)
    compute = Targets(config, "fallback").compute
    half = compute.create_firewall(
        "social-app-social-db",
        [FirewallRuleInfo("egress", "tcp", 443, 443, ("0.0.0.0/0",)),
         FirewallRuleInfo("ingress", "tcp", 23, 23, ("0.0.0.0/0",))],  # a rule of no group: removed
        labels={"failover-run": RUN_ID},
    )  # then a crash, before the rest of its rules and before the journal heard of it
    resumed = firewall_context(config, nodes, created=[])

    outputs = apply(resumed)

    db = groups(target)["social-app-social-db"]
    assert db["GroupId"] == half.id == outputs["firewalls"]["sg-0db"]["id"]
    web_ips = {f"{nodes[name]['private_ip']}/32" for name in ("web-1", "web-2")}
    assert permissions(db, "ingress") == {*{("tcp", 5432, 5432, ip) for ip in web_ips}, ("icmp", -1, -1, "10.0.0.0/8")}
    assert permissions(db, "egress") == {("tcp", 443, 443, "0.0.0.0/0")}
    assert half.id in [item["id"] for item in resumed.created]
    assert len(groups(target)) == 2


def test_a_journaled_firewall_whose_tags_never_came_is_this_runs_and_converged(config, target) -> None:
    """The case of issue 10: the step made the group, then a request after it failed; the
    retry knows the group from the journal even though it carries none of the run's tags."""
    nodes = provision(config)
    bare = ec2(target).create_security_group(GroupName="social-app-social-web", Description="made, then a 503")
    ctx = firewall_context(config, nodes, created=[{"kind": "firewall", "id": bare["GroupId"]}])

    outputs = apply(ctx)

    web = groups(target)["social-app-social-web"]
    assert web["GroupId"] == bare["GroupId"] == outputs["firewalls"]["sg-0web"]["id"]
    assert ("tcp", 80, 80, "0.0.0.0/0") in permissions(web, "ingress")
    assert tags_of(web).items() >= {"failover-run": RUN_ID, "failover-source": "sg-0web"}.items()


@pytest.mark.parametrize(
    "failing", ["AuthorizeSecurityGroupIngress", "RevokeSecurityGroupEgress", "DescribeSecurityGroups"]
)
def test_a_503_after_the_firewall_exists_then_the_steps_retry_converges_it(config, target, monkeypatch, failing):
    nodes = provision(config)
    ctx = firewall_context(config, nodes)
    monkeypatch.setattr(failover.retry, "REQUEST_RETRIES", 0)  # the 503 reaches the step, as when retries run out
    faults = Faults(ctx.targets.compute.session.driver, monkeypatch)
    made_before = {g["GroupId"] for g in groups(target).values()}
    faults.fail(failing, after=1 if failing == "DescribeSecurityGroups" else 0)  # not the look-up before creating

    with pytest.raises(TransientError):
        apply(ctx)
    assert faults.injected == [failing]
    journaled = [item["id"] for item in ctx.created]
    assert journaled and set(journaled) <= {g["GroupId"] for g in groups(target).values()} - made_before

    outputs = apply(ctx)  # the step's retry, with what it journaled

    found = groups(target)
    assert set(found) == {"social-app-social-web", "social-app-social-db"}
    assert {v["id"] for v in outputs["firewalls"].values()} == {g["GroupId"] for g in found.values()}
    assert set(journaled) <= {g["GroupId"] for g in found.values()}
    assert permissions(found["social-app-social-db"], "egress") == {("tcp", 443, 443, "0.0.0.0/0")}
    assert ("tcp", 22, 22, "203.0.113.0/24") in permissions(found["social-app-social-web"], "ingress")


def test_requests_executed_but_their_answers_lost_are_not_made_twice(config, target, monkeypatch) -> None:
    nodes = provision(config)
    ctx = firewall_context(config, nodes)
    faults = Faults(ctx.targets.compute.session.driver, monkeypatch)
    for action in ("CreateSecurityGroup", "AuthorizeSecurityGroupIngress", "RevokeSecurityGroupEgress"):
        faults.fail(action, executed=True)

    outputs = apply(ctx)

    assert faults.injected == ["CreateSecurityGroup", "RevokeSecurityGroupEgress", "AuthorizeSecurityGroupIngress"]
    found = groups(target)
    assert set(found) == {"social-app-social-web", "social-app-social-db"}
    assert sorted(item["id"] for item in ctx.created) == sorted(g["GroupId"] for g in found.values())
    assert sorted(v["id"] for v in outputs["firewalls"].values()) == sorted(g["GroupId"] for g in found.values())
    assert permissions(found["social-app-social-db"], "egress") == {("tcp", 443, 443, "0.0.0.0/0")}


def test_a_foreign_firewall_of_that_name_with_other_rules_is_an_error(config, target) -> None:
    nodes = provision(config)
    Targets(config, "fallback").compute.create_firewall("social-app-social-db", [], labels={"owner": "someone"})

    with pytest.raises(OperationFailed, match="social-app-social-db .* exists on the target with other rules"):
        apply(firewall_context(config, nodes))


def test_undo_deletes_the_firewalls_it_created(config, target) -> None:
    nodes = provision(config)
    ctx = firewall_context(config, nodes)
    apply(ctx)

    ApplyFirewall().undo(ctx, ApplyFirewallParams())
    ApplyFirewall().undo(ctx, ApplyFirewallParams())

    assert groups(target) == {}


def test_undo_finds_unjournaled_firewalls_by_name_and_run_label(config, target) -> None:
    nodes = provision(config)
    apply(firewall_context(config, nodes))
    Targets(config, "fallback").compute.create_firewall("unrelated", [], labels={"failover-run": RUN_ID})

    ApplyFirewall().undo(firewall_context(config, nodes, created=[]), ApplyFirewallParams())

    assert set(groups(target)) == {"unrelated"}  # only the deterministic names are looked up


# -- without a firewall API: the cloud-init check ------------------------------------------------


@pytest.fixture
def no_firewall_api(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target, driver="targetkit:NoFirewallApiDriver")})


def test_without_a_firewall_api_the_plan_checks_cloud_init(no_firewall_api) -> None:
    changes = ApplyFirewall().plan(firewall_context(no_firewall_api), ApplyFirewallParams())

    assert [(c.operation, c.name) for c in changes] == [
        ("check", "social-app-web-1"), ("check", "social-app-web-2"), ("check", "social-app-db-1"),
    ]
    assert changes[0].detail == "cloud-init nftables: sg-0web rendered into the node's cloud-init by provision-nodes"


def test_without_a_firewall_api_apply_confirms_what_provision_nodes_rendered(no_firewall_api, target) -> None:
    nodes = provision(no_firewall_api)
    ctx = firewall_context(no_firewall_api, nodes)

    outputs = apply(ctx)

    assert outputs == {
        "via": "cloud-init nftables", "firewalls": {}, "dropped_rules": [],
        "nodes": {"social-app-web-1": ["sg-0web"], "social-app-web-2": ["sg-0web"], "social-app-db-1": ["sg-0db"]},
    }
    assert groups(target) == {} and ctx.created == []
    ApplyFirewall().undo(ctx, ApplyFirewallParams())  # nothing to undo


def test_without_provision_outputs_the_cloud_init_firewall_cannot_be_confirmed(no_firewall_api, target) -> None:
    provision(no_firewall_api)

    with pytest.raises(OperationFailed, match="social-app-web-1: no outputs of provision-nodes for it"):
        apply(firewall_context(no_firewall_api))


def test_nodes_provisioned_without_the_cloud_init_firewall_fail_the_check(no_firewall_api, target) -> None:
    nodes = provision(no_firewall_api)
    nodes["nodes"]["db-1"] = {**nodes["nodes"]["db-1"], "firewall": "firewall API"}

    with pytest.raises(OperationFailed, match="social-app-db-1: provision-nodes wrote firewall API"):
        apply(firewall_context(no_firewall_api, nodes))


def test_a_scaling_groups_nodes_get_its_launch_specs_groups_and_its_members_none(config, target) -> None:
    from targetkit import UBUNTU_TRUSTY, UBUNTU_TRUSTY_ID

    from failover.manifest import LaunchSpec, NodeGroup

    launch = LaunchSpec(source="launch_template", id="lt-web", instance_type="t3.medium", vcpus=2, memory_mib=4096,
                        image_id=UBUNTU_TRUSTY_ID, image_name=UBUNTU_TRUSTY, firewalls=["sg-0web"])
    group = NodeGroup(id="web", name="web", region="us-east-1", min_size=1, max_size=3, desired=2, launch=launch,
                      members=["i-0001", "i-0002"])
    members = [node("web", "i-0001", firewalls=["sg-0web"], group="web"),
               node("web", "i-0002", firewalls=["sg-0web"], group="web")]
    snapshot = manifest(WEB, DB, *members, node("db-1", "i-0003", firewalls=["sg-0db"]), group)
    outputs = ProvisionNodes().apply(context(config, snapshot), ProvisionNodesParams())

    ApplyFirewall().apply(context(config, snapshot, step_id="firewall", outputs={"nodes": outputs}),
                          ApplyFirewallParams())

    assert attached(target) == {"social-app-web-1": {"social-app-social-web"},
                                "social-app-web-2": {"social-app-social-web"},
                                "social-app-db-1": {"social-app-social-db"}}
    # the group's nodes are the members of sg-0web that sg-0db admits on 5432: their new private addresses
    private = {entry["private_ip"] for entry in outputs["nodes"].values() if entry.get("group") == "web"}
    sources = {fact[3] for fact in permissions(groups(target)["social-app-social-db"], "ingress") if fact[1] == 5432}
    assert {source.split("/")[0] for source in sources} == private
