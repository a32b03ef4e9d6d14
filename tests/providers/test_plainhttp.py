"""``providers.plainhttp``: the pool of ``http.client`` connections behind the copy's GETs and PUTs."""

from __future__ import annotations

import http.client
import io
import socket

import pytest
from httpkit import Backend

from providers.plainhttp import ConnectionPool, parse_headers

HEADERS = (
    b"Content-Type: application/xml\r\n"
    b"x-amz-meta-Owner:  sre team \r\n"
    b"ETag: \"0123\"\r\n"
    b"x-amz-meta-owner: second\r\n"
    b"Set-Cookie: a=1\r\n"
    b"Set-Cookie: b=2\r\n"
    b"X-Empty:\r\n"
    b"Content-Length: 7\r\n"
    b"\r\n"
    b"body..."
)


@pytest.mark.parametrize("block", [HEADERS, HEADERS.replace(b"\r\n", b"\n"), b"\r\n", b"Server: x\r\n\r\n"])
def test_headers_parse_as_the_standard_library_parses_them(block: bytes) -> None:
    ours, theirs = parse_headers(io.BytesIO(block)), http.client.parse_headers(io.BytesIO(block))
    assert ours.items() == theirs.items()
    assert [ours.get(name) for name in ("content-type", "ETAG", "x-amz-meta-owner", "x-empty", "missing")] == [
        theirs.get(name) for name in ("content-type", "ETAG", "x-amz-meta-owner", "x-empty", "missing")]
    assert ours.get_all("set-cookie") == theirs.get_all("set-cookie")
    assert ("CONTENT-LENGTH" in ours) == ("CONTENT-LENGTH" in theirs)


def test_a_header_line_too_long_is_refused_as_the_standard_library_refuses_it() -> None:
    with pytest.raises(http.client.LineTooLong):
        parse_headers(io.BytesIO(b"X-Long: " + b"a" * 70000 + b"\r\n\r\n"))


def test_the_pool_reuses_a_kept_alive_connection_and_reopens_a_closed_one() -> None:
    backend = Backend("kept", 200)
    try:
        backend.server.RequestHandlerClass.protocol_version = "HTTP/1.1"  # keeps connections alive
        pool = ConnectionPool("http", "127.0.0.1", backend.port, maxsize=2, connect_timeout=5, read_timeout=5)
        first = pool.request("GET", "/", {})
        assert (first.status, first.read()) == (200, b"kept")
        kept = pool._idle[-1].sock
        assert kept is not None
        second = pool.request("GET", "/", {})
        assert second.read() == b"kept" and pool._idle[-1].sock is kept  # the same connection, reused
        kept.shutdown(socket.SHUT_RDWR)  # readable at its end, as one the server closed while it was idle
        third = pool.request("GET", "/", {})
        assert third.read() == b"kept" and backend.served == 3 and pool._idle[-1].sock is not kept
        half = pool.request("GET", "/", {})
        half.release()  # released unread: closed, not reused
        assert pool._idle[-1].sock is None
    finally:
        backend.stop()


def test_a_body_cut_short_raises_incomplete_read_and_its_connection_is_not_reused() -> None:
    """A server stating 100 bytes that sends 40 and closes: streamed or read whole, the answer
    raises IncompleteRead (never a short body taken for the whole), and nothing goes back idle."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def serve() -> None:
        for _ in range(2):
            connection, _ = listener.accept()
            with connection:
                connection.recv(65536)
                connection.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n" + b"x" * 40)

    import threading

    server = threading.Thread(target=serve, daemon=True)
    server.start()
    try:
        pool = ConnectionPool("http", "127.0.0.1", port, maxsize=2, connect_timeout=5, read_timeout=5)
        streamed = pool.request("GET", "/", {})
        with pytest.raises(http.client.IncompleteRead):
            b"".join(streamed.stream(16))
        whole = pool.request("GET", "/", {})
        with pytest.raises(http.client.IncompleteRead):
            whole.read()
        assert not pool._idle
    finally:
        server.join(5)
        listener.close()
