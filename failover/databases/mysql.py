"""MySQL and MariaDB (RDS ``mysql``, ``mariadb``, ``aurora-mysql``, ``aurora``): dumps by
``mysqldump --single-transaction``, gzipped as they stream; restores by ``mysql``; database
nodes with the distribution's server.

The credentials go in a 0600 option file (``--defaults-extra-file``) in the tool's working
directory, never on its command line.
"""

from __future__ import annotations

import os
import re
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from failover.databases.base import ENGINES, VERSION, Engine, counted
from failover.dsn import Dsn, find_tool, option_value, tool_environment
from failover.errors import Interrupted, OperationFailed
from failover.manifest import Database

CLIENT_PACKAGE = "the MySQL client (mysql-client or mariadb-client)"
GZIP_LEVEL = 6
# Aurora MySQL versions name the MySQL version and Aurora's own: "8.0.mysql_aurora.3.04.0".
AURORA_VERSION = re.compile(rf"{VERSION.pattern}\.mysql_aurora\.{VERSION.pattern}")


@ENGINES.register("mysql")
class MySQL(Engine):
    title = "MySQL"
    rds_engines = ("mysql", "mariadb", "aurora-mysql", "aurora")
    schemes = ("mysql", "mariadb")
    default_port = 3306
    dump_suffix = ".sql.gz"
    dump_description = "mysqldump, gzipped"
    dump_content_type = "application/gzip"
    dump_tool = "mysqldump"
    version_required = False  # the node installs the distribution's server whatever the source ran

    def dsn_problem(self, dsn: Dsn) -> str | None:
        return None if dsn.database else "names no database (mysql://user@host/DATABASE)"

    # -- through a DSN ---------------------------------------------------------------------------

    def dump_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """mysqldump's command line and an option file in ``workdir`` (0600) holding the
        credentials. ``--databases``: the dump creates and selects its database, as the
        restore on a new database node expects."""
        command = [
            find_tool("mysqldump", CLIENT_PACKAGE), f"--defaults-extra-file={_option_file(dsn, workdir)}",
            "--single-transaction", "--routines", "--triggers", "--databases", str(dsn.database),
        ]
        return command, tool_environment({})

    def dump_stream(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        return gzipped(chunks)

    def restore_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """mysql's command line and an option file holding the credentials (never the command line)."""
        command = [find_tool("mysql", CLIENT_PACKAGE), f"--defaults-extra-file={_option_file(dsn, workdir)}", "--batch"]
        if dsn.database:
            command.append(f"--database={dsn.database}")
        return command, tool_environment({})

    def restore_stream(self, chunks: Iterable[bytes], name: str) -> Iterator[bytes]:
        return gunzipped(chunks, name)

    def validate_dump(self, chunks: Iterable[bytes], name: str, cancelled: Callable[[], bool]) -> dict[str, Any]:
        """A full gunzip pass."""
        downloaded = [0]
        sql = gunzipped(counted(_cancellable(chunks, cancelled), downloaded), name)
        sql_bytes = sum(len(part) for part in sql)
        return {"validated_bytes": downloaded[0], "sql_bytes": sql_bytes}

    # -- a database node ---------------------------------------------------------------------------

    def version_problem(self, version: str | None) -> str | None:
        if version is not None and AURORA_VERSION.fullmatch(version):
            return None
        return super().version_problem(version)

    def label(self, database: Database) -> str:
        name = "MariaDB" if _mariadb(database) else "MySQL"
        return f"{name} (the distribution's; the source ran {database.engine_version or 'an unknown version'})"

    def node_install(self, database: Database) -> list[str]:
        if _mariadb(database):
            package, service, config = "mariadb-server", "mariadb", "/etc/mysql/mariadb.conf.d/zz-failover.cnf"
        else:
            package, service, config = "mysql-server", "mysql", "/etc/mysql/mysql.conf.d/zz-failover.cnf"
        return [
            f"apt-get install -y -q {package}",
            f"printf '[mysqld]\\nbind-address = 0.0.0.0\\n' > {config}",
            f"systemctl restart {service}",
        ]

    def node_restore(self) -> list[str]:
        # sh has no pipefail: test the archive first, so a broken one stops the script.
        return ['gunzip -t "$DUMP"', 'gunzip -c "$DUMP" | mysql']


def _mariadb(database: Database) -> bool:
    return database.engine.lower() == "mariadb"


def _option_file(dsn: Dsn, workdir: Path) -> Path:
    options = workdir / "client.cnf"
    settings = {"host": dsn.host, "port": dsn.port, "user": dsn.user, "password": dsn.password}
    lines = ["[client]", *(f'{key}="{option_value(value)}"' for key, value in settings.items() if value is not None)]
    descriptor = os.open(options, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write("\n".join(lines) + "\n")
    return options


def gzipped(chunks: Iterable[bytes], level: int = GZIP_LEVEL) -> Iterator[bytes]:
    """``chunks`` compressed as one gzip member, as they come."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        if data := compressor.compress(chunk):
            yield data
    yield compressor.flush()


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


def _cancellable(chunks: Iterable[bytes], cancelled: Callable[[], bool]) -> Iterator[bytes]:
    for chunk in chunks:
        if cancelled():
            raise Interrupted("cancelled while validating")
        yield chunk
