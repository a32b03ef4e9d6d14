"""A database node: the node ``restore-databases`` creates for a database (the snapshot's
database seen as a node for the mapping: its instance class's vCPUs and memory, its storage
as disk, Ubuntu 22.04), and the root script its cloud-init runs to install the engine and
restore the newest dump.

Everything the script holds that came from the source or the target is either validated
(the engine version: digits and dots, see ``Engine.version_problem``) or shell-quoted
(names, keys, URLs, paths); a database whose script cannot be written safely is refused
(:func:`node_problem`) and gets no node.
"""

from __future__ import annotations

import shlex

from failover.cloudinit import cloud_config, comment_text
from failover.databases.base import engine_for
from failover.manifest import Database, Node
from failover.naming import DumpKey, slug

# The OS of database nodes, as an image name the mapping reads (an ``images`` override may name it).
DB_IMAGE_NAME = "ubuntu-22.04-lts"
DUMP_DIR = "/var/lib/failover"


def database_node(database: Database) -> Node:
    """The database as a node for the mapping: its class's vCPUs and memory, its storage as disk."""
    engine = engine_for(database.engine)
    shape = engine.instance_class_shape(database.instance_class) if engine else None
    vcpus, memory_mib = shape or (None, None)
    return Node(
        id=database.id, name=database.name, region=database.region, tags=database.tags,
        instance_type=database.instance_class or "unknown", vcpus=vcpus, memory_mib=memory_mib,
        image_id=None, image_name=DB_IMAGE_NAME, architecture="x86_64", private_ip=None, public_ip=None,
        root_volume_gib=database.storage_gib, user_data=None, state="running",
    )


def node_problem(database: Database) -> str | None:
    """Why no database node can be built for ``database`` (its engine version is not one
    that may be written into a root script), or None."""
    engine = engine_for(database.engine)
    if engine is None:
        return f"engine {database.engine!r} has no dumps"
    return engine.version_problem(database.engine_version)


def script_path(database: Database) -> str:
    return f"/usr/local/sbin/failover-restore-{slug(database.name) or 'database'}"


def restore_user_data(database: Database, dump: DumpKey, container: str, url: str | None) -> str:
    """The database node's cloud-init: a script that installs the engine and restores the dump."""
    path, script = script_path(database), restore_script(database, dump, container, url)
    return cloud_config({"write_files": [{"path": path, "permissions": "0700", "content": script}], "runcmd": [[path]]})


def restore_script(database: Database, dump: DumpKey, container: str, url: str | None) -> str:
    """The root script of a database node. ValueError for a database :func:`node_problem` refuses."""
    problem = node_problem(database)
    if problem is not None:
        raise ValueError(f"database {database.name!r}: {problem}")
    engine = engine_for(database.engine)
    dump_file = f"{DUMP_DIR}/{slug(database.name) or 'database'}{dump.suffix}"
    source = f"{container}/{dump.key}"
    missing = (f"failover: copy {comment_text(source)} from the target storage to {dump_file}, "
               f"then run {script_path(database)} again")
    header = [
        "#!/bin/sh",
        f"# Written by failover: {comment_text(engine.label(database))} for database {comment_text(database.name)},",
        f"# restored from {comment_text(source)}. Run it again to restore again (it replaces the database).",
        "set -eu",
        "export DEBIAN_FRONTEND=noninteractive",
        f"DUMP={shlex.quote(dump_file)}",
        f"DUMP_URL={shlex.quote(url or '')}",
        "apt-get update -q",
        "apt-get install -y -q curl ca-certificates gzip",
    ]
    fetch = [
        f"install -d -m 0700 {DUMP_DIR}",
        'if [ ! -s "$DUMP" ] && [ -n "$DUMP_URL" ]; then',
        '  curl -fsS --retry 5 -o "$DUMP.part" "$DUMP_URL" && mv "$DUMP.part" "$DUMP"',
        "fi",
        'if [ ! -s "$DUMP" ]; then',
        f"  printf '%s\\n' {shlex.quote(missing)} >&2",
        "  exit 0",
        "fi",
    ]
    return "\n".join([*header, *engine.node_install(database), *fetch, *engine.node_restore()]) + "\n"




