"""Launchers for the target-side emulators: Azurite (Azure Blob storage) and a PowerDNS
authoritative server with its HTTP API. Each runs as a child process on 127.0.0.1 and a
free port, in a working directory of its own, and is a context manager:

    with PowerDns() as pdns:
        driver = get_driver(Provider.POWERDNS)(**pdns.driver_options)

``scripts/install-test-deps`` installs both; a missing binary raises
:class:`EmulatorMissing` naming that script.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from failover.testing.servers import free_port, stop_process, wait_for_http

PROJECT_ROOT = Path(__file__).resolve().parents[2]
INSTALL_HINT = "run scripts/install-test-deps (as root) to install the test emulators"

# Azurite's published development account (the same on every machine, not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

PDNS_SCHEMA = Path("/usr/share/pdns-backend-sqlite3/schema/schema.sqlite3.sql")


class EmulatorMissing(RuntimeError):
    """An emulator's binary (or data file) is not installed."""


def cache_dir() -> Path:
    """Where the project keeps tools it installs itself (``$FAILOVER_CACHE_DIR`` or ``.cache/``)."""
    return Path(os.environ.get("FAILOVER_CACHE_DIR") or PROJECT_ROOT / ".cache")


def find_binary(name: str, *candidates: Path, explicit: Path | None = None) -> Path:
    """``explicit`` if given, else the first of ``candidates`` that exists, else ``name`` on
    PATH (or in /usr/sbin, where Debian puts pdns_server)."""
    if explicit is not None:
        if not explicit.is_file():
            raise EmulatorMissing(f"{explicit} does not exist; {INSTALL_HINT}")
        return explicit
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if found is None:
        raise EmulatorMissing(f"{name} is not installed; {INSTALL_HINT}")
    return Path(found)


class EmulatorProcess:
    """A child process on 127.0.0.1 with a working directory, started and awaited."""

    name = "emulator"

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self._workdir: tempfile.TemporaryDirectory | None = None

    @property
    def workdir(self) -> Path:
        assert self._workdir is not None, f"{self.name} is not started"
        return Path(self._workdir.name)

    @property
    def log_path(self) -> Path:
        return self.workdir / f"{self.name}.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Write whatever the process needs in ``workdir`` before it starts."""

    def ready_url(self) -> str:
        raise NotImplementedError

    def start(self):
        command = self.command()  # first, so a missing binary fails before anything starts
        self._workdir = tempfile.TemporaryDirectory(prefix=f"failover-{self.name}-")
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
        try:
            wait_for_http(self.ready_url(), process=self.process)
        except RuntimeError as exc:
            tail = self.log_path.read_text(errors="replace")[-2000:]
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n{tail}") from None
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Azurite(EmulatorProcess):
    """Azurite's blob service, in memory, with telemetry off (it will not start quietly otherwise)."""

    name = "azurite"

    def __init__(self, port: int | None = None, binary: Path | None = None) -> None:
        super().__init__()
        self.port = port or free_port()
        self.binary = binary

    def command(self) -> list[str]:
        binary = find_binary("azurite-blob", cache_dir() / "node" / "node_modules" / ".bin" / "azurite-blob", explicit=self.binary)
        return [
            str(binary), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
            "--inMemoryPersistence", "--disableTelemetry", "--silent",
        ]

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/{AZURITE_ACCOUNT}?comp=list"

    @property
    def driver_options(self) -> dict[str, Any]:
        """Constructor arguments of libcloud's ``azure_blobs`` driver for this account."""
        return {"key": AZURITE_ACCOUNT, "secret": AZURITE_KEY, "host": "127.0.0.1", "port": self.port, "secure": False}


class PowerDns(EmulatorProcess):
    """``pdns_server`` with an SQLite backend, its HTTP API on, and no outbound queries."""

    name = "pdns"

    def __init__(self, api_key: str = "failover-test-key", binary: Path | None = None) -> None:
        super().__init__()
        self.api_key = api_key
        self.api_port = free_port()
        self.dns_port = free_port()
        self.binary = binary

    def command(self) -> list[str]:
        binary = find_binary("pdns_server", explicit=self.binary)
        if not PDNS_SCHEMA.is_file():
            raise EmulatorMissing(f"{PDNS_SCHEMA} is missing (package pdns-backend-sqlite3); {INSTALL_HINT}")
        return [str(binary), "--config-dir=."]

    def prepare(self) -> None:
        database = self.workdir / "pdns.sqlite3"
        with sqlite3.connect(database) as db:
            db.executescript(PDNS_SCHEMA.read_text())
        settings = {
            "launch": "gsqlite3",
            "gsqlite3-database": database,
            "gsqlite3-dnssec": "no",
            "local-address": "127.0.0.1",
            "local-port": self.dns_port,
            "api": "yes",
            "api-key": self.api_key,
            "webserver": "yes",
            "webserver-address": "127.0.0.1",
            "webserver-port": self.api_port,
            "webserver-allow-from": "127.0.0.0/8",
            "socket-dir": self.workdir,
            "daemon": "no",
            "guardian": "no",
            "disable-syslog": "yes",
            "security-poll-suffix": "",  # empty: no outbound security-status queries
        }
        (self.workdir / "pdns.conf").write_text("".join(f"{key}={value}\n" for key, value in settings.items()))

    def ready_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/api/v1/servers"

    @property
    def driver_options(self) -> dict[str, Any]:
        """Constructor arguments of libcloud's ``powerdns`` driver (API v1 is required for 4.x)."""
        return {"key": self.api_key, "host": "127.0.0.1", "port": self.api_port, "secure": False, "api_version": "v1"}
