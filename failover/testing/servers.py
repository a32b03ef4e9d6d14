"""Emulator launchers for tests, benchmarks and the pytest plugin: one ``moto_server``
process per simulated AWS account, on 127.0.0.1 and a free port."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url: str, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout}s")


def stop_process(process: subprocess.Popen | None, grace: float = 10) -> None:
    """Terminate a child process, killing it if it does not stop within ``grace`` seconds."""
    if process is not None and process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class MotoServer:
    """A ``moto_server`` process: one simulated AWS account."""

    port: int = field(default_factory=free_port)
    log: Path | None = None
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - the server writes it while it runs
        self.process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        wait_for_http(f"{self.url}/moto-api/", process=self.process)
        return self

    def stop(self) -> None:
        stop_process(self.process)
        self.process = None

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST", data=b"")
        with urllib.request.urlopen(request, timeout=10):
            pass

    def enforce_auth(self, on: bool) -> None:
        """Check credentials from now on (keys must exist in the account's IAM), or stop checking."""
        request = urllib.request.Request(
            f"{self.url}/moto-api/reset-auth", method="POST", data=b"0" if on else b"inf",
            headers={"Content-Type": "text/plain"},  # a form content type would hide the body from moto
        )
        with urllib.request.urlopen(request, timeout=10):
            pass

    def __enter__(self) -> MotoServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
