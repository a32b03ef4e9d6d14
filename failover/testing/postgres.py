"""A throwaway PostgreSQL server for tests: the installed PostgreSQL's ``initdb`` and
``pg_ctl`` in a temporary directory, on 127.0.0.1 and a free port, with password
(SCRAM) authentication.

    server = LocalPostgres().start()
    server.sql("postgres", "CREATE DATABASE orders")
    dsn = server.dsn("orders")          # postgresql://postgres:<password>@127.0.0.1:<port>/orders
    ...
    server.stop()

Server programs refuse to run as root: as root, they run as the ``postgres`` user.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Self
from urllib.parse import quote

from failover.testing.servers import free_port

DEFAULT_PASSWORD = "s3cret-Pw'd"  # a quote in it: a test finds where it is not escaped
POSTGRES_ROOT = Path("/usr/lib/postgresql")


class PostgresMissing(RuntimeError):
    """No PostgreSQL server programs installed here."""


def postgres_bin() -> Path:
    """The newest installed PostgreSQL's ``bin`` directory (``/usr/lib/postgresql/<major>/bin``)."""
    found = [path for path in POSTGRES_ROOT.glob("*/bin") if (path / "initdb").exists()]
    if not found:
        raise PostgresMissing(f"no PostgreSQL server under {POSTGRES_ROOT}: install postgresql")
    return max(found, key=lambda path: float(path.parent.name))


class LocalPostgres:
    """A cluster of its own in a temporary directory; ``stop`` removes it."""

    def __init__(self, password: str = DEFAULT_PASSWORD, user: str = "postgres") -> None:
        self.password = password
        self.user = user
        self.bin = postgres_bin()
        self.dir = Path(tempfile.mkdtemp(prefix="failover-pg-"))
        self.port = free_port()

    def start(self) -> Self:
        (self.dir / "password").write_text(self.password)
        if os.geteuid() == 0:
            self.dir.chmod(0o755)
            shutil.chown(self.dir, "postgres")
            shutil.chown(self.dir / "password", "postgres")
        # A throwaway cluster: nothing is flushed to disk (initdb's own sync took seconds on a busy disk), and the
        # server neither fsyncs nor waits for its WAL; a killed client still finds every committed row.
        self._server("initdb", "-D", str(self.dir / "data"), "-U", self.user, "--auth=scram-sha-256",
                     f"--pwfile={self.dir / 'password'}", "--no-sync")
        (self.dir / "password").unlink()
        options = (f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
                   " -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
        self._server("pg_ctl", "-D", str(self.dir / "data"), "-l", str(self.dir / "log"), "-w", "-o", options, "start")
        return self

    def stop(self) -> None:
        if (self.dir / "data").exists():
            self._server("pg_ctl", "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _server(self, program: str, *args: str) -> None:
        command = [str(self.bin / program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--", *command]
        subprocess.run(command, check=True, capture_output=True, cwd=self.dir)

    def dsn(self, database: str, password: str | None = None) -> str:
        """A ``postgresql://`` URL of ``database`` (with another ``password``, to be refused)."""
        secret = self.password if password is None else password
        return f"postgresql://{quote(self.user, safe='')}:{quote(secret, safe='')}@127.0.0.1:{self.port}/{database}"

    def client(self, program: str, *args: str, input: bytes | None = None) -> bytes:
        """Run a client program (``psql``, ``pg_dump``, ``pg_restore``) against the server; its stdout."""
        env = {**os.environ, "PGPASSWORD": self.password}
        command = [str(self.bin / program), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, *args]
        return subprocess.run(command, check=True, capture_output=True, env=env, input=input).stdout

    def sql(self, database: str, statement: str) -> str:
        return self.client("psql", "-d", database, "-At", "-v", "ON_ERROR_STOP=1", "-c", statement).decode().strip()

    def dump(self, database: str) -> bytes:
        return self.client("pg_dump", "-Fc", "-d", database)

    def recreate(self, database: str) -> None:
        """An empty database of that name (dropped first if it exists)."""
        self.sql("postgres", f'DROP DATABASE IF EXISTS "{database}"')
        self.sql("postgres", f'CREATE DATABASE "{database}"')
