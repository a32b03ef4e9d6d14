"""S3 buckets: where each lives, its tags, and what it holds (current versions only)."""

from __future__ import annotations

from typing import Any

from failover.manifest import Bucket
from providers.aws.inventory import HOME_REGION, Context, Found, name_of, tag_dict

# get_bucket_location answers with legacy names: no constraint is us-east-1, "EU" is Ireland.
LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}
# Given a page size, list_buckets pages past 10,000 buckets and names each bucket's region.
BUCKETS_PER_PAGE = 10_000


def collect(ctx: Context, region: str | None) -> Found:
    pages = ctx.session.pages("s3", HOME_REGION, "list_buckets", PaginationConfig={"PageSize": BUCKETS_PER_PAGE})
    listed = [bucket for page in pages for bucket in page.get("Buckets", [])]
    buckets = ctx.map(lambda bucket: _bucket(ctx, bucket), listed)
    return Found(resources=[bucket for bucket in buckets if bucket is not None])


def _bucket(ctx: Context, listed: dict[str, Any]) -> Bucket | None:
    """The bucket as a resource, or ``None`` when it is outside the regions or the selector."""
    name = listed["Name"]
    region = listed.get("BucketRegion") or _location(ctx, name)
    if region not in ctx.regions:
        return None
    tags = _tags(ctx, name, region)
    if not ctx.selected(tags):
        return None
    objects, size = _current_contents(ctx, name, region)
    return Bucket(
        id=name,
        name=name_of(tags, name),
        region=region,
        tags=tags,
        objects=objects,
        bytes=size,
        versioning=_versioning_enabled(ctx, name, region),
    )


def _location(ctx: Context, name: str) -> str | None:
    """The bucket's region; ``None`` when it was deleted since the listing."""
    answer = ctx.session.call("s3", HOME_REGION, "get_bucket_location", absent=("NoSuchBucket",), Bucket=name)
    if answer is None:
        return None
    constraint = answer.get("LocationConstraint")
    return LEGACY_LOCATIONS.get(constraint, constraint)


def _tags(ctx: Context, name: str, region: str) -> dict[str, str]:
    answer = ctx.session.call("s3", region, "get_bucket_tagging", absent=("NoSuchTagSet",), Bucket=name)
    return tag_dict(answer.get("TagSet")) if answer else {}


def _current_contents(ctx: Context, name: str, region: str) -> tuple[int, int]:
    """Object count and bytes of the current versions: list_objects_v2 sees neither old
    versions nor keys whose current version is a delete marker."""
    objects = size = 0
    for page in ctx.session.pages("s3", region, "list_objects_v2", Bucket=name):
        contents = page.get("Contents", [])
        objects += len(contents)
        size += sum(item.get("Size", 0) for item in contents)
    return objects, size


def _versioning_enabled(ctx: Context, name: str, region: str) -> bool:
    answer = ctx.session.call("s3", region, "get_bucket_versioning", Bucket=name)
    return answer.get("Status") == "Enabled"
