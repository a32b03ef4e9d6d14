"""Route53 hosted zones and every record set in them, SOA and NS included."""

from __future__ import annotations

import re
from typing import Any

from failover.errors import OperationFailed
from failover.manifest import DnsZone, Record
from failover.ports import ZoneGone
from providers.aws.inventory import GLOBAL, HOME_REGION, Context, Found, batches, tag_dict

TAGS_PER_REQUEST = 10  # the most list_tags_for_resources accepts
ZONE_ID_PREFIX = "/hostedzone/"
OCTAL_ESCAPE = re.compile(rb"\\([0-7]{3})")


def collect(ctx: Context, region: str | None) -> Found:
    pages = ctx.session.pages("route53", HOME_REGION, "list_hosted_zones")
    zones = [zone for page in pages for zone in page["HostedZones"]]
    tags = _tags_by_zone_id(ctx, [_zone_id(zone) for zone in zones])
    tagged = [(zone, tags.get(_zone_id(zone), {})) for zone in zones]
    selected = [(zone, zone_tags) for zone, zone_tags in tagged if ctx.selected(zone_tags)]
    return Found(resources=ctx.map(lambda pair: _dns_zone(ctx, *pair), selected))


def _zone_id(zone: dict[str, Any]) -> str:
    return zone["Id"].removeprefix(ZONE_ID_PREFIX)


def _tags_by_zone_id(ctx: Context, zone_ids: list[str]) -> dict[str, dict[str, str]]:
    answers = ctx.map(lambda batch: _tag_sets(ctx, batch), batches(zone_ids, TAGS_PER_REQUEST))
    return {tag_set["ResourceId"]: tag_dict(tag_set.get("Tags")) for answer in answers for tag_set in answer}


def _tag_sets(ctx: Context, zone_ids: list[str]) -> list[dict[str, Any]]:
    answer = ctx.session.call(
        "route53", HOME_REGION, "list_tags_for_resources", ResourceType="hostedzone", ResourceIds=zone_ids
    )
    return answer["ResourceTagSets"]


def _dns_zone(ctx: Context, zone: dict[str, Any], tags: dict[str, str]) -> DnsZone:
    zone_id = _zone_id(zone)
    pages = ctx.session.pages("route53", HOME_REGION, "list_resource_record_sets", HostedZoneId=zone_id)
    return DnsZone(
        id=zone_id,
        name=_fully_qualified(zone["Name"]),
        region=GLOBAL,
        tags=tags,
        private=zone.get("Config", {}).get("PrivateZone", False),
        records=[record(record_set) for page in pages for record_set in page["ResourceRecordSets"]],
    )


def record(record_set: dict[str, Any]) -> Record:
    alias = record_set.get("AliasTarget")
    if alias:
        ttl, values = None, [alias["DNSName"]]  # an alias has no TTL of its own: the target's applies
    else:
        ttl, values = record_set.get("TTL"), [rr["Value"] for rr in record_set.get("ResourceRecords", [])]
    return Record(name=_fully_qualified(record_set["Name"]), type=record_set["Type"], ttl=ttl, values=values)


def _fully_qualified(name: str) -> str:
    """Route53 writes characters outside [a-z0-9-_] as octal escapes (``*`` is ``\\052``),
    one per byte of their UTF-8 encoding."""
    decoded = OCTAL_ESCAPE.sub(lambda match: bytes([int(match.group(1), 8)]), name.encode("utf-8"))
    text = decoded.decode("utf-8", errors="backslashreplace")
    return text if text.endswith(".") else text + "."


class Route53Zones:
    """The source's DNS for ``replicate``: Route53 through the inventory's ``AwsSession``
    (retries, error translation), records read by the inventory's own converter, so they come
    out as in the manifest."""

    def __init__(self, session: Any) -> None:
        self.session = session

    @classmethod
    def from_config(cls, config: Any) -> Route53Zones:
        from providers.aws.session import AwsSession

        return cls(AwsSession(endpoint_url=config.source.endpoint_url, profile=config.source.profile, pool_size=4))

    def read(self, zone: DnsZone) -> DnsZone:
        try:
            pages = self.session.pages("route53", HOME_REGION, "list_resource_record_sets", HostedZoneId=zone.id)
            records = [record(record_set) for page in pages for record_set in page["ResourceRecordSets"]]
        except OperationFailed as exc:
            if self.session.error_code(exc) == "NoSuchHostedZone":
                raise ZoneGone(f"zone {_fully_qualified(zone.name)} (hosted zone {zone.id}) is no longer on the source;"
                               " run failover inventory") from None
            raise
        return zone.model_copy(update={"records": records})
