"""EC2 in one region: instances (nodes), EBS volumes, security groups (firewalls), VPCs
(networks) and Elastic IPs (addresses) that carry the selector's tags, and, as dependencies
(``owned: false``), the untagged ones the service's resources use: its nodes' security
groups and those its groups' rules name, its nodes' volumes and Elastic IPs, and the VPCs
its nodes, groups and tagged subnets are in (with the subnets the service uses).

Requests go in two rounds, each fanned out on the shared pool: first the independent
listings, then what the listings point at — instance types, images, root volume sizes,
subnets, and one user-data request per instance (the dominant cost for a large fleet).
Only the collector's own thread waits on the pool, never a task running on it, so the
shared pool cannot deadlock on its own work.
"""

from __future__ import annotations

import base64
import gzip
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from failover.manifest import Address, Firewall, FirewallRule, Network, Node, PrefixList, Subnet, Volume
from providers.aws.inventory import Context, Found, batches, name_of, tag_dict

T = TypeVar("T")

LIVE_STATES = ["pending", "running", "stopping", "stopped"]
FILTER_VALUES_MAX = 200  # EC2 accepts at most 200 values in one filter
INSTANCE_TYPES_MAX = 100  # DescribeInstanceTypes accepts at most 100 names
MISSING_IMAGE = ("InvalidAMIID.NotFound", "InvalidAMIID.Unavailable", "InvalidAMIID.Malformed")

Item = dict[str, Any]


@dataclass
class Listings:
    """The first round: what carries the selector's tags, plus every Elastic IP."""

    instances: list[Item]
    volumes: list[Item]
    security_groups: list[Item]
    vpcs: list[Item]
    addresses: list[Item]  # all of the region's, selected or not: any may be a node's public IP
    subnets: list[Item]  # those carrying the selector's tags


@dataclass
class Details:
    """The second round, keyed for lookup while building resources."""

    instance_types: dict[str, Item]  # by type name
    images: dict[str, Item]  # by image id; a deregistered image is absent
    volumes: dict[str, Item]  # the nodes' EBS volumes by volume id
    subnets: dict[str, list[Subnet]]  # by vpc id
    user_data: dict[str, str | None]  # by instance id
    dependency_vpcs: list[Item]  # untagged VPCs the service's resources are in


def collect(ctx: Context, region: str) -> Found:
    listings = _list_everything(ctx, region)
    referenced = _referenced_groups(ctx, region, listings)
    details = _look_up_details(ctx, region, listings, _dependency_vpc_ids(listings, referenced))
    elastic_ips = {a["InstanceId"]: a["PublicIp"] for a in listings.addresses if a.get("InstanceId")}
    resources: list[Any] = []
    resources += [_node(i, region, details, elastic_ips) for i in listings.instances]
    resources += [_volume(v, region) for v in listings.volumes]
    tagged_volumes = {v["VolumeId"] for v in listings.volumes}
    resources += [_volume(v, region, owned=False) for v_id, v in sorted(details.volumes.items()) if v_id not in tagged_volumes]
    prefix_lists = _prefix_lists(ctx, region, listings.security_groups + referenced)
    resources += [_firewall(g, region, prefix_lists) for g in listings.security_groups]
    resources += [_firewall(g, region, prefix_lists, owned=False) for g in referenced]
    resources += [_network(v, region, details.subnets.get(v["VpcId"], [])) for v in listings.vpcs]
    used_subnets = {i["SubnetId"] for i in listings.instances if i.get("SubnetId")} | {s["SubnetId"] for s in listings.subnets}
    resources += [
        _network(v, region, [s for s in details.subnets.get(v["VpcId"], []) if s.id in used_subnets], owned=False)
        for v in details.dependency_vpcs
    ]
    node_ids = {i["InstanceId"] for i in listings.instances}
    for address in listings.addresses:
        if ctx.selected(tag_dict(address.get("Tags"))):
            resources.append(_address(address, region))
        elif address.get("InstanceId") in node_ids:  # an untagged Elastic IP of one of the service's nodes
            resources.append(_address(address, region, owned=False))
    return Found(resources=resources)


def _dependency_vpc_ids(listings: Listings, referenced_groups: list[Item]) -> list[str]:
    """The VPCs the service's nodes, security groups and tagged subnets are in but that are not tagged for it."""
    in_use = {i.get("VpcId") for i in listings.instances}
    in_use |= {g.get("VpcId") for g in listings.security_groups + referenced_groups}
    in_use |= {s.get("VpcId") for s in listings.subnets}
    return sorted(in_use - {v["VpcId"] for v in listings.vpcs} - {None})


# -- first round: listings ------------------------------------------------------------------

def _list_everything(ctx: Context, region: str) -> Listings:
    listers = [_instances, _volumes, _security_groups, _vpcs, _addresses, _tagged_subnets]
    return Listings(*ctx.map(lambda lister: lister(ctx, region), listers))


def _instances(ctx: Context, region: str) -> list[Item]:
    filters = ctx.tag_filters() + [{"Name": "instance-state-name", "Values": LIVE_STATES}]
    reservations = _listing(ctx, region, "describe_instances", "Reservations", Filters=filters)
    return _selected(ctx, [instance for r in reservations for instance in r.get("Instances", [])])


def _volumes(ctx: Context, region: str) -> list[Item]:
    return _selected(ctx, _listing(ctx, region, "describe_volumes", "Volumes", Filters=ctx.tag_filters()))


def _security_groups(ctx: Context, region: str) -> list[Item]:
    return _selected(ctx, _listing(ctx, region, "describe_security_groups", "SecurityGroups", Filters=ctx.tag_filters()))


def _vpcs(ctx: Context, region: str) -> list[Item]:
    return _selected(ctx, _listing(ctx, region, "describe_vpcs", "Vpcs", Filters=ctx.tag_filters()))


def _tagged_subnets(ctx: Context, region: str) -> list[Item]:
    return _selected(ctx, _listing(ctx, region, "describe_subnets", "Subnets", Filters=ctx.tag_filters()))


def _addresses(ctx: Context, region: str) -> list[Item]:
    answer = ctx.session.call("ec2", region, "describe_addresses")
    return answer.get("Addresses", []) if answer else []


# -- second round: what the listings point at ---------------------------------------------

def _look_up_details(ctx: Context, region: str, listings: Listings, dependency_vpc_ids: list[str]) -> Details:
    instances = listings.instances
    lookups: list[Callable[[], Any]] = [
        partial(_instance_types, ctx, region, _distinct(i["InstanceType"] for i in instances)),
        partial(_images, ctx, region, _distinct(i.get("ImageId") for i in instances)),
        partial(_volumes_by_id, ctx, region, _distinct(v for i in instances for v in _volume_ids(i))),
        partial(_subnets, ctx, region, [v["VpcId"] for v in listings.vpcs] + dependency_vpc_ids),
        partial(_vpcs_by_id, ctx, region, dependency_vpc_ids),
    ]
    user_data_lookups = [partial(_user_data, ctx, region, i["InstanceId"]) for i in instances]
    instance_types, images, volumes, subnets, dependency_vpcs, *user_data = ctx.map(
        lambda lookup: lookup(), lookups + user_data_lookups)
    return Details(
        instance_types=instance_types,
        images=images,
        volumes=volumes,
        subnets=subnets,
        user_data={i["InstanceId"]: text for i, text in zip(instances, user_data, strict=True)},
        dependency_vpcs=dependency_vpcs,
    )


def _instance_types(ctx: Context, region: str, names: list[str]) -> dict[str, Item]:
    found: dict[str, Item] = {}
    for chunk in batches(names, INSTANCE_TYPES_MAX):
        for info in _listing(ctx, region, "describe_instance_types", "InstanceTypes", InstanceTypes=chunk):
            found[info["InstanceType"]] = info
    return found


def _images(ctx: Context, region: str, image_ids: list[str]) -> dict[str, Item]:
    if not image_ids:
        return {}
    answer = ctx.session.call("ec2", region, "describe_images", ImageIds=image_ids, absent=MISSING_IMAGE)
    if answer is not None:
        return {image["ImageId"]: image for image in answer.get("Images", [])}
    # One deregistered image fails the whole batch: ask again one by one to keep the others.
    # Sequential on purpose: this runs on the pool, and is rare and short (a few images).
    found: dict[str, Item] = {}
    for image_id in image_ids:
        answer = ctx.session.call("ec2", region, "describe_images", ImageIds=[image_id], absent=MISSING_IMAGE)
        for image in (answer or {}).get("Images", []):
            found[image["ImageId"]] = image
    return found


def _volumes_by_id(ctx: Context, region: str, volume_ids: list[str]) -> dict[str, Item]:
    # A filter rather than VolumeIds: a volume deleted since the listing is skipped, not an error.
    found: dict[str, Item] = {}
    for chunk in batches(volume_ids, FILTER_VALUES_MAX):
        for volume in _listing(ctx, region, "describe_volumes", "Volumes", Filters=[{"Name": "volume-id", "Values": chunk}]):
            found[volume["VolumeId"]] = volume
    return found


def _vpcs_by_id(ctx: Context, region: str, vpc_ids: list[str]) -> list[Item]:
    found: list[Item] = []
    for chunk in batches(vpc_ids, FILTER_VALUES_MAX):
        found += _listing(ctx, region, "describe_vpcs", "Vpcs", Filters=[{"Name": "vpc-id", "Values": chunk}])
    return found


def _subnets(ctx: Context, region: str, vpc_ids: list[str]) -> dict[str, list[Subnet]]:
    by_vpc: dict[str, list[Subnet]] = {}
    for chunk in batches(vpc_ids, FILTER_VALUES_MAX):
        for subnet in _listing(ctx, region, "describe_subnets", "Subnets", Filters=[{"Name": "vpc-id", "Values": chunk}]):
            by_vpc.setdefault(subnet["VpcId"], []).append(
                Subnet(id=subnet["SubnetId"], cidr=_subnet_cidr(subnet), zone=subnet.get("AvailabilityZone"))
            )
    return by_vpc


def _user_data(ctx: Context, region: str, instance_id: str) -> str | None:
    answer = ctx.session.call(
        "ec2", region, "describe_instance_attribute",
        InstanceId=instance_id, Attribute="userData",
        absent=("InvalidInstanceID.NotFound",),  # terminated since the listing
    )
    encoded = ((answer or {}).get("UserData") or {}).get("Value")
    return decode_user_data(encoded) if encoded else None


def decode_user_data(encoded: str) -> str:
    raw = base64.b64decode(encoded)
    if raw[:2] == b"\x1f\x8b":  # cloud-init takes gzip-compressed user data; keep the readable form
        raw = gzip.decompress(raw)
    return raw.decode("utf-8", errors="replace")


# -- building resources ---------------------------------------------------------------------

def _node(instance: Item, region: str, details: Details, elastic_ips: dict[str, str]) -> Node:
    instance_id = instance["InstanceId"]
    tags = tag_dict(instance.get("Tags"))
    instance_type = details.instance_types.get(instance["InstanceType"], {})
    image = details.images.get(instance.get("ImageId") or "", {})
    root_volume = _root_volume_id(instance)
    return Node(
        id=instance_id,
        name=name_of(tags, instance_id),
        region=region,
        tags=tags,
        instance_type=instance["InstanceType"],
        vcpus=instance_type.get("VCpuInfo", {}).get("DefaultVCpus"),
        memory_mib=instance_type.get("MemoryInfo", {}).get("SizeInMiB"),
        image_id=instance.get("ImageId"),
        image_name=image.get("Name"),
        image_description=image.get("Description"),
        architecture=instance.get("Architecture"),
        private_ip=instance.get("PrivateIpAddress"),
        public_ip=_public_ip(instance, elastic_ips),
        firewalls=[group["GroupId"] for group in instance.get("SecurityGroups", [])],
        volumes=_volume_ids(instance),
        root_volume_gib=details.volumes.get(root_volume, {}).get("Size") if root_volume else None,
        user_data=details.user_data.get(instance_id),
        state=instance["State"]["Name"],
        zone=instance.get("Placement", {}).get("AvailabilityZone"),
    )


def _public_ip(instance: Item, elastic_ips: dict[str, str]) -> str | None:
    # AWS keeps reporting an associated Elastic IP on a stopped instance; nothing answers there.
    if instance["State"]["Name"] == "stopped":
        return None
    return elastic_ips.get(instance["InstanceId"]) or instance.get("PublicIpAddress")


def _ebs_mappings(instance: Item) -> list[Item]:
    """The instance's EBS block device mappings, the root device first, then in device order."""
    root = instance.get("RootDeviceName")
    mappings = [m for m in instance.get("BlockDeviceMappings", []) if m.get("Ebs", {}).get("VolumeId")]
    return sorted(mappings, key=lambda m: (m["DeviceName"] != root, m["DeviceName"]))


def _volume_ids(instance: Item) -> list[str]:
    return [m["Ebs"]["VolumeId"] for m in _ebs_mappings(instance)]


def _root_volume_id(instance: Item) -> str | None:
    root = instance.get("RootDeviceName")
    return next((m["Ebs"]["VolumeId"] for m in _ebs_mappings(instance) if m["DeviceName"] == root), None)


def _volume(volume: Item, region: str, owned: bool = True) -> Volume:
    tags = tag_dict(volume.get("Tags"))
    attachment = next(iter(volume.get("Attachments") or []), {})
    return Volume(
        id=volume["VolumeId"],
        name=name_of(tags, volume["VolumeId"]),
        region=region,
        tags=tags,
        size_gib=volume["Size"],
        volume_type=volume.get("VolumeType"),
        attached_to=attachment.get("InstanceId"),
        device=attachment.get("Device"),
        zone=volume.get("AvailabilityZone"),
        owned=owned,
    )


def _referenced_groups(ctx: Context, region: str, listings: Listings) -> list[Item]:
    """Security groups the service's nodes and groups use that are not tagged for it (the default
    VPC's shared default group, say): pulled in as dependencies, one level deep."""
    have = {group["GroupId"] for group in listings.security_groups}
    wanted = {group["GroupId"] for instance in listings.instances for group in instance.get("SecurityGroups", [])}
    wanted |= {
        pair["GroupId"] for group in listings.security_groups
        for permission in group.get("IpPermissions", []) + group.get("IpPermissionsEgress", [])
        for pair in permission.get("UserIdGroupPairs", []) if pair.get("GroupId")
    }
    missing = sorted(wanted - have)
    found: list[Item] = []
    for chunk in batches(missing, FILTER_VALUES_MAX):
        # A filter rather than GroupIds: a group of another account or deleted meanwhile is skipped, not an error.
        found += _listing(ctx, region, "describe_security_groups", "SecurityGroups",
                          Filters=[{"Name": "group-id", "Values": chunk}])
    return found


def _prefix_lists(ctx: Context, region: str, groups: list[Item]) -> dict[str, PrefixList]:
    """Every managed prefix list the groups' rules name, with its entries: a prefix list is a set of
    CIDRs (CloudFront's, S3's, a team's own), not a group of nodes."""
    ids = sorted({
        entry["PrefixListId"] for group in groups
        for permission in group.get("IpPermissions", []) + group.get("IpPermissionsEgress", [])
        for entry in permission.get("PrefixListIds", [])
    })
    if not ids:
        return {}
    listed = {pl["PrefixListId"]: pl for pl in _listing(ctx, region, "describe_managed_prefix_lists", "PrefixLists",
                                                        Filters=[{"Name": "prefix-list-id", "Values": ids}])}
    entries = ctx.map(lambda pl_id: _prefix_list_entries(ctx, region, pl_id), ids)
    return {
        pl_id: PrefixList(id=pl_id, name=listed.get(pl_id, {}).get("PrefixListName"), cidrs=cidrs)
        for pl_id, cidrs in zip(ids, entries, strict=True)
    }


def _prefix_list_entries(ctx: Context, region: str, prefix_list_id: str) -> list[str]:
    pages = ctx.session.pages("ec2", region, "get_managed_prefix_list_entries", PrefixListId=prefix_list_id)
    return sorted({entry["Cidr"] for page in pages for entry in page.get("Entries", [])})


def _firewall(group: Item, region: str, prefix_lists: dict[str, PrefixList], owned: bool = True) -> Firewall:
    tags = tag_dict(group.get("Tags"))
    rules = [_rule("ingress", p, prefix_lists) for p in group.get("IpPermissions", [])]
    rules += [_rule("egress", p, prefix_lists) for p in group.get("IpPermissionsEgress", [])]
    return Firewall(
        id=group["GroupId"],
        name=name_of(tags, group.get("GroupName") or group["GroupId"]),
        region=region,
        tags=tags,
        description=group.get("Description"),
        network=group.get("VpcId"),
        rules=rules,
        owned=owned,
    )


def _rule(direction: str, permission: Item, prefix_lists: dict[str, PrefixList]) -> FirewallRule:
    sources = [r["CidrIp"] for r in permission.get("IpRanges", [])]
    sources += [r["CidrIpv6"] for r in permission.get("Ipv6Ranges", [])]
    named = [prefix_lists.get(p["PrefixListId"]) or PrefixList(id=p["PrefixListId"])
             for p in permission.get("PrefixListIds", [])]
    # A list that could not be read stays a source by its id: apply-firewall then says it cannot carry it.
    sources += [source for prefix_list in named for source in (prefix_list.cidrs or [prefix_list.id])
                if source not in sources]
    sources += [pair["GroupId"] for pair in permission.get("UserIdGroupPairs", []) if pair.get("GroupId")]
    return FirewallRule(
        direction=direction,
        protocol=str(permission["IpProtocol"]),
        port_from=permission.get("FromPort"),
        port_to=permission.get("ToPort"),
        sources=sources,
        prefix_lists=named,
    )


def _network(vpc: Item, region: str, subnets: list[Subnet], owned: bool = True) -> Network:
    tags = tag_dict(vpc.get("Tags"))
    return Network(
        id=vpc["VpcId"],
        name=name_of(tags, vpc["VpcId"]),
        region=region,
        tags=tags,
        cidr=vpc["CidrBlock"],
        subnets=subnets,
        owned=owned,
    )


def _subnet_cidr(subnet: Item) -> str:
    # An IPv6-only subnet has no IPv4 block.
    ipv6 = [a["Ipv6CidrBlock"] for a in subnet.get("Ipv6CidrBlockAssociationSet", []) if a.get("Ipv6CidrBlock")]
    return subnet.get("CidrBlock") or ipv6[0]


def _address(address: Item, region: str, owned: bool = True) -> Address:
    tags = tag_dict(address.get("Tags"))
    address_id = address.get("AllocationId") or address["PublicIp"]
    return Address(
        id=address_id,
        name=name_of(tags, address_id),
        region=region,
        tags=tags,
        ip=address["PublicIp"],
        attached_to=address.get("InstanceId") or None,  # moto answers "" for an unattached address
        owned=owned,
    )


# -- helpers --------------------------------------------------------------------------------

def _listing(ctx: Context, region: str, operation: str, key: str, **kwargs: Any) -> list[Item]:
    return [item for page in ctx.session.pages("ec2", region, operation, **kwargs) for item in page.get(key, [])]


def _selected(ctx: Context, items: list[Item]) -> list[Item]:
    return [item for item in items if ctx.selected(tag_dict(item.get("Tags")))]


def _distinct(values: Iterable[T | None]) -> list[T]:
    return sorted({value for value in values if value})  # type: ignore[type-var]

