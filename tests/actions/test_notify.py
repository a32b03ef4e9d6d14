"""``notify`` against a real HTTP server on 127.0.0.1: what is sent, how failures are
classified (transient or not), and that no secret ever leaves the request."""

from __future__ import annotations

import base64
import json
import socket
import struct
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from failover.actions.base import ACTIONS, ActionContext
from failover.errors import OperationFailed, TransientError
from failover.playbook import load_playbook
from failover.templates import resolve

Notify = ACTIONS.get("notify")
SECRET = "tok-5ecret-123"


class Webhook:
    """A webhook receiver: records each request, answers from a script (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.webhook = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        hook: Webhook = self.server.webhook  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        hook.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        status, headers = hook.answers.pop(0) if hook.answers else (200, {})
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _start(hook: Webhook) -> Webhook:
    hook.thread.start()
    return hook


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = _start(Webhook())
    yield hook
    hook.server.shutdown()
    hook.server.server_close()


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("FAILOVER_TEST_HOOK_TOKEN", SECRET)
    return SECRET


@pytest.fixture
def logs() -> list[str]:
    return []


def ctx(logs: list[str] | None = None) -> ActionContext:
    return ActionContext(run_id="run-42", step_id="announce", service="social-app", target_name="fallback", log=(logs or []).append)


def params(url: str, **more) -> object:
    return Notify.Params(url=url, **more)


def secret_url(hook: Webhook) -> str:
    return f"{hook.url}/services/${{env:FAILOVER_TEST_HOOK_TOKEN}}"


def test_posts_a_json_summary_with_secrets_resolved_at_call_time(webhook: Webhook, secret: str, logs: list[str]) -> None:
    p = params(secret_url(webhook), message="cutting over", headers={"Authorization": "Bearer ${env:FAILOVER_TEST_HOOK_TOKEN}"})

    outputs = Notify().apply(ctx(logs), p)

    assert outputs == {"host": webhook.host, "status": 200}
    [request] = webhook.requests
    assert request["path"] == f"/services/{secret}"
    assert request["headers"]["Authorization"] == f"Bearer {secret}"
    assert request["headers"]["Content-Type"] == "application/json"
    body = json.loads(request["body"])
    assert {k: body[k] for k in ("service", "run_id", "step", "message", "target", "dry_run")} == {
        "service": "social-app",
        "run_id": "run-42",
        "step": "announce",
        "message": "cutting over",
        "target": "fallback",
        "dry_run": False,
    }
    assert body["sent_at"].endswith("Z")
    # the parameters still hold the reference, and nothing reported holds the secret
    assert "${env:FAILOVER_TEST_HOOK_TOKEN}" in p.url
    assert secret not in json.dumps(outputs) + "\n".join(logs)


def test_plan_names_the_host_only(webhook: Webhook, secret: str) -> None:
    [change] = Notify().plan(ctx(), params(secret_url(webhook)))
    assert (change.operation, change.kind, change.name) == ("create", "notification", webhook.host)
    assert change.detail == f"POST a JSON summary of the run to {webhook.host}"
    assert webhook.requests == []  # planning sends nothing


def test_503_with_retry_after_is_transient(webhook: Webhook, secret: str) -> None:
    webhook.answers.append((503, {"Retry-After": "7"}))
    with pytest.raises(TransientError) as info:
        Notify().apply(ctx(), params(secret_url(webhook)))
    assert info.value.retry_after == 7.0
    assert f"webhook at {webhook.host} answered HTTP 503" in str(info.value)
    assert secret not in str(info.value)


def test_429_with_an_http_date(webhook: Webhook, secret: str) -> None:
    later = datetime.now(UTC) + timedelta(seconds=30)
    webhook.answers.append((429, {"Retry-After": format_datetime(later, usegmt=True)}))
    with pytest.raises(TransientError) as info:
        Notify().apply(ctx(), params(secret_url(webhook)))
    assert 0 < info.value.retry_after <= 31


def test_500_without_retry_after(webhook: Webhook, secret: str) -> None:
    webhook.answers.append((500, {}))
    with pytest.raises(TransientError) as info:
        Notify().apply(ctx(), params(secret_url(webhook)))
    assert info.value.retry_after is None


def test_404_fails_for_good(webhook: Webhook, secret: str) -> None:
    webhook.answers.append((404, {}))
    with pytest.raises(OperationFailed) as info:
        Notify().apply(ctx(), params(secret_url(webhook)))
    assert not isinstance(info.value, TransientError)
    assert f"webhook at {webhook.host} refused the notification: HTTP 404" in str(info.value)
    assert secret not in str(info.value)


def test_redirects_are_not_followed(webhook: Webhook, secret: str) -> None:
    elsewhere = _start(Webhook())
    try:
        webhook.answers.append((307, {"Location": f"{elsewhere.url}/steal"}))
        with pytest.raises(OperationFailed, match="HTTP 307"):
            Notify().apply(ctx(), params(secret_url(webhook), headers={"X-Key": "${env:FAILOVER_TEST_HOOK_TOKEN}"}))
        assert elsewhere.requests == []  # the secret header went nowhere else
    finally:
        elsewhere.server.shutdown()
        elsewhere.server.server_close()


@pytest.fixture
def resetting_port() -> Iterator[int]:
    """A server that accepts a connection, reads the request and resets the connection."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def serve() -> None:
        try:
            connection, _ = listener.accept()
        except OSError:
            return
        connection.recv(65536)
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.close()  # with linger 0: a TCP RST

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield listener.getsockname()[1]
    listener.close()
    thread.join(timeout=5)


def test_connection_reset_is_transient(resetting_port: int, secret: str) -> None:
    url = f"http://127.0.0.1:{resetting_port}/services/${{env:FAILOVER_TEST_HOOK_TOKEN}}"
    with pytest.raises(TransientError) as info:
        Notify().apply(ctx(), params(url))
    assert f"127.0.0.1:{resetting_port}" in str(info.value)
    assert secret not in str(info.value)


def test_connection_refused_is_transient(secret: str) -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(TransientError, match=f"webhook at 127.0.0.1:{port}"):
        Notify().apply(ctx(), params(f"http://127.0.0.1:{port}/x"))


def test_credentials_in_the_url_become_basic_auth(webhook: Webhook, secret: str) -> None:
    url = f"http://ops:${{env:FAILOVER_TEST_HOOK_TOKEN}}@{webhook.host}/hook"
    outputs = Notify().apply(ctx(), params(url))
    assert outputs["host"] == webhook.host
    expected = base64.b64encode(f"ops:{secret}".encode()).decode()
    assert webhook.requests[0]["headers"]["Authorization"] == f"Basic {expected}"
    assert webhook.requests[0]["path"] == "/hook"


def test_a_secret_with_a_line_break_is_refused_without_showing_it(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_TEST_HOOK_TOKEN", "abc\r\nX-Injected: 1")
    with pytest.raises(OperationFailed) as info:
        Notify().apply(ctx(), params(webhook.url, headers={"X-Key": "${env:FAILOVER_TEST_HOOK_TOKEN}"}))
    assert "headers.X-Key: the value contains a line break" in str(info.value)
    assert "Injected" not in str(info.value)
    assert webhook.requests == []


def test_a_secret_url_that_is_not_http_is_refused_without_showing_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_TEST_HOOK_URL", "file:///etc/passwd")
    with pytest.raises(OperationFailed) as info:
        Notify().apply(ctx(), params("${env:FAILOVER_TEST_HOOK_URL}"))
    assert "passwd" not in str(info.value)


def test_a_missing_secret_at_call_time_names_the_variable_only(webhook: Webhook, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FAILOVER_TEST_HOOK_TOKEN", raising=False)
    with pytest.raises(OperationFailed, match="environment variable FAILOVER_TEST_HOOK_TOKEN is not set"):
        Notify().apply(ctx(), params(secret_url(webhook)))


def test_from_a_playbook_step_as_the_engine_calls_it(webhook: Webhook, secret: str, tmp_path: Path) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(
        "name: tell\n"
        "vars: {team: sre}\n"
        "steps:\n"
        "  - {id: settle, action: pause, with: {seconds: 0}}\n"
        "  - id: announce\n"
        "    action: notify\n"
        "    needs: [settle]\n"
        "    with:\n"
        f"      url: \"{webhook.url}/services/${{env:FAILOVER_TEST_HOOK_TOKEN}}\"\n"
        "      message: \"${vars.team}: waited ${steps.settle.outputs.waited_s}s\"\n"
        "      timeout: \"${steps.settle.outputs.timeout}\"\n"
    )
    book = load_playbook(str(path))
    step = book.step("announce")
    resolved = resolve(step.with_, vars=book.vars, outputs={"settle": {"waited_s": 0.0, "timeout": 5}})
    Notify().apply(ctx(), Notify.Params.model_validate(resolved))
    assert json.loads(webhook.requests[0]["body"])["message"] == "sre: waited 0.0s"
    assert webhook.requests[0]["path"] == f"/services/{secret}"
    assert secret not in book.model_dump_json()  # what the engine journals
