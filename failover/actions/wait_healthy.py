"""``wait-healthy``: poll an HTTP(S) URL until it answers as expected, or give up.

Health URLs and headers may carry secrets (a token in the query, an Authorization
header), written as ``${env:NAME}``: they are resolved for the request only. What the
step reports (plan, log, outputs, errors) names the URL without its credentials and
with every query value masked, ``${env:}`` references shown as written.

``resolve`` connects to an address of its own while the request still names the URL's
host (Host header, TLS server name and certificate check), to test the new nodes before
DNS answers with them. Redirects are not followed: a redirect's status is the answer.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field, field_validator

from failover import __version__
from failover.actions._http import check_header_names
from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import Interrupted, NothingToDo, OperationFailed
from failover.templates import resolve_env

MAX_BODY = 1024 * 1024  # read at most this much of an answer to look for ``contains``
REQUEST_TIMEOUT = 10.0  # seconds one attempt may take, within the step's timeout
MIN_REQUEST_TIMEOUT = 0.1  # the last attempt, at the deadline, still gets a chance to connect
CANCEL_POLL = 0.05  # seconds between looks at the cancel signal during a request
MASK = "***"


class WaitHealthyParams(Params):
    url: str = Field(
        "", description="The http:// or https:// URL to check; may hold ${env:NAME} secrets. Empty: "
        "through the first new load balancer with an HTTP listener (its health-check path), else "
        "http://<the first web node's new address>/ (nodes tagged role=web, else all, by name), from the steps it needs.",
    )
    status: int | list[int] = Field(200, description="The healthy HTTP status, or a list of them.")
    contains: str | None = Field(None, description="Text the answer's body must contain to be healthy.")
    interval: float = Field(2, gt=0, le=3600, description="Seconds between two checks.")
    timeout: float = Field(300, gt=0, le=86400, description="Seconds to wait for a healthy answer before failing.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers; values may hold ${env:NAME} secrets."
    )
    insecure: bool = Field(False, description="Do not verify the TLS certificate (self-signed, or not issued yet).")
    resolve: str | None = Field(
        None, description="Connect to this IP address instead of the URL's host, still sending the host's name "
        "(to check new nodes before DNS points at them).",
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value or value.startswith("${env:"):
            return value  # the whole URL is a secret: checked when resolved, at call time
        parts = urlsplit(value)  # the message never repeats the value: it may hold a resolved secret
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("status")
    @classmethod
    def _statuses(cls, value: int | list[int]) -> int | list[int]:
        statuses = value if isinstance(value, list) else [value]
        if not statuses or any(not 100 <= status <= 599 for status in statuses):
            raise ValueError("an HTTP status is a number from 100 to 599")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_header_names(value)

    @field_validator("resolve")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is not None and "${" not in value:
            ipaddress.ip_address(value)  # raises ValueError: "... does not appear to be an IPv4 or IPv6 address"
        return value

    @property
    def statuses(self) -> list[int]:
        return self.status if isinstance(self.status, list) else [self.status]


@dataclass(frozen=True)
class Answer:
    """One check's result: an HTTP status (and whether the body had the text), or an error."""

    status: int | None = None
    body_matches: bool = True
    error: str | None = None

    def healthy(self, params: WaitHealthyParams) -> bool:
        return self.status in params.statuses and self.body_matches

    def describe(self, params: WaitHealthyParams) -> str:
        if self.error is not None:
            return self.error
        if not self.body_matches:
            return f"HTTP {self.status}, without {params.contains!r} in the body"
        return f"HTTP {self.status}"


@ACTIONS.register("wait-healthy")
class WaitHealthy(Action):
    """Check an HTTP(S) URL every ``interval`` seconds until it answers with a healthy status
    (and body), failing after ``timeout`` seconds with the last answer or error."""

    summary = "Wait until an HTTP(S) URL answers healthy (status, body text), or fail after a timeout."
    Params = WaitHealthyParams
    example = {
        "url": "https://www.example.com/healthz",
        "status": [200, 204],
        "contains": "ok",
        "timeout": 300,
        "headers": {"Authorization": "Bearer ${env:HEALTH_TOKEN}"},
    }
    mutates = False

    def plan(self, ctx: ActionContext, params: WaitHealthyParams) -> list[Change]:
        params = _with_default_url(ctx, params, planning=True)
        expected = " or ".join(map(str, params.statuses))
        expected += f" containing {params.contains!r}" if params.contains else ""
        expected += f" via {params.resolve}" if params.resolve else ""
        return [Change("check", "http", shown_url(params.url), f"wait up to {params.timeout:g}s for HTTP {expected}")]

    def apply(self, ctx: ActionContext, params: WaitHealthyParams) -> dict[str, Any]:
        params = _with_default_url(ctx, params)
        request = Request.build(params)
        shown = shown_url(params.url)
        ctx.info(f"waiting for {shown} to answer HTTP {'/'.join(map(str, params.statuses))}")
        started = time.monotonic()
        deadline = started + params.timeout
        attempts = 0
        while True:
            attempts += 1
            budget = min(REQUEST_TIMEOUT, max(deadline - time.monotonic(), MIN_REQUEST_TIMEOUT))
            answer = _interruptible(partial(request.send, params, budget), ctx.cancel, shown)
            elapsed = time.monotonic() - started
            if answer.healthy(params):
                return {"url": shown, "status": answer.status, "attempts": attempts, "elapsed_s": round(elapsed, 3)}
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise OperationFailed(
                    f"wait-healthy: {shown} not healthy after {elapsed:.1f}s and {attempts} attempts; "
                    f"last: {answer.describe(params)}"
                )
            if ctx.cancel.wait(min(params.interval, remaining)):
                raise Interrupted(f"wait-healthy: cancelled while waiting for {shown}")

    def undo(self, ctx: ActionContext, params: WaitHealthyParams) -> None:
        """Nothing was created."""


def _with_default_url(ctx: ActionContext, params: WaitHealthyParams, planning: bool = False) -> WaitHealthyParams:
    """An empty ``url`` means the first web node's new address, from the provisioning steps' outputs."""
    if params.url:
        return params
    if ctx.manifest is not None and not ctx.manifest.of_kind("node"):
        raise NothingToDo("no url given and no nodes in the snapshot: nothing to check")
    through_balancer = first_balancer_url(ctx)
    if through_balancer is not None:
        return params.model_copy(update={"url": through_balancer})
    address = first_web_address(ctx)
    if address is None:
        if planning:
            return params.model_copy(update={"url": "http://<new address of the first web node>/"})
        raise OperationFailed("wait-healthy: no url given and no new node address among the outputs of the "
                              "steps it needs (give url, or make it need the provision-nodes step)")
    return params.model_copy(update={"url": f"http://{address}/"})


def first_balancer_url(ctx: ActionContext) -> str | None:
    """``http://<address>:<port><health path>`` of the first new load balancer with an HTTP
    listener (provision-load-balancers' outputs): the health check goes through the front door."""
    for outputs in ctx.outputs.values():
        balancers = outputs.get("load_balancers") if isinstance(outputs, dict) else None
        for _, entry in sorted((balancers or {}).items()):
            address = entry.get("address") if isinstance(entry, dict) else None
            http = [item for item in entry.get("listeners") or [] if item.get("protocol") == "HTTP"] if address else []
            if http:
                check = http[0].get("health_check") or ""
                path = check.removeprefix("HTTP ") if check.startswith("HTTP /") else "/"
                port = "" if http[0]["port"] == 80 else f":{http[0]['port']}"
                return f"http://{address}{port}{path}"
    return None


def first_web_address(ctx: ActionContext) -> str | None:
    entries = [entry for outputs in ctx.outputs.values() if isinstance(outputs, dict)
               for entry in (outputs.get("nodes") or {}).values() if isinstance(entry, dict) and entry.get("public_ip")]
    def is_web(entry: dict[str, Any]) -> bool:
        node = ctx.manifest.find("node", entry.get("source_id")) if ctx.manifest is not None else None
        return node is not None and node.tags.get("role") == "web"
    web = [entry for entry in entries if is_web(entry)] or entries
    return min(web, key=lambda entry: entry.get("name") or "")["public_ip"] if web else None


def shown_url(url: str) -> str:
    """The URL as it may be reported: no credentials, every query value masked. Given the
    parameter as written, ``${env:}`` references stay references."""
    if url.startswith("${env:"):
        return url
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    query = urlencode([(key, MASK) for key, _ in parse_qsl(parts.query, keep_blank_values=True)], safe="*")
    return urlunsplit((parts.scheme, host, parts.path, query, ""))


@dataclass(frozen=True)
class Request:
    """One resolved GET: where to connect, what to send. Holds secrets: never reported."""

    parts: SplitResult = field(repr=False)
    headers: dict[str, str] = field(repr=False)
    tls: ssl.SSLContext | None
    connect_to: str | None

    @classmethod
    def build(cls, params: WaitHealthyParams) -> Request:
        parts = urlsplit(resolve_env(params.url))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise OperationFailed("wait-healthy: url: must be an http:// or https:// URL")
        headers = {"User-Agent": f"failover/{__version__}", "Accept": "*/*"}
        if parts.username is not None:
            credentials = f"{parts.username}:{parts.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        for name, value in resolve_env(params.headers).items():
            if any(c in value for c in "\r\n\0"):
                raise OperationFailed(f"wait-healthy: headers.{name}: the value contains a line break or NUL")
            headers[name] = value
        return cls(parts, headers, _tls_context(params.insecure) if parts.scheme == "https" else None, params.resolve)

    def send(self, params: WaitHealthyParams, timeout: float) -> Answer:
        connection = self._connection(timeout)
        path = self.parts.path or "/"
        try:
            connection.request("GET", f"{path}?{self.parts.query}" if self.parts.query else path, headers=self.headers)
            response = connection.getresponse()
            body = response.read(MAX_BODY if params.contains is not None else 0)
            matches = params.contains is None or params.contains in body.decode("utf-8", errors="replace")
            return Answer(status=response.status, body_matches=matches)
        except (OSError, http.client.HTTPException) as exc:
            return Answer(error=_describe(exc))
        finally:
            connection.close()

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        host, port = self.parts.hostname, self.parts.port
        if self.tls is not None:
            return _HTTPSConnection(host, port, timeout=timeout, context=self.tls, connect_to=self.connect_to)
        return _HTTPConnection(host, port, timeout=timeout, connect_to=self.connect_to)


class _HTTPConnection(http.client.HTTPConnection):
    """Connects to ``connect_to`` when given, while naming ``host`` in the request."""

    def __init__(self, host: str, port: int | None, *, connect_to: str | None, **kwargs: Any) -> None:
        super().__init__(host, port, **kwargs)
        self.connect_to = connect_to

    def connect(self) -> None:
        self.sock = socket.create_connection((self.connect_to or self.host, self.port), self.timeout)


class _HTTPSConnection(http.client.HTTPSConnection):
    """Connects to ``connect_to`` when given; TLS still names and checks ``host``."""

    def __init__(
        self, host: str, port: int | None, *, context: ssl.SSLContext, connect_to: str | None, **kwargs: Any
    ) -> None:
        super().__init__(host, port, context=context, **kwargs)
        self.tls = context
        self.connect_to = connect_to

    def connect(self) -> None:
        sock = socket.create_connection((self.connect_to or self.host, self.port), self.timeout)
        self.sock = self.tls.wrap_socket(sock, server_hostname=self.host)


def _tls_context(insecure: bool) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _interruptible(send: Callable[[], Answer], cancel: threading.Event, shown: str) -> Answer:
    """Run one check in a thread of its own, so a cancelled run stops waiting at once
    (a check hanging on an unreachable address ends by its own timeout, unattended)."""
    outcome: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            outcome["answer"] = send()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread, raised there
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=run, name="wait-healthy-check", daemon=True).start()
    while not done.wait(CANCEL_POLL):
        if cancel.is_set():
            raise Interrupted(f"wait-healthy: cancelled while waiting for {shown}")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["answer"]


def _describe(exc: BaseException) -> str:
    """An error's kind and OS message, never its arguments (which may hold the URL)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"TLS certificate not trusted: {exc.verify_message}"
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{type(exc).__name__}: {exc.strerror}"
    return type(exc).__name__
