"""``provision-nodes`` against a target on libcloud's EC2 driver and a moto_server process,
and against DigitalOcean's driver on libcloud's recorded responses: what the emulated
cloud holds afterwards, re-applies after crashes, undo."""

from __future__ import annotations

import base64
import json
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
    rule,
    tags_of,
    user_data_of,
    write_config,
)

from failover.actions.base import ACTIONS
from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.cloudinit import cloud_config_parts, user_data_parts
from failover.errors import ConfigError, InputError, Interrupted, NothingToDo
from failover.naming import node_names

WEB = {"select": {"tags": {"role": "web"}}}


@pytest.fixture
def config(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target)})


def apply(ctx, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return ProvisionNodes().apply(ctx, ProvisionNodesParams.model_validate(params or {}))


def security_groups(server) -> dict[str, dict[str, Any]]:
    described = ec2(server).describe_security_groups()["SecurityGroups"]
    return {g["GroupName"]: g for g in described if g["GroupName"] != "default"}


def by_name(instances: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {tags_of(instance)["Name"]: instance for instance in instances}


def test_registered_with_a_closed_schema() -> None:
    assert ACTIONS.get("provision-nodes") is ProvisionNodes
    with pytest.raises(ValueError):
        ProvisionNodesParams.model_validate({"selct": {}})


# -- plan ------------------------------------------------------------------------------------


def test_plan_is_one_change_per_node_with_size_image_and_why(config, sample_manifest, target) -> None:
    ctx = context(config, sample_manifest)
    changes = ProvisionNodes().plan(ctx, ProvisionNodesParams.model_validate(WEB))

    firewalls = [c for c in changes if c.kind == "firewall"]
    changes = [c for c in changes if c.kind == "node"]
    assert sorted(c.name for c in changes) == ["social-app-web-1", "social-app-web-2"]
    assert firewalls and all(c.operation == "create" for c in firewalls)
    assert all(c.detail.startswith("firewall API, at node creation: from sg-") for c in firewalls)
    in_snapshot_order = ", ".join(f"social-app-{node.name}" for node in sample_manifest.of_kind("node")
                                  if node.name in ("web-1", "web-2"))
    assert any(f"created in it: {in_snapshot_order}" in c.detail for c in firewalls)
    for change in changes:
        assert change.operation == "create"
        assert "size " in change.detail and "cheapest of" in change.detail
        assert "image ami-1e749f67" in change.detail and "Ubuntu 14.04, exact version" in change.detail
        assert "firewall: firewall API" in change.detail
    assert live_instances(target) == []  # a plan creates nothing


def test_nothing_to_provision_is_a_skip_with_its_reason_in_plan_and_apply(config, sample_manifest, target) -> None:
    no_nodes = manifest(firewall("web", "sg-1", ALLOW_ALL_EGRESS))
    for ctx, params, reason in (
        (context(config, no_nodes), {}, "no nodes in the snapshot"),
        (context(config, sample_manifest), {"select": {"tags": {"role": "no-such-role"}}},
         "the selection matches no node of the snapshot"),
    ):
        for method in (ProvisionNodes().plan, ProvisionNodes().apply):
            with pytest.raises(NothingToDo) as skipped:
                method(ctx, ProvisionNodesParams.model_validate(params))
            assert skipped.value.reason == reason
    assert live_instances(target) == []


def test_a_plan_error_lists_every_node_that_cannot_be_mapped(tmp_path, sample_manifest, target) -> None:
    config = write_config(tmp_path, {"compute": compute_spec(target), "sizes": {"t3.medium": "no-such-size"}})
    ctx = context(config, sample_manifest)

    with pytest.raises(ConfigError) as caught:
        ProvisionNodes().plan(ctx, ProvisionNodesParams.model_validate(WEB))

    lines = caught.value.lines()
    assert len(lines) == 2
    assert any("web-1 (" in line and "'no-such-size' names no size" in line for line in lines)
    assert any("web-2 (" in line for line in lines)
    assert all("targets.fallback" in line for line in lines)
    with pytest.raises(ConfigError):
        apply(ctx, WEB)
    assert live_instances(target) == []


def test_selecting_names_the_snapshot_lacks_is_an_input_error(config, sample_manifest) -> None:
    with pytest.raises(InputError, match="no running or stopped node 'web-9'"):
        ProvisionNodes().plan(context(config, sample_manifest), ProvisionNodesParams.model_validate({"select": {"names": ["web-1", "web-9"]}}))


# -- apply -----------------------------------------------------------------------------------


def test_apply_creates_each_node_once_mapped_labelled_with_its_user_data(tmp_path, sample_manifest, target) -> None:
    config = write_config(tmp_path, {"compute": compute_spec(target), "sizes": {"t3.large": "m5.large"}})
    ctx = context(config, sample_manifest)
    planned = {c.name: c.detail for c in ProvisionNodes().plan(ctx, ProvisionNodesParams())}

    outputs = apply(ctx)

    instances = by_name(live_instances(target))
    names = node_names(sample_manifest, "social-app")
    nodes = {n.name: n for n in sample_manifest.of_kind("node")}
    assert sorted(instances) == sorted(names[n.id] for n in nodes.values())  # every node, once
    for source in nodes.values():
        instance = instances[names[source.id]]
        assert f"size {instance['InstanceType']} " in planned[names[source.id]]
        labels = {"failover-run": RUN_ID, "failover-service": "social-app", "failover-step": "nodes", "failover-source": source.id}
        assert tags_of(instance).items() >= labels.items()
        assert user_data_of(target, instance["InstanceId"]) == source.user_data  # the target has a firewall API
    assert instances["social-app-worker-1"]["InstanceType"] == "m5.large"  # the profile's override
    journaled = [item for item in ctx.created if item["kind"] == "node"]
    assert sorted(item["id"] for item in journaled) == sorted(i["InstanceId"] for i in instances.values())
    assert {item["source_id"] for item in journaled} == {n.id for n in nodes.values()}
    firewalls = [item for item in ctx.created if item["kind"] == "firewall"]  # made first, the nodes created in them
    assert sorted(item["id"] for item in firewalls) == sorted(g["GroupId"] for g in security_groups(target).values())
    assert outputs["nodes"]["web-1"]["id"] == instances["social-app-web-1"]["InstanceId"]


def test_outputs_key_nodes_by_source_name_and_map_source_ids_to_new_addresses(config, sample_manifest, target) -> None:
    outputs = apply(context(config, sample_manifest), WEB)

    instances = by_name(live_instances(target))
    web_1 = next(n for n in sample_manifest.of_kind("node") if n.name == "web-1")
    entry = outputs["nodes"]["web-1"]
    assert entry == outputs["web-1"]  # ${steps.nodes.outputs.web-1.public_ip}
    assert entry == {
        "id": instances["social-app-web-1"]["InstanceId"],
        "name": "social-app-web-1",
        "source_id": web_1.id,
        "source_name": "web-1",
        "public_ip": instances["social-app-web-1"]["PublicIpAddress"],
        "private_ip": instances["social-app-web-1"]["PrivateIpAddress"],
        "size": instances["social-app-web-1"]["InstanceType"],
        "image": "ami-1e749f67",
        "state": "running",
        "adopted": False,
        "firewall": "firewall API",
        "security_groups": web_1.firewalls,
        "refused_rules": [],
        "firewall_ids": [g["GroupId"] for g in instances["social-app-web-1"]["SecurityGroups"]],
    }
    assert len(entry["firewall_ids"]) == len(web_1.firewalls)  # created in its firewalls (the target's EC2)
    assert set(outputs) == {"nodes", "addresses", "endpoints", "web-1", "web-2"}
    assert outputs["addresses"] == {e["source_id"]: e["public_ip"] for e in outputs["nodes"].values()}
    json.dumps(outputs)  # journaled as JSON


def test_reapply_adopts_instead_of_creating_again(config, sample_manifest, target) -> None:
    ctx = context(config, sample_manifest)
    first = apply(ctx, WEB)

    again = apply(ctx, WEB)

    assert len(live_instances(target)) == 2
    assert {k: e["id"] for k, e in again["nodes"].items()} == {k: e["id"] for k, e in first["nodes"].items()}
    changes = [c for c in ProvisionNodes().plan(ctx, ProvisionNodesParams.model_validate(WEB)) if c.kind == "node"]
    assert [c.operation for c in changes] == ["none", "none"]
    assert f"exists as {first['web-1']['id']} (running, size {first['web-1']['size']}" in changes[0].detail + changes[1].detail
    assert all(entry["adopted"] for entry in again["nodes"].values())
    assert len([item for item in ctx.created if item["kind"] == "node"]) == 2  # nothing journaled twice
    assert len({item["id"] for item in ctx.created}) == len(ctx.created)


def test_a_crash_right_after_create_is_adopted_and_journaled(config, sample_manifest, target) -> None:
    apply(context(config, sample_manifest), WEB)  # created; then kill -9 before the journal heard of it

    resumed = context(config, sample_manifest, created=[])
    outputs = apply(resumed, WEB)

    assert len(live_instances(target)) == 2
    journaled_nodes = [item["id"] for item in resumed.created if item["kind"] == "node"]
    assert sorted(journaled_nodes) == sorted(e["id"] for e in outputs["nodes"].values())
    ProvisionNodes().undo(resumed, ProvisionNodesParams.model_validate(WEB))
    assert live_instances(target) == []
    assert security_groups(target) == {}


def test_a_node_of_another_run_is_adopted_but_never_destroyed(config, sample_manifest, target) -> None:
    apply(context(config, sample_manifest, run_id="drill-7"), WEB)

    ours = context(config, sample_manifest)
    outputs = apply(ours, WEB)
    ProvisionNodes().undo(ours, ProvisionNodesParams.model_validate(WEB))

    assert all(entry["adopted"] for entry in outputs["nodes"].values())
    assert ours.created == []
    assert len(live_instances(target)) == 2


def test_undo_leaves_nothing_and_is_idempotent(config, sample_manifest, target) -> None:
    ctx = context(config, sample_manifest)
    apply(ctx)
    assert live_instances(target)

    ProvisionNodes().undo(ctx, ProvisionNodesParams())
    ProvisionNodes().undo(ctx, ProvisionNodesParams())

    assert live_instances(target) == []
    assert security_groups(target) == {}  # the firewalls made before the nodes too


def test_undo_finds_unjournaled_nodes_by_name_and_run_label(config, sample_manifest, target) -> None:
    apply(context(config, sample_manifest), WEB)

    ProvisionNodes().undo(context(config, sample_manifest, created=[]), ProvisionNodesParams.model_validate(WEB))

    assert live_instances(target) == []
    assert security_groups(target) == {}


def test_a_cancelled_run_creates_nothing(config, sample_manifest, target) -> None:
    ctx = context(config, sample_manifest)
    ctx.cancel.set()

    with pytest.raises(Interrupted):
        apply(ctx, WEB)

    assert live_instances(target) == []
    assert security_groups(target) == {}


def test_nodes_sharing_a_name_get_distinct_names_and_output_keys(config, target) -> None:
    twins = manifest(node("web", "i-0aaa"), node("web", "i-0bbb"), node("Web Server #3", "i-0ccc"))

    outputs = apply(context(config, twins))

    names = sorted(tags_of(i)["Name"] for i in live_instances(target))
    assert len(names) == 3 and "social-app-web-server-3" in names
    assert all(name.startswith("social-app-web-") and len(name) <= 63 for name in names)
    assert set(outputs["nodes"]) == {"i-0aaa", "i-0bbb", "Web Server #3"}


# -- targets without a firewall API: nftables in cloud-init -----------------------------------

WEB_GROUP = firewall(
    "web", "sg-0web",
    ALLOW_ALL_EGRESS,
    rule("ingress", "tcp", 80, 80, "0.0.0.0/0"),
    rule("ingress", "tcp", 22, 22, "203.0.113.0/24"),
    rule("ingress", "tcp", 8080, 8080, "sg-0web"),
)
SHELL_SCRIPT = "#!/bin/sh\necho hello > /tmp/hello\n"
CLOUD_CONFIG = "#cloud-config\npackages: [nginx]\nruncmd:\n  - [systemctl, enable, --now, nginx]\n"


@pytest.fixture
def no_firewall_api(tmp_path: Path, target):
    return write_config(tmp_path, {"compute": compute_spec(target, driver="targetkit:NoFirewallApiDriver")})


def test_without_a_firewall_api_the_rules_go_into_cloud_init_as_nftables(no_firewall_api, target) -> None:
    snapshot = manifest(
        WEB_GROUP,
        node("web-1", "i-0001", firewalls=["sg-0web"], user_data=CLOUD_CONFIG),
        node("web-2", "i-0002", firewalls=["sg-0web"], user_data=SHELL_SCRIPT),
        node("web-3", "i-0003", firewalls=["sg-0web"]),
        node("batch", "i-0004"),
    )
    ctx = context(no_firewall_api, snapshot)
    [change] = [c for c in ProvisionNodes().plan(ctx, ProvisionNodesParams()) if c.name == "social-app-web-1"]
    assert "firewall: cloud-init nftables" in change.detail

    outputs = apply(ctx)

    instances = {tags_of(i)["Name"]: i["InstanceId"] for i in live_instances(target)}
    web_1 = user_data_of(target, instances["social-app-web-1"])
    [(subtype, original), _] = user_data_parts(web_1)
    assert (subtype, original) == ("cloud-config", CLOUD_CONFIG)  # the node's own, unchanged
    [_, firewall_config] = cloud_config_parts(web_1)
    assert firewall_config["merge_how"][0] == {"name": "list", "settings": ["prepend"]}
    ruleset = next(f["content"] for f in firewall_config["write_files"] if f["path"] == "/etc/failover/firewall.nft")
    assert "policy drop;" in ruleset
    assert "ip saddr 0.0.0.0/0 tcp dport 80 accept" in ruleset
    assert "ip saddr 203.0.113.0/24 tcp dport 22 accept" in ruleset
    assert "ip saddr @private_networks tcp dport 8080 accept" in ruleset
    assert "ip daddr 0.0.0.0/0 accept" in ruleset
    assert firewall_config["runcmd"] == [["/usr/local/sbin/failover-firewall"]]
    assert firewall_config["packages"] == ["nftables"]

    web_2 = user_data_of(target, instances["social-app-web-2"])
    assert user_data_parts(web_2)[0] == ("x-shellscript", SHELL_SCRIPT)
    web_3 = user_data_of(target, instances["social-app-web-3"])
    assert web_3.startswith("#cloud-config\n") and "/etc/failover/firewall.nft" in web_3
    assert user_data_of(target, instances["social-app-batch"]) is None  # no security group: nothing added

    assert outputs["web-1"]["firewall"] == "cloud-init nftables"
    assert outputs["web-1"]["security_groups"] == ["sg-0web"]
    assert outputs["batch"]["firewall"] == "none"


def test_a_security_group_missing_from_the_snapshot_fails_the_plan(no_firewall_api, target) -> None:
    snapshot = manifest(node("web-1", "i-0001", firewalls=["sg-0gone"]))

    with pytest.raises(InputError, match="security group sg-0gone of node web-1 .* is not in the snapshot"):
        ProvisionNodes().plan(context(no_firewall_api, snapshot), ProvisionNodesParams())


# -- DigitalOcean's real driver, on libcloud's recorded responses ------------------------------


def test_digitalocean_gets_the_nftables_cloud_init_tags_and_the_mapped_size(tmp_path: Path) -> None:
    from libcloud.compute.drivers.digitalocean import DigitalOceanNodeDriver

    from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses
    from providers.libcloud.drivers import forget_adapters

    ensure_libcloud_test_secrets()
    from libcloud.test.compute.test_digitalocean_v2 import DigitalOceanComputeMockHttp

    created: list[dict[str, Any]] = []

    class CreatingDroplets(DigitalOceanComputeMockHttp):
        """The recordings, and a droplet creation that answers with the droplet asked for."""

        def _v2_droplets(self, method, url, body, headers):
            if method != "POST":
                return super()._v2_droplets(method, url, body, headers)
            request = json.loads(body)
            created.append(request)
            droplet = json.loads(self.fixtures.load("list_node.json"))["droplet"]
            droplet.update(id=4242, name=request["name"], status="new", tags=request.get("tags", []))
            return 202, json.dumps({"droplet": droplet}), {}, "Accepted"

    config = write_config(tmp_path, {
        "compute": {"driver": "digitalocean", "location": "nyc1", "options": {"key": "do-token", "api_version": "v2"}},
        "sizes": {"t3.medium": "1gb"},
    })
    snapshot = manifest(WEB_GROUP, node("web-1", "i-0001", firewalls=["sg-0web"], user_data=SHELL_SCRIPT))
    forget_adapters()
    with recorded_responses(DigitalOceanNodeDriver, CreatingDroplets):
        outputs = apply(context(config, snapshot), {"wait": False})
    forget_adapters()

    [request] = created
    assert request["name"] == "social-app-web-1"
    assert request["size"] == "1gb" and request["region"] == "nyc1"
    assert request["image"] == "119192817"  # Ubuntu 14.04 x64, mapped from the source's Ubuntu 14.04
    assert "failover-run:run-1" in request["tags"] and "failover-source:i-0001" in request["tags"]
    parts = dict(user_data_parts(request["user_data"]))
    assert parts["x-shellscript"] == SHELL_SCRIPT
    assert "ip saddr 0.0.0.0/0 tcp dport 80 accept" in parts["cloud-config"]
    assert outputs["web-1"]["id"] == "4242" and outputs["web-1"]["firewall"] == "cloud-init nftables"


# -- Linode (API v4) and Vultr (API v2): their real drivers, on libcloud's recorded responses ----

FOCAL = "ubuntu/images/hvm-ssd/ubuntu-focal-20.04-amd64-server-20230517"


def provision_on_recordings(tmp_path: Path, driver_cls: type, mock_cls: type, compute: dict[str, Any]) -> dict[str, Any]:
    """``provision-nodes`` of one web node (t3.medium, Ubuntu 20.04, in sg-0web) onto ``compute``,
    its driver answered by ``mock_cls``; the action's outputs."""
    from failover.testing.libcloud_fixtures import recorded_responses
    from providers.libcloud.drivers import forget_adapters

    config = write_config(tmp_path, {"compute": compute})
    source = node("web-1", "i-0001", firewalls=["sg-0web"], user_data=SHELL_SCRIPT, image_id="ami-focal", image_name=FOCAL)
    forget_adapters()
    try:
        with recorded_responses(driver_cls, mock_cls):
            return apply(context(config, manifest(WEB_GROUP, source)), {"wait": False})
    finally:
        forget_adapters()


def assert_the_source_user_data_and_the_nftables(user_data: str) -> None:
    parts = dict(user_data_parts(user_data))
    assert parts["x-shellscript"] == SHELL_SCRIPT
    assert "ip saddr 0.0.0.0/0 tcp dport 80 accept" in parts["cloud-config"]
    assert "/etc/failover/firewall.nft" in parts["cloud-config"]


def test_linode_v4_gets_the_nftables_cloud_init_tags_and_the_mapped_size_and_image(tmp_path: Path) -> None:
    from libcloud.compute.drivers.linode import LinodeNodeDriverV4

    from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets

    ensure_libcloud_test_secrets()
    from libcloud.test.compute.test_linode_v4 import LinodeMockHttpV4

    created: list[dict[str, Any]] = []

    class CreatingLinodes(LinodeMockHttpV4):
        """The recordings, and an instance creation that answers with the instance asked for."""

        def _v4_linode_instances(self, method, url, body, headers):
            if method != "POST":
                return super()._v4_linode_instances(method, url, body, headers)
            request = json.loads(body)
            created.append(request)
            instance = json.loads(self.fixtures.load("create_node.json"))
            instance.update(
                id=4242, label=request["label"], region=request["region"], type=request["type"],
                image=request.get("image"), tags=request.get("tags", []),
            )
            return 200, json.dumps(instance), {}, "OK"

    outputs = provision_on_recordings(tmp_path, LinodeNodeDriverV4, CreatingLinodes, {
        "driver": "linode", "location": "us-east", "options": {"key": "linode-key", "api_version": "4.0"},
    })

    [request] = created
    assert request["label"] == "social-app-web-1"
    assert request["type"] == "g6-standard-2" and request["region"] == "us-east"
    assert request["image"] == "linode/ubuntu20.04"  # mapped from the source's Ubuntu 20.04
    assert len(request["root_pass"]) >= 32 and request["root_pass"] not in json.dumps(outputs)  # random, not kept
    assert "failover-run:run-1" in request["tags"] and "failover-source:i-0001" in request["tags"]
    user_data = base64.b64decode(request["metadata"]["user_data"]).decode()  # the driver base64-encodes it
    assert_the_source_user_data_and_the_nftables(user_data)
    assert outputs["web-1"]["id"] == "4242" and outputs["web-1"]["firewall"] == "cloud-init nftables"


def test_vultr_v2_gets_the_nftables_cloud_init_and_the_mapped_size_and_image(tmp_path: Path) -> None:
    from libcloud.compute.drivers.vultr import VultrNodeDriverV2

    from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets

    ensure_libcloud_test_secrets()
    from libcloud.test.compute.test_vultr_v2 import VultrMockHttpV2

    created: list[dict[str, Any]] = []

    class CreatingInstances(VultrMockHttpV2):
        """The recordings, and an instance creation that answers with the instance asked for."""

        def _v2_instances(self, method, url, body, headers):
            if method != "POST":
                return super()._v2_instances(method, url, body, headers)
            request = json.loads(body)
            created.append(request)
            instance = json.loads(self.fixtures.load("create_node.json"))["instance"]
            instance.update(id="4242", label=request["label"], region=request["region"], plan=request["plan"])
            return 202, json.dumps({"instance": instance}), {}, "Accepted"

    outputs = provision_on_recordings(tmp_path, VultrNodeDriverV2, CreatingInstances, {
        "driver": "vultr", "location": "ewr", "options": {"key": "vultr-key", "api_version": "2"},
    })

    [request] = created
    assert request["label"] == "social-app-web-1"
    assert request["plan"] == "vc2-2c-4gb" and request["region"] == "ewr"
    # Ubuntu 20.04 x64, mapped from the source's Ubuntu 20.04; the driver passes on the id it is given, a string
    assert request["os_id"] == "387"
    assert "tag" not in request and "tags" not in request  # Vultr v2's create_node takes no labels
    user_data = base64.b64decode(request["user_data"]).decode()  # the driver base64-encodes it
    assert_the_source_user_data_and_the_nftables(user_data)
    assert outputs["web-1"]["id"] == "4242" and outputs["web-1"]["firewall"] == "cloud-init nftables"


# -- parallel creation -----------------------------------------------------------------------


def test_nodes_are_created_in_parallel(config, target, monkeypatch: pytest.MonkeyPatch) -> None:
    from providers.libcloud.compute import LibcloudCompute

    snapshot = manifest(*(node(f"web-{i}", f"i-000{i}") for i in range(4)))
    threads: set[str] = set()
    create = LibcloudCompute.create_node

    def recording_create(self, *args, **kwargs):
        threads.add(threading.current_thread().name)
        return create(self, *args, **kwargs)

    monkeypatch.setattr(LibcloudCompute, "create_node", recording_create)
    apply(context(config, snapshot))

    assert len(threads) > 1
    assert len(live_instances(target)) == 4


def test_user_data_naming_the_old_public_addresses_is_a_warning_in_the_plan(config, target) -> None:
    advertises = "#!/bin/sh\necho 'advertise 198.51.100.20' > /etc/motd\n"
    snapshot = manifest(
        node("web-1", "i-0001", public_ip="198.51.100.20", user_data=advertises),
        node("web-2", "i-0002", public_ip="198.51.100.2", user_data="#!/bin/sh\necho 198.51.100.200\n"),
    )
    unrewritten = ProvisionNodesParams(rewrite_endpoints=False)
    changes = ProvisionNodes().plan(context(config, snapshot), unrewritten)

    warnings = [c for c in changes if c.kind == "user_data"]
    assert [(c.operation, c.name) for c in warnings] == [("check", "social-app-web-1")]  # .200 is not .20 nor .2
    assert warnings[0].detail == ("warning: the user data names the source's address 198.51.100.20; "
                                  "it is copied unchanged and will not point at the target")

    # rewriting (the default): the address has no counterpart (its node is built in this very step,
    # and no DNS name points at it), so it is a warning of the substitution map, naming the node
    changes = ProvisionNodes().plan(context(config, snapshot), ProvisionNodesParams())
    warnings = [c for c in changes if c.kind == "user_data"]
    assert [(c.operation, c.name) for c in warnings] == [("check", "198.51.100.20")]
    assert "web-1 (i-0001) has no counterpart" in warnings[0].detail
    assert warnings[0].detail.endswith("left unchanged in social-app-web-1")
