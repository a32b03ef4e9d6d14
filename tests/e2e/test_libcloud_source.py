"""Issue 13's live acceptance: a service whose compute is read through libcloud's EC2 driver
from one moto_server, its storage from Azurite and its DNS from PowerDNS (``source.provider:
libcloud``) is inventoried and replicated, then, with every source process stopped, planned
and failed over with the real CLI onto a second provider set, AWS through libcloud (EC2, S3
through libcloud's ``s3`` driver and Route53 through its Route53 driver, on a second
moto_server), and checked on the emulators themselves."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from failover.config import DnsSpec
from failover.demo import HealthServer
from failover.testing.emulators import Azurite, EmulatorMissing, PowerDns
from failover.testing.servers import MotoServer
from failover.testing.world import EC2_SHIM, ROUTE53_SHIM, failover_command
from providers.libcloud.dns import LibcloudDns

logging.getLogger("werkzeug").setLevel(logging.ERROR)

SERVICE = "social-app"
CONTAINER = "social-media"
ZONE = "social.example."
UBUNTU_IMAGE = "ami-1e749f67"  # Ubuntu 14.04 in moto's catalogue (every account has it)
USER_DATA = "#!/bin/sh\necho social-app > /etc/motd\n"
OBJECTS = {f"avatars/user-{i}.png": b"\x89PNG" + bytes(100 * i) for i in range(8)} | {"posts/café.txt": b"bonjour"}
SECRETS = {"SRC_EC2_SECRET": "source-moto-secret", "SRC_AZ_KEY": "", "SRC_PDNS_KEY": "source-pdns-key",
           "TGT_MOTO_SECRET": "target-moto-secret"}


@dataclass
class Clouds:
    workdir: Path
    source_ec2: MotoServer
    azurite: Azurite
    source_dns: PowerDns
    target: MotoServer
    app: HealthServer
    seeded: dict[str, Any]

    def env(self) -> dict[str, str]:
        keep = {key: value for key, value in os.environ.items() if not key.startswith("AWS_") and key != "FAILOVER_CONFIG"}
        secrets = {**SECRETS, "SRC_AZ_KEY": self.azurite.driver_options["secret"]}
        return {**keep, **secrets, "FAILOVER_CONFIG": str(self.workdir / "failover.yaml"),
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "COLUMNS": "300"}

    def failover(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([*failover_command(), *args], cwd=self.workdir, capture_output=True, text=True,
                              env=self.env(), timeout=300, check=False)


def _started(emulator: Any) -> Any:
    try:
        return emulator.start()
    except EmulatorMissing as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.fixture(scope="module")
def clouds(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Clouds]:
    workdir = tmp_path_factory.mktemp("libcloud-source")
    started: list[Any] = []
    try:
        for emulator in (Azurite(), PowerDns(api_key=SECRETS["SRC_PDNS_KEY"]),
                         MotoServer(log=workdir / "source-moto.log"), MotoServer(log=workdir / "target-moto.log"),
                         HealthServer()):
            started.append(_started(emulator))
        azurite, source_dns, source_ec2, target, app = started
        found = Clouds(workdir, source_ec2, azurite, source_dns, target, app, {})
        found.seeded = seed(found)
        write_config(found)
        yield found
    finally:
        for emulator in reversed(started):
            emulator.stop()


def seed(clouds: Clouds) -> dict[str, Any]:
    """The service on the source: two tagged web nodes (user data, a security group) and an
    untagged neighbour on EC2; a container of objects (and another) on Azurite; a zone on PowerDNS
    whose apex points at the first web node."""
    from libcloud.storage.providers import get_driver as storage_driver

    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=clouds.source_ec2.url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    tags = [{"Key": "service", "Value": SERVICE}]
    group = ec2.create_security_group(GroupName="social-web", Description="web tier",
                                      TagSpecifications=[{"ResourceType": "security-group", "Tags": tags}])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 80, "ToPort": 80, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    nodes = {}
    for name in ("web-1", "web-2"):
        nodes[name] = ec2.run_instances(
            ImageId=UBUNTU_IMAGE, InstanceType="t3.small", MinCount=1, MaxCount=1, UserData=USER_DATA,
            SecurityGroupIds=[group],
            TagSpecifications=[{"ResourceType": "instance", "Tags": [*tags, {"Key": "Name", "Value": name},
                                                                     {"Key": "role", "Value": "web"}]}],
        )["Instances"][0]
    ec2.run_instances(ImageId=UBUNTU_IMAGE, InstanceType="t3.micro", MinCount=1, MaxCount=1,
                      TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "service", "Value": "other"}]}])
    web_ip = ec2.describe_instances(InstanceIds=[nodes["web-1"]["InstanceId"]])["Reservations"][0]["Instances"][0][
        "PublicIpAddress"]

    storage = storage_driver("azure_blobs")(**clouds.azurite.driver_options)
    for name, objects in ((CONTAINER, OBJECTS), ("other-data", {"x.txt": b"not the service's"})):
        container = storage.create_container(name)
        for key, body in objects.items():
            storage.upload_object_via_stream(iter([body]), container, key)

    # seeded through failover's own PowerDNS adapter, which knows the API's quirks (a new adapter: not shared)
    dns = LibcloudDns(DnsSpec(driver="powerdns", options=clouds.source_dns.driver_options,
                              nameservers=["ns1.source.example."]))
    zone = dns.create_zone(ZONE)
    dns.set_record(zone, ZONE, "A", 300, [web_ip])
    dns.set_record(zone, f"www.{ZONE}", "CNAME", 300, [ZONE])
    dns.set_record(zone, ZONE, "TXT", 300, ['"v=spf1 -all"'])
    return {"nodes": {name: node["InstanceId"] for name, node in nodes.items()}, "group": group, "web_ip": web_ip}


def write_config(clouds: Clouds) -> None:
    def http(port: int, **options: Any) -> dict[str, Any]:
        return {**options, "host": "127.0.0.1", "port": port, "secure": False}

    source = {
        "provider": "libcloud",
        "compute": {"driver": EC2_SHIM, "options": http(clouds.source_ec2.port, key="testing",
                                                         secret="${env:SRC_EC2_SECRET}")},
        "storage": {"driver": "azure_blobs", "options": http(clouds.azurite.port, key="devstoreaccount1",
                                                             secret="${env:SRC_AZ_KEY}")},
        "dns": {"driver": "powerdns", "options": http(clouds.source_dns.api_port, key="${env:SRC_PDNS_KEY}",
                                                      api_version="v1")},
        "select": {"tags": {"service": SERVICE}, "containers": [CONTAINER], "zones": [ZONE]},
    }
    target = {
        "compute": {"driver": EC2_SHIM, "options": http(clouds.target.port, key="testing", secret="${env:TGT_MOTO_SECRET}")},
        # AWS as the whole target through libcloud: its S3 driver and its Route53 driver (the shim fixes only what
        # moto answers differently from AWS) on the target moto_server.
        "storage": {"driver": "s3", "options": http(clouds.target.port, key="testing", secret="${env:TGT_MOTO_SECRET}",
                                                    region="us-east-1"),
                    "container_prefix": "replica-"},
        "dns": {"driver": ROUTE53_SHIM, "options": http(clouds.target.port, key="testing", secret="${env:TGT_MOTO_SECRET}")},
    }
    config = {"service": SERVICE, "state": ".failover", "source": source, "targets": {"fallback": target}}
    (clouds.workdir / "failover.yaml").write_text(yaml.safe_dump(config, sort_keys=False))


@pytest.mark.slow
def test_inventory_replicate_then_fail_over_with_the_source_gone(clouds: Clouds) -> None:
    taken = clouds.failover("inventory", "--json", "--output", "manifest.json")
    assert taken.returncode == 0, taken.stderr
    manifest = json.loads((clouds.workdir / "manifest.json").read_text())
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for resource in manifest["resources"]:
        by_kind.setdefault(resource["kind"], []).append(resource)
    assert manifest["source"]["provider"] == "libcloud"
    nodes = {node["name"]: node for node in by_kind["node"]}
    assert set(nodes) == {"web-1", "web-2"}  # the neighbour tagged service=other is not the service's
    web = nodes["web-1"]
    assert (web["instance_type"], web["vcpus"], web["memory_mib"], web["region"]) == ("t3.small", 2, 2048, "us-east-1")
    assert web["user_data"] == USER_DATA and web["firewalls"] == [clouds.seeded["group"]]
    assert web["image_id"] == UBUNTU_IMAGE and "ubuntu" in web["image_name"].lower()
    (firewall,) = by_kind["firewall"]
    assert {(rule["direction"], rule["protocol"], rule["port_from"], tuple(rule["sources"])) for rule in firewall["rules"]} \
        >= {("ingress", "tcp", 80, ("0.0.0.0/0",))}
    (bucket,) = by_kind["bucket"]
    assert (bucket["id"], bucket["objects"], bucket["bytes"]) == (CONTAINER, len(OBJECTS), sum(map(len, OBJECTS.values())))
    (zone,) = by_kind["dns_zone"]
    records = {(record["name"], record["type"]): record["values"] for record in zone["records"]}
    assert records[(ZONE, "A")] == [clouds.seeded["web_ip"]] and (ZONE, "SOA") in records

    replicated = clouds.failover("replicate", "--target", "fallback", "--json")
    assert replicated.returncode == 0, replicated.stderr

    # The source is gone: compute, storage and DNS all stop answering.
    for emulator in (clouds.source_ec2, clouds.azurite, clouds.source_dns):
        emulator.stop()

    planned = clouds.failover("plan", "standard", "--target", "fallback", "--var", f"health_url={clouds.app.url}")
    assert planned.returncode == 0, planned.stderr
    assert "user_data" not in planned.stderr  # EC2 tells user data: nothing of it is unknown

    ran = clouds.failover("run", "standard", "--target", "fallback", "--yes", "--json",
                          "--var", f"health_url={clouds.app.url}")
    assert ran.returncode == 0, ran.stderr
    document = json.loads(ran.stdout)
    assert document["status"] == "succeeded", document

    # On the target's emulators: the nodes, their firewall, every object, the zone cut over.
    ec2 = boto3.client("ec2", region_name="us-east-1", endpoint_url=clouds.target.url,
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    instances = [item for reservation in ec2.describe_instances()["Reservations"] for item in reservation["Instances"]
                 if item["State"]["Name"] != "terminated"]
    new = {tag["Value"]: item for item in instances for tag in item.get("Tags", []) if tag["Key"] == "failover-source"}
    assert set(new) == set(clouds.seeded["nodes"].values())
    # mapped by vCPUs and memory (2, 2 GiB), the cheapest such size of the target's catalogue
    assert {item["InstanceType"] for item in new.values()} <= {"t3.small", "t3a.small"}
    groups = {group["GroupName"]: group for group in ec2.describe_security_groups()["SecurityGroups"]}
    assert any(any(r.get("FromPort") == 80 for r in group["IpPermissions"]) for name, group in groups.items()
               if name != "default")

    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=clouds.target.url,
                      aws_access_key_id="testing", aws_secret_access_key="testing")
    stored = {item["Key"]: hashlib.md5(s3.get_object(Bucket=f"replica-{CONTAINER}", Key=item["Key"])["Body"].read(),
                                       usedforsecurity=False).hexdigest()
              for item in s3.list_objects_v2(Bucket=f"replica-{CONTAINER}").get("Contents", [])}
    assert stored == {key: hashlib.md5(body, usedforsecurity=False).hexdigest() for key, body in OBJECTS.items()}

    route53 = boto3.client("route53", region_name="us-east-1", endpoint_url=clouds.target.url,
                           aws_access_key_id="testing", aws_secret_access_key="testing")
    (hosted,) = [zone for zone in route53.list_hosted_zones()["HostedZones"] if zone["Name"] == ZONE]
    sets = route53.list_resource_record_sets(HostedZoneId=hosted["Id"])["ResourceRecordSets"]
    apex = [record["Value"] for rrset in sets if rrset["Name"] == ZONE and rrset["Type"] == "A"
            for record in rrset.get("ResourceRecords", [])]
    web_1 = new[clouds.seeded["nodes"]["web-1"]]
    assert apex == [web_1["PublicIpAddress"]] and apex != [clouds.seeded["web_ip"]]
    www = [record["Value"] for rrset in sets if rrset["Name"] == f"www.{ZONE}" and rrset["Type"] == "CNAME"
           for record in rrset.get("ResourceRecords", [])]
    assert [value.rstrip(".") for value in www] == [ZONE.rstrip(".")]
