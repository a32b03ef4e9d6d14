"""Benchmark: failover's AWS inventory against a plain sequential boto3 walk.

Both read the same account — a ``moto_server`` seeded with a service's fleet (EC2
instances with user data, volumes, security groups, VPCs, Elastic IPs; tagged S3 buckets
holding a few objects; tagged Route53 zones full of records; plus other services'
resources as noise) — through the same local proxy, which holds every request for
``--latency-ms`` as a real cloud API would. The proxy counts the requests of each side.

    python -m benchmarks.inventory                       # ~1,000 instances, 4 regions
    python -m benchmarks.inventory --instances 200 --json

The goal: the inventory is at least 4x faster than the sequential reference. Exit status:
0 goal met and counts as seeded, 1 counts differ, 2 goal missed, 3 a phase got stuck,
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer
from providers.aws.inventory import AwsInventory
from providers.aws.session import AwsSession

T = TypeVar("T")

GOAL = 4.0  # the inventory must be at least this many times faster than the reference
SERVICE = "shop"  # the benchmarked service: its resources carry the tag service=shop
REGIONS = ["us-east-1", "eu-west-1", "us-west-2", "ap-southeast-2", "eu-central-1", "ap-northeast-1"]
HOME = "us-east-1"
NOISE_SHARE = 0.1  # instances of other services, and untagged ones, per tagged instance
INSTANCE_BATCH = 50  # instances per run_instances request while seeding
OBJECTS_PER_BUCKET = 3
USER_DATA = "#!/bin/sh\n# cloud-init for {service}\nsystemctl enable --now {service}\n"
INSTANCE_TYPES = ["t3.micro", "m5.large"]
EXTRA_VOLUMES_PER_REGION = 3  # tagged data volumes, detached
ADDRESSES_PER_REGION = 2  # tagged Elastic IPs, the first attached to an instance
ROUTE53_BATCH = 500  # changes per change_resource_record_sets while seeding
TAGS_PER_ROUTE53_REQUEST = 10
FILTER_VALUES_MAX = 200
PHASE_TIMEOUT_S = 600.0  # a phase taking longer than this is stuck: give up
KINDS = ["node", "volume", "firewall", "network", "address", "bucket", "dns_zone", "record"]


@dataclass(frozen=True)
class Scale:
    instances: int = 1000
    regions: int = 4
    buckets: int = 50
    zones: int = 10
    records: int = 100
    latency_ms: float = 50.0

    @property
    def region_names(self) -> list[str]:
        return REGIONS[: self.regions]


@dataclass
class Side:
    """One contender's result."""

    seconds: float = 0.0
    requests: int = 0
    by_service: dict[str, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


def fake_credentials() -> None:
    """Local emulators only: never let a real profile or endpoint leak in."""
    os.environ.update(
        AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_SESSION_TOKEN="testing", AWS_DEFAULT_REGION=HOME
    )
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


class Clients:
    """boto3 clients by (service, region), against one endpoint, made on first use."""

    def __init__(self, endpoint_url: str) -> None:
        self._session = boto3.session.Session()
        self._endpoint_url = endpoint_url
        self._config = Config(retries={"total_max_attempts": 1}, read_timeout=120)
        self._clients: dict[tuple[str, str], Any] = {}

    def __call__(self, service: str, region: str = HOME) -> Any:
        if (service, region) not in self._clients:
            self._clients[(service, region)] = self._session.client(
                service, region_name=region, endpoint_url=self._endpoint_url, config=self._config
            )
        return self._clients[(service, region)]


def tags(**extra: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in extra.items()]


def spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` shares that differ by one at most."""
    return [total // parts + (1 if i < total % parts else 0) for i in range(parts)]


# -- seeding (straight to moto) --------------------------------------------------------------

def seed(client: Clients, scale: Scale) -> dict[str, int]:
    """Create the account's contents; returns what the inventory should find."""
    expected = dict.fromkeys(KINDS, 0)
    for region, count in zip(scale.region_names, spread(scale.instances, scale.regions), strict=True):
        for kind, n in seed_ec2(client, region, count).items():
            expected[kind] += n
    expected["bucket"] = seed_s3(client, scale)
    expected["dns_zone"], expected["record"] = seed_route53(client, scale)
    return expected


def seed_ec2(client: Clients, region: str, count: int) -> dict[str, int]:
    ec2 = client("ec2", region)
    mine = tags(service=SERVICE)
    image = ec2.describe_images(Owners=["amazon"], MaxResults=5)["Images"][0]["ImageId"]
    vpc = ec2.create_vpc(
        CidrBlock="10.0.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": mine + tags(Name=f"{SERVICE}-vpc")}]
    )["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/18", TagSpecifications=[{"ResourceType": "subnet", "Tags": mine}])
    subnet_id = subnet["Subnet"]["SubnetId"]
    zone = subnet["Subnet"]["AvailabilityZone"]
    group = ec2.create_security_group(
        GroupName=f"{SERVICE}-web", Description="web tier", VpcId=vpc,
        TagSpecifications=[{"ResourceType": "security-group", "Tags": mine}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(
        GroupId=group,
        IpPermissions=[
            {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}
            for port in (22, 443)
        ],
    )
    ec2.create_security_group(GroupName="other-web", Description="another service", VpcId=vpc)  # noise

    instance_ids: list[str] = []
    for i, batch in enumerate(spread(count, max(1, -(-count // INSTANCE_BATCH)))):
        if batch:
            reservation = ec2.run_instances(
                ImageId=image, MinCount=batch, MaxCount=batch, InstanceType=INSTANCE_TYPES[i % len(INSTANCE_TYPES)],
                SubnetId=subnet_id, SecurityGroupIds=[group], UserData=USER_DATA.format(service=SERVICE),
                TagSpecifications=[
                    {"ResourceType": "instance", "Tags": mine + tags(role="web")},
                    {"ResourceType": "volume", "Tags": mine},  # the root volumes belong to the service too
                ],
            )
            instance_ids += [instance["InstanceId"] for instance in reservation["Instances"]]
    noise = max(1, round(count * NOISE_SHARE))
    for noise_tags in (tags(service="billing"), []):  # another service's instances, and untagged ones
        spec = [{"ResourceType": "instance", "Tags": noise_tags}] if noise_tags else []
        ec2.run_instances(
            ImageId=image, MinCount=noise, MaxCount=noise, InstanceType="t3.micro", UserData="#!/bin/sh\n",
            TagSpecifications=spec,
        )

    for _ in range(EXTRA_VOLUMES_PER_REGION):
        ec2.create_volume(AvailabilityZone=zone, Size=20, TagSpecifications=[{"ResourceType": "volume", "Tags": mine}])
    ec2.create_volume(AvailabilityZone=zone, Size=20)  # noise
    for i in range(ADDRESSES_PER_REGION):
        allocation = ec2.allocate_address(Domain="vpc", TagSpecifications=[{"ResourceType": "elastic-ip", "Tags": mine}])
        if i == 0 and instance_ids:
            ec2.associate_address(AllocationId=allocation["AllocationId"], InstanceId=instance_ids[0])
    ec2.allocate_address(Domain="vpc")  # noise

    return {
        "node": count,
        "volume": count + EXTRA_VOLUMES_PER_REGION,
        "firewall": 1,
        "network": 1,
        "address": ADDRESSES_PER_REGION,
    }


def seed_s3(client: Clients, scale: Scale) -> int:
    s3 = client("s3", HOME)
    noise = max(1, scale.buckets // 10)
    for i in range(scale.buckets + noise):
        name = f"{SERVICE}-bench-{i:04d}" if i < scale.buckets else f"other-bench-{i:04d}"
        region = scale.region_names[i % scale.regions]
        location = {} if region == HOME else {"CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=name, **location)
        if i < scale.buckets:
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags(service=SERVICE)})
        for n in range(OBJECTS_PER_BUCKET):
            s3.put_object(Bucket=name, Key=f"data/object-{n}.txt", Body=b"x" * 1024)
    return scale.buckets


def seed_route53(client: Clients, scale: Scale) -> tuple[int, int]:
    route53 = client("route53", HOME)
    for i in range(scale.zones + 1):
        domain = f"zone{i}.{SERVICE}.example" if i < scale.zones else "other.example"
        zone_id = route53.create_hosted_zone(Name=domain, CallerReference=f"bench-{i}")["HostedZone"]["Id"]
        changes = [
            {"Action": "CREATE", "ResourceRecordSet": {
                "Name": f"host{n}.{domain}", "Type": "A", "TTL": 300,
                "ResourceRecords": [{"Value": f"192.0.2.{n % 250 + 1}"}]}}
            for n in range(scale.records)
        ]
        for start in range(0, len(changes), ROUTE53_BATCH):
            route53.change_resource_record_sets(
                HostedZoneId=zone_id, ChangeBatch={"Changes": changes[start : start + ROUTE53_BATCH]}
            )
        if i < scale.zones:
            route53.change_tags_for_resource(
                ResourceType="hostedzone", ResourceId=zone_id.rsplit("/", 1)[-1], AddTags=tags(service=SERVICE)
            )
    return scale.zones, scale.zones * (scale.records + 2)  # each zone has its SOA and NS too


def warm_up(client: Clients, scale: Scale) -> None:
    """Make moto load its catalogues and build every backend before the clock starts,
    so that neither side pays for it (straight to moto: not counted, not delayed)."""
    for region in scale.region_names:
        ec2 = client("ec2", region)
        ec2.describe_instance_types(InstanceTypes=INSTANCE_TYPES)
        ec2.describe_images(Owners=["amazon"], MaxResults=5)
        client("rds", region).describe_db_instances()
        client("elbv2", region).describe_load_balancers()
        client("acm", region).list_certificates()
        client("lambda", region).list_functions()
        client("dynamodb", region).list_tables()
        client("sqs", region).list_queues()
        client("sts", region).get_caller_identity()


# -- the contenders ---------------------------------------------------------------------------

def run_failover(proxy_url: str, scale: Scale) -> tuple[dict[str, int], Any]:
    """failover's real inventory, as the CLI runs it."""
    inventory = AwsInventory(
        service=SERVICE,
        regions=scale.region_names,
        selector={"service": SERVICE},
        session=AwsSession(endpoint_url=proxy_url),
    )
    manifest = inventory.inventory()
    counts = dict.fromkeys(KINDS, 0)
    counts.update({kind: n for kind, n in manifest.counts().items() if kind in counts})
    counts["record"] = sum(len(zone.records) for zone in manifest.of_kind("dns_zone"))
    return counts, manifest


def run_reference(proxy_url: str, scale: Scale) -> dict[str, int]:
    """The same reading, done the plain way: one boto3 call after another, no threads.
    It asks what the collectors ask (providers/aws/*.py), in the same batches."""
    client = Clients(proxy_url)
    selector = {"service": SERVICE}
    mine = [{"Name": f"tag:{key}", "Values": [value]} for key, value in selector.items()]
    counts = dict.fromkeys(KINDS, 0)

    def selected(tag_list: list[dict[str, str]] | None) -> bool:
        have = {tag["Key"]: tag["Value"] for tag in tag_list or []}
        return all(have.get(key) == value for key, value in selector.items())

    def pages(service: str, region: str, operation: str, key: str, **kwargs: Any) -> list[Any]:
        paginator = client(service, region).get_paginator(operation)
        return [item for page in paginator.paginate(**kwargs) for item in page.get(key, [])]

    client("sts", scale.region_names[0]).get_caller_identity()
    for region in scale.region_names:
        ec2 = client("ec2", region)
        live = [{"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]}]
        reservations = pages("ec2", region, "describe_instances", "Reservations", Filters=mine + live)
        instances = [i for r in reservations for i in r["Instances"] if selected(i.get("Tags"))]
        volumes = [v for v in pages("ec2", region, "describe_volumes", "Volumes", Filters=mine) if selected(v.get("Tags"))]
        groups = pages("ec2", region, "describe_security_groups", "SecurityGroups", Filters=mine)
        vpcs = [v for v in pages("ec2", region, "describe_vpcs", "Vpcs", Filters=mine) if selected(v.get("Tags"))]
        addresses = ec2.describe_addresses()["Addresses"]
        types = sorted({i["InstanceType"] for i in instances})
        for chunk in chunks(types, 100):
            pages("ec2", region, "describe_instance_types", "InstanceTypes", InstanceTypes=chunk)
        images = sorted({i["ImageId"] for i in instances})
        if images:
            ec2.describe_images(ImageIds=images)
        roots = [m["Ebs"]["VolumeId"] for i in instances for m in i.get("BlockDeviceMappings", [])
                 if m["DeviceName"] == i.get("RootDeviceName")]
        for chunk in chunks(sorted(set(roots)), FILTER_VALUES_MAX):
            pages("ec2", region, "describe_volumes", "Volumes", Filters=[{"Name": "volume-id", "Values": chunk}])
        if vpcs:
            pages("ec2", region, "describe_subnets", "Subnets", Filters=[{"Name": "vpc-id", "Values": [v["VpcId"] for v in vpcs]}])
        for instance in instances:
            ec2.describe_instance_attribute(InstanceId=instance["InstanceId"], Attribute="userData")
        counts["node"] += len(instances)
        counts["volume"] += len(volumes)
        counts["firewall"] += sum(selected(g.get("Tags")) for g in groups)
        counts["network"] += len(vpcs)
        counts["address"] += sum(selected(a.get("Tags")) for a in addresses)

        pages("rds", region, "describe_db_instances", "DBInstances")
        pages("elbv2", region, "describe_load_balancers", "LoadBalancers")
        pages("acm", region, "list_certificates", "CertificateSummaryList")
        pages("lambda", region, "list_functions", "Functions")
        pages("dynamodb", region, "list_tables", "TableNames")
        pages("sqs", region, "list_queues", "QueueUrls", PaginationConfig={"PageSize": 1000})

    s3 = client("s3", HOME)
    for bucket in s3.list_buckets()["Buckets"]:
        name = bucket["Name"]
        region = bucket.get("BucketRegion") or s3.get_bucket_location(Bucket=name)["LocationConstraint"] or HOME
        if region not in scale.region_names:
            continue
        regional = client("s3", region)
        try:
            tag_set = regional.get_bucket_tagging(Bucket=name)["TagSet"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "NoSuchTagSet":
                raise
            tag_set = []
        if selected(tag_set):
            pages("s3", region, "list_objects_v2", "Contents", Bucket=name)
            regional.get_bucket_versioning(Bucket=name)
            counts["bucket"] += 1

    route53 = client("route53", HOME)
    zones = pages("route53", HOME, "list_hosted_zones", "HostedZones")
    zone_ids = [zone["Id"].rsplit("/", 1)[-1] for zone in zones]
    zone_tags: dict[str, list[dict[str, str]]] = {}
    for chunk in chunks(zone_ids, TAGS_PER_ROUTE53_REQUEST):
        answer = route53.list_tags_for_resources(ResourceType="hostedzone", ResourceIds=chunk)
        zone_tags.update({s["ResourceId"]: s.get("Tags", []) for s in answer["ResourceTagSets"]})
    for zone_id in zone_ids:
        if selected(zone_tags.get(zone_id)):
            counts["dns_zone"] += 1
            counts["record"] += len(pages("route53", HOME, "list_resource_record_sets", "ResourceRecordSets", HostedZoneId=zone_id))
    return counts


def chunks(items: list[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# -- running ------------------------------------------------------------------------------------

def measured(proxy: LatencyProxy, fn: Callable[[], dict[str, int]]) -> Side:
    proxy.reset_stats()
    started = time.perf_counter()
    counts = interruptible(fn)
    seconds = time.perf_counter() - started
    stats = proxy.stats()
    return Side(seconds=seconds, requests=stats.requests, by_service=stats.by_service, counts=counts)


def interruptible(fn: Callable[[], T], timeout: float = PHASE_TIMEOUT_S) -> T:
    """Run ``fn`` on a worker thread so Ctrl-C (or the timeout) reaches the main thread at
    once; the caller's clean-up (stopping the proxy and moto) then makes the worker's
    requests fail fast."""
    result: dict[str, Any] = {}

    def work() -> None:
        try:
            result["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            result["error"] = exc

    worker = threading.Thread(target=work, name="bench-worker", daemon=True)
    worker.start()
    deadline = time.monotonic() + timeout
    while worker.is_alive():
        if time.monotonic() > deadline:
            raise TimeoutError(f"a benchmark phase took more than {timeout:g}s")
        worker.join(0.2)
    if "error" in result:
        raise result["error"]
    return result["value"]


def benchmark(scale: Scale, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    fake_credentials()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    moto = MotoServer()
    proxy = LatencyProxy(moto.url, latency_s=scale.latency_ms / 1000)
    try:
        log(f"starting moto_server on {moto.url}")
        moto.start()
        direct = Clients(moto.url)
        log(f"seeding {scale.instances} instances in {scale.regions} regions, {scale.buckets} buckets, "
            f"{scale.zones} zones of {scale.records} records")
        started = time.perf_counter()
        expected = interruptible(lambda: seed(direct, scale))
        log(f"seeded in {time.perf_counter() - started:.1f}s; warming up")
        interruptible(lambda: warm_up(direct, scale))
        proxy.start()
        log(f"proxy on {proxy.url} adds {scale.latency_ms:g} ms per request; running failover's inventory")
        failover = measured(proxy, lambda: run_failover(proxy.url, scale)[0])
        log(f"failover: {failover.seconds:.1f}s, {failover.requests} requests; running the sequential reference")
        reference = measured(proxy, lambda: run_reference(proxy.url, scale))
        log(f"reference: {reference.seconds:.1f}s, {reference.requests} requests")
    finally:
        proxy.stop()
        moto.stop()
    ratio = reference.seconds / failover.seconds if failover.seconds else float("inf")
    return {
        "scale": asdict(scale),
        "seeded": expected,
        "failover": asdict(failover),
        "reference": asdict(reference),
        "counts_match": failover.counts == expected and reference.counts == expected,
        "ratio": round(ratio, 2),
        "goal": GOAL,
        "goal_met": ratio >= GOAL,
    }


def report(result: dict[str, Any]) -> str:
    failover, reference = result["failover"], result["reference"]
    lines = [
        f"{'kind':<10}{'seeded':>9}{'failover':>10}{'reference':>11}",
        *(
            f"{kind:<10}{result['seeded'][kind]:>9}{failover['counts'][kind]:>10}{reference['counts'][kind]:>11}"
            + ("" if result["seeded"][kind] == failover["counts"][kind] == reference["counts"][kind] else "  MISMATCH")
            for kind in KINDS
        ),
        "",
        f"{'':<14}{'failover':>10}{'reference':>11}",
        f"{'wall time (s)':<14}{failover['seconds']:>10.2f}{reference['seconds']:>11.2f}",
        f"{'requests':<14}{failover['requests']:>10}{reference['requests']:>11}",
        "",
        f"ratio (reference / failover): {result['ratio']:.1f}x; goal >= {result['goal']:g}x: "
        + ("met" if result["goal_met"] else "NOT met"),
    ]
    if not result["counts_match"]:
        lines.append("counts: MISMATCH (see above)")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Scale, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Scale()
    parser.add_argument("--instances", type=int, default=defaults.instances)
    parser.add_argument("--regions", type=int, default=defaults.regions, choices=range(1, len(REGIONS) + 1))
    parser.add_argument("--buckets", type=int, default=defaults.buckets)
    parser.add_argument("--zones", type=int, default=defaults.zones)
    parser.add_argument("--records", type=int, default=defaults.records)
    parser.add_argument("--latency-ms", type=float, default=defaults.latency_ms)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    scale = Scale(args.instances, args.regions, args.buckets, args.zones, args.records, args.latency_ms)
    return scale, args.json


def main(argv: list[str] | None = None) -> dict[str, Any]:
    scale, as_json = parse_args(argv)
    log = (lambda _: None) if as_json else (lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
    result = benchmark(scale, log)
    print(json.dumps(result, indent=2) if as_json else report(result))
    return result


if __name__ == "__main__":
    try:
        outcome = main()
        code = 0 if outcome["counts_match"] and outcome["goal_met"] else 1 if not outcome["counts_match"] else 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        code = 130
    except TimeoutError as exc:
        print(exc, file=sys.stderr)
        code = 3
    # moto_server and the proxy are stopped by now. A pool thread of an interrupted inventory
    # can stay blocked for good (AwsInventory cancels its fan-out pool with
    # shutdown(cancel_futures=True), which never wakes a collector waiting on those futures);
    # it must not keep the process alive.
    if threading.active_count() > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)
