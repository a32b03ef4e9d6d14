"""A local HTTP proxy in front of an emulator that adds latency (and, optionally, faults).

Emulators such as ``moto_server`` answer in about a millisecond; a real cloud API takes
tens. ``LatencyProxy`` sits between a client and the emulator, holds every request for
``latency_s`` and forwards it unchanged: method, path and query, headers (``Host``
included, so signatures still match) and body. Answers come back unchanged too.

With ``fail_ratio`` > 0, that fraction of requests (drawn from a seeded random stream)
is answered by the proxy itself with ``503 ServiceUnavailable`` instead of being
forwarded: the client sees a throttled cloud and must retry.

With ``bandwidth_bps``, each client connection receives answer bodies at most that many
bytes a second (a provider capping each connection's bandwidth): more connections, in
parallel, get more in all.

Two more knobs, for tests and benchmarks of copies against a clock: ``latency_for(method,
path)`` gives a request's latency instead of ``latency_s`` (None: ``latency_s``), so that one
container can be slow and the others not; ``bytes_per_s`` caps the bandwidth of the whole
proxy (request and answer bodies share one link, whatever the number of connections).

More faults, each off by default and drawn from the same seeded stream, one draw per
request (so a seed replays the same faults for the same sequence of requests):

- ``reset_ratio``: the connection is reset (TCP RST) without an answer, before the request is
  forwarded (``reset_after_forward=True``: after the upstream executed it, the answer lost);
- ``truncate_ratio``: the upstream's answer goes back with its status, headers and full
  ``Content-Length``, but only part of its body (half, never all of it), then the connection
  is closed: a GET's body or a listing page cut short. An answer without a body cannot be cut
  and goes back whole (not counted);
- ``fail_kinds``: what an injected failure answers, one kind drawn per failure among those
  given: ``"unavailable"`` (503 ServiceUnavailable, the default), ``"slowdown"`` (S3's 503
  SlowDown, an XML body), ``"server-busy"`` (Azure's 503 ServerBusy, its ``x-ms-error-code``
  header and XML body), ``"internal"`` (500 InternalError);
- ``fault_for(method, path)``: only requests for which it is true may get a fault (the others
  draw nothing), e.g. only listing pages (``list-type=2`` in the query) or only object GETs.

The ratios are attributes and may be changed while the proxy runs (faults on for one
command, off for the next).

It counts what passes through (total, per AWS service, per HTTP method, forwarded, failed),
thread-safely, so a benchmark can say how many requests each side made (and a test that a
read-only command sent no PUT, POST, PATCH or DELETE).

    with LatencyProxy(moto.url, latency_s=0.05) as proxy:
        client = boto3.client("ec2", endpoint_url=proxy.url, ...)
        ...
        print(proxy.stats().requests)
"""

from __future__ import annotations

import contextlib
import http.client
import random
import re
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self
from urllib.parse import urlsplit

# Headers that describe one hop, not the request: never forwarded as they are.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te",
     "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}
)
PACE_CHUNK = 16 * 1024  # bytes written at a time under a bandwidth cap
# SigV4: "Credential=AKID/20240101/us-east-1/ec2/aws4_request" names the service.
SIGV4_SERVICE = re.compile(r"Credential=[^/,\s]+/\d{8}/[^/]+/([^/]+)/aws4_request")
UNAVAILABLE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b"<Error><Code>ServiceUnavailable</Code><Message>Injected by LatencyProxy</Message></Error>"
)
# What an injected failure answers, by kind: status, reason, extra headers, body.
FAILURES: dict[str, tuple[int, str, tuple[tuple[str, str], ...], bytes]] = {
    "unavailable": (503, "Service Unavailable", (), UNAVAILABLE_BODY),
    "slowdown": (503, "Slow Down", (), (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message>"
        b"<RequestId>LatencyProxy</RequestId></Error>")),
    "server-busy": (503, "The server is currently unable to receive requests. Please retry your request.",
                    (("x-ms-error-code", "ServerBusy"),), (
        b'\xef\xbb\xbf<?xml version="1.0" encoding="utf-8"?><Error><Code>ServerBusy</Code>'
        b"<Message>The server is currently unable to receive requests. Please retry your request.</Message></Error>")),
    "internal": (500, "Internal Server Error", (), (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b"<Error><Code>InternalError</Code><Message>We encountered an internal error. Please try again.</Message>"
        b"</Error>")),
}


@dataclass(frozen=True)
class ProxyStats:
    """A snapshot of the proxy's counters."""

    requests: int = 0  # received
    forwarded: int = 0  # answered by the upstream
    failed: int = 0  # answered 503 by the proxy (fault injection)
    upstream_errors: int = 0  # the upstream could not be reached (answered 502)
    by_service: dict[str, int] = field(default_factory=dict)
    by_method: dict[str, int] = field(default_factory=dict)  # received, per HTTP method (GET, PUT, ...)
    resets: int = 0  # connections reset without an answer (fault injection)
    truncated: int = 0  # answers cut short in their body (fault injection)
    by_fault: dict[str, int] = field(default_factory=dict)  # injected faults per kind: failure kinds, reset, truncate

    @property
    def faults(self) -> int:
        """Every fault injected: failures answered, resets, truncated answers."""
        return self.failed + self.resets + self.truncated


class LatencyProxy:
    """A threaded HTTP proxy on 127.0.0.1 that delays every request by ``latency_s``.

    Every client connection gets its own thread and its own keep-alive connection to the
    upstream. ``stop()`` closes the listener and every open connection and joins the
    threads.
    """

    def __init__(
        self,
        upstream_url: str,
        latency_s: float = 0.05,
        *,
        fail_ratio: float = 0.0,
        seed: int | None = 0,
        host: str = "127.0.0.1",
        port: int = 0,
        upstream_timeout: float = 120.0,
        bandwidth_bps: float | None = None,
        latency_for: Callable[[str, str], float | None] | None = None,
        bytes_per_s: float | None = None,
        reset_ratio: float = 0.0,
        truncate_ratio: float = 0.0,
        reset_after_forward: bool = False,
        fail_kinds: Sequence[str] = ("unavailable",),
        fault_for: Callable[[str, str], bool] | None = None,
    ) -> None:
        for name, ratio in (("fail_ratio", fail_ratio), ("reset_ratio", reset_ratio),
                            ("truncate_ratio", truncate_ratio)):
            if not 0.0 <= ratio <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], not {ratio}")
        if fail_ratio + reset_ratio + truncate_ratio > 1.0:
            raise ValueError("fail_ratio + reset_ratio + truncate_ratio must not exceed 1")
        unknown = [kind for kind in fail_kinds if kind not in FAILURES]
        if unknown or not fail_kinds:
            raise ValueError(f"fail_kinds must be some of {', '.join(FAILURES)}, not {list(fail_kinds)}")
        if latency_s < 0:
            raise ValueError(f"latency_s must not be negative, not {latency_s}")
        if bandwidth_bps is not None and bandwidth_bps <= 0:
            raise ValueError(f"bandwidth_bps must be positive, not {bandwidth_bps}")
        self.bandwidth_bps = bandwidth_bps
        upstream = urlsplit(upstream_url)
        if upstream.scheme != "http" or not upstream.hostname:
            raise ValueError(f"upstream must be an http:// URL, not {upstream_url!r}")
        self.upstream_host = upstream.hostname
        self.upstream_port = upstream.port or 80
        self.upstream_timeout = upstream_timeout
        self.latency_s = latency_s
        self.latency_for = latency_for
        self.bytes_per_s = bytes_per_s
        self._link_free_at = 0.0  # when the capped link has sent what was queued on it
        self.fail_ratio = fail_ratio
        self.reset_ratio = reset_ratio
        self.truncate_ratio = truncate_ratio
        self.reset_after_forward = reset_after_forward
        self.fail_kinds = tuple(fail_kinds)
        self.fault_for = fault_for
        self._random = random.Random(seed)
        self._bind = (host, port)
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._by_service: Counter[str] = Counter()
        self._by_method: Counter[str] = Counter()
        self._by_fault: Counter[str] = Counter()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._open: dict[threading.Thread, BaseHTTPRequestHandler] = {}  # connections being served

    # -- lifecycle -------------------------------------------------------------------
    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the proxy is not started")
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server(self._bind, _make_handler(self))
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, name="latency-proxy", daemon=True
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, cut every open connection (to clients and upstream), and wait
        up to ``timeout`` seconds in all for the threads."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()  # requests waiting out their latency give up at once
        server.shutdown()
        server.server_close()
        with self._lock:
            open_now = list(self._open.items())
        for _, handler in open_now:
            upstream = getattr(handler, "upstream", None)
            for sock in (handler.connection, upstream.sock if upstream is not None else None):
                if sock is not None:
                    with contextlib.suppress(OSError):
                        sock.shutdown(socket.SHUT_RDWR)  # a blocked read returns at once
        deadline = time.monotonic() + timeout
        for thread in [thread for thread, _ in open_now] + [self._thread]:
            if thread is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- counters --------------------------------------------------------------------
    def stats(self) -> ProxyStats:
        with self._lock:
            return ProxyStats(
                requests=self._counts["requests"],
                forwarded=self._counts["forwarded"],
                failed=self._counts["failed"],
                upstream_errors=self._counts["upstream_errors"],
                by_service=dict(sorted(self._by_service.items())),
                by_method=dict(sorted(self._by_method.items())),
                resets=self._counts["resets"],
                truncated=self._counts["truncated"],
                by_fault=dict(sorted(self._by_fault.items())),
            )

    @property
    def requests(self) -> int:
        with self._lock:
            return self._counts["requests"]

    def reset_stats(self) -> None:
        with self._lock:
            self._counts.clear()
            self._by_service.clear()
            self._by_method.clear()
            self._by_fault.clear()

    # -- used by the handler threads ---------------------------------------------------
    def _count(self, what: str, service: str | None = None, method: str | None = None) -> None:
        with self._lock:
            self._counts[what] += 1
            if service is not None:
                self._by_service[service] += 1
            if method is not None:
                self._by_method[method] += 1

    def _latency(self, method: str, path: str) -> float:
        chosen = self.latency_for(method, path) if self.latency_for is not None else None
        return self.latency_s if chosen is None else chosen

    def _send_time(self, size: int) -> float:
        """How long to wait before ``size`` bytes have passed the capped link (0 when uncapped)."""
        if not self.bytes_per_s or size <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self._link_free_at = max(now, self._link_free_at) + size / self.bytes_per_s
            return self._link_free_at - now

    def _should_fail(self) -> bool:
        return self._fault("GET", "/") == "fail"

    def _fault(self, method: str, path: str) -> str | None:
        """The fault this request gets: "fail", "reset", "truncate" or None. One draw from the
        seeded stream per request that may get one (with ``fail_ratio`` alone, the same draws
        as before the other faults existed)."""
        fail, reset, truncate = self.fail_ratio, self.reset_ratio, self.truncate_ratio
        if fail + reset + truncate <= 0.0:
            return None
        if self.fault_for is not None and not self.fault_for(method, path):
            return None
        with self._lock:
            draw = self._random.random()
        if draw < fail:
            return "fail"
        if draw < fail + reset:
            return "reset"
        if draw < fail + reset + truncate:
            return "truncate"
        return None

    def _failure(self) -> tuple[int, str, tuple[tuple[str, str], ...], bytes, str]:
        """What an injected failure answers: a kind drawn among ``fail_kinds`` (no draw for one kind)."""
        kinds = self.fail_kinds
        if len(kinds) == 1:
            kind = kinds[0]
        else:
            with self._lock:
                kind = kinds[self._random.randrange(len(kinds))]
        return (*FAILURES[kind], kind)

    def _count_fault(self, what: str, kind: str) -> None:
        with self._lock:
            self._counts[what] += 1
            self._by_fault[kind] += 1

    def _track(self, handler: BaseHTTPRequestHandler, add: bool) -> None:
        with self._lock:
            if add:
                self._open[threading.current_thread()] = handler
            else:
                self._open.pop(threading.current_thread(), None)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # LatencyProxy.stop joins the handler threads itself
    request_queue_size = 256  # a burst of 32+ new connections must not overflow the backlog


def _service_of(headers: http.client.HTTPMessage) -> str:
    match = SIGV4_SERVICE.search(headers.get("Authorization", ""))
    return match.group(1) if match else "unsigned"


def _make_handler(proxy: LatencyProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive with the client
        disable_nagle_algorithm = True  # else small answers wait ~40 ms for a delayed ACK
        timeout = 120  # an idle client connection is closed after this many seconds

        def setup(self) -> None:
            super().setup()
            self.upstream: http.client.HTTPConnection | None = None
            proxy._track(self, True)

        def finish(self) -> None:
            try:
                super().finish()
            finally:
                if self.upstream is not None:
                    self.upstream.close()
                proxy._track(self, False)

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: a benchmark makes thousands of requests

        def handle_one_request(self) -> None:
            try:
                super().handle_one_request()
            except (ConnectionError, TimeoutError, OSError):
                self.close_connection = True  # the client went away, or stop() cut it

        def do_any(self) -> None:
            body = self._read_body()
            proxy._count("requests", _service_of(self.headers), self.command)
            if proxy._stopping.wait(proxy._latency(self.command, self.path) + proxy._send_time(len(body))):
                self.close_connection = True
                return
            fault = proxy._fault(self.command, self.path)
            if fault == "fail":
                status, reason, extra, failure, kind = proxy._failure()
                proxy._count_fault("failed", kind)
                self._answer(status, reason, [("Content-Type", "application/xml"), *extra], failure)
                return
            if fault == "reset" and not proxy.reset_after_forward:
                proxy._count_fault("resets", "reset")
                self._reset()
                return
            try:
                status, reason, headers, answer = self._forward(body)
            except (OSError, http.client.HTTPException) as exc:
                proxy._count("upstream_errors")
                self._answer(502, "Bad Gateway", [("Content-Type", "text/plain")], f"upstream: {exc}".encode())
                return
            proxy._count("forwarded")
            if fault == "reset":  # executed upstream, the answer lost
                proxy._count_fault("resets", "reset")
                self._reset()
                return
            if proxy._stopping.wait(proxy._send_time(len(answer))):
                self.close_connection = True
                return
            if fault == "truncate" and answer and self.command != "HEAD" and status not in (204, 304):
                proxy._count_fault("truncated", "truncate")
                self._answer(status, reason, headers, answer, cut=len(answer) // 2)
                return
            self._answer(status, reason, headers, answer)

        def _reset(self) -> None:
            """Close the client's connection with a TCP RST, no answer sent."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()

        def _read_body(self) -> bytes:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._read_chunked()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _read_chunked(self) -> bytes:
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers: dropped
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()  # the CRLF after each chunk

        do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_any

        def _forward(self, body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
            """Send the request upstream on this thread's connection. When a kept-alive
            connection turns out to have been closed by the upstream, retry once on a new one."""
            while True:
                reused = self.upstream is not None
                if self.upstream is None:
                    self.upstream = http.client.HTTPConnection(
                        proxy.upstream_host, proxy.upstream_port, timeout=proxy.upstream_timeout
                    )
                try:
                    self.upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                    for name, value in self.headers.items():
                        if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                            self.upstream.putheader(name, value)
                    if body or self.command in ("POST", "PUT", "PATCH") or "Content-Length" in self.headers:
                        self.upstream.putheader("Content-Length", str(len(body)))
                    self.upstream.endheaders(body or None)
                    response = self.upstream.getresponse()
                    answer = response.read()
                except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                    self.upstream.close()
                    self.upstream = None
                    if not reused or proxy._stopping.is_set():
                        raise
                    continue
                headers = [(k, v) for k, v in response.getheaders() if k.lower() not in HOP_BY_HOP]
                if response.will_close:
                    self.upstream.close()
                    self.upstream = None
                return response.status, response.reason, headers, answer

        def _answer(
            self, status: int, reason: str, headers: list[tuple[str, str]], body: bytes, cut: int | None = None,
        ) -> None:
            """The status line, headers and body in one write (with Nagle off, two writes
            would cost the client a round trip each). With ``cut``: the headers state the whole
            body's length, only its first ``cut`` bytes are sent, then the connection is closed."""
            head = self.command == "HEAD"
            lines = [f"{self.protocol_version} {status} {reason}"]
            # A HEAD answer keeps the upstream's length (of the body a GET would get);
            # otherwise the length is that of the body as forwarded.
            lines += [f"{name}: {value}" for name, value in headers if name.lower() != "content-length" or head]
            if not head and status not in (204, 304):
                lines.append(f"Content-Length: {len(body)}")
            header = "\r\n".join(lines).encode("latin-1") + b"\r\n\r\n"
            if cut is not None:
                self.close_connection = True
                self.wfile.write(header + body[:cut])
                self.wfile.flush()
                with contextlib.suppress(OSError):
                    self.connection.shutdown(socket.SHUT_RDWR)
                return
            if proxy.bandwidth_bps is not None and not head and len(body) > PACE_CHUNK:
                self.wfile.write(header)
                self._paced(body, proxy.bandwidth_bps)
                return
            self.wfile.write(header + (b"" if head else body))
            self.wfile.flush()

        def _paced(self, body: bytes, rate: float) -> None:
            """``body`` written at ``rate`` bytes a second on this connection."""
            started = time.monotonic()
            for at in range(0, len(body), PACE_CHUNK):
                piece = body[at:at + PACE_CHUNK]
                self.wfile.write(piece)
                self.wfile.flush()
                ahead = started + (at + len(piece)) / rate - time.monotonic()
                if ahead > 0 and proxy._stopping.wait(ahead):
                    self.close_connection = True
                    return

    return Handler
