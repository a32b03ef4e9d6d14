"""A service behind a classic ELB fails over with ``run standard`` and comes back behind a load
balancer: a HAProxy node on the target (EC2 on moto) in front of the new nodes, DNS (PowerDNS)
pointing at it, read back from the emulators; the HAProxy configuration that run wrote into the
node's cloud-init is then run by the real HAProxy on 127.0.0.1 (moto's addresses lead nowhere,
so its servers are pointed at two local backends, one failing its health check) and answers
through it. Rollback removes the load balancer; a SIGKILL while it is being built, then
``resume``, leaves exactly one."""

from __future__ import annotations

import base64
import contextlib
import re
import shutil
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import yaml
from e2ekit import rollback, run_standard, started_world, step
from httpkit import Backend, free_port

from failover.cloudinit import cloud_config_parts
from failover.haproxy import CONFIG_PATH
from failover.testing.world import EmulatedWorld

SERVICE = "shop"
ZONE = "shop.example."
LB_NODE = "shop-lb-shop-front"
WEB_NODES = {"shop-web-a", "shop-web-b"}


def source(world: EmulatedWorld, service: str, region: str = "us-east-1") -> Any:
    return boto3.client(service, region_name=region, endpoint_url=world.source.url, aws_access_key_id="testing",
                        aws_secret_access_key="testing")


def seed_classic_service(world: EmulatedWorld) -> str:
    """Two web nodes behind a classic ELB (HTTP 80 -> 8080, health check HTTP:8080/healthz), the
    zone's apex aliased and www CNAMEd to it. The ELB's DNS name."""
    tags = [{"Key": "service", "Value": SERVICE}]
    ec2 = source(world, "ec2")
    image = next(i["ImageId"] for i in ec2.describe_images(Owners=["amazon"])["Images"]
                 if "ubuntu-trusty-14.04-amd64-server" in (i.get("Name") or ""))
    ids = []
    for name in ("web-a", "web-b"):
        [instance] = ec2.run_instances(ImageId=image, InstanceType="t3.small", MinCount=1, MaxCount=1, TagSpecifications=[
            {"ResourceType": "instance", "Tags": [*tags, {"Key": "Name", "Value": name}]}])["Instances"]
        ids.append(instance["InstanceId"])
    elb = source(world, "elb")
    dns_name = elb.create_load_balancer(
        LoadBalancerName="shop-front", AvailabilityZones=["us-east-1a"], Tags=tags,
        Listeners=[{"Protocol": "HTTP", "LoadBalancerPort": 80, "InstanceProtocol": "HTTP", "InstancePort": 8080}],
    )["DNSName"]
    elb.register_instances_with_load_balancer(LoadBalancerName="shop-front", Instances=[{"InstanceId": i} for i in ids])
    elb.configure_health_check(LoadBalancerName="shop-front", HealthCheck={
        "Target": "HTTP:8080/healthz", "Interval": 5, "Timeout": 2, "UnhealthyThreshold": 2, "HealthyThreshold": 2})
    route53 = source(world, "route53")
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="front-door")["HostedZone"]["Id"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.rsplit("/", 1)[-1], AddTags=tags)
    alias = {"HostedZoneId": "Z35SXDOTRQ7X7K", "DNSName": f"dualstack.{dns_name}", "EvaluateTargetHealth": False}
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": [
        {"Action": "CREATE", "ResourceRecordSet": {"Name": ZONE, "Type": "A", "AliasTarget": alias}},
        {"Action": "CREATE", "ResourceRecordSet": {"Name": f"www.{ZONE}", "Type": "CNAME", "TTL": 300,
                                                   "ResourceRecords": [{"Value": dns_name}]}},
    ]})
    return dns_name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmulatedWorld]:
    with started_world(workdir=tmp_path_factory.mktemp("front-door")) as started:
        seed_classic_service(started)
        config = yaml.safe_load(started.config_path.read_text(encoding="utf-8"))
        config.update(service=SERVICE)
        config["source"].update(select={"tags": {"service": SERVICE}}, regions=["us-east-1"])
        config.pop("databases", None)
        started.config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        taken = started.failover("inventory", "--json")
        assert taken.code == 0, taken.stderr
        assert taken.json()["snapshot"]["counts"]["load_balancer"] == 1
        yield started


def node_user_data(world: EmulatedWorld, instance_id: str) -> str:
    answer = world.compute_client().describe_instance_attribute(InstanceId=instance_id, Attribute="userData")
    return base64.b64decode(answer["UserData"]["Value"]).decode()


def haproxy_config(world: EmulatedWorld, instance_id: str) -> str:
    [config] = cloud_config_parts(node_user_data(world, instance_id))
    return next(item["content"] for item in config["write_files"] if item["path"] == CONFIG_PATH)


def lb_nodes(world: EmulatedWorld) -> list[dict[str, Any]]:
    return [node for node in world.target_instances()
            if any(tag["Key"] == "Name" and tag["Value"] == LB_NODE for tag in node.get("Tags", []))]


def run_locally(config: str, servers: dict[str, int], port: int, directory) -> subprocess.Popen:
    """The node's configuration on 127.0.0.1: its frontend on ``port``, each server's address
    replaced by a local backend's (``servers``: new private address -> local port); the daemon
    settings of a node (user, socket, syslog) left out."""
    local = []
    for line in config.splitlines():
        stripped = line.strip()
        if stripped.startswith(("user ", "group ", "daemon", "stats socket")):
            continue
        if stripped.startswith("log /dev/log"):
            line = "    log stdout format raw local0"
        if stripped.startswith("bind :::80 "):
            line = f"    bind 127.0.0.1:{port}"
        if match := re.match(r"(\s+server \S+ )(\S+):8080(.*)", line):
            assert " port " not in match[3]  # checked on the traffic port: the one replaced here
            line = f"{match[1]}127.0.0.1:{servers[match[2]]}{match[3]}"
        local.append(line)
    path = directory / "haproxy.cfg"
    path.write_text("\n".join(local) + "\n")
    checked = subprocess.run([shutil.which("haproxy") or "haproxy", "-c", "-f", str(path)], capture_output=True,
                             text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    return subprocess.Popen([shutil.which("haproxy") or "haproxy", "-db", "-f", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 (a local URL)
        return answer.read().decode()


def test_a_classic_elb_service_comes_back_behind_a_load_balancer_and_rollback_removes_it(world, tmp_path) -> None:
    planned = world.failover("plan", "standard", "--target", world.target, "--json", *world.run_vars)
    assert planned.code == 0, planned.stderr
    [front] = [s for s in planned.json()["steps"] if s["id"] == "front-door"]
    assert [(c["operation"], c["name"]) for c in front["changes"] if c["kind"] == "load_balancer"] == [("create", LB_NODE)]

    ran = run_standard(world)
    assert ran.code == 0, ran.stderr
    document = ran.json()

    # from the emulators: the load-balancer node, its HAProxy in front of the new web nodes
    nodes = world.target_nodes()
    assert set(nodes) == WEB_NODES | {LB_NODE}
    balancer = nodes[LB_NODE]
    config = haproxy_config(world, balancer.id)
    web_private = sorted(nodes[name].private_ip for name in WEB_NODES)
    assert sorted(re.findall(r"server s\d (\S+):8080 check", config)) == web_private
    assert "http-check send meth GET uri /healthz" in config and "bind :::80 v4v6" in config
    outputs = step(document, "front-door")["outputs"]
    assert outputs["load_balancers"]["shop-front"]["address"] == balancer.public_ip
    # DNS on PowerDNS: the apex alias and the www CNAME that named the ELB name the new balancer
    assert world.dns(ZONE, "A") == [balancer.public_ip]
    assert world.dns(f"www.{ZONE}", "A") == [balancer.public_ip]
    assert world.dns(f"www.{ZONE}", "CNAME") == []

    # requests through the proxy that run configured, one backend failing its health check
    healthy, failing = Backend("healthy", 200), Backend("failing", 500)
    port = free_port()
    process = run_locally(config, dict(zip(web_private, (healthy.port, failing.port), strict=True)), port, tmp_path)
    try:
        answers: list[str] = []
        for _ in range(600):  # bounded wait until HAProxy answers and has taken the failing one out
            with contextlib.suppress(OSError):  # not listening yet
                answers.append(fetch(f"http://127.0.0.1:{port}/"))
            if answers[-10:] == ["healthy"] * 10:
                break
            threading.Event().wait(0.1)  # its checks run every 5 s (the ELB's interval), 2 failures to go down
        assert answers[-10:] == ["healthy"] * 10, answers
        assert {fetch(f"http://127.0.0.1:{port}/") for _ in range(10)} == {"healthy"}
    finally:
        process.terminate()
        process.wait(timeout=10)
        healthy.stop()
        failing.stop()

    rollback(world, document["run_id"])
    assert lb_nodes(world) == [] and set(world.target_nodes()) == set()
    assert world.dns(f"www.{ZONE}", "A") == []


def test_killed_while_the_balancer_is_built_then_resumed_leaves_exactly_one(world) -> None:
    assert world.target_nodes() == {}  # the test before rolled its run back
    process = world.start_failover("run", "standard", "--target", world.target, "--yes", *world.run_vars)
    run_id = None
    for line in process.stderr:
        if announced := re.match(r"^Run (run-\S+) ", line):
            run_id = announced.group(1)
            break
    for _ in range(1200):  # until the load-balancer node exists on the target (bounded)
        if lb_nodes(world) or process.poll() is not None:
            break
        threading.Event().wait(0.05)
    process.kill()
    _, err = process.communicate(timeout=60)
    assert run_id is not None, err

    resumed = world.failover("resume", run_id, "--json")
    assert resumed.code == 0, resumed.stderr
    assert resumed.json()["status"] == "succeeded"
    assert len(lb_nodes(world)) == 1
    assert world.dns(ZONE, "A") == [world.target_nodes()[LB_NODE].public_ip]

    rollback(world, run_id)
    assert lb_nodes(world) == []
