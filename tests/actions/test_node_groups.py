"""Scaling groups and endpoint rewriting in ``provision-nodes``, against a target on libcloud's
EC2 driver and a moto_server process: a group becomes its desired nodes from its launch
specification (named ``<service>-<group>-<n>``, never copies of its members), the plan says
the target does not scale it and lists every substitution, user data on the new nodes names the
target's endpoints, a re-apply adopts, and undo removes every group node."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from targetkit import (
    UBUNTU_TRUSTY,
    UBUNTU_TRUSTY_ID,
    compute_spec,
    context,
    database,
    live_instances,
    manifest,
    node,
    tags_of,
    user_data_of,
    write_config,
)

from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.manifest import DnsZone, LaunchSpec, LoadBalancer, NodeGroup, Record
from failover.rewrite import SubstitutionMap, build_map

LB_ID = "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-lb/50dc6c495c0c9188"
LB_HOST = "web-lb-1234567890.us-east-1.elb.amazonaws.com"
DB_HOST = "orders-db.example.rds"  # targetkit's database endpoint
WEB_USER_DATA = (f"#!/bin/sh\necho 'DATABASE_HOST={DB_HOST}' >> /etc/app.env\n"
                 f"echo 'PUBLIC_URL=https://{LB_HOST}/' >> /etc/app.env\n"
                 "echo 'ADVERTISE=198.51.100.9' >> /etc/app.env\n")
WORKER_USER_DATA = f"#!/bin/sh\necho 'DATABASE_HOST={DB_HOST}' > /etc/worker.env\n"
NEW_DB_ADDRESS = "10.9.8.7"


def group(name: str, desired: int, members: list[str], user_data: str, load_balancers: list[str] = ()) -> NodeGroup:
    return NodeGroup(
        id=name, name=name, region="us-east-1", tags={"service": "social-app", "role": name},
        min_size=1, max_size=6, desired=desired, members=members, load_balancers=list(load_balancers),
        launch=LaunchSpec(source="launch_template", id=f"lt-{name}", name=f"{name}-template", version="3",
                          instance_type="t3.medium", vcpus=2, memory_mib=4096, image_id=UBUNTU_TRUSTY_ID,
                          image_name=UBUNTU_TRUSTY, architecture="x86_64", user_data=user_data),
    )


def member(name: str, node_id: str, group_id: str, **fields: Any):
    return node(name, node_id, group=group_id, user_data="#!/bin/sh\necho stale copy\n", **fields)


@pytest.fixture(scope="module")
def snapshot():
    zone = DnsZone(id="Z1", name="social.example.", region="global", records=[
        Record(name="www.social.example.", type="A", ttl=60, values=[f"dualstack.{LB_HOST}."]),
        Record(name="edge.social.example.", type="A", ttl=60, values=["198.51.100.9"]),
    ])
    lb = LoadBalancer(id=LB_ID, name="web-lb", region="us-east-1", scheme="internet-facing", dns_name=LB_HOST)
    return manifest(
        member("web", "i-0001", "web", public_ip="198.51.100.9"),
        member("web", "i-0002", "web", public_ip="198.51.100.10"),
        member("worker", "i-0003", "workers"),
        node("admin", "i-0004", user_data=f"#!/bin/sh\necho {DB_HOST}\n"),
        group("web", 3, ["i-0001", "i-0002"], WEB_USER_DATA, [LB_ID]),
        group("workers", 2, ["i-0003"], WORKER_USER_DATA),
        database("orders-db"), lb, zone,
    )


@pytest.fixture
def config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


DATABASES_DONE = {"databases": {"databases": {"orders-db": {"private_ip": NEW_DB_ADDRESS, "public_ip": "203.0.113.7"}}}}


def ctx_after_databases(config, snapshot, **kwargs: Any):
    ctx = context(config, snapshot, outputs=DATABASES_DONE, **kwargs)
    ctx.needs = {"databases": "restore-databases"}
    return ctx


def apply(ctx, **params: Any) -> dict[str, Any]:
    return ProvisionNodes().apply(ctx, ProvisionNodesParams.model_validate(params))


def test_the_plan_builds_each_group_from_its_launch_spec_and_lists_every_substitution(config, snapshot, target) -> None:
    ctx = context(config, snapshot)
    ctx.needs = {"databases": "restore-databases"}
    changes = ProvisionNodes().plan(ctx, ProvisionNodesParams())

    nodes = sorted(c.name for c in changes if c.kind == "node")
    assert nodes == ["social-app-admin", "social-app-web-1", "social-app-web-2", "social-app-web-3",
                     "social-app-workers-1", "social-app-workers-2"]  # members are not copied
    groups = {c.name: c.detail for c in changes if c.kind == "node_group"}
    assert set(groups) == {"web", "workers"}
    assert "3 node(s) from launch template web-template version 3" in groups["web"]
    assert "no autoscaling on the target: the group stays at its desired count" in groups["web"]
    assert f"backends of load balancer(s) {LB_ID}" in groups["web"]

    rewrites = {c.name: c for c in changes if c.kind == "user_data"}
    assert set(rewrites) == {DB_HOST, LB_HOST, "198.51.100.9"}
    database = rewrites[DB_HOST]
    assert database.operation == "update"
    assert "the address of database orders-db as restored by step databases" in database.detail
    assert database.detail.endswith("in social-app-admin, social-app-web-1, social-app-web-2, social-app-web-3, "
                                    "social-app-workers-1, social-app-workers-2")
    assert rewrites[LB_HOST].detail.startswith("-> www.social.example: load_balancer web-lb")
    assert rewrites["198.51.100.9"].detail.startswith("-> edge.social.example: address web (i-0001)")
    assert live_instances(target) == []  # a plan creates nothing


def test_without_a_restore_step_among_the_needs_the_database_endpoint_is_a_warning(config, snapshot) -> None:
    changes = ProvisionNodes().plan(context(config, snapshot), ProvisionNodesParams())
    [warning] = [c for c in changes if c.kind == "user_data" and c.name == DB_HOST]
    assert warning.operation == "check"
    assert warning.detail.startswith("warning: database orders-db has no counterpart on the target "
                                     "(no restore-databases step among this step's needs); left unchanged in")


def test_apply_builds_the_groups_desired_nodes_with_rewritten_user_data(config, snapshot, target) -> None:
    outputs = apply(ctx_after_databases(config, snapshot))

    instances = {tags_of(i)["Name"]: i for i in live_instances(target)}
    assert sorted(instances) == ["social-app-admin", "social-app-web-1", "social-app-web-2", "social-app-web-3",
                                 "social-app-workers-1", "social-app-workers-2"]
    web_data = user_data_of(target, instances["social-app-web-2"]["InstanceId"])
    assert f"DATABASE_HOST={NEW_DB_ADDRESS}" in web_data and DB_HOST not in web_data
    assert "PUBLIC_URL=https://www.social.example/" in web_data and LB_HOST not in web_data
    assert "ADVERTISE=edge.social.example" in web_data and "198.51.100.9" not in web_data
    assert "stale copy" not in web_data  # built from the launch template, not from a member
    worker_data = user_data_of(target, instances["social-app-workers-1"]["InstanceId"])
    assert worker_data == f"#!/bin/sh\necho 'DATABASE_HOST={NEW_DB_ADDRESS}' > /etc/worker.env\n"

    entries = outputs["nodes"]
    assert entries["web-3"]["group"] == "web" and entries["web-3"]["source_id"] == "web#3"
    assert entries["workers-1"]["group"] == "workers" and "group" not in entries["admin"]
    # a member's old address moves to the group node that takes its place
    assert outputs["addresses"]["i-0001"] == entries["web-1"]["public_ip"]
    assert outputs["addresses"]["i-0002"] == entries["web-2"]["public_ip"]
    assert outputs["addresses"]["i-0003"] == entries["workers-1"]["public_ip"]
    substitutions = outputs["endpoints"]["substitutions"]
    assert substitutions[DB_HOST]["to"] == NEW_DB_ADDRESS and len(substitutions[DB_HOST]["nodes"]) == 6
    assert substitutions[LB_HOST]["to"] == "www.social.example"
    assert outputs["endpoints"]["unresolved"] == {}


def test_a_reapply_adopts_and_undo_destroys_every_group_node(config, snapshot, target) -> None:
    created: list[dict[str, Any]] = []
    apply(ctx_after_databases(config, snapshot, created=created))
    first = {i["InstanceId"] for i in live_instances(target)}

    again = apply(ctx_after_databases(config, snapshot, created=created))
    assert {i["InstanceId"] for i in live_instances(target)} == first  # nothing created twice
    assert all(entry["adopted"] for entry in again["nodes"].values())

    # undo by a rollback that lost its journal: found by name and run label
    ProvisionNodes().undo(context(config, snapshot), ProvisionNodesParams())
    assert live_instances(target) == []


def test_rewrite_endpoints_false_leaves_user_data_as_the_source_had_it(config, snapshot, target) -> None:
    outputs = apply(ctx_after_databases(config, snapshot), rewrite_endpoints=False,
                    select={"names": ["workers"]})
    assert sorted(outputs["nodes"]) == ["workers-1", "workers-2"] and "endpoints" not in outputs
    [instance] = [i for i in live_instances(target) if tags_of(i)["Name"] == "social-app-workers-2"]
    assert user_data_of(target, instance["InstanceId"]) == WORKER_USER_DATA


# -- the substitution map itself ---------------------------------------------------------------


class ContainerUrls:
    def container_url(self, bucket: str) -> str:
        return f"https://replicas.example.net/replica-{bucket}"


def test_bucket_hosts_become_the_replica_containers_url_and_matches_are_whole(snapshot) -> None:
    from failover.manifest import Bucket

    with_bucket = snapshot.model_copy(update={"resources": [
        *snapshot.resources, Bucket(id="media", name="media", region="us-east-1", objects=1, bytes=1, versioning=False)]})
    mapping = build_map(with_bucket, {}, {}, planning=False, storage=ContainerUrls())
    text = ("a=https://media.s3.amazonaws.com/x b=https://s3.us-east-1.amazonaws.com/media/y "
            "c=media.s3.us-east-1.amazonaws.com.evil.example d=198.51.100.90 e=198.51.100.9")
    assert mapping.apply(text) == (
        "a=https://replicas.example.net/replica-media/x b=https://replicas.example.net/replica-media/y "
        "c=media.s3.us-east-1.amazonaws.com.evil.example d=198.51.100.90 e=edge.social.example")


def test_a_substituted_value_is_never_substituted_again() -> None:
    from failover.rewrite import Endpoint

    mapping = SubstitutionMap([Endpoint("a.example", "x", "a", "b.example", ""),
                               Endpoint("b.example", "x", "b", "c.example", "")])
    assert mapping.apply("a.example b.example") == "b.example c.example"


def test_counterparts_from_earlier_steps_win_over_dns_names(snapshot) -> None:
    outputs = {"front": {"load_balancers": {LB_ID: {"address": "203.0.113.50"}}},
               "db-tier": {"addresses": {"i-0001": "203.0.113.9"}, "nodes": {}}}
    mapping = build_map(snapshot, outputs, {"front": "frontdoor", "db-tier": "provision-nodes"}, planning=False)
    assert mapping.apply(f"lb={LB_HOST} peer=198.51.100.9 other=198.51.100.10") == (
        "lb=203.0.113.50 peer=203.0.113.9 other=198.51.100.10")
    [unresolved] = [e for e in mapping.named_in("198.51.100.10") if e.new is None]
    assert unresolved.of == "web (i-0002)" and "no DNS name of the service points at it" in unresolved.via
