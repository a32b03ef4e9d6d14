"""``restore-databases``: the snapshot's databases back online from their newest dumps.

Dumps are what ``failover replicate`` stored in the target's storage: the container
``container_prefix + "failover-dumps"``, keys ``<database>/<UTC time>.dump`` (PostgreSQL,
``pg_dump -Fc``) or ``.sql.gz`` (MySQL and MariaDB); see ``failover.naming``.

Two modes:

- ``node`` (the default): a database node per database, named like the other nodes,
  sized from the instance class (a table of the common ``db.*`` classes, or ``size``, or
  the profile's ``sizes`` keyed by instance class), on Ubuntu 22.04 (or ``image``). Its
  cloud-init installs the engine's major version (PostgreSQL from the PGDG apt
  repository; MySQL and MariaDB from the distribution), listens on the private network
  and restores the dump. The node fetches the dump from a time-limited URL where the
  storage adapter can make one (``object_url``); otherwise the dump's container and key
  are written on the node with the command that restores it, once someone copies it there.
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
    <name>: the same entry as under databases (a database named "databases": "database-databases")
"""

from __future__ import annotations

import contextlib

import os
import re
import shlex
import subprocess
import tempfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.nodes import (
    SOURCE_LABEL,
    VIA_NONE,
    NodePlan,
    destroy_nodes,
    ensure_nodes,
    map_onto_target,
)
from failover.cloudinit import cloud_config
from failover.dsn import Dsn, parse_dsn
from failover.dsn import conninfo_value as _conninfo_value
from failover.dsn import dsn_error as _dsn_error
from failover.dsn import find_tool as _tool
from failover.dsn import option_value as _option_value
from failover.dsn import redacted as _redacted
from failover.dsn import tool_environment as _environment
from failover.errors import InputError, Interrupted, OperationFailed, Problem
from failover.manifest import Database, Node
from failover.naming import (
    DUMPS_BUCKET,
    DumpKey,
    dump_format,
    dump_prefix,
    newest_dump,
    node_names,
    slug,
)
from failover.ports import NodeInfo, StorageTarget

# The OS of database nodes, as an image name the mapping reads (an ``images`` override may name it).
DB_IMAGE_NAME = "ubuntu-22.04-lts"
DUMP_URL_SECONDS = 6 * 3600  # long enough for a slow first boot and package install
DUMP_DIR = "/var/lib/failover"
PRIVATE_NETWORKS = ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
DEFAULT_PORTS = {"postgres": 5432, "mysql": 3306}
RESERVED_KEYS = frozenset({"databases"})
DRILL_NOTE = "validated, not restored (drill)"
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# vCPUs and memory (MiB) of RDS instance classes: the burstable ones by name; the general
# purpose (db.m*) and memory optimized (db.r*) ones have 4 and 8 GiB per vCPU, and
# large = 2 vCPUs, xlarge = 4, Nxlarge = 4N.
BURSTABLE_CLASSES = {
    "micro": (2, 1024), "small": (2, 2048), "medium": (2, 4096),
    "large": (2, 8192), "xlarge": (4, 16384), "2xlarge": (8, 32768),
}
T2_CLASSES = {"micro": (1, 1024), "small": (1, 2048), "medium": (2, 4096), "large": (2, 8192)}
MIB_PER_VCPU = {"m": 4096, "r": 8192}
_CLASS = re.compile(r"^db\.(?P<family>[a-z]+)(?P<generation>\d+)[a-z]*\.(?P<size>[a-z0-9]+)$")


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
        plans = plan_database_nodes(ctx, params, databases, dumps, with_url=False)
        compute = ctx.targets.compute
        return [
            _node_change(ctx, plan, db, dumps[db.name], compute.find_node(plan.name)) for plan, db in zip(plans, databases, strict=True)
        ]

    def _restore(self, ctx: ActionContext, params: RestoreDatabasesParams) -> dict[str, Any]:
        databases = select_databases(ctx, params)
        dumps = {db.name: find_newest_dump(ctx.targets.storage, db) for db in databases}
        if params.restore_mode == "dsn":
            dsn = params.target_dsn()
            restore = validate_for_dsn if ctx.drill_prefix else restore_into_dsn
            entries = {db.name: restore(ctx, db, dumps[db.name], dsn) for db in databases}
        else:
            entries = restore_on_nodes(ctx, params, databases, dumps)
        keyed = {name if name not in RESERVED_KEYS else f"database-{name}": entry for name, entry in entries.items()}
        return {"databases": entries, **keyed}

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
        for db in selected if dump_format(db.engine) is None
    ]
    if params.restore_mode == "dsn" and len(selected) > 1:
        problems.append(f"mode dsn restores one database; select one of {', '.join(db.name for db in selected)}")
    if problems:
        raise InputError([Problem(file="playbook", field="with", message=message) for message in problems])
    return selected


def find_newest_dump(storage: StorageTarget, database: Database) -> DumpKey:
    """The newest dump of ``database``; OperationFailed naming the container and prefix when there is none."""
    container, prefix = storage.container_name(DUMPS_BUCKET), dump_prefix(database.name)
    hint = f"(expected {container}/{prefix}<UTC time>{dump_format(database.engine).suffix}; run failover replicate)"
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
    nodes = [database_node(db) for db in databases]
    profile = ctx.targets.profile
    sizes = {**profile.sizes, **({node.instance_type: params.size for node in nodes} if params.size else {})}
    images = {**profile.images, **({DB_IMAGE_NAME: params.image} if params.image else {})}
    mapping = map_onto_target(ctx, nodes, profile.model_copy(update={"sizes": sizes, "images": images}))
    names = node_names(ctx.manifest, ctx.naming_service)
    plans = []
    for db in databases:
        choice = mapping.for_node(db.id)
        plans.append(NodePlan(
            source_id=db.id, source_name=db.name, key=db.name, name=names[db.id], size=choice.size, image=choice.image,
            user_data=restore_user_data(ctx, db, dumps[db.name], with_url=with_url),
            labels={**ctx.labels, SOURCE_LABEL: db.id}, firewall=VIA_NONE,
        ))
    return plans


def database_node(database: Database) -> Node:
    """The database as a node for the mapping: its class's vCPUs and memory, its storage as disk."""
    vcpus, memory_mib = instance_class_shape(database.instance_class) or (None, None)
    return Node(
        id=database.id, name=database.name, region=database.region, tags=database.tags,
        instance_type=database.instance_class or "unknown", vcpus=vcpus, memory_mib=memory_mib,
        image_id=None, image_name=DB_IMAGE_NAME, architecture="x86_64", private_ip=None, public_ip=None,
        root_volume_gib=database.storage_gib, user_data=None, state="running",
    )


def instance_class_shape(instance_class: str | None) -> tuple[int, int] | None:
    """(vCPUs, memory MiB) of an RDS instance class; None when it is not a common one."""
    match = _CLASS.match(instance_class or "")
    if match is None:
        return None
    family, generation, size = match["family"], match["generation"], match["size"]
    if family == "t":
        return (T2_CLASSES if generation == "2" else BURSTABLE_CLASSES).get(size)
    if family in MIB_PER_VCPU:
        vcpus = 2 if size == "large" else 4 if size == "xlarge" else _multiple_xlarge(size)
        return (vcpus, vcpus * MIB_PER_VCPU[family]) if vcpus else None
    return None


def _multiple_xlarge(size: str) -> int | None:
    match = re.fullmatch(r"(\d+)xlarge", size)
    return 4 * int(match[1]) if match else None


def restore_user_data(ctx: ActionContext, database: Database, dump: DumpKey, *, with_url: bool) -> str:
    """The database node's cloud-init: a script that installs the engine and restores the dump."""
    storage = ctx.targets.storage
    url = dump_url(storage, dump) if with_url else None
    script = restore_script(database, dump, storage.container_name(DUMPS_BUCKET), url)
    path = f"/usr/local/sbin/failover-restore-{slug(database.name)}"
    return cloud_config({
        "write_files": [{"path": path, "permissions": "0700", "content": script}],
        "runcmd": [[path]],
    })


def dump_url(storage: StorageTarget, dump: DumpKey) -> str | None:
    """A time-limited URL of the dump, where the storage signs them (S3, Azure Blob); else None."""
    return storage.object_url(DUMPS_BUCKET, dump.key, DUMP_URL_SECONDS)


def restore_script(database: Database, dump: DumpKey, container: str, url: str | None) -> str:
    family = dump_format(database.engine).family
    dump_file = f"{DUMP_DIR}/{slug(database.name)}{dump.suffix}"
    header = [
        "#!/bin/sh",
        f"# Written by failover: {_engine_label(database)} for database {database.name}, restored from",
        f"# {container}/{dump.key}. Run it again to restore again (it replaces the database).",
        "set -eu",
        "export DEBIAN_FRONTEND=noninteractive",
        f"DUMP={dump_file}",
        f"DUMP_URL={shlex.quote(url or '')}",
        "apt-get update -q",
        "apt-get install -y -q curl ca-certificates gzip",
    ]
    install = _postgres_install(database) if family == "postgres" else _mysql_install(database)
    restore = _postgres_restore() if family == "postgres" else _mysql_restore()
    fetch = [
        f"install -d -m 0700 {DUMP_DIR}",
        'if [ ! -s "$DUMP" ] && [ -n "$DUMP_URL" ]; then',
        '  curl -fsS --retry 5 -o "$DUMP.part" "$DUMP_URL" && mv "$DUMP.part" "$DUMP"',
        "fi",
        'if [ ! -s "$DUMP" ]; then',
        f'  echo "failover: copy {container}/{dump.key} from the target storage to $DUMP, then run $0 again" >&2',
        "  exit 0",
        "fi",
    ]
    return "\n".join([*header, *install, *fetch, *restore]) + "\n"


PGDG_KEYRING = "/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc"
PGDG_SOURCE = f"deb [signed-by={PGDG_KEYRING}] https://apt.postgresql.org/pub/repos/apt ${{VERSION_CODENAME}}-pgdg main"


def _postgres_install(database: Database) -> list[str]:
    major = postgres_major(database.engine_version)
    hba = f"/etc/postgresql/{major}/main/pg_hba.conf"
    return [
        "# PGDG has every supported PostgreSQL major version for every supported Debian and Ubuntu release.",
        ". /etc/os-release",
        f"install -d {Path(PGDG_KEYRING).parent}",
        f"curl -fsSL -o {PGDG_KEYRING} https://www.postgresql.org/media/keys/ACCC4CF8.asc",
        f'echo "{PGDG_SOURCE}" > /etc/apt/sources.list.d/pgdg.list',
        "apt-get update -q",
        f"apt-get install -y -q postgresql-{major}",
        f"echo \"listen_addresses = '*'\" > /etc/postgresql/{major}/main/conf.d/failover.conf",
        f"for network in {' '.join(PRIVATE_NETWORKS)}; do",
        f'  grep -q "^host all all $network " {hba} || echo "host all all $network scram-sha-256" >> {hba}',
        "done",
        "systemctl restart postgresql",
    ]


def _postgres_restore() -> list[str]:
    # --create with --clean: drop the dump's database if it exists, create it, restore into it.
    # The dump goes in on stdin: the postgres user cannot read root's directory.
    options = "--create --clean --if-exists --no-owner --no-privileges --exit-on-error --dbname=postgres"
    return [f'runuser -u postgres -- pg_restore {options} < "$DUMP"']


def _mysql_install(database: Database) -> list[str]:
    mariadb = database.engine.lower() == "mariadb"
    package, service = ("mariadb-server", "mariadb") if mariadb else ("mysql-server", "mysql")
    config = "/etc/mysql/mariadb.conf.d/zz-failover.cnf" if mariadb else "/etc/mysql/mysql.conf.d/zz-failover.cnf"
    return [
        f"apt-get install -y -q {package}",
        f"printf '[mysqld]\\nbind-address = 0.0.0.0\\n' > {config}",
        f"systemctl restart {service}",
    ]


def _mysql_restore() -> list[str]:
    # sh has no pipefail: test the archive first, so a broken one stops the script.
    return ['gunzip -t "$DUMP"', 'gunzip -c "$DUMP" | mysql']


def postgres_major(version: str | None) -> str:
    """"15.4" -> "15"; "9.6.22" -> "9.6" (before 10, the major version had two numbers)."""
    parts = (version or "").split(".")
    if not parts[0].isdigit():
        raise OperationFailed(f"cannot tell the PostgreSQL major version of {version!r}")
    return ".".join(parts[:2]) if int(parts[0]) < 10 and len(parts) > 1 else parts[0]


def _engine_label(database: Database) -> str:
    family = dump_format(database.engine).family
    if family == "postgres":
        return f"PostgreSQL {postgres_major(database.engine_version)}"
    name = "MariaDB" if database.engine.lower() == "mariadb" else "MySQL"
    return f"{name} (the distribution's; the source ran {database.engine_version or 'an unknown version'})"


def _node_change(ctx: ActionContext, plan: NodePlan, database: Database, dump: DumpKey, existing: NodeInfo | None) -> Change:
    signs_urls = dump_url(ctx.targets.storage, dump) is not None
    fetch = "fetched by a time-limited URL" if signs_urls else "copied in by hand (this storage makes no URLs)"
    restore = f"{_engine_label(database)}; restores {_dump_text(ctx, dump)}, {fetch}"
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
        "port": DEFAULT_PORTS[dump_format(database.engine).family],
        "adopted": adopted,
        "dump_fetch": fetch,
    }


# -- mode dsn --------------------------------------------------------------------------------


def restore_into_dsn(ctx: ActionContext, database: Database, dump: DumpKey, dsn: Dsn) -> dict[str, Any]:
    """Stream the dump from storage into the server at ``dsn``, replacing what the dump holds."""
    family = dump_format(database.engine).family
    if dsn.family != family:
        raise _dsn_error(f"{database.name} is {database.engine}: the dsn must be a {family} server")
    ctx.info(f"restoring {dump.key} into {dsn.describe()}")
    chunks = ctx.targets.storage.download_stream(DUMPS_BUCKET, dump.key)
    if family == "postgres":
        sent = _run_restore(ctx, *postgres_restore_command(dsn), chunks, dsn)
    else:
        with tempfile.TemporaryDirectory(prefix="failover-mysql-") as workdir:
            sent = _run_restore(ctx, *mysql_restore_command(dsn, Path(workdir)), gunzipped(chunks, f"dump {dump.key}"), dsn)
    ctx.info(f"restored {database.name} into {dsn.describe()} ({sent} bytes)")
    return {
        "mode": "dsn",
        **dump_fields(ctx, database, dump),
        "host": dsn.host or "localhost",
        "port": dsn.port or DEFAULT_PORTS[family],
        "database": dsn.database,
        "restored_bytes": sent,
    }


def postgres_restore_command(dsn: Dsn) -> tuple[list[str], dict[str, str]]:
    """pg_restore's command line (no password) and environment (the password, in PGPASSWORD)."""
    settings = (("host", dsn.host), ("port", dsn.port), ("dbname", dsn.database), ("user", dsn.user), *dsn.options)
    conninfo = " ".join(f"{key}={_conninfo_value(value)}" for key, value in settings if value is not None)
    # One transaction: a failed or interrupted restore leaves the database as it was.
    command = [
        _tool("pg_restore", "the PostgreSQL client tools (postgresql-client)"),
        "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
        f"--dbname={conninfo}",
    ]
    timeout = os.environ.get("PGCONNECT_TIMEOUT", "10")
    return command, _environment({"PGPASSWORD": dsn.password, "PGCONNECT_TIMEOUT": timeout})


def mysql_restore_command(dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
    """mysql's command line and an option file holding the credentials (never the command line)."""
    options = workdir / "client.cnf"
    settings = {"host": dsn.host, "port": dsn.port, "user": dsn.user, "password": dsn.password}
    lines = ["[client]", *(f'{key}="{_option_value(value)}"' for key, value in settings.items() if value is not None)]
    descriptor = os.open(options, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    mysql = _tool("mysql", "the MySQL client (mysql-client or mariadb-client)")
    command = [mysql, f"--defaults-extra-file={options}", "--batch"]
    if dsn.database:
        command.append(f"--database={dsn.database}")
    return command, _environment({})


def gunzipped(chunks: Iterable[bytes], name: str = "the dump") -> Iterator[bytes]:
    """The gzip stream ``chunks`` decompressed (members one after the other, as gunzip does);
    OperationFailed when it is not gzip or ends before its end."""
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)  # gzip framing
    started = False
    try:
        for chunk in chunks:
            while chunk:
                started = True
                if data := decompressor.decompress(chunk):
                    yield data
                chunk = b""
                if decompressor.eof:  # a member ended: what follows is the next one (or nothing)
                    chunk = decompressor.unused_data
                    if chunk:
                        decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
        if tail := decompressor.flush():
            yield tail
    except zlib.error as exc:
        raise OperationFailed(f"{name} is not a valid gzip file: {exc}") from None
    if started and not decompressor.eof:
        raise OperationFailed(f"{name} is truncated: its gzip stream ends early")
    if not started:
        raise OperationFailed(f"{name} is empty")


def validate_for_dsn(ctx: ActionContext, database: Database, dump: DumpKey, dsn: Dsn) -> dict[str, Any]:
    """A drill's mode dsn: the newest dump downloaded and read through, never restored.
    PostgreSQL: ``pg_restore --list`` (the archive's table of contents) and a full read of
    the archive into SQL thrown away; MySQL: a full gunzip pass. OperationFailed if it is bad."""
    family = dump_format(database.engine).family
    if dsn.family != family:
        raise _dsn_error(f"{database.name} is {database.engine}: the dsn must be a {family} server")
    ctx.info(f"validating {dump.key} (a drill does not restore into {dsn.describe()})")
    chunks = ctx.targets.storage.download_stream(DUMPS_BUCKET, dump.key)
    checks: dict[str, Any] = {}
    if family == "postgres":
        size, entries = _validate_pg_archive(ctx, chunks, dump)
        checks["archive_entries"] = entries
    else:
        downloaded = [0]

        def counted(parts: Iterable[bytes]) -> Iterator[bytes]:
            for part in parts:
                downloaded[0] += len(part)
                yield part

        sql = gunzipped(counted(_cancellable(ctx, chunks)), f"dump {dump.key}")
        checks["sql_bytes"] = sum(len(part) for part in sql)
        size = downloaded[0]
    ctx.info(f"{database.name}: {dump.key} {DRILL_NOTE}")
    return {
        "mode": "dsn",
        **dump_fields(ctx, database, dump),
        "host": dsn.host or "localhost",
        "port": dsn.port or DEFAULT_PORTS[family],
        "database": dsn.database,
        "restored": False,
        "validated": True,
        "validated_bytes": size,
        **checks,
        "note": DRILL_NOTE,
    }


def _cancellable(ctx: ActionContext, chunks: Iterable[bytes]) -> Iterator[bytes]:
    for chunk in chunks:
        if ctx.cancel.is_set():
            raise Interrupted("cancelled while validating")
        yield chunk


def _validate_pg_archive(ctx: ActionContext, chunks: Iterable[bytes], dump: DumpKey) -> tuple[int, int]:
    """Feed the dump to ``pg_restore --list`` and to ``pg_restore --file=/dev/null`` at once
    (one download): the table of contents must read, and so must every entry's data (a
    truncated archive passes ``--list``, not the full read). Returns (bytes, TOC entries)."""
    pg_restore = _tool("pg_restore", "the PostgreSQL client tools (postgresql-client)")
    with tempfile.TemporaryFile() as listing, tempfile.TemporaryFile() as list_errors, \
            tempfile.TemporaryFile() as read_errors:
        lister = subprocess.Popen([pg_restore, "--list"], stdin=subprocess.PIPE, stdout=listing, stderr=list_errors)
        reader = subprocess.Popen([pg_restore, "--file=/dev/null"], stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=read_errors)
        processes = [lister, reader]
        try:
            size = _feed_all(ctx, processes, chunks)
        except BaseException:
            for process in processes:
                process.kill()
                process.wait()
            raise
        for process, errors in ((lister, list_errors), (reader, read_errors)):
            if process.wait() != 0:
                errors.seek(0)
                message = errors.read().decode("utf-8", "replace").strip()[-500:] or f"exit {process.returncode}"
                raise OperationFailed(f"dump {dump.key} is not a valid pg_dump archive: {message}")
        listing.seek(0)
        entries = sum(1 for line in listing.read().decode("utf-8", "replace").splitlines()
                      if line.strip() and not line.startswith(";"))
    return size, entries


def _feed_all(ctx: ActionContext, processes: Sequence[subprocess.Popen], chunks: Iterable[bytes]) -> int:
    """Write every chunk to each process still reading; the bytes read from ``chunks``."""
    reading = list(processes)
    size = 0
    try:
        for chunk in chunks:
            if ctx.cancel.is_set():
                raise Interrupted("cancelled while validating")
            size += len(chunk)
            for process in list(reading):
                try:
                    process.stdin.write(chunk)
                except BrokenPipeError:  # it stopped reading (--list after the TOC): its status says why
                    reading.remove(process)
            if not reading:
                break
    finally:
        for process in processes:
            with contextlib.suppress(BrokenPipeError):
                process.stdin.close()
    return size


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
            message = _redacted(errors.read().decode("utf-8", "replace").strip()[-1500:], dsn.password)
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
