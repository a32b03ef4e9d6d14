"""``wait-healthy`` against a real HTTP(S) server on 127.0.0.1 that answers from a script:
healthy after failures, a wrong body, timeouts, cancellation, ``resolve`` (Host header and
TLS server name), and secrets that never leave the request."""

from __future__ import annotations

import datetime
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from pydantic import ValidationError

from failover.actions.base import ACTIONS, ActionContext
from failover.errors import Interrupted, OperationFailed
from failover.testing.servers import free_port

WaitHealthy = ACTIONS.get("wait-healthy")
Params = WaitHealthy.Params
SECRET = "s3cret-health-token"
HOST = "health.example.test"


@dataclass
class Server:
    """Answers each request with the next scripted (status, body, delay); the last one repeats."""

    answers: list[tuple[int, str, float]] = field(default_factory=lambda: [(200, "ok", 0.0)])
    requests: list[dict] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)
    port: int = 0
    scheme: str = "http"

    def url(self, path: str = "/healthz", host: str = "127.0.0.1") -> str:
        return f"{self.scheme}://{host}:{self.port}{path}"

    def answer(self, *answers: tuple[int, str] | tuple[int, str, float]) -> None:
        self.answers = [(a[0], a[1], a[2] if len(a) > 2 else 0.0) for a in answers]


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        server: Server = self.server.script  # type: ignore[attr-defined]
        server.requests.append({"path": self.path, "headers": dict(self.headers)})
        status, body, delay = server.answers.pop(0) if len(server.answers) > 1 else server.answers[0]
        time.sleep(delay)
        data = body.encode()
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client gave up (cancelled)

    def log_message(self, *args: object) -> None:
        pass


def serve(tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    script = Server(scheme="https" if tls else "http")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    httpd.script = script  # type: ignore[attr-defined]
    if tls is not None:
        tls.sni_callback = lambda sock, name, context: script.server_names.append(name)
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    script.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield script
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    yield from serve()


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed_certificate(tmp_path, HOST))
    yield from serve(context)


def self_signed_certificate(directory: Path, host: str) -> tuple[Path, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def context(cancel_after: float | None = None) -> ActionContext:
    ctx = ActionContext(run_id="run-1", step_id="healthy", service="svc", log=lambda message: None)
    if cancel_after is not None:
        threading.Timer(cancel_after, ctx.cancel.set).start()
    return ctx


def wait(params: Params, ctx: ActionContext | None = None) -> dict:
    return WaitHealthy().apply(ctx or context(), params)


def test_healthy_after_some_failures(server: Server) -> None:
    server.answer((503, "starting"), (502, "bad gateway"), (200, "ok"))

    outputs = wait(Params(url=server.url(), interval=0.05, timeout=10))

    assert outputs["status"] == 200 and outputs["attempts"] == 3
    assert outputs["url"] == server.url()
    assert 0.1 <= outputs["elapsed_s"] < 5
    assert [r["path"] for r in server.requests] == ["/healthz"] * 3


def test_any_of_several_statuses_is_healthy(server: Server) -> None:
    server.answer((204, ""))

    assert wait(Params(url=server.url(), status=[200, 204]))["status"] == 204


def test_the_body_must_contain_the_text(server: Server) -> None:
    server.answer((200, "status: starting"), (200, "status: ready"))

    outputs = wait(Params(url=server.url(), contains="ready", interval=0.05))

    assert outputs["attempts"] == 2


def test_a_wrong_body_until_the_timeout_fails_with_the_last_answer(server: Server) -> None:
    server.answer((200, "status: starting"))

    with pytest.raises(OperationFailed, match=r"not healthy after .* attempts; last: HTTP 200, without 'ready'"):
        wait(Params(url=server.url(), contains="ready", interval=0.05, timeout=0.4))

    assert len(server.requests) >= 3


def test_a_server_that_never_answers_fails_at_the_timeout_with_the_last_error() -> None:
    url = f"http://127.0.0.1:{free_port()}/healthz"  # nothing listens there
    started = time.monotonic()

    with pytest.raises(OperationFailed, match="last: ConnectionRefusedError: Connection refused"):
        wait(Params(url=url, interval=0.1, timeout=0.5))

    assert 0.5 <= time.monotonic() - started < 3


def test_a_slow_answer_is_cut_at_the_timeout(server: Server) -> None:
    server.answer((200, "ok", 2.0))
    started = time.monotonic()

    with pytest.raises(OperationFailed, match="last: timed out"):
        wait(Params(url=server.url(), timeout=0.3))

    assert time.monotonic() - started < 1.5


def test_a_cancelled_run_stops_waiting_between_checks(server: Server) -> None:
    server.answer((503, "starting"))
    started = time.monotonic()

    with pytest.raises(Interrupted, match="cancelled"):
        wait(Params(url=server.url(), interval=30, timeout=60), context(cancel_after=0.2))

    assert time.monotonic() - started < 1


def test_a_cancelled_run_stops_waiting_during_a_hanging_check(server: Server) -> None:
    server.answer((200, "ok", 3.0))
    started = time.monotonic()

    with pytest.raises(Interrupted, match="cancelled"):
        wait(Params(url=server.url(), timeout=60), context(cancel_after=0.2))

    assert time.monotonic() - started < 1


def test_resolve_connects_to_the_address_and_names_the_urls_host(server: Server) -> None:
    outputs = wait(Params(url=server.url(host=HOST), resolve="127.0.0.1"))

    assert outputs["status"] == 200
    assert server.requests[0]["headers"]["Host"] == f"{HOST}:{server.port}"


def test_tls_is_verified_unless_insecure_and_resolve_keeps_the_server_name(tls_server: Server) -> None:
    url = tls_server.url(host=HOST)

    with pytest.raises(OperationFailed, match="last: TLS certificate not trusted: self.signed certificate"):
        wait(Params(url=url, resolve="127.0.0.1", timeout=0.2))
    outputs = wait(Params(url=url, resolve="127.0.0.1", insecure=True))

    assert outputs["status"] == 200
    assert tls_server.server_names[-1] == HOST
    assert tls_server.requests[-1]["headers"]["Host"] == f"{HOST}:{tls_server.port}"


@pytest.mark.parametrize("resolved_by_engine", [False, True])
def test_secrets_reach_the_server_and_nothing_else(
    server: Server, monkeypatch: pytest.MonkeyPatch, resolved_by_engine: bool
) -> None:
    monkeypatch.setenv("FAILOVER_TEST_HEALTH_TOKEN", SECRET)
    secret = "${env:FAILOVER_TEST_HEALTH_TOKEN}"
    url = server.url(f"/healthz?token={secret}&verbose=1").replace("http://", f"http://ops:{secret}@")
    headers = {"X-Token": secret}
    if resolved_by_engine:
        url, headers = url.replace(secret, SECRET), {"X-Token": SECRET}
    logged: list[str] = []
    ctx = ActionContext(run_id="run-1", step_id="healthy", service="svc", log=logged.append)
    server.answer((503, SECRET), (200, "ok"))

    outputs = WaitHealthy().apply(ctx, Params(url=url, headers=headers, interval=0.05))
    plan = WaitHealthy().plan(ctx, Params(url=url, headers=headers))
    server.answer((503, "down"))
    with pytest.raises(OperationFailed) as failure:
        WaitHealthy().apply(ctx, Params(url=url, headers=headers, timeout=0.1))

    request = server.requests[0]
    assert request["path"] == f"/healthz?token={SECRET}&verbose=1"
    assert request["headers"]["X-Token"] == SECRET
    assert request["headers"]["Authorization"].startswith("Basic ")
    assert outputs["url"] == server.url("/healthz?token=***&verbose=***")
    reported = [str(outputs), str(failure.value), *logged, *(c.name + c.detail for c in plan)]
    assert not any(SECRET in text for text in reported)


def test_plan_makes_no_request_and_the_action_changes_nothing(server: Server) -> None:
    changes = WaitHealthy().plan(context(), Params(url=server.url(), status=[200, 204], contains="ok", timeout=30))

    assert server.requests == []
    assert [(c.operation, c.kind, c.name, c.detail) for c in changes] == [
        ("check", "http", server.url(), "wait up to 30s for HTTP 200 or 204 containing 'ok'"),
    ]
    assert WaitHealthy.mutates is False
    assert WaitHealthy().undo(context(), Params(url=server.url())) is None


@pytest.mark.parametrize(("params", "message"), [
    ({"url": "ftp://example.com/"}, "must be an http:// or https:// URL"),
    ({"url": "http://example.com/", "status": 99}, "from 100 to 599"),
    ({"url": "http://example.com/", "status": []}, "from 100 to 599"),
    ({"url": "http://example.com/", "resolve": "not-an-ip"}, "does not appear to be an IPv4 or IPv6 address"),
    ({"url": "http://example.com/", "headers": {"Bad Name": "x"}}, "not a valid HTTP header name"),
    ({"url": "http://example.com/", "timeout": 0}, "greater than 0"),
    ({"url": "http://example.com/", "retries": 3}, "Extra inputs are not permitted"),
])
def test_parameters_are_validated(params: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Params(**params)


def test_a_url_that_is_one_secret_is_checked_when_resolved(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_TEST_HEALTH_URL", "ftp://example.com/")
    params = Params(url="${env:FAILOVER_TEST_HEALTH_URL}")

    with pytest.raises(OperationFailed, match="url: must be an http:// or https:// URL"):
        wait(params)


def node_outputs(*entries: tuple[str, str, str]) -> dict:
    nodes = {name: {"id": f"new-{source_id}", "name": f"svc-{name}", "source_id": source_id, "public_ip": ip}
             for name, source_id, ip in entries}
    return {"nodes": {"nodes": nodes, **nodes}}


def snapshot_with_roles(roles: dict[str, str]):
    from failover.manifest import Manifest, SourceInfo

    nodes = [{"kind": "node", "id": source_id, "name": source_id, "region": "us-east-1", "tags": {"role": role},
              "instance_type": "t3.small", "vcpus": 2, "memory_mib": 2048, "image_id": None, "image_name": None,
              "architecture": None, "private_ip": None, "public_ip": None, "user_data": None, "state": "running"}
             for source_id, role in roles.items()]
    return Manifest(service="svc", taken_at="2026-01-01T00:00:00Z",
                    source=SourceInfo(provider="aws", account="1", regions=["us-east-1"]), resources=nodes)


def test_without_a_url_it_checks_the_first_web_nodes_new_address(server: Server) -> None:
    ctx = context()
    ctx.outputs = node_outputs(("worker-1", "i-w", "192.0.2.9"), ("web-2", "i-2", "192.0.2.2"),
                               ("web-1", "i-1", f"127.0.0.1:{server.port}"))
    ctx.manifest = snapshot_with_roles({"i-w": "worker", "i-1": "web", "i-2": "web"})
    outputs = wait(Params(timeout=5, interval=0.05), ctx)
    assert outputs["url"] == f"http://127.0.0.1:{server.port}/" and outputs["status"] == 200


def test_without_a_url_or_new_nodes_it_says_what_is_missing() -> None:
    with pytest.raises(OperationFailed, match="no url given and no new node address"):
        wait(Params(timeout=1))
    plan = WaitHealthy().plan(context(), Params())
    assert "<new address of the first web node>" in plan[0].name
