"""``database-dumps``: each snapshot database has a recent dump on the target.

The dumps are where ``replicate`` stores them and ``restore-databases`` takes them from
(:mod:`failover.naming`): the container of the bucket ``failover-dumps``, keys
``<database>/<UTC time><suffix>``. The newest dump of each database must exist, be no
older than ``readiness.rpo``, not be empty, and, where the state store recorded it
(table ``dumps``), have the recorded size and MD5.
"""

from __future__ import annotations

from typing import Any

from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, summarize
from failover.clock import approx_duration
from failover.databases.base import engine_for
from failover.naming import DUMPS_BUCKET, dump_prefix, newest_dump


@CHECKS.register("database-dumps")
class DatabaseDumps(Check):
    summary = "Every snapshot database has a dump on the target, no older than readiness.rpo."
    order = 90
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        databases = ctx.manifest.primary_databases()  # a read replica is not restored: its primary is
        if not databases:
            return passed("no databases in the snapshot")
        if ctx.profile.storage is None:
            return ctx.no_capability("storage", f"the snapshot has {plural(len(databases), 'database')} to restore")
        storage = ctx.targets.storage
        container = storage.container_name(DUMPS_BUCKET)
        data: dict[str, Any] = {"container": container, "rpo_s": ctx.readiness.rpo}
        if not storage.container_exists(DUMPS_BUCKET):
            return failed(f"no container {container} on the target, so no dump of "
                          f"{', '.join(db.name for db in databases)}: run `failover replicate`", **data, databases=[])
        rows = [_database(ctx, storage, container, database) for database in databases]
        return summarize(rows, **data, databases=rows)


def _database(ctx: CheckContext, storage: Any, container: str, database: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"database": database.name, "engine": database.engine, "key": None, "taken_at": None,
                           "age_s": None, "bytes": None, "recorded": False}
    if engine_for(database.engine) is None:
        return {**row, "status": "fail",
                "detail": f"{database.name}: failover cannot dump or restore engine {database.engine}"}
    objects = {item.key: item for item in storage.iter_objects(DUMPS_BUCKET, prefix=dump_prefix(database.name))}
    dump = newest_dump(objects, database.name, database.engine)
    if dump is None:
        return {**row, "status": "fail", "detail": f"{database.name}: no dump in {container}/{dump_prefix(database.name)}: "
                                                   "run `failover replicate`"}
    item, age = objects[dump.key], ctx.age_s(dump.taken_at)
    row.update(key=dump.key, taken_at=dump.taken_at.isoformat().replace("+00:00", "Z"), age_s=round(age, 1),
               bytes=item.size)
    record = next((r for r in ctx.store.dumps(ctx.service, ctx.target_name, database.name) if r.key == dump.key), None)
    problems = []
    if item.size == 0:
        problems.append("it is empty")
    if record is not None:
        row["recorded"] = True
        if record.bytes != item.size:
            problems.append(f"it holds {item.size} bytes where {record.bytes} were recorded")
        if item.md5 is not None and record.md5 and item.md5 != record.md5:
            problems.append(f"its MD5 {item.md5} is not the recorded {record.md5}")
    rpo = ctx.readiness.rpo
    if age > rpo:
        problems.append(f"{approx_duration(age)} old, older than readiness.rpo ({approx_duration(rpo)})")
    text = f"{database.name}: {dump.key} ({item.size} bytes, {approx_duration(age)} old)"
    if problems:
        return {**row, "status": "fail", "detail": f"{text}: {'; '.join(problems)}"}
    return {**row, "status": "pass", "detail": text}
