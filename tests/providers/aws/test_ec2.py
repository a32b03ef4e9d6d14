"""providers.aws.ec2 against moto: every kind's fields, the selection, and the requests made."""

from __future__ import annotations

import base64
import gzip
import threading
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import pytest

from providers.aws import ec2 as ec2_collector
from providers.aws.inventory import Context
from providers.aws.session import AwsSession

REGION = "us-east-1"
SVC = {"service": "svc"}


@pytest.fixture
def ec2(aws):
    return aws("ec2", REGION)


# -- building the mock account ----------------------------------------------------------------

def tagged(resource_type: str, tags: dict[str, str]) -> dict[str, Any]:
    """Keyword arguments that tag a resource at creation; none at all for an untagged one."""
    if not tags:
        return {}
    return {"TagSpecifications": [{"ResourceType": resource_type, "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]}


def linux_image(ec2, architecture: str = "x86_64") -> dict[str, Any]:
    images = ec2.describe_images(
        Owners=["amazon"],
        Filters=[{"Name": "architecture", "Values": [architecture]}, {"Name": "name", "Values": ["al2022-ami-*"]}],
    )["Images"]
    return min(images, key=lambda image: image["ImageId"])


def launch(ec2, image: dict[str, Any], *, tags: dict[str, str] = SVC, root_gib: int = 8, **kwargs: Any) -> str:
    kwargs.setdefault("InstanceType", "t3.micro")
    response = ec2.run_instances(
        ImageId=image["ImageId"],
        MinCount=1,
        MaxCount=1,
        # moto mounts its default root volume at /dev/sda1 whatever the image says: name the root device explicitly
        BlockDeviceMappings=[{"DeviceName": image["RootDeviceName"], "Ebs": {"VolumeSize": root_gib}}],
        **tagged("instance", tags),
        **kwargs,
    )
    return response["Instances"][0]["InstanceId"]


def described(ec2, instance_id: str) -> dict[str, Any]:
    return ec2.describe_instances(InstanceIds=[instance_id])["Reservations"][0]["Instances"][0]


def root_volume_of(ec2, instance_id: str) -> str:
    instance = described(ec2, instance_id)
    return next(m["Ebs"]["VolumeId"] for m in instance["BlockDeviceMappings"] if m["DeviceName"] == instance["RootDeviceName"])


def attached_volume(ec2, instance_id: str, device: str, *, tags: dict[str, str] | None = None, **kwargs: Any) -> str:
    volume_id = ec2.create_volume(AvailabilityZone=f"{REGION}a", **kwargs, **tagged("volume", tags or {}))["VolumeId"]
    ec2.attach_volume(VolumeId=volume_id, InstanceId=instance_id, Device=device)
    return volume_id


def elastic_ip(ec2, tags: dict[str, str] = SVC, instance_id: str | None = None) -> dict[str, str]:
    address = ec2.allocate_address(Domain="vpc", **tagged("elastic-ip", tags))
    if instance_id:
        ec2.associate_address(AllocationId=address["AllocationId"], InstanceId=instance_id)
    return address


@pytest.fixture
def web(ec2) -> SimpleNamespace:
    """A small tagged web service: a VPC, two firewalls, one web node with three volumes and an Elastic IP."""
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", **tagged("vpc", {**SVC, "Name": "svc-vpc"}))["Vpc"]["VpcId"]
    public = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    private = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.2.0/24", AvailabilityZone=f"{REGION}b")["Subnet"]["SubnetId"]

    lb_sg = ec2.create_security_group(
        GroupName="lb", Description="load balancer", VpcId=vpc, **tagged("security-group", SVC)
    )["GroupId"]
    web_sg = ec2.create_security_group(
        GroupName="web", Description="web servers", VpcId=vpc,
        **tagged("security-group", {**SVC, "Name": "web-sg"}),
    )["GroupId"]
    office = ec2.create_managed_prefix_list(PrefixListName="office", MaxEntries=2, AddressFamily="IPv4")["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(GroupId=web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443,
         "IpRanges": [{"CidrIp": "0.0.0.0/0"}], "Ipv6Ranges": [{"CidrIpv6": "::/0"}]},
        {"IpProtocol": "tcp", "FromPort": 8000, "ToPort": 8100, "UserIdGroupPairs": [{"GroupId": lb_sg}]},
        {"IpProtocol": "-1", "PrefixListIds": [{"PrefixListId": office}]},
    ])

    image = linux_image(ec2)
    node = launch(
        ec2, image, tags={**SVC, "Name": "web-1", "role": "web"}, root_gib=30, InstanceType="t3.medium",
        SubnetId=public, SecurityGroupIds=[web_sg], UserData="#!/bin/sh\necho héllo\n",
    )
    # attached out of device order, to see the node list them in device order
    data = attached_volume(ec2, node, "/dev/sdg", Size=50, VolumeType="gp3", tags={**SVC, "Name": "web-1-data"})
    scratch = attached_volume(ec2, node, "/dev/sdf", Size=10)
    address = elastic_ip(ec2, instance_id=node)
    return SimpleNamespace(
        vpc=vpc, subnets=(public, private), lb_sg=lb_sg, web_sg=web_sg, office=office, image=image,
        node=node, root=root_volume_of(ec2, node), data=data, scratch=scratch, address=address,
    )


def resource_dump(manifest, kind: str, resource_id: str) -> dict[str, Any]:
    resource = manifest.find(kind, resource_id)
    assert resource is not None, f"no {kind} {resource_id} in the manifest"
    return resource.model_dump(mode="json")


def ids_of(manifest, kind: str) -> set[str]:
    """The service's own resources of a kind (dependencies, ``owned: false``, apart)."""
    return {r.id for r in manifest.of_kind(kind) if r.owned}


def dependency_ids_of(manifest, kind: str) -> set[str]:
    return {r.id for r in manifest.of_kind(kind) if not r.owned}


# -- each kind's fields -----------------------------------------------------------------------

def test_node_carries_every_field(ec2, web, inventory):
    manifest = inventory(SVC)

    assert resource_dump(manifest, "node", web.node) == {
        "kind": "node",
        "id": web.node,
        "name": "web-1",
        "region": REGION,
        "tags": {"Name": "web-1", "role": "web", "service": "svc"},
        "instance_type": "t3.medium",
        "vcpus": 2,
        "memory_mib": 4096,
        "image_id": web.image["ImageId"],
        "image_name": web.image["Name"],
        "image_description": web.image["Description"],
        "architecture": "x86_64",
        "private_ip": described(ec2, web.node)["PrivateIpAddress"],
        "public_ip": web.address["PublicIp"],
        "firewalls": [web.web_sg],
        "volumes": [web.root, web.scratch, web.data],
        "root_volume_gib": 30,
        "user_data": "#!/bin/sh\necho héllo\n",
        "state": "running",
        "zone": f"{REGION}a",
    }


def test_a_tagged_volume_is_in_its_node_and_a_resource_of_its_own(web, inventory):
    manifest = inventory(SVC)

    assert web.data in manifest.find("node", web.node).volumes
    assert resource_dump(manifest, "volume", web.data) == {
        "kind": "volume",
        "id": web.data,
        "name": "web-1-data",
        "region": REGION,
        "tags": {"Name": "web-1-data", "service": "svc"},
        "size_gib": 50,
        "volume_type": "gp3",
        "attached_to": web.node,
        "device": "/dev/sdg",
        "zone": f"{REGION}a",
    }
    assert ids_of(manifest, "volume") == {web.data}
    # the untagged root and scratch volumes are the node's dependencies: there, never owned
    assert dependency_ids_of(manifest, "volume") == {web.root, web.scratch}
    assert resource_dump(manifest, "volume", web.scratch) == {
        "kind": "volume", "id": web.scratch, "name": web.scratch, "region": REGION, "tags": {}, "owned": False,
        "size_gib": 10, "volume_type": "gp2", "attached_to": web.node, "device": "/dev/sdf", "zone": f"{REGION}a",
    }


def test_an_unattached_volume_and_address_are_attached_to_nothing(ec2, inventory):
    volume = ec2.create_volume(AvailabilityZone=f"{REGION}b", Size=5, **tagged("volume", SVC))["VolumeId"]
    address = elastic_ip(ec2)

    manifest = inventory(SVC)

    assert resource_dump(manifest, "volume", volume) == {
        "kind": "volume", "id": volume, "name": volume, "region": REGION, "tags": SVC,
        "size_gib": 5, "volume_type": "gp2", "attached_to": None, "device": None, "zone": f"{REGION}b",
    }
    assert resource_dump(manifest, "address", address["AllocationId"]) == {
        "kind": "address", "id": address["AllocationId"], "name": address["AllocationId"], "region": REGION,
        "tags": SVC, "ip": address["PublicIp"], "attached_to": None,
    }


def test_firewall_rules_list_ingress_and_egress_as_aws_gives_them(web, inventory):
    manifest = inventory(SVC)

    assert resource_dump(manifest, "firewall", web.web_sg) == {
        "kind": "firewall",
        "id": web.web_sg,
        "name": "web-sg",
        "region": REGION,
        "tags": {"Name": "web-sg", "service": "svc"},
        "description": "web servers",
        "network": web.vpc,
        "rules": [
            {"direction": "egress", "protocol": "-1", "port_from": None, "port_to": None, "sources": ["0.0.0.0/0"]},
            # a prefix list without entries stays a source by its id (apply-firewall says it cannot carry it)
            {"direction": "ingress", "protocol": "-1", "port_from": None, "port_to": None, "sources": [web.office],
             "prefix_lists": [{"id": web.office, "name": "office", "cidrs": []}]},
            {"direction": "ingress", "protocol": "tcp", "port_from": 443, "port_to": 443, "sources": ["0.0.0.0/0", "::/0"]},
            {"direction": "ingress", "protocol": "tcp", "port_from": 8000, "port_to": 8100, "sources": [web.lb_sg]},
        ],
    }
    lb = manifest.find("firewall", web.lb_sg)
    assert lb.name == "lb"  # no Name tag: the group's own name
    assert [rule.model_dump() for rule in lb.rules] == [
        {"direction": "egress", "protocol": "-1", "port_from": None, "port_to": None, "sources": ["0.0.0.0/0"]},
    ]


def test_a_network_lists_all_its_subnets_tagged_or_not(ec2, web, inventory):
    manifest = inventory(SVC)

    public, private = web.subnets
    assert resource_dump(manifest, "network", web.vpc) == {
        "kind": "network",
        "id": web.vpc,
        "name": "svc-vpc",
        "region": REGION,
        "tags": {"Name": "svc-vpc", "service": "svc"},
        "cidr": "10.0.0.0/16",
        "subnets": sorted([
            {"id": public, "cidr": "10.0.1.0/24", "zone": f"{REGION}a"},
            {"id": private, "cidr": "10.0.2.0/24", "zone": f"{REGION}b"},
        ], key=lambda subnet: subnet["id"]),
    }


def test_an_elastic_ip_is_an_address_and_its_nodes_public_ip(web, inventory):
    manifest = inventory(SVC)

    allocation = web.address["AllocationId"]
    assert resource_dump(manifest, "address", allocation) == {
        "kind": "address", "id": allocation, "name": allocation, "region": REGION, "tags": SVC,
        "ip": web.address["PublicIp"], "attached_to": web.node,
    }
    assert manifest.find("node", web.node).public_ip == web.address["PublicIp"]


# -- nodes: states, regions, user data, images ----------------------------------------------

def test_a_stopped_node_has_no_public_ip_and_a_terminated_one_is_left_out(ec2, inventory):
    image = linux_image(ec2)
    running, stopped, terminated = (launch(ec2, image) for _ in range(3))
    elastic_ip(ec2, instance_id=stopped)
    ec2.stop_instances(InstanceIds=[stopped])
    ec2.terminate_instances(InstanceIds=[terminated])

    manifest = inventory(SVC)

    assert ids_of(manifest, "node") == {running, stopped}
    assert manifest.find("node", running).state == "running"
    assert manifest.find("node", running).public_ip == described(ec2, running)["PublicIpAddress"]
    assert manifest.find("node", stopped).state == "stopped"
    assert manifest.find("node", stopped).public_ip is None


def test_nodes_in_two_regions_each_carry_their_region(aws, inventory):
    east, west = aws("ec2", "us-east-1"), aws("ec2", "eu-west-1")
    east_node = launch(east, linux_image(east))
    west_node = launch(west, linux_image(west, "arm64"), InstanceType="t4g.small")

    manifest = inventory(SVC, regions=["us-east-1", "eu-west-1"])

    assert {(node.id, node.region, node.zone) for node in manifest.of_kind("node")} == {
        (east_node, "us-east-1", described(east, east_node)["Placement"]["AvailabilityZone"]),
        (west_node, "eu-west-1", described(west, west_node)["Placement"]["AvailabilityZone"]),
    }
    west_found = manifest.find("node", west_node)
    assert (west_found.architecture, west_found.vcpus, west_found.memory_mib) == ("arm64", 2, 2048)
    assert manifest.source.regions == ["eu-west-1", "us-east-1"]


def test_user_data_is_decoded_text_or_null(ec2, inventory):
    image = linux_image(ec2)
    script = "#cloud-config\npackages: [nginx]\n"
    plain = launch(ec2, image, UserData=script)
    # boto3 base64-encodes UserData itself, so compressed bytes must go in as bytes
    zipped = launch(ec2, image, UserData=gzip.compress(script.encode()))
    without = launch(ec2, image)

    manifest = inventory(SVC)

    assert manifest.find("node", plain).user_data == script
    assert manifest.find("node", zipped).user_data == script
    assert manifest.find("node", without).user_data is None


def test_decode_user_data_keeps_undecodable_bytes_visible():
    assert ec2_collector.decode_user_data(base64.b64encode(b"echo \xff").decode()) == "echo \ufffd"


def test_an_image_that_no_longer_exists_gives_a_null_name(ec2, inventory):
    image = linux_image(ec2)
    kept = launch(ec2, image)
    gone_image = {"ImageId": "ami-0123456789abcdef0", "RootDeviceName": "/dev/xvda"}  # moto launches from any id
    orphan = launch(ec2, gone_image)

    manifest = inventory(SVC)

    assert (manifest.find("node", kept).image_id, manifest.find("node", kept).image_name) == (image["ImageId"], image["Name"])
    orphan_node = manifest.find("node", orphan)
    assert (orphan_node.image_id, orphan_node.image_name, orphan_node.image_description) == (gone_image["ImageId"], None, None)


def test_a_batch_of_only_missing_images_is_not_an_error(ec2, inventory):
    # moto, like AWS, fails the whole describe_images batch when an id is unknown and none is found
    orphan = launch(ec2, {"ImageId": "ami-0123456789abcdef0", "RootDeviceName": "/dev/xvda"})

    manifest = inventory(SVC)

    assert manifest.find("node", orphan).image_name is None


# -- selection --------------------------------------------------------------------------------

def test_only_resources_carrying_the_selector_tags_exactly_are_collected(ec2, inventory):
    image = linux_image(ec2)
    made: dict[str, dict[str, str]] = {"node": {}, "volume": {}, "firewall": {}, "network": {}, "address": {}}
    for label, tags in {"svc": {**SVC, "team": "web"}, "staging": {"service": "svc-staging"}, "untagged": {}}.items():
        vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16", **tagged("vpc", tags))["Vpc"]["VpcId"]
        made["network"][label] = vpc
        made["firewall"][label] = ec2.create_security_group(
            GroupName=f"sg-{label}", Description=label, VpcId=vpc, **tagged("security-group", tags)
        )["GroupId"]
        made["node"][label] = launch(ec2, image, tags=tags)
        made["volume"][label] = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1, **tagged("volume", tags))["VolumeId"]
        made["address"][label] = elastic_ip(ec2, tags)["AllocationId"]

    manifest = inventory(SVC)

    for kind, ids in made.items():
        assert ids_of(manifest, kind) == {ids["svc"]}, kind
        assert manifest.find(kind, ids["svc"]).tags == {"service": "svc", "team": "web"}, kind


class TagBlindSession(AwsSession):
    """An AwsSession whose listings drop the server-side tag filters, as a looser API would."""

    def pages(self, service: str, region: str, operation: str, **kwargs: Any):
        if "Filters" in kwargs:
            kwargs["Filters"] = [f for f in kwargs["Filters"] if not f["Name"].startswith("tag:")]
        return super().pages(service, region, operation, **kwargs)


def test_the_selection_is_checked_again_on_what_the_server_returns(ec2):
    image = linux_image(ec2)
    mine = launch(ec2, image)
    launch(ec2, image, tags={"service": "svc-staging"})
    ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=1)
    ec2.create_vpc(CidrBlock="10.2.0.0/16")

    with ThreadPoolExecutor(4) as pool:
        found = ec2_collector.collect(Context(TagBlindSession(max_backoff=0.05), SVC, [REGION], pool), REGION)

    assert [r.id for r in found.resources if r.owned] == [mine]


def test_what_the_service_uses_but_does_not_own_comes_in_as_dependencies(ec2, inventory):
    """A node in the default VPC (shared, untagged), its untagged root volume and Elastic IP, and a
    tagged subnet of another untagged VPC: dependencies (owned: false), with only the subnets the
    service uses; what nothing of the service uses stays out."""
    default_vpc = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"][0]
    default_subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [default_vpc["VpcId"]]}])["Subnets"]
    used = min(default_subnets, key=lambda subnet: subnet["SubnetId"])
    node = launch(ec2, linux_image(ec2), tags={**SVC, "Name": "app-1"}, SubnetId=used["SubnetId"])
    address = elastic_ip(ec2, {}, instance_id=node)
    elastic_ip(ec2, {})  # nobody's
    shared = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
    tagged_subnet = ec2.create_subnet(VpcId=shared, CidrBlock="10.9.1.0/24", AvailabilityZone=f"{REGION}a",
                                      **tagged("subnet", SVC))["Subnet"]["SubnetId"]
    ec2.create_subnet(VpcId=shared, CidrBlock="10.9.2.0/24", AvailabilityZone=f"{REGION}b")  # not the service's
    ec2.create_vpc(CidrBlock="10.8.0.0/16")  # nothing of the service in it

    manifest = inventory(SVC)

    assert {r.kind for r in manifest.resources if r.owned} == {"node"}
    assert dependency_ids_of(manifest, "network") == {default_vpc["VpcId"], shared}
    default = resource_dump(manifest, "network", default_vpc["VpcId"])
    assert (default["owned"], default["cidr"], default["subnets"]) == (
        False, default_vpc["CidrBlock"], [{"id": used["SubnetId"], "cidr": used["CidrBlock"], "zone": used["AvailabilityZone"]}])
    assert [subnet["id"] for subnet in resource_dump(manifest, "network", shared)["subnets"]] == [tagged_subnet]
    assert dependency_ids_of(manifest, "volume") == {root_volume_of(ec2, node)}
    assert resource_dump(manifest, "address", address["AllocationId"]) == {
        "kind": "address", "id": address["AllocationId"], "name": address["AllocationId"], "region": REGION,
        "tags": {}, "owned": False, "ip": address["PublicIp"], "attached_to": node,
    }
    assert dependency_ids_of(manifest, "address") == {address["AllocationId"]}


def test_a_region_with_nothing_selected_gives_nothing(ec2, inventory):
    launch(ec2, linux_image(ec2), tags={"service": "other"})

    assert inventory(SVC).resources == []


# -- the requests it makes --------------------------------------------------------------------

class RecordingSession(AwsSession):
    """An AwsSession that notes each operation it is asked for, and on which thread."""

    def __init__(self) -> None:
        super().__init__(max_backoff=0.05)
        self.operations: list[tuple[str, str]] = []

    def call(self, service: str, region: str, operation: str, **kwargs: Any):
        self.operations.append((operation, threading.current_thread().name))
        return super().call(service, region, operation, **kwargs)

    def pages(self, service: str, region: str, operation: str, **kwargs: Any):
        self.operations.append((operation, threading.current_thread().name))
        return super().pages(service, region, operation, **kwargs)

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.operations if name == operation)


def test_details_are_batched_and_user_data_fans_out(ec2):
    x86, arm = linux_image(ec2), linux_image(ec2, "arm64")
    nodes = [launch(ec2, x86, InstanceType="t3.micro") for _ in range(3)]
    nodes += [launch(ec2, arm, InstanceType="t4g.small") for _ in range(3)]
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", **tagged("vpc", SVC))["Vpc"]["VpcId"]
    session = RecordingSession()

    with ThreadPoolExecutor(8, thread_name_prefix="fanout") as pool:
        found = ec2_collector.collect(Context(session, SVC, [REGION], pool), REGION)

    assert {r.id for r in found.resources if r.kind == "node"} == set(nodes)
    assert {r.id for r in found.resources if r.kind == "network" and r.owned} == {vpc}
    assert session.count("describe_instance_types") == 1
    assert session.count("describe_images") == 1
    assert session.count("describe_volumes") == 2  # the tagged ones; every node's, in one batch
    assert session.count("describe_subnets") == 2  # the tagged ones; those of every VPC in use, in one batch
    assert session.count("describe_vpcs") == 2  # the tagged ones; the untagged ones in use (the default VPC)
    assert session.count("describe_instance_attribute") == len(nodes)
    assert all(thread.startswith("fanout") for _, thread in session.operations)


def test_a_prefix_list_rule_lists_the_lists_cidrs_as_its_sources(ec2, web, inventory):
    office = ec2.create_managed_prefix_list(
        PrefixListName="branch-offices", MaxEntries=3, AddressFamily="IPv4",
        Entries=[{"Cidr": "198.51.100.0/24"}, {"Cidr": "203.0.113.0/25"}])["PrefixList"]["PrefixListId"]
    ec2.authorize_security_group_ingress(GroupId=web.web_sg, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "PrefixListIds": [{"PrefixListId": office}]}])

    manifest = inventory(SVC)

    [ssh] = [rule for rule in manifest.find("firewall", web.web_sg).rules if rule.port_from == 22]
    assert ssh.sources == ["198.51.100.0/24", "203.0.113.0/25"]
    assert [p.model_dump() for p in ssh.prefix_lists] == [
        {"id": office, "name": "branch-offices", "cidrs": ["198.51.100.0/24", "203.0.113.0/25"]}]
