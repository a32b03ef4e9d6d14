"""PostgreSQL (RDS ``postgres`` and ``aurora-postgresql``): dumps by ``pg_dump -Fc``,
restores by ``pg_restore``, database nodes from the PGDG apt repository.

The tools get the server as a conninfo string on their command line, without any secret:
the password goes in ``PGPASSWORD``, other secret options (``sslpassword``) in a 0600
service file (``PGSERVICEFILE``) that lives as long as the tool runs.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from failover.databases.base import ENGINES, PRIVATE_NETWORKS, Engine
from failover.dsn import Dsn, conninfo_value, dsn_error, find_tool, tool_environment
from failover.errors import Interrupted, OperationFailed
from failover.manifest import Database

CLIENT_PACKAGE = "the PostgreSQL client tools (postgresql-client)"
SERVICE = "failover"
PGDG_KEYRING = "/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc"
PGDG_SOURCE = "deb [signed-by={keyring}] https://apt.postgresql.org/pub/repos/apt ${{VERSION_CODENAME}}-pgdg main"


@ENGINES.register("postgres")
class PostgreSQL(Engine):
    title = "PostgreSQL"
    rds_engines = ("postgres", "aurora-postgresql")
    schemes = ("postgres", "postgresql")
    default_port = 5432
    dump_suffix = ".dump"
    dump_description = "pg_dump -Fc"
    dump_content_type = "application/octet-stream"
    dump_tool = "pg_dump"

    # -- through a DSN ---------------------------------------------------------------------------

    def dump_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """pg_dump's command line (no secret: ``--no-password`` never prompts) and environment."""
        command = [find_tool("pg_dump", CLIENT_PACKAGE), "-Fc", "--no-password", f"--dbname={conninfo(dsn)}"]
        return command, _environment(dsn, workdir)

    def restore_command(self, dsn: Dsn, workdir: Path) -> tuple[list[str], dict[str, str]]:
        """pg_restore's command line (no secret) and environment. One transaction: a failed or
        interrupted restore leaves the database as it was."""
        command = [
            find_tool("pg_restore", CLIENT_PACKAGE),
            "--clean", "--if-exists", "--no-owner", "--no-privileges", "--single-transaction", "--exit-on-error",
            "--no-password", f"--dbname={conninfo(dsn)}",
        ]
        return command, _environment(dsn, workdir)

    def validate_dump(self, chunks: Iterable[bytes], name: str, cancelled: Callable[[], bool]) -> dict[str, Any]:
        """Feed the dump to ``pg_restore --list`` and to ``pg_restore --file=/dev/null`` at once
        (one download): the table of contents must read, and so must every entry's data (a
        truncated archive passes ``--list``, not the full read)."""
        pg_restore = find_tool("pg_restore", CLIENT_PACKAGE)
        with tempfile.TemporaryFile() as listing, tempfile.TemporaryFile() as list_errors, \
                tempfile.TemporaryFile() as read_errors:
            lister = subprocess.Popen([pg_restore, "--list"], stdin=subprocess.PIPE, stdout=listing, stderr=list_errors)
            reader = subprocess.Popen([pg_restore, "--file=/dev/null"], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=read_errors)
            processes = [lister, reader]
            try:
                size = _feed_all(processes, chunks, cancelled)
            except BaseException:
                for process in processes:
                    process.kill()
                    process.wait()
                raise
            for process, errors in ((lister, list_errors), (reader, read_errors)):
                if process.wait() != 0:
                    errors.seek(0)
                    message = errors.read().decode("utf-8", "replace").strip()[-500:] or f"exit {process.returncode}"
                    raise OperationFailed(f"{name} is not a valid pg_dump archive: {message}")
            listing.seek(0)
            entries = sum(1 for line in listing.read().decode("utf-8", "replace").splitlines()
                          if line.strip() and not line.startswith(";"))
        return {"validated_bytes": size, "archive_entries": entries}

    # -- a database node ---------------------------------------------------------------------------

    def label(self, database: Database) -> str:
        return f"PostgreSQL {postgres_major(database.engine_version)}"

    def node_install(self, database: Database) -> list[str]:
        major = postgres_major(database.engine_version)
        hba = f"/etc/postgresql/{major}/main/pg_hba.conf"
        return [
            "# PGDG has every supported PostgreSQL major version for every supported Debian and Ubuntu release.",
            ". /etc/os-release",
            f"install -d {Path(PGDG_KEYRING).parent}",
            f"curl -fsSL -o {PGDG_KEYRING} https://www.postgresql.org/media/keys/ACCC4CF8.asc",
            f'echo "{PGDG_SOURCE.format(keyring=PGDG_KEYRING)}" > /etc/apt/sources.list.d/pgdg.list',
            "apt-get update -q",
            f"apt-get install -y -q postgresql-{major}",
            f"echo \"listen_addresses = '*'\" > /etc/postgresql/{major}/main/conf.d/failover.conf",
            f"for network in {' '.join(PRIVATE_NETWORKS)}; do",
            f'  grep -q "^host all all $network " {hba} || echo "host all all $network scram-sha-256" >> {hba}',
            "done",
            "systemctl restart postgresql",
        ]

    def node_restore(self) -> list[str]:
        # --create with --clean: drop the dump's database if it exists, create it, restore into it.
        # The dump goes in on stdin: the postgres user cannot read root's directory.
        options = "--create --clean --if-exists --no-owner --no-privileges --exit-on-error --dbname=postgres"
        return [f'runuser -u postgres -- pg_restore {options} < "$DUMP"']


def postgres_major(version: str | None) -> str:
    """"15.4" -> "15"; "9.6.22" -> "9.6" (before 10, the major version had two numbers).
    Only for a version ``version_problem`` accepted (digits and dots)."""
    parts = (version or "").split(".")
    if not all(part.isascii() and part.isdigit() for part in parts):
        raise OperationFailed(f"cannot tell the PostgreSQL major version of {version!r}")
    return ".".join(parts[:2]) if int(parts[0]) < 10 and len(parts) > 1 else parts[0]


def conninfo(dsn: Dsn) -> str:
    """The libpq connection string of the DSN, without its secrets."""
    settings = (("host", dsn.host), ("port", dsn.port), ("dbname", dsn.database), ("user", dsn.user), *dsn.options)
    return " ".join(f"{key}={conninfo_value(value)}" for key, value in settings if value is not None)


def _environment(dsn: Dsn, workdir: Path) -> dict[str, str]:
    settings = {"PGPASSWORD": dsn.password, "PGCONNECT_TIMEOUT": os.environ.get("PGCONNECT_TIMEOUT", "10")}
    if dsn.secret_options:
        if any(any(c in value for c in "\r\n") for _, value in dsn.secret_options):
            raise dsn_error("a secret option holds a line break")
        service_file = workdir / "pg_service.conf"
        lines = [f"[{SERVICE}]", *(f"{key}={value}" for key, value in dsn.secret_options)]
        descriptor = os.open(service_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write("\n".join(lines) + "\n")
        settings |= {"PGSERVICEFILE": str(service_file), "PGSERVICE": SERVICE}
    return tool_environment(settings)


def _feed_all(processes: Sequence[subprocess.Popen], chunks: Iterable[bytes], cancelled: Callable[[], bool]) -> int:
    """Write every chunk to each process still reading; the bytes read from ``chunks``."""
    reading = list(processes)
    size = 0
    try:
        for chunk in chunks:
            if cancelled():
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
