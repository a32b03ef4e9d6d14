"""Plain HTTP/1.1 exchanges for the copy's per-object requests, through ``http.client``.

A replication pass of small objects makes two requests per object (the source's signed GET,
the target's signed PUT), so what a request costs the client is most of what the copy costs:
urllib3's pool (its request and response layers over ``http.client``) took 0.9 ms of CPU per
request here, ``http.client`` alone 0.5 ms. This is the part of a pool that those requests
need: idle connections kept per endpoint (kept-alive ones reused; one the server has closed
meanwhile is reopened), a connect and a read timeout, TLS verified against a CA bundle.
Redirects, retries, proxies and decoding stay with the callers' clients: a caller sends here
only what needs none of them, and hands anything else to its client.

Failures are ``OSError`` (refused, reset, timed out, TLS) or ``http.client.HTTPException``
(a malformed or truncated answer), as ``http.client`` raises them.
"""

from __future__ import annotations

import http.client
import ssl
import threading
import types
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from urllib3.util.wait import wait_for_read

ERRORS = (OSError, http.client.HTTPException)


class _Timeouts:
    """Connect within ``connect_timeout`` (TLS handshake included), then wait at most
    ``read_timeout`` for each read or write."""

    connect_timeout: float
    read_timeout: float
    sock: Any

    def connect(self) -> None:
        self.timeout = self.connect_timeout
        super().connect()  # type: ignore[misc]
        self.sock.settimeout(self.read_timeout)


def parse_headers(fp: Any, _class: type[http.client.HTTPMessage] = http.client.HTTPMessage) -> http.client.HTTPMessage:
    """``http.client.parse_headers`` without the email package's feed parser, which took a third
    of a small object's CPU here: the same header lines (read with the same limits), the same
    ``HTTPMessage`` (case-insensitive, repeated names kept in order). A folded line continues
    the header before it; a line without a colon is dropped (the feed parser would end the
    headers there)."""
    message = _class()
    for line in http.client._read_headers(fp)[:-1]:  # the last is the blank line that ends them
        text = line.decode("iso-8859-1").rstrip("\r\n")
        if text[:1] in (" ", "\t") and message._headers:  # an obsolete folded continuation
            name, value = message._headers[-1]
            message._headers[-1] = (name, f"{value} {text.strip()}")
            continue
        name, colon, value = text.partition(":")
        if colon:
            message[name] = value.lstrip(" \t")
    return message


class _Response(http.client.HTTPResponse):
    """``http.client``'s response, its ``begin`` the standard library's own code (whatever the
    Python version) run with :func:`parse_headers` in place of the module's."""

    begin = types.FunctionType(
        http.client.HTTPResponse.begin.__code__, {**vars(http.client), "parse_headers": parse_headers}, "begin",
    )


class _HTTPConnection(_Timeouts, http.client.HTTPConnection):
    response_class = _Response


class _HTTPSConnection(_Timeouts, http.client.HTTPSConnection):
    response_class = _Response


class ConnectionPool:
    """Up to ``maxsize`` idle connections to one endpoint (``scheme://host:port``), shared by threads."""

    def __init__(
        self, scheme: str, host: str, port: int, *, maxsize: int, connect_timeout: float, read_timeout: float,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if scheme not in ("http", "https"):
            raise ValueError(f"not an HTTP endpoint: {scheme}://{host}:{port}")
        self.scheme, self.host, self.port = scheme, host, port
        self.maxsize = maxsize
        self._timeouts = (connect_timeout, read_timeout)
        self._context = ssl_context or (ssl.create_default_context() if scheme == "https" else None)
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    @classmethod
    def for_url(cls, url: str, **options: Any) -> ConnectionPool:
        parts = urlsplit(url)
        default = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname or "", parts.port or default, **options)

    def request(self, method: str, target: str, headers: dict[str, str], body: Any = None) -> Answer:
        """Send one request (``target``: the path and query) and read the answer's status and
        headers; the body is the caller's to read (``Answer.stream`` or ``Answer.read``)."""
        connection = self._connection()
        try:
            connection.request(method, target, body=body, headers=headers)
            response = connection.getresponse()
        except BaseException:
            connection.close()
            self._put(connection)
            raise
        return Answer(self, connection, response)

    def _connection(self) -> http.client.HTTPConnection:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is None:
            return self._new()
        if connection.sock is not None and wait_for_read(connection.sock, timeout=0.0):
            connection.close()  # closed by the server while idle (or it sent something unasked): reopened on use
        return connection

    def _new(self) -> http.client.HTTPConnection:
        connect_timeout, read_timeout = self._timeouts
        connection: _HTTPConnection | _HTTPSConnection
        if self.scheme == "https":
            connection = _HTTPSConnection(self.host, self.port, context=self._context)
        else:
            connection = _HTTPConnection(self.host, self.port)
        connection.connect_timeout, connection.read_timeout = connect_timeout, read_timeout
        return connection

    def _put(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self.maxsize:
                self._idle.append(connection)
                return
        connection.close()


class Answer:
    """An answer's status and headers (case-insensitive ``get``); its body read whole
    (``read``) or streamed (``stream``). The connection goes back to the pool once the body
    is read to its end, and is closed if the answer is released before (``release``)."""

    def __init__(self, pool: ConnectionPool, connection: http.client.HTTPConnection,
                 response: http.client.HTTPResponse) -> None:
        self._pool = pool
        self._connection: http.client.HTTPConnection | None = connection
        self._response = response
        self.status = response.status
        self.headers = response.headers

    def read(self) -> bytes:
        try:
            data = self._response.read()  # a body cut short raises IncompleteRead
        except BaseException:
            self._broken = True
            raise
        finally:
            self.release()
        return data

    def stream(self, chunk_size: int) -> Iterator[bytes]:
        """The body in chunks; IncompleteRead when the connection ends before the stated length
        (``http.client`` reading by amounts just stops short)."""
        try:
            while chunk := self._response.read(chunk_size):
                yield chunk
            left = self._response.length
            if left:
                raise http.client.IncompleteRead(b"", left)
        except BaseException:
            self._broken = True
            raise
        finally:
            self.release()

    _broken = False  # the body was not read to its end as stated: the connection is not reused

    def release(self) -> None:
        """Hand the connection back: kept for reuse if the body was read to its end, else closed."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        if self._broken:
            connection.close()
            return
        if not self._response.isclosed():
            self._response.close()
            connection.close()
        self._pool._put(connection)
