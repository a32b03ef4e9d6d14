"""``failover init``'s reading of an AWS account: which regions hold tagged resources and
their tags, through the Resource Groups Tagging API and the services it misses or answers
for badly (EC2's ``DescribeTags``, ELBv2, RDS); S3 buckets and Route53 zones once, globally.
The core (``failover.initconfig``) proposes selectors from what this finds."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from failover.errors import FailoverError, ProviderError
from failover.initconfig import GLOBAL_REGION, WORKERS, Discovery, TaggedResource, shown, unsafe
from providers.aws.session import AwsSession


class Discoverer:
    def __init__(self, session: AwsSession, regions: list[str] | None = None,
                 tagging: AwsSession | None = None) -> None:
        self.session = session
        # The tagging API is asked once, unretried: where it fails, the per-service reads stand in.
        self.tagging = tagging or session
        self.asked_regions = regions
        self.refused: list[dict[str, str]] = []
        self.notes: list[str] = []

    def discover(self) -> Discovery:
        regions = self.asked_regions or self.enabled_regions()
        with ThreadPoolExecutor(WORKERS, thread_name_prefix="failover-init") as pool:
            regional = list(pool.map(self.region, regions))
            buckets = pool.submit(self.buckets)
            zones = pool.submit(self.zones)
            found = [r for rs in regional for r in rs] + buckets.result() + zones.result()
        unique: dict[tuple, TaggedResource] = {}
        for resource in found:
            unique.setdefault(resource.key, resource)
        wanted = set(regions)
        resources = [self.cleaned(r) for r in unique.values() if r.region is None or r.region in wanted]
        resources.sort(key=lambda r: (r.region or "", r.service, r.kind, r.id))
        return Discovery(sorted(regions), resources, self.refused, self.notes)

    def cleaned(self, resource: TaggedResource) -> TaggedResource:
        kept = []
        for key, value in resource.tags:
            why = unsafe(key) or unsafe(value)
            if why:
                self.refused.append({"resource": f"{resource.type} {shown(resource.id)}", "tag": shown(key),
                                     "reason": f"the tag {why}"})
            else:
                kept.append((key, value))
        return TaggedResource(resource.service, resource.kind, resource.id, resource.region, tuple(kept))

    def enabled_regions(self) -> list[str]:
        answer = self.session.call("ec2", GLOBAL_REGION, "describe_regions") or {}
        return sorted(r["RegionName"] for r in answer.get("Regions", []))

    # -- per region ---------------------------------------------------------------------------
    def region(self, region: str) -> list[TaggedResource]:
        found: list[TaggedResource] = []
        try:
            found += self.tagging_api(region)
        except ProviderError:
            raise  # unreachable or refused credentials: exit 4, nothing written
        except FailoverError as exc:
            first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            self.notes.append(f"{region}: the tagging API failed ({shown(first_line)}); read per service")
            found += self.rds(region)
        found += self.ec2(region) + self.elbv2(region)
        return found

    def tagging_api(self, region: str) -> list[TaggedResource]:
        found = []
        for page in self.tagging.pages("resourcegroupstaggingapi", region, "get_resources"):
            for item in page.get("ResourceTagMappingList", []):
                arn = item["ResourceARN"]
                parts = arn.split(":", 5)
                if len(parts) < 6 or parts[2] in ("s3", "route53"):
                    continue  # global: listed once, with their own location
                service, resource = parts[2], parts[5]
                kind, _, ident = resource.partition("/") if "/" in resource else resource.partition(":")
                found.append(TaggedResource(service, kind, ident or resource, region, _pairs(item.get("Tags"))))
        return found

    def ec2(self, region: str) -> list[TaggedResource]:
        tags: dict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
        for page in self.session.pages("ec2", region, "describe_tags"):
            for tag in page.get("Tags", []):
                tags[(tag["ResourceType"], tag["ResourceId"])].append((tag["Key"], tag.get("Value") or ""))
        return [TaggedResource("ec2", kind, ident, region, tuple(sorted(pairs)))
                for (kind, ident), pairs in tags.items()]

    def elbv2(self, region: str) -> list[TaggedResource]:
        arns = [lb["LoadBalancerArn"] for page in self.session.pages("elbv2", region, "describe_load_balancers")
                for lb in page.get("LoadBalancers", [])]
        found = []
        for start in range(0, len(arns), 20):
            answer = self.session.call("elbv2", region, "describe_tags", ResourceArns=arns[start:start + 20]) or {}
            for item in answer.get("TagDescriptions", []):
                if item.get("Tags"):
                    ident = item["ResourceArn"].split(":", 5)[5].partition("/")[2]
                    found.append(TaggedResource("elasticloadbalancing", "loadbalancer", ident, region,
                                                _pairs(item["Tags"])))
        return found

    def rds(self, region: str) -> list[TaggedResource]:
        return [TaggedResource("rds", "db", db["DBInstanceIdentifier"], region, _pairs(db.get("TagList")))
                for page in self.session.pages("rds", region, "describe_db_instances")
                for db in page.get("DBInstances", []) if db.get("TagList")]

    # -- global -------------------------------------------------------------------------------
    def buckets(self) -> list[TaggedResource]:
        answer = self.session.call("s3", GLOBAL_REGION, "list_buckets") or {}
        found = []
        for bucket in answer.get("Buckets", []):
            name = bucket["Name"]
            tagging = self.session.call("s3", GLOBAL_REGION, "get_bucket_tagging", Bucket=name,
                                        absent=("NoSuchTagSet", "NoSuchBucket"))
            if not tagging or not tagging.get("TagSet"):
                continue
            location = self.session.call("s3", GLOBAL_REGION, "get_bucket_location", Bucket=name,
                                         absent=("NoSuchBucket",)) or {}
            region = location.get("LocationConstraint") or "us-east-1"
            region = "eu-west-1" if region == "EU" else region
            found.append(TaggedResource("s3", "bucket", name, region, _pairs(tagging["TagSet"])))
        return found

    def zones(self) -> list[TaggedResource]:
        pages = self.session.pages("route53", GLOBAL_REGION, "list_hosted_zones")
        ids = [zone["Id"].rsplit("/", 1)[-1] for page in pages for zone in page.get("HostedZones", [])]
        found = []
        for start in range(0, len(ids), 10):
            answer = self.session.call("route53", GLOBAL_REGION, "list_tags_for_resources", ResourceType="hostedzone",
                                       ResourceIds=ids[start:start + 10]) or {}
            for item in answer.get("ResourceTagSets", []):
                if item.get("Tags"):
                    found.append(TaggedResource("route53", "hostedzone", item["ResourceId"], None,
                                                _pairs(item["Tags"])))
        return found


def _pairs(tags: Iterable[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((t["Key"], t.get("Value") or "") for t in tags or []))


def discover(*, regions: list[str] | None, endpoint_url: str | None, profile: str | None) -> Discovery:
    session = AwsSession(endpoint_url=endpoint_url, profile=profile, max_attempts=3, max_backoff=1.0)
    tagging = AwsSession(endpoint_url=endpoint_url, profile=profile, max_attempts=1)
    return Discoverer(session, regions, tagging).discover()


def _pairs(tags: Iterable[dict[str, Any]] | None) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((t["Key"], t.get("Value") or "") for t in tags or []))
