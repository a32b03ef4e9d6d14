"""RDS database instances, keyed by their identifier (the config names databases by it)."""

from __future__ import annotations

from typing import Any

from failover.manifest import Database, Endpoint
from providers.aws.inventory import Context, Found, tag_dict


def collect(ctx: Context, region: str) -> Found:
    instances = [db for page in ctx.session.pages("rds", region, "describe_db_instances") for db in page["DBInstances"]]
    databases = ctx.map(lambda db: _database(ctx, region, db), instances)
    return Found(resources=[database for database in databases if database is not None])


def _database(ctx: Context, region: str, db: dict[str, Any]) -> Database | None:
    tags = _tags(ctx, region, db)
    if not ctx.selected(tags):
        return None
    endpoint = db.get("Endpoint")
    return Database(
        id=db["DBInstanceIdentifier"],
        name=db["DBInstanceIdentifier"],
        region=region,
        tags=tags,
        engine=db["Engine"],
        engine_version=db.get("EngineVersion"),
        instance_class=db.get("DBInstanceClass"),
        storage_gib=db.get("AllocatedStorage"),
        endpoint=Endpoint(address=endpoint.get("Address"), port=endpoint.get("Port")) if endpoint else None,
        replica_of=_source_id(db.get("ReadReplicaSourceDBInstanceIdentifier")),
    )


def _source_id(source: str | None) -> str | None:
    """A replica's source as the config names databases: the identifier (a cross-region source is an ARN)."""
    return source.rsplit(":", 1)[-1] if source else None


def _tags(ctx: Context, region: str, db: dict[str, Any]) -> dict[str, str]:
    if "TagList" in db:
        return tag_dict(db["TagList"])
    answer = ctx.session.call("rds", region, "list_tags_for_resource", ResourceName=db["DBInstanceArn"])
    return tag_dict(answer.get("TagList"))
