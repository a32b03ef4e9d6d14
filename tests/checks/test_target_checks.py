"""The checks of the target itself, against real peers: target-credentials (EC2 on a
moto_server, Azurite, PowerDNS), target-location and node-mapping (EC2 on moto)."""

from __future__ import annotations

import base64
import json

import pytest
from checkkit import SECRETS, Kit, bucket, database, node, zone

from failover.errors import ConfigError
from failover.testing.servers import free_port

WRONG_AZURE_KEY = base64.b64encode(b"not the account key of devstoreaccount1").decode()
WRONG_PDNS_KEY = "not-the-pdns-api-key"


def everything(result: object) -> str:
    """A check's detail and data as one text, to search for what must never be there."""
    return result.detail + json.dumps(result.data)


# -- target-credentials ----------------------------------------------------------------------


def test_credentials_pass_when_every_capability_answers(kit: Kit) -> None:
    kit.snapshot(bucket("media", 1), zone("creds.example.", ("creds.example.", "A", 60, ["192.0.2.1"])))
    result = kit.run("target-credentials")
    assert result.status == "pass", result.detail
    assert result.detail.startswith("compute ok (")  # the locations moto's EC2 lists
    assert f"storage ok (container {kit.prefix}media absent)" in result.detail
    assert "dns ok (zone creds.example. absent)" in result.detail
    assert {name: entry["ok"] for name, entry in result.data.items()} == {"compute": True, "storage": True, "dns": True}


def test_an_unset_secret_fails_naming_the_capability_the_variable_and_the_field(kit: Kit) -> None:
    kit.monkeypatch.delenv(SECRETS["dns"])
    result = kit.run("target-credentials")
    assert result.status == "fail"
    assert result.detail.startswith(f"dns: environment variable {SECRETS['dns']} is not set "
                                    "(targets.fallback.dns.options.key)")
    assert "compute ok" in result.detail and "storage ok" in result.detail


def test_refused_credentials_fail_naming_the_capability_and_never_the_secret(kit: Kit) -> None:
    kit.monkeypatch.setenv(SECRETS["storage"], WRONG_AZURE_KEY)
    kit.monkeypatch.setenv(SECRETS["dns"], WRONG_PDNS_KEY)
    result = kit.run("target-credentials")
    assert result.status == "fail"
    assert result.data["storage"]["ok"] is False and result.data["dns"]["ok"] is False
    assert result.data["compute"]["ok"] is True
    storage, dns = result.data["storage"]["detail"], result.data["dns"]["detail"]
    assert storage.startswith("storage target (azure_blobs): look up container ") and "credentials refused" in storage
    assert dns.startswith("dns target (powerdns): ") and "credentials refused" in dns
    assert "storage: storage target (azure_blobs)" in result.detail and "dns: dns target (powerdns)" in result.detail
    for secret in (WRONG_AZURE_KEY, WRONG_PDNS_KEY):
        assert secret not in everything(result)


def test_an_unreachable_target_is_a_failed_check(kit: Kit) -> None:
    compute = kit.compute()
    compute["options"]["port"] = free_port()  # nobody listens there
    kit.write(profile=kit.profile(compute=compute))
    result = kit.run("target-credentials")
    assert result.status == "fail"
    assert result.detail.startswith("compute: compute target (failover.testing.ec2_shim:MotoEC2NodeDriver): ")
    assert "provider unreachable (connection refused)" in result.detail


def test_only_the_capabilities_the_profile_configures_are_probed(kit: Kit) -> None:
    kit.write(profile={"dns": kit.dns()})
    result = kit.run("target-credentials")
    assert result.status == "pass", result.detail
    assert set(result.data) == {"dns"} and result.detail == "dns ok (zones listed)"


def test_a_driver_libcloud_does_not_have_is_an_input_error_before_any_check(kit: Kit) -> None:
    kit.write(profile={"dns": kit.dns(driver="nosuchdns")})
    with pytest.raises(ConfigError, match="dns.driver: 'nosuchdns' is neither a libcloud provider name"):
        kit.run("target-credentials")  # failover check exits 2: the profile is resolved before the checks run


# -- target-location -------------------------------------------------------------------------


def test_a_known_location_passes(kit: Kit) -> None:
    result = kit.run("target-location")
    assert result.status == "pass", result.detail
    assert result.data["name"] == "us-east-1a"
    assert "(us-east-1a), one of " in result.detail


def test_an_unknown_location_fails_naming_what_the_target_has(kit: Kit) -> None:
    kit.write(profile=kit.profile(compute=kit.compute(location="mars-north-1")))
    result = kit.run("target-location")
    assert result.status == "fail"
    assert result.detail.startswith("targets.fallback.compute.location: 'mars-north-1' is not a location of "
                                    "failover.testing.ec2_shim:MotoEC2NodeDriver (it has: ")
    assert result.data["location"] == "mars-north-1" and result.data["known"]


def test_no_location_or_no_compute_passes_with_nothing_to_check(kit: Kit) -> None:
    kit.write(profile=kit.profile(compute=kit.compute(location=None)))
    unset = kit.run("target-location")
    assert unset.status == "pass" and unset.detail.startswith("no compute.location set: ")
    kit.write(profile={"storage": kit.storage()})
    none = kit.run("target-location")
    assert (none.status, none.detail) == ("pass", "no compute target in the profile: no location to check")


# -- node-mapping ----------------------------------------------------------------------------


def test_every_node_maps_onto_a_size_and_an_image(kit: Kit) -> None:
    kit.snapshot(node("web-1", "i-web1"), node("worker-1", "i-worker1", instance_type="t3.large", vcpus=2,
                                                memory_mib=8192), node("old-1", "i-old1", state="terminated"))
    result = kit.run("node-mapping")
    assert result.status == "pass", result.detail
    assert set(result.data["nodes"]) == {"web-1 (i-web1)", "worker-1 (i-worker1)"}  # not the terminated one
    assert all(entry["size"] and entry["image"] == "ami-1e749f67" for entry in result.data["nodes"].values())
    assert result.detail.startswith("2 nodes mapped onto ")


def test_a_scaling_groups_nodes_are_mapped_from_its_launch_spec_not_its_members(kit: Kit) -> None:
    from failover.manifest import LaunchSpec, NodeGroup

    launch = LaunchSpec(source="launch_template", id="lt-1", instance_type="t3.large", vcpus=2, memory_mib=8192,
                        image_id="ami-1e749f67", image_name="ubuntu/images/hvm-ssd/ubuntu-trusty-14.04-amd64-server-20170727")
    group = NodeGroup(id="front", name="front", region="us-east-1", min_size=1, max_size=4, desired=2,
                      launch=launch, members=["i-m1"])
    # the member's image has no equivalent: it would fail the check if it were mapped
    member = node("front", "i-m1", group="front", image_id="ami-0amzn", image_name="al2023-ami-2023.4.20240401.0")
    kit.snapshot(node("web-1", "i-web1"), member, group)
    result = kit.run("node-mapping")
    assert result.status == "pass", result.detail
    assert set(result.data["nodes"]) == {"web-1 (i-web1)", "front-1 (front#1)", "front-2 (front#2)"}
    assert result.detail.startswith("3 nodes mapped onto ")


def test_an_override_naming_no_size_fails_naming_the_node_and_the_override(kit: Kit) -> None:
    kit.write(profile=kit.profile(sizes={"t3.medium": "no-such-size"}))
    kit.snapshot(node("web-1", "i-web1"), node("web-2", "i-web2"), node("worker-1", "i-w1", instance_type="t3.large"))
    result = kit.run("node-mapping")
    assert result.status == "fail"
    assert result.detail.startswith("2 of 3 nodes cannot be mapped: ")
    assert ("web-1 (i-web1): sizes override t3.medium: 'no-such-size' names no size the target offers"
            in result.detail)
    assert "web-2 (i-web2): sizes override" in result.detail and "worker-1" not in result.detail
    assert result.data["nodes"]["worker-1 (i-w1)"]["size"] is not None


def test_an_image_with_no_equivalent_fails_naming_why(kit: Kit) -> None:
    kit.snapshot(node("web-1", "i-web1", image_id="ami-0amzn", image_name="al2023-ami-2023.4.20240401.0-kernel-6.1-x86_64"))
    result = kit.run("node-mapping")
    assert result.status == "fail"
    assert result.detail.startswith("1 of 1 node cannot be mapped: web-1 (i-web1): ")
    assert "Amazon Linux" in result.detail
    assert result.data["nodes"]["web-1 (i-web1)"] == {"size": result.data["nodes"]["web-1 (i-web1)"]["size"],
                                                      "image": None}


def test_nodes_without_a_compute_target_fail(kit: Kit) -> None:
    kit.write(profile={"storage": kit.storage()})
    kit.snapshot(node("web-1", "i-web1"))
    result = kit.run("node-mapping")
    assert result.status == "fail"
    assert result.detail == ("the target profile has no compute (targets.fallback.compute), and the snapshot has "
                             "1 node to recreate")


def test_the_database_nodes_the_playbook_would_create_are_mapped_too(kit: Kit) -> None:
    # standard restores databases on new Ubuntu 22.04 nodes unless given a DSN; moto has no such image
    kit.snapshot(node("web-1", "i-web1"), database("orders-db"))
    result = kit.run("node-mapping")
    assert result.status == "fail", result.detail
    assert result.detail.startswith("1 of 2 nodes cannot be mapped: database orders-db: no target image of Ubuntu 22.04")
    assert result.detail.endswith("add an images override for ubuntu-22.04-lts")
    assert result.data["databases"] == ["orders-db"]
    assert result.data["nodes"]["web-1 (i-web1)"]["image"] is not None

    kit.write(profile=kit.profile(images={"ubuntu-22.04-lts": "ami-1e749f67"}))  # the override restore-databases honours
    result = kit.run("node-mapping")
    assert result.status == "pass", result.detail
    assert result.detail.startswith("2 nodes (with 1 database node) mapped onto ")
    assert {entry["image"] for entry in result.data["nodes"].values()} >= {"ami-1e749f67"}
    assert len(result.data["nodes"]) == 2


def test_a_database_restore_databases_would_refuse_fails_the_mapping(kit: Kit) -> None:
    kit.write(profile=kit.profile(images={"ubuntu-22.04-lts": "ami-1e749f67"}))
    kit.snapshot(database("orders-db", version="9.6; touch /tmp/x"), database("users-db"))
    result = kit.run("node-mapping")
    assert result.status == "fail", result.detail
    assert result.detail == ("1 of 2 nodes cannot be mapped: database orders-db: "
                             "engine version '9.6; touch /tmp/x' is not digits and dots: refused")
    assert result.data["databases"] == ["users-db"] and list(result.data["refused"]) == ["orders-db"]


def test_databases_restored_into_a_dsn_need_no_node(kit: Kit) -> None:
    kit.snapshot(node("web-1", "i-web1"), database("orders-db"))
    result = kit.run("node-mapping", vars={"database_dsn_env": "ORDERS_TARGET_DSN"})  # set or not: no value is read
    assert result.status == "pass", result.detail
    assert result.data["databases"] == [] and list(result.data["nodes"]) == ["web-1 (i-web1)"]
