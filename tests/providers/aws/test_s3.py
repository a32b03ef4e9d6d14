"""The S3 collector against moto: regions, selection, and current-version counts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from moto.core import DEFAULT_ACCOUNT_ID
from moto.s3.models import s3_backends

from providers.aws import s3 as s3_collector
from providers.aws.inventory import Context
from providers.aws.session import AwsSession

SERVICE = {"Key": "service", "Value": "svc"}


def make_bucket(aws, name: str, tags: list[dict[str, str]] | None = None, region: str = "us-east-1") -> None:
    s3 = aws("s3", region)
    if region == "us-east-1":
        s3.create_bucket(Bucket=name)
    else:
        s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    if tags:
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tags})


def buckets(manifest) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == "bucket"]


def test_versioned_bucket_counts_current_versions_only(aws, inventory):
    make_bucket(aws, "media", [SERVICE, {"Key": "Name", "Value": "media files"}, {"Key": "tier", "Value": "data"}])
    s3 = aws("s3")
    s3.put_bucket_versioning(Bucket="media", VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket="media", Key="logo.png", Body=b"x" * 10)
    s3.put_object(Bucket="media", Key="logo.png", Body=b"x" * 20)  # the 10-byte version becomes old
    s3.put_object(Bucket="media", Key="gone.txt", Body=b"x" * 5)
    s3.delete_object(Bucket="media", Key="gone.txt")  # leaves a delete marker and an old version
    s3.put_object(Bucket="media", Key="fotos/Ünïcode ключ 写真.jpg", Body=b"x" * 7)
    s3.put_object(Bucket="media", Key="with space/and+plus & more.bin", Body=b"x" * 3)

    assert buckets(inventory()) == [
        {
            "kind": "bucket",
            "id": "media",
            "name": "media files",
            "region": "us-east-1",
            "tags": {"Name": "media files", "service": "svc", "tier": "data"},
            "objects": 3,
            "bytes": 30,
            "versioning": True,
        }
    ]


def test_unversioned_and_suspended_buckets_are_not_versioning(aws, inventory):
    make_bucket(aws, "plain", [SERVICE])
    make_bucket(aws, "suspended", [SERVICE])
    aws("s3").put_bucket_versioning(Bucket="suspended", VersioningConfiguration={"Status": "Enabled"})
    aws("s3").put_bucket_versioning(Bucket="suspended", VersioningConfiguration={"Status": "Suspended"})

    found = {b["id"]: b for b in buckets(inventory())}

    assert found["plain"] == {
        "kind": "bucket", "id": "plain", "name": "plain", "region": "us-east-1", "tags": {"service": "svc"},
        "objects": 0, "bytes": 0, "versioning": False,
    }
    assert found["suspended"]["versioning"] is False


def test_object_listing_is_followed_across_pages(aws, inventory):
    make_bucket(aws, "many", [SERVICE])
    s3 = aws("s3")
    s3.put_object(Bucket="many", Key="k/00000", Body=b"ab")
    # The other 1,004 straight into moto's backend (a thousand PUTs through boto3 took a minute on a busy machine);
    # the inventory still lists them through the API, which answers at most 1,000 keys a page.
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    for i in range(1, 1_005):
        backend.put_object("many", f"k/{i:05d}", b"ab")
    assert s3.list_objects_v2(Bucket="many")["IsTruncated"] is True  # so it takes a second page

    [bucket] = buckets(inventory())

    assert (bucket["objects"], bucket["bytes"]) == (1_005, 2_010)


def test_only_buckets_carrying_every_selector_tag_with_that_value(aws, inventory):
    make_bucket(aws, "untagged")
    make_bucket(aws, "staging", [{"Key": "service", "Value": "svc-staging"}])
    make_bucket(aws, "other-tags", [{"Key": "team", "Value": "web"}])
    make_bucket(aws, "half", [SERVICE])
    make_bucket(aws, "both", [SERVICE, {"Key": "env", "Value": "prod"}])

    assert [b["id"] for b in buckets(inventory({"service": "svc"}))] == ["both", "half"]
    assert [b["id"] for b in buckets(inventory({"service": "svc", "env": "prod"}))] == ["both"]


def test_bucket_in_an_unconfigured_region_is_excluded(aws, inventory):
    make_bucket(aws, "home", [SERVICE])
    make_bucket(aws, "dublin", [SERVICE], region="eu-west-1")

    assert [(b["id"], b["region"]) for b in buckets(inventory(regions=["us-east-1"]))] == [("home", "us-east-1")]
    both = inventory(regions=["us-east-1", "eu-west-1"])
    assert [(b["id"], b["region"]) for b in buckets(both)] == [("dublin", "eu-west-1"), ("home", "us-east-1")]


def test_legacy_eu_location_is_ireland(aws, inventory):
    aws("s3").create_bucket(Bucket="old-eu", CreateBucketConfiguration={"LocationConstraint": "EU"})
    aws("s3").put_bucket_tagging(Bucket="old-eu", Tagging={"TagSet": [SERVICE]})

    assert [(b["id"], b["region"]) for b in buckets(inventory(regions=["eu-west-1"]))] == [("old-eu", "eu-west-1")]


def test_region_named_by_the_listing_spares_the_location_request(aws):
    make_bucket(aws, "listed", [SERVICE])
    session = AwsSession(max_backoff=0.05)
    requests: list[str] = []

    def name_the_region(parsed, **_):  # what AWS answers a list_buckets given a page size
        for bucket in parsed.get("Buckets", []):
            bucket["BucketRegion"] = "us-east-1"

    events = session.client("s3", "us-east-1").meta.events
    events.register("after-call.s3.ListBuckets", name_the_region)
    events.register("before-call.s3.*", lambda model, **_: requests.append(model.name))
    with ThreadPoolExecutor(4) as pool:
        found = s3_collector.collect(Context(session, {"service": "svc"}, ["us-east-1"], pool), None)

    assert [(bucket.id, bucket.region) for bucket in found.resources] == [("listed", "us-east-1")]
    assert "GetBucketLocation" not in requests
    assert requests[0] == "ListBuckets"
