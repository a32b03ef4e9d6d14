"""The RDS collector against moto: database instances and their endpoints."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from providers.aws import rds
from providers.aws.inventory import Context
from providers.aws.session import AwsSession

SERVICE = {"Key": "service", "Value": "svc"}


def make_database(aws, identifier: str, tags: list[dict[str, str]] | None = None, region: str = "us-east-1") -> None:
    aws("rds", region).create_db_instance(
        DBInstanceIdentifier=identifier,
        Engine="postgres",
        EngineVersion="15.4",
        DBInstanceClass="db.t3.medium",
        AllocatedStorage=50,
        MasterUsername="admin",
        MasterUserPassword="secret-password",
        Tags=tags or [],
    )


def databases(manifest) -> list[dict]:
    return [r for r in manifest.to_dict()["resources"] if r["kind"] == "database"]


def test_database_with_engine_storage_and_endpoint(aws, inventory):
    make_database(aws, "orders-db", [SERVICE, {"Key": "Name", "Value": "orders (primary)"}])

    assert databases(inventory()) == [
        {
            "kind": "database",
            "id": "orders-db",
            "name": "orders-db",  # the identifier, whatever the Name tag says: the config keys databases by it
            "region": "us-east-1",
            "tags": {"Name": "orders (primary)", "service": "svc"},
            "engine": "postgres",
            "engine_version": "15.4",
            "instance_class": "db.t3.medium",
            "storage_gib": 50,
            "endpoint": {"address": "orders-db.aaaaaaaaaa.us-east-1.rds.amazonaws.com", "port": 5432},
        }
    ]


def test_only_selected_databases_in_configured_regions(aws, inventory):
    make_database(aws, "mine", [SERVICE])
    make_database(aws, "untagged")
    make_database(aws, "staging", [{"Key": "service", "Value": "svc-staging"}])
    make_database(aws, "mine-in-dublin", [SERVICE], region="eu-west-1")

    assert [(d["id"], d["region"]) for d in databases(inventory())] == [("mine", "us-east-1")]
    both = inventory(regions=["us-east-1", "eu-west-1"])
    assert [(d["id"], d["region"]) for d in databases(both)] == [("mine-in-dublin", "eu-west-1"), ("mine", "us-east-1")]


def test_tags_are_asked_for_when_the_listing_omits_them(aws):
    make_database(aws, "mine", [SERVICE])
    make_database(aws, "staging", [{"Key": "service", "Value": "svc-staging"}])
    session = AwsSession(max_backoff=0.05)

    def drop_tag_lists(parsed, **_):
        for db in parsed.get("DBInstances", []):
            db.pop("TagList", None)

    session.client("rds", "us-east-1").meta.events.register("after-call.rds.DescribeDBInstances", drop_tag_lists)
    with ThreadPoolExecutor(4) as pool:
        found = rds.collect(Context(session, {"service": "svc"}, ["us-east-1"], pool), "us-east-1")

    assert [(db.id, db.tags) for db in found.resources] == [("mine", {"service": "svc"})]
