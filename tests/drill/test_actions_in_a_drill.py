"""The actions in a drill (``ActionContext.drill_prefix`` set), against real peers: nodes and
firewalls on EC2 (a moto_server process), zones on PowerDNS, buckets on local disk with a
moto source, a webhook on a local HTTP server. A drill names what it creates under its
prefix, never touches a real resource, and undoes only what it created."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml
from dnskit import NEW, DnsLab, dns_lab, provision_outputs
from targetkit import (
    ALLOW_ALL_EGRESS,
    compute_spec,
    context,
    ec2,
    firewall,
    live_instances,
    manifest,
    node,
    rule,
    tags_of,
    write_config,
)

from failover.actions.base import ACTIONS, ActionContext
from failover.config import load_config
from failover.errors import OperationFailed
from failover.manifest import Bucket, Manifest, SourceInfo, now_iso
from failover.targets import Targets
from failover.testing.emulators import PowerDns
from failover.testing.servers import MotoServer

ProvisionNodes, ApplyFirewall = ACTIONS.get("provision-nodes"), ACTIONS.get("apply-firewall")
CopyDnsZones, CutoverDns = ACTIONS.get("copy-dns-zones"), ACTIONS.get("cutover-dns")
SyncBuckets, Notify = ACTIONS.get("sync-buckets"), ACTIONS.get("notify")


def in_drill(ctx: ActionContext, prefix: str = "drill") -> ActionContext:
    ctx.drill_prefix = prefix
    return ctx


# -- nodes and firewalls ----------------------------------------------------------------------

WEB = firewall("web", "sg-web", rule("ingress", "tcp", 80, 80, "0.0.0.0/0"), ALLOW_ALL_EGRESS)
SNAPSHOT = manifest(node("web-1", "i-web1", firewalls=["sg-web"]), WEB)


@pytest.fixture
def compute_config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


def provision(ctx: ActionContext) -> dict[str, Any]:
    return ProvisionNodes().apply(ctx, ProvisionNodes.Params())


def test_a_drill_creates_its_own_nodes_and_firewalls_beside_the_real_ones_and_undoes_only_them(
    compute_config, target
) -> None:
    real_nodes = context(compute_config, SNAPSHOT, run_id="run-real")
    provision(real_nodes)
    real_firewall = context(compute_config, SNAPSHOT, run_id="run-real", step_id="firewall",
                            outputs={"nodes": provision(real_nodes)})
    ApplyFirewall().apply(real_firewall, ApplyFirewall.Params())
    real = {tags_of(i)["Name"]: i["InstanceId"] for i in live_instances(target)}
    assert set(real) == {"social-app-web-1"}

    drill_nodes = in_drill(context(compute_config, SNAPSHOT, run_id="run-drill"))
    outputs = provision(drill_nodes)
    drill_firewall = in_drill(context(compute_config, SNAPSHOT, run_id="run-drill", step_id="firewall",
                                      outputs={"nodes": outputs}))
    fw_outputs = ApplyFirewall().apply(drill_firewall, ApplyFirewall.Params())

    assert outputs["web-1"]["name"] == "drill-social-app-web-1" and not outputs["web-1"]["adopted"]
    instances = {tags_of(i)["Name"]: i for i in live_instances(target)}
    assert set(instances) == {"social-app-web-1", "drill-social-app-web-1"}
    assert instances["social-app-web-1"]["InstanceId"] == real["social-app-web-1"]  # not adopted, not touched
    tags = tags_of(instances["drill-social-app-web-1"])
    assert (tags["failover-drill"], tags["failover-service"], tags["failover-run"]) == ("drill", "social-app", "run-drill")
    assert fw_outputs["firewalls"]["sg-web"]["name"] == "drill-social-app-web"
    groups = {g["GroupName"]: g for g in ec2(target).describe_security_groups()["SecurityGroups"]}
    assert {"social-app-web", "drill-social-app-web"} <= set(groups)
    attached = {g["GroupName"] for g in instances["drill-social-app-web-1"]["SecurityGroups"]}
    assert "drill-social-app-web" in attached and "social-app-web" not in attached

    ApplyFirewall().undo(in_drill(context(compute_config, SNAPSHOT, run_id="run-drill", step_id="firewall",
                                          created=drill_firewall.created)), ApplyFirewall.Params())
    ProvisionNodes().undo(in_drill(context(compute_config, SNAPSHOT, run_id="run-drill", created=drill_nodes.created)),
                          ProvisionNodes.Params())

    assert {tags_of(i)["Name"]: i["InstanceId"] for i in live_instances(target)} == real
    names = {g["GroupName"] for g in ec2(target).describe_security_groups()["SecurityGroups"]}
    assert "social-app-web" in names and "drill-social-app-web" not in names


def test_a_drill_refuses_a_node_of_its_names_that_another_run_left(compute_config, target) -> None:
    provision(in_drill(context(compute_config, SNAPSHOT, run_id="run-old-drill")))

    firewall, change = ProvisionNodes().plan(in_drill(context(compute_config, SNAPSHOT, run_id="run-new-drill")),
                                             ProvisionNodes.Params())
    assert (change.operation, change.name) == ("check", "drill-social-app-web-1")
    assert "not made by this drill" in change.detail
    assert (firewall.operation, firewall.name) == ("check", "drill-social-app-web")  # made first: it stops there
    assert "not made by this drill" in firewall.detail
    with pytest.raises(OperationFailed, match="firewall drill-social-app-web .* by run run-old-drill"):
        provision(in_drill(context(compute_config, SNAPSHOT, run_id="run-new-drill")))
    assert [tags_of(i)["Name"] for i in live_instances(target)] == ["drill-social-app-web-1"]  # nothing created twice


def test_another_prefix_isolates_drills_from_each_other(compute_config, target) -> None:
    provision(in_drill(context(compute_config, SNAPSHOT, run_id="run-a"), "drill"))
    outputs = provision(in_drill(context(compute_config, SNAPSHOT, run_id="run-b"), "drill.eu"))

    assert outputs["web-1"]["name"] == "drill-eu-social-app-web-1"
    assert tags_of(next(i for i in live_instances(target) if tags_of(i)["Name"] == "drill-eu-social-app-web-1"))[
        "failover-drill"] == "drill-eu"


# -- DNS ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory, powerdns: PowerDns) -> Iterator[DnsLab]:
    with dns_lab(tmp_path_factory.mktemp("drill-dns"), powerdns) as started:
        yield started


def test_a_drill_copies_and_cuts_over_under_its_prefix_and_leaves_the_real_zone_alone(lab: DnsLab) -> None:
    real_ctx = lab.context(step_id="copy")
    CopyDnsZones().apply(real_ctx, CopyDnsZones.Params(zones=["example.com."]))  # the real zone, mirrored before
    real_sets = lab.sets("example.com.")

    try:
        copy_ctx = in_drill(lab.context(run_id="run-drill", step_id="copy"))
        copied = CopyDnsZones().apply(copy_ctx, CopyDnsZones.Params(zones=["example.com."]))
        cut_ctx = in_drill(lab.context(run_id="run-drill", step_id="cutover", outputs={"nodes": provision_outputs()}))
        cut = CutoverDns().apply(cut_ctx, CutoverDns.Params(ttl=30, zones=["example.com."]))

        assert [zone["zone"] for zone in copied["zones"]] == ["drill.example.com."]
        assert lab.zone_names() == {"example.com.", "drill.example.com."}
        assert {change["zone"] for change in cut["changed"]} == {"drill.example.com."}
        assert lab.answer("app.drill.example.com.") == (30, sorted([NEW["web-1"], NEW["web-2"]]))
        assert lab.sets("example.com.") == real_sets

        CutoverDns().undo(in_drill(lab.context(run_id="run-drill", step_id="cutover", created=cut_ctx.created)),
                          CutoverDns.Params(ttl=30, zones=["example.com."]))
        CopyDnsZones().undo(in_drill(lab.context(run_id="run-drill", step_id="copy", created=copy_ctx.created)),
                            CopyDnsZones.Params(zones=["example.com."]))
        assert lab.zone_names() == {"example.com."}
        assert lab.sets("example.com.") == real_sets
    finally:
        lab.wipe()


def test_a_prefix_of_the_step_wins_over_the_drills(lab: DnsLab) -> None:
    try:
        copied = CopyDnsZones().apply(in_drill(lab.context(run_id="run-drill")),
                                      CopyDnsZones.Params(zones=["example.org."], prefix="rehearsal"))
        assert [zone["zone"] for zone in copied["zones"]] == ["rehearsal.example.org."]
    finally:
        lab.wipe()


# -- buckets ----------------------------------------------------------------------------------


@pytest.fixture
def storage_config(tmp_path: Path, aws_env: None) -> Iterator[Any]:
    disk = tmp_path / "disk"
    disk.mkdir()
    with MotoServer() as source:
        path = tmp_path / "failover.yaml"
        path.write_text(yaml.safe_dump({
            "service": "svc", "state": ".failover",
            "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}, "endpoint_url": source.url},
            "targets": {"fallback": {"storage": {"driver": "local", "options": {"key": str(disk)},
                                                 "container_prefix": "replica-"}}},
        }))
        yield load_config(path), source


def bucket_context(config: Any, run_id: str, drill: str | None) -> ActionContext:
    snapshot = Manifest(service="svc", taken_at=now_iso(),
                        source=SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"]),
                        resources=[Bucket(id="media", name="media", region="us-east-1", objects=2, bytes=10,
                                          versioning=False)])
    return ActionContext(run_id=run_id, step_id="data", service="svc", config=config, target_name="fallback",
                         manifest=snapshot, targets=Targets(config, "fallback"), drill_prefix=drill)


def test_a_drill_checks_the_replica_and_writes_nothing_even_when_the_source_answers(storage_config) -> None:
    config, source = storage_config
    s3 = boto3.client("s3", endpoint_url=source.url, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="media")
    s3.put_object(Bucket="media", Key="a.txt", Body=b"first")
    SyncBuckets().apply(bucket_context(config, "replicated", None), SyncBuckets.Params())  # the replica
    s3.put_object(Bucket="media", Key="b.txt", Body=b"added on the source since")
    storage = Targets(config, "fallback").storage
    before = {item.key: (item.size, item.hash) for item in storage.iter_objects("media")}

    ctx = bucket_context(config, "run-drill", "drill")
    plan = SyncBuckets().plan(ctx, SyncBuckets.Params())
    outputs = SyncBuckets().apply(ctx, SyncBuckets.Params())

    assert [(c.operation, c.name) for c in plan] == [("check", "replica-media")]
    assert outputs["media"]["source"] == "replica" and outputs["media"]["copied"] == 0
    assert outputs["media"]["objects"] == 1
    assert ctx.created == []  # nothing to undo
    assert {item.key: (item.size, item.hash) for item in storage.iter_objects("media")} == before


def test_a_drill_without_a_replica_fails_and_creates_no_container(storage_config) -> None:
    config, source = storage_config
    s3 = boto3.client("s3", endpoint_url=source.url, aws_access_key_id="testing", aws_secret_access_key="testing",
                      region_name="us-east-1")
    s3.create_bucket(Bucket="media")
    s3.put_object(Bucket="media", Key="a.txt", Body=b"on the source only: a real run would copy it")
    ctx = bucket_context(config, "run-drill", "drill")
    with pytest.raises(OperationFailed, match="no replica of bucket media"):
        SyncBuckets().apply(ctx, SyncBuckets.Params())
    assert not Targets(config, "fallback").storage.container_exists("media")


# -- notifications ----------------------------------------------------------------------------


@pytest.fixture
def webhook() -> Iterator[tuple[str, list[bytes]]]:
    bodies: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", bodies
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("drill", ["drill", None])
def test_a_notification_says_whether_it_is_a_drill(webhook, drill: str | None) -> None:
    url, bodies = webhook
    ctx = ActionContext(run_id="run-1", step_id="announce", service="svc", target_name="fallback", drill_prefix=drill)

    assert Notify().apply(ctx, Notify.Params(url=url, message="failing over"))["status"] == 204
    assert json.loads(bodies[0])["drill"] == drill
