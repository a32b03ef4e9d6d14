"""Provider failures as the user sees them: refused credentials and unreachable providers
exit 4, throttling and resets are retryable, and no message ever carries a secret."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError

from failover.config import ComputeSpec, DnsSpec, StorageSpec
from failover.errors import (
    ConfigError,
    CredentialsRefused,
    ExitCode,
    OperationFailed,
    ProviderUnreachable,
    TransientError,
)
from failover.testing.emulators import Azurite, PowerDns
from failover.testing.servers import free_port
from providers.libcloud import connect_compute, connect_dns, connect_storage
from providers.libcloud.errors import classify, translate

from .conftest import EC2_SHIM

SECRET = "s3cr3t-t0ken-value"


@pytest.fixture(autouse=True)
def secret_in_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_SECRET", SECRET)


def test_azurite_with_a_wrong_key_refuses_the_credentials(azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_SECRET", "d3Jvbmcta2V5LW5vdC1henVyaXRlcw==")
    storage = connect_storage(StorageSpec(driver="azure_blobs", options={**azurite.driver_options, "secret": "${env:TARGET_SECRET}"}))

    with pytest.raises(CredentialsRefused) as refused:
        storage.container_exists("replica-photos")

    assert refused.value.exit_code == ExitCode.PROVIDER
    assert "d3Jvbmcta2V5LW5vdC1henVyaXRlcw==" not in str(refused.value)
    assert str(refused.value).startswith("storage target (azure_blobs): look up container replica-photos: credentials refused")


def test_powerdns_with_a_wrong_api_key_refuses_the_credentials(powerdns: PowerDns) -> None:
    target = connect_dns(DnsSpec(driver="powerdns", options={**powerdns.driver_options, "key": "${env:TARGET_SECRET}"}))

    with pytest.raises(CredentialsRefused) as refused:
        target.find_zone("example.com")

    assert SECRET not in str(refused.value)


@pytest.mark.parametrize("capability", ["compute", "storage", "dns"])
def test_a_closed_port_is_an_unreachable_provider(capability: str) -> None:
    port = free_port()  # nothing listens there
    adapter, call = {
        "compute": (connect_compute(ComputeSpec(driver=EC2_SHIM, options={"key": "k", "secret": "${env:TARGET_SECRET}", "port": port})),
                    lambda a: a.find_node("web-1")),
        "storage": (connect_storage(StorageSpec(driver="minio", options={"key": "k", "secret": "${env:TARGET_SECRET}", "host": "127.0.0.1", "port": port, "secure": False})),
                    lambda a: a.container_exists("photos")),
        "dns": (connect_dns(DnsSpec(driver="powerdns", options={"key": "${env:TARGET_SECRET}", "host": "127.0.0.1", "port": port, "api_version": "v1"})),
                lambda a: a.find_zone("example.com")),
    }[capability]

    with pytest.raises(ProviderUnreachable, match="provider unreachable \\(connection refused\\)") as unreachable:
        call(adapter)

    assert unreachable.value.exit_code == ExitCode.PROVIDER


def test_a_reset_connection_is_worth_retrying() -> None:
    with resetting_server() as port:
        target = connect_dns(DnsSpec(driver="powerdns", options={"key": "k", "host": "127.0.0.1", "port": port, "api_version": "v1"}))
        with pytest.raises(TransientError, match="temporary failure \\(connection reset\\)"):
            target.find_zone("example.com")


@pytest.mark.parametrize(("status", "headers", "retry_after"), [(429, {"Retry-After": "7"}, 7.0), (503, {"Retry-After": "3"}, 3.0), (500, {}, None)])
def test_throttling_and_server_errors_are_worth_retrying(status: int, headers: dict[str, str], retry_after: float | None) -> None:
    with answering_server(status, headers, {"error": "busy"}) as port:
        target = connect_dns(DnsSpec(driver="powerdns", options={"key": "k", "host": "127.0.0.1", "port": port, "api_version": "v1"}))
        with pytest.raises(TransientError) as transient:
            target.find_zone("example.com")

    assert transient.value.retry_after == retry_after
    assert transient.value.exit_code == ExitCode.FAILED


def test_a_provider_echoing_the_secret_does_not_put_it_in_the_message() -> None:
    with answering_server(422, {}, {"error": f"bad key {SECRET} for zone"}) as port:
        target = connect_dns(DnsSpec(driver="powerdns", options={"key": "${env:TARGET_SECRET}", "host": "127.0.0.1", "port": port, "api_version": "v1"}))
        with pytest.raises(OperationFailed) as failed:
            target.find_zone("example.com")

    assert SECRET not in str(failed.value) and "bad key *** for zone" in str(failed.value)


def test_a_driver_libcloud_does_not_have_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="compute.driver: 'hetzner' is neither a libcloud provider name nor package"):
        connect_compute(ComputeSpec(driver="hetzner")).find_node("x")
    with pytest.raises(ConfigError, match="storage.driver: 'nowhere.module:Driver' is neither .* \\(cannot import it"):
        connect_storage(StorageSpec(driver="nowhere.module:Driver")).container_exists("x")


def test_wrong_options_and_unset_secrets_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="storage.options: LocalStorageDriver does not accept these options"):
        connect_storage(StorageSpec(driver="local", options={"path": str(tmp_path)})).container_exists("x")
    monkeypatch.delenv("TARGET_SECRET")
    with pytest.raises(ConfigError, match="dns.options.key: environment variable TARGET_SECRET is not set"):
        connect_dns(DnsSpec(driver="powerdns", options={"key": "${env:TARGET_SECRET}"})).find_zone("x")


def test_secrets_are_resolved_when_the_driver_is_built_not_before(powerdns: PowerDns, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TARGET_SECRET")
    target = connect_dns(DnsSpec(driver="powerdns", options={**powerdns.driver_options, "key": "${env:TARGET_SECRET}"}))
    monkeypatch.setenv("TARGET_SECRET", powerdns.api_key)

    assert target.find_zone("not-there.example") is None
    assert SECRET not in repr(target.spec) and powerdns.api_key not in target.spec.model_dump_json()


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RateLimitReachedError(headers={"retry-after": "12"}), (TransientError, 12.0)),
        (BaseHTTPError(403, "Forbidden"), (CredentialsRefused, None)),
        (BaseHTTPError(404, "Not Found"), (OperationFailed, None)),
        (BaseHTTPError(502, "Bad Gateway", {"Retry-After": "2"}), (TransientError, 2.0)),
        (requests.exceptions.ConnectTimeout("timed out"), (ProviderUnreachable, None)),
        (requests.exceptions.ReadTimeout("timed out"), (ProviderUnreachable, None)),
        (socket.gaierror(-2, "Name or service not known"), (ProviderUnreachable, None)),
        (requests.exceptions.ConnectionError(ConnectionResetError(104, "reset")), (TransientError, None)),
        (PermissionError(13, "Permission denied"), (OperationFailed, None)),
        (ValueError("Failed to create node: bad image"), (OperationFailed, None)),
    ],
)
def test_classification(error: Exception, expected: tuple[type, float | None]) -> None:
    assert classify(error) == expected


def test_translated_messages_name_the_action_and_redact() -> None:
    error = translate(ValueError(f"token {SECRET} rejected"), where="compute target (digitalocean)", action="create node web-1", secrets=[SECRET])
    assert str(error) == "compute target (digitalocean): create node web-1: failed (ValueError: token *** rejected)"


# -- peers that misbehave on purpose ---------------------------------------------------------


@contextmanager
def answering_server(status: int, headers: dict[str, str], body: dict) -> Iterator[int]:
    """An HTTP server answering every request with ``status``, ``headers`` and a JSON ``body``."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            payload = json.dumps(body).encode()
            self.send_response(status)
            for name, value in {**headers, "Content-Type": "application/json", "Content-Length": str(len(payload))}.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def resetting_server() -> Iterator[int]:
    """A server that reads a request and answers with a TCP reset."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(65536)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()
