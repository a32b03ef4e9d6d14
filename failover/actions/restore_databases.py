"""``restore-databases``: the snapshot's databases back online from their newest dumps.

Dumps are what ``failover replicate`` stored in the target's storage: the container
``container_prefix + "failover-dumps"``, keys ``<database>/<UTC time>.dump`` (PostgreSQL,
``pg_dump -Fc``) or ``.sql.gz`` (MySQL and MariaDB); see ``failover.naming``. What differs
between engines (tools, suffixes, the node's install and restore) is the engine's
(:mod:`failover.databases`).

Two modes:

- ``node`` (the default): a database node per database, named like the other nodes,
  sized from the instance class (a table of the common ``db.*`` classes, or ``size``, or
  the profile's ``sizes`` keyed by instance class), on Ubuntu 22.04 (or ``image``). Its
  cloud-init installs the engine's major version (PostgreSQL from the PGDG apt
  repository; MySQL and MariaDB from the distribution), listens on the private network
  and restores the dump. The node fetches the dump from a time-limited URL where the
  storage adapter can make one (``object_url``); otherwise the dump's container and key
  are written on the node with the command that restores it, once someone copies it there.
  A database whose engine version is not digits and dots gets no node: it is refused
  (named in the plan, in ``refused`` of the outputs, and in the step's log), and the others
  are restored (:mod:`failover.databases.node`).
- ``dsn``: the dump streamed straight from storage into an existing server
  (``pg_restore`` or ``mysql`` on this machine). Write the DSN as ``${env:NAME}``, or
  name the environment variable holding it with ``dsn_env`` (what ``--var`` can carry:
  vars are stored with the run, so they must never hold the DSN itself). Either way it
  is read when the step runs and never written to outputs, logs or errors.

The mode follows the DSN: ``dsn`` when a non-empty ``dsn`` or ``dsn_env`` is given,
``node`` otherwise (an empty string means none, so a playbook can pass a var whose
default is ``""``).

In a drill (``ActionContext.drill_prefix``): mode node creates the database nodes under
the drill's names (torn down with the drill); mode dsn never writes into the server: it
downloads the newest dump and validates it (``pg_restore --list`` and a full read of the
archive; a full gunzip pass for MySQL), and reports it validated, not restored.

Outputs::

    databases: {<name>: {mode, engine, engine_version, dump_container, dump_key,
                         dump_taken_at, dump_age_s,
                         node:  node_id, node_name, public_ip, private_ip, port, dump_fetch ("url" or "manual")
                         dsn:   host, port, database, restored_bytes
                                (in a drill: restored false, validated true, validated_bytes, note)}}
    refused:   {<name>: why no node was built for it (mode node)}
    <name>: the same entry as under databases (a database named "databases" or "refused": "database-<name>")
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.databases.base import Engine, engine_for
from failover.databases.node import DB_IMAGE_NAME, database_node, node_problem, restore_user_data
from failover.dsn import Dsn, dsn_error, parse_dsn, redacted
from failover.errors import InputError, Interrupted, OperationFailed, Problem
from failover.manifest import Database
from failover.naming import DUMPS_BUCKET, DumpKey, dump_prefix, newest_dump, node_names
from failover.nodes import SOURCE_LABEL, VIA_NONE, NodePlan, destroy_nodes, ensure_nodes, map_onto_target
from failover.ports import NodeInfo, StorageTarget

DUMP_URL_SECONDS = 6 * 3600  # long enough for a slow first boot and package install
RESERVED_KEYS = frozenset({"databases", "refused"})
DRILL_NOTE = "validated, not restored (drill)"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DatabaseSelector(Params):
    names: list[str] = Field(default_factory=list, description="Only the databases of these names (as in the snapshot).")


class RestoreDatabasesParams(Params):
    select: DatabaseSelector = Field(
        default_factory=DatabaseSelector, description="Which databases; by default all of the snapshot's."
    )
    mode: Literal["node", "dsn"] | None = Field(
        None,
        description="node: a new database node per database, restored by cloud-init; dsn: into an existing server. "
        "Default: dsn when dsn or dsn_env is given (non-empty), else node.",
    )
    dsn: str | None = Field(
        None,
        description="mode dsn: the server to restore into, postgresql://... or mysql://...; write it as ${env:NAME}. "
        "Empty: none.",
    )
    dsn_env: str | None = Field(
        None,
        description="mode dsn: the name of the environment variable holding the dsn, read when the step runs "
        "(a var can carry the name, never the secret). Empty: none.",
    )
    size: str | None = Field(None, description="mode node: the target size (id or name) of the database nodes.")
    image: str | None = Field(None, description=f"mode node: the target image (id or name) instead of {DB_IMAGE_NAME}.")
    keep_node: bool = Field(False, description="mode node: a rollback keeps the database nodes (and the data written to them).")
    wait: bool = Field(True, description="mode node: wait until the database nodes run.")
    timeout: float = Field(900, gt=0, le=86400, description="Seconds to wait for the database nodes to run.")

    @model_validator(mode="after")
    def _dsn_with_its_mode(self) -> RestoreDatabasesParams:
        # The messages never repeat the dsn: it holds credentials (dsn_env is only a name).
        if self.dsn_env and not ENV_NAME.match(self.dsn_env):
            raise ValueError(f"dsn_env: {self.dsn_env!r} is not an environment variable name")
        if self.dsn_env and not os.environ.get(self.dsn_env):
            # As for an unset ${env:NAME}: a validation problem, before anything is changed.
            raise ValueError(f"dsn_env: {_unset(self.dsn_env)}")
        if self.dsn and self.dsn_env:
            raise ValueError("give dsn or dsn_env, not both")
        if self.mode == "dsn" and not self.has_dsn:
            raise ValueError("mode dsn needs dsn (or dsn_env)")
        if self.mode == "node" and self.has_dsn:
            raise ValueError(f"{'dsn' if self.dsn else 'dsn_env'} is for mode dsn only")
        return self

    @property
    def has_dsn(self) -> bool:
        return bool(self.dsn or self.dsn_env)

    @property
    def restore_mode(self) -> str:
        """The mode in effect: as given, else dsn when there is a dsn, else node."""
        return self.mode or ("dsn" if self.has_dsn else "node")

    def target_dsn(self) -> Dsn:
        """The server to restore into, read now (from ``dsn_env``'s variable if so). Never stored."""
        if self.dsn:
            return parse_dsn(self.dsn)
        value = os.environ.get(self.dsn_env or "")
        if not value:  # unset since the parameters were validated
            raise InputError([Problem(file="playbook", field="with.dsn_env", message=_unset(self.dsn_env))])
        return parse_dsn(value)


def _unset(name: str) -> str:
    return f"environment variable {name} {'is empty' if name in os.environ else 'is not set'}"


@ACTIONS.register("restore-databases")
class RestoreDatabases(Action):
    """Restore each database from its newest dump: on a new database node, or into a server at a DSN."""

    summary = "Restore the databases from their newest dumps in target storage: on new database nodes, or into a DSN."
    Params = RestoreDatabasesParams
    example = {"select": {"names": ["orders-db"]}, "mode": "node", "keep_node": False, "timeout": 900}

    def plan(self, ctx: ActionContext, params: RestoreDatabasesParams) -> list[Change]:
        return self._plan_restores(ctx, params) + [
            Change("none", "database", db.name, f"read replica of {db.replica_of}: left behind; its primary is restored")
            for db in _replicas(ctx, params)
        ]

    def apply(self, ctx: ActionContext, params: RestoreDatabasesParams) -> dict[str, Any]:
        outputs = self._restore(ctx, params)
        replicas = {db.name: db.replica_of for db in _replicas(ctx, params)}
        return {**outputs, "replicas_left_behind": replicas} if replicas else outputs

    def _plan_restores(self, ctx: ActionContext, params: RestoreDatabasesParams) -> list[Change]:
        databases = select_databases(ctx, params)
        dumps = {db.name: find_newest_dump(ctx.targets.storage, db) for db in databases}
        if params.restore_mode == "dsn":
            target = params.target_dsn().describe()
            if ctx.drill_prefix:
                return [
                    Change("check", "database", db.name,
                           f"validate {_dump_text(ctx, dumps[db.name])}; a drill does not restore into {target}")
                    for db in databases
                ]
            return [
                Change("update", "database", db.name, f"restore {_dump_text(ctx, dumps[db.name])} into {target}")
                for db in databases
            ]
        refused = refused_databases(databases)
        buildable = [db for db in databases if db.name not in refused]
        plans = plan_database_nodes(ctx, params, buildable, dumps, with_url=False)
        compute = ctx.targets.compute
        changes = [Change("refuse", "database", name, why) for name, why in refused.items()]
        return changes + [
            _node_change(ctx, plan, db, dumps[db.name], compute.find_node(plan.name))
            for plan, db in zip(plans, buildable, strict=True)
        ]

    def _restore(self, ctx: ActionContext, params: RestoreDatabasesParams) -> dict[str, Any]:
        databases = select_databases(ctx, params)
        dumps = {db.name: find_newest_dump(ctx.targets.storage, db) for db in databases}
        refused: dict[str, str] = {}
        if params.restore_mode == "dsn":
            dsn = params.target_dsn()
            restore = validate_for_dsn if ctx.drill_prefix else restore_into_dsn
            entries = {db.name: restore(ctx, db, dumps[db.name], dsn) for db in databases}
        else:
            refused = refused_databases(databases)
            for name, why in refused.items():
                ctx.info(f"refused database {name}: {why}")
            if refused:
                ctx.info(f"{len(refused)} of {len(databases)} database(s) refused: no database node for them")
            entries = restore_on_nodes(ctx, params, [db for db in databases if db.name not in refused], dumps)
        keyed = {name if name not in RESERVED_KEYS else f"database-{name}": entry for name, entry in entries.items()}
        return {"databases": entries, "refused": refused, **keyed}

    def undo(self, ctx: ActionContext, params: RestoreDatabasesParams) -> None:
        if params.restore_mode == "dsn":
            if ctx.drill_prefix:
                ctx.info("mode dsn in a drill: nothing was restored, nothing to undo")
            else:
                ctx.info("mode dsn: the restored data stays in the server it was restored into")
            return
        if params.keep_node:
            ctx.info("keep_node: the database nodes stay")
            return
        names = node_names(ctx.manifest, ctx.naming_service)
        destroy_nodes(ctx, [names[db.id] for db in select_databases(ctx, params)])


# -- databases and their dumps ---------------------------------------------------------------


def engine_of(database: Database) -> Engine:
    """The engine of a selected database (``select_databases`` refused the others)."""
    engine = engine_for(database.engine)
    if engine is None:
        raise OperationFailed(f"{database.name}: engine {database.engine} has no dumps")
    return engine


def _replicas(ctx: ActionContext, params: RestoreDatabasesParams) -> list[Database]:
    return [db for db in ctx.manifest.replicas() if not params.select.names or db.name in params.select.names]


def select_databases(ctx: ActionContext, params: RestoreDatabasesParams) -> list[Database]:
    """The selected databases; InputError for unknown names, engines without dumps, or a
    DSN given more than one database."""
    databases = ctx.manifest.of_kind("database")
    names = params.select.names
    problems = [f"no database {name!r} in the snapshot" for name in names if not any(db.name == name for db in databases)]
    # A read replica is never a second standalone copy: its primary is restored, the replica left behind.
    selected = [db for db in ctx.manifest.primary_databases() if not names or db.name in names]
    problems += [
        f"{db.name}: engine {db.engine} has no dumps (failover restores PostgreSQL, MySQL and MariaDB)"
        for db in selected if engine_for(db.engine) is None
    ]
    if params.restore_mode == "dsn" and len(selected) > 1:
        problems.append(f"mode dsn restores one database; select one of {', '.join(db.name for db in selected)}")
    if problems:
        raise InputError([Problem(file="playbook", field="with", message=message) for message in problems])
    return selected


def refused_databases(databases: Sequence[Database]) -> dict[str, str]:
    """Database name -> why no database node can be built for it (its engine version)."""
    return {db.name: problem for db in databases if (problem := node_problem(db)) is not None}


def find_newest_dump(storage: StorageTarget, database: Database) -> DumpKey:
    """The newest dump of ``database``; OperationFailed naming the container and prefix when there is none."""
    container, prefix = storage.container_name(DUMPS_BUCKET), dump_prefix(database.name)
    hint = f"(expected {container}/{prefix}<UTC time>{engine_of(database).dump_suffix}; run failover replicate)"
    if not storage.container_exists(DUMPS_BUCKET):
        raise OperationFailed(f"no dump of database {database.name}: container {container} does not exist {hint}")
    keys = (item.key for item in storage.iter_objects(DUMPS_BUCKET, prefix=prefix))
    dump = newest_dump(keys, database.name, database.engine)
    if dump is None:
        raise OperationFailed(f"no dump of database {database.name} in container {container} under {prefix} {hint}")
    return dump


def dump_fields(ctx: ActionContext, database: Database, dump: DumpKey) -> dict[str, Any]:
    return {
        "engine": database.engine,
        "engine_version": database.engine_version,
        "dump_container": ctx.targets.storage.container_name(DUMPS_BUCKET),
        "dump_key": dump.key,
        "dump_taken_at": dump.taken_at.isoformat().replace("+00:00", "Z"),
        "dump_age_s": round((datetime.now(UTC) - dump.taken_at).total_seconds()),
    }


def _dump_text(ctx: ActionContext, dump: DumpKey) -> str:
    hours = (datetime.now(UTC) - dump.taken_at).total_seconds() / 3600
    return f"{ctx.targets.storage.container_name(DUMPS_BUCKET)}/{dump.key} ({hours:.1f} h old)"


# -- mode node -------------------------------------------------------------------------------


def restore_on_nodes(
    ctx: ActionContext, params: RestoreDatabasesParams, databases: Sequence[Database], dumps: dict[str, DumpKey]
) -> dict[str, dict[str, Any]]:
    plans = plan_database_nodes(ctx, params, databases, dumps, with_url=True)
    ready = ensure_nodes(ctx, plans, wait=params.wait, timeout=params.timeout)
    fetch = {db.name: "url" if dump_url(ctx.targets.storage, dumps[db.name]) else "manual" for db in databases}
    return {db.name: _node_entry(ctx, db, dumps[db.name], *ready[db.id], fetch[db.name]) for db in databases}


def plan_database_nodes(
    ctx: ActionContext, params: RestoreDatabasesParams, databases: Sequence[Database], dumps: dict[str, DumpKey],
    *, with_url: bool,
) -> list[NodePlan]:
    """The database nodes; ``with_url`` signs the dumps' URLs into their user data (a plan does not)."""
    if not databases:
        return []
    nodes = [database_node(db) for db in databases]
    profile = ctx.targets.profile
    sizes = {**profile.sizes, **({node.instance_type: params.size for node in nodes} if params.size else {})}
    images = {**profile.images, **({DB_IMAGE_NAME: params.image} if params.image else {})}
    mapping = map_onto_target(ctx, nodes, profile.model_copy(update={"sizes": sizes, "images": images}))
    names = node_names(ctx.manifest, ctx.naming_service)
    storage = ctx.targets.storage
    plans = []
    for db in databases:
        choice = mapping.for_node(db.id)
        url = dump_url(storage, dumps[db.name]) if with_url else None
        plans.append(NodePlan(
            source_id=db.id, source_name=db.name, key=db.name, name=names[db.id], size=choice.size, image=choice.image,
            user_data=restore_user_data(db, dumps[db.name], storage.container_name(DUMPS_BUCKET), url),
            labels={**ctx.labels, SOURCE_LABEL: db.id}, firewall=VIA_NONE,
        ))
    return plans


def dump_url(storage: StorageTarget, dump: DumpKey) -> str | None:
    """A time-limited URL of the dump, where the storage signs them (S3, Azure Blob); else None."""
    return storage.object_url(DUMPS_BUCKET, dump.key, DUMP_URL_SECONDS)


def _node_change(ctx: ActionContext, plan: NodePlan, database: Database, dump: DumpKey, existing: NodeInfo | None) -> Change:
    signs_urls = dump_url(ctx.targets.storage, dump) is not None
    fetch = "fetched by a time-limited URL" if signs_urls else "copied in by hand (this storage makes no URLs)"
    restore = f"{engine_of(database).label(database)}; restores {_dump_text(ctx, dump)}, {fetch}"
    if existing is not None:
        return Change("none", "node", plan.name, f"exists as {existing.id} ({existing.state}): adopted; {restore}")
    detail = f"database node: size {plan.size.id} ({plan.size.why}); image {plan.image.id} ({plan.image.why}); {restore}"
    return Change("create", "node", plan.name, detail)


def _node_entry(
    ctx: ActionContext, database: Database, dump: DumpKey, node: NodeInfo, adopted: bool, fetch: str
) -> dict[str, Any]:
    return {
        "mode": "node",
        **dump_fields(ctx, database, dump),
        "node_id": node.id,
        "node_name": node.name,
        "public_ip": node.public_ips[0] if node.public_ips else None,
        "private_ip": node.private_ips[0] if node.private_ips else None,
        "port": engine_of(database).default_port,
        "adopted": adopted,
        "dump_fetch": fetch,
    }


# -- mode dsn --------------------------------------------------------------------------------


def restore_into_dsn(ctx: ActionContext, database: Database, dump: DumpKey, dsn: Dsn) -> dict[str, Any]:
    """Stream the dump from storage into the server at ``dsn``, replacing what the dump holds."""
    engine = _engine_for_dsn(database, dsn)
    ctx.info(f"restoring {dump.key} into {dsn.describe()}")
    chunks = ctx.targets.storage.download_stream(DUMPS_BUCKET, dump.key)
    with tempfile.TemporaryDirectory(prefix="failover-restore-") as workdir:
        command, env = engine.restore_command(dsn, Path(workdir))
        sent = _run_restore(ctx, command, env, engine.restore_stream(chunks, f"dump {dump.key}"), dsn)
    ctx.info(f"restored {database.name} into {dsn.describe()} ({sent} bytes)")
    return {**_dsn_fields(ctx, database, dump, dsn, engine), "restored_bytes": sent}


def _dsn_fields(ctx: ActionContext, database: Database, dump: DumpKey, dsn: Dsn, engine: Engine) -> dict[str, Any]:
    """What a step in mode dsn outputs for a database, restored or validated."""
    return {
        "mode": "dsn",
        **dump_fields(ctx, database, dump),
        "host": dsn.host or "localhost",
        "port": dsn.port or engine.default_port,
        "database": dsn.database,
    }


def _engine_for_dsn(database: Database, dsn: Dsn) -> Engine:
    engine = engine_of(database)
    if dsn.family != engine.name:
        raise dsn_error(f"{database.name} is {database.engine}: the dsn must be a {engine.name} server")
    return engine


def validate_for_dsn(ctx: ActionContext, database: Database, dump: DumpKey, dsn: Dsn) -> dict[str, Any]:
    """A drill's mode dsn: the newest dump downloaded and read through by its engine, never
    restored (PostgreSQL: ``pg_restore --list`` and a full read of the archive into SQL thrown
    away; MySQL: a full gunzip pass). OperationFailed if it is bad."""
    engine = _engine_for_dsn(database, dsn)
    ctx.info(f"validating {dump.key} (a drill does not restore into {dsn.describe()})")
    chunks = ctx.targets.storage.download_stream(DUMPS_BUCKET, dump.key)
    checks = engine.validate_dump(chunks, f"dump {dump.key}", ctx.cancel.is_set)
    ctx.info(f"{database.name}: {dump.key} {DRILL_NOTE}")
    return {
        **_dsn_fields(ctx, database, dump, dsn, engine),
        "restored": False,
        "validated": True,
        **checks,
        "note": DRILL_NOTE,
    }


def _run_restore(ctx: ActionContext, command: list[str], env: dict[str, str], chunks: Iterable[bytes], dsn: Dsn) -> int:
    """Feed ``chunks`` to ``command``'s stdin; the number of bytes sent. OperationFailed with the
    tool's own error (its last lines, the password removed) when it fails."""
    tool = Path(command[0]).name
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=errors, env=env)
        try:
            sent = _feed(ctx, process, chunks)
        except BaseException:
            process.kill()
            process.wait()
            raise
        status = process.wait()
        if status != 0:
            errors.seek(0)
            message = redacted(errors.read().decode("utf-8", "replace").strip()[-1500:], dsn.secrets)
            raise OperationFailed(f"{tool} into {dsn.describe()} failed (exit {status}): {message or 'no message'}")
    return sent


def _feed(ctx: ActionContext, process: subprocess.Popen, chunks: Iterable[bytes]) -> int:
    sent = 0
    try:
        for chunk in chunks:
            if ctx.cancel.is_set():
                raise Interrupted("cancelled while restoring")
            process.stdin.write(chunk)
            sent += len(chunk)
    except BrokenPipeError:
        pass  # the tool stopped reading: its exit status and message say why
    finally:
        with contextlib.suppress(BrokenPipeError):
            process.stdin.close()
    return sent
