"""LatencyProxy's faults beyond the 503: a reset connection (before or after the upstream ran
the request), an answer cut short in its body, S3- and Azure-style throttling bodies, faults
aimed at some requests only, all drawn from the seeded stream and counted."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import urllib3

from failover.testing.proxy import LatencyProxy

BODY = bytes(range(256)) * 64  # 16 KiB


class Upstream:
    """An HTTP server answering every GET with ``BODY`` and every PUT with 201 and no body;
    it counts the requests it ran, by method."""

    def __init__(self) -> None:
        self.ran: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                upstream.ran.append("GET")
                self.send_response(200)
                self.send_header("Content-Length", str(len(BODY)))
                self.send_header("ETag", '"etag"')
                self.end_headers()
                self.wfile.write(BODY)

            def do_PUT(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                upstream.ran.append("PUT")
                self.send_response(201)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    yield server
    server.stop()


def outcome(url: str, method: str = "GET", path: str = "/bucket/key", body: bytes | None = None) -> str:
    """What a client saw: "ok", "reset" (no answer), "short" (the body cut), or "<status> <code>"."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body)
        response = conn.getresponse()
        data = response.read()
        if response.status >= 300:
            code = response.getheader("x-ms-error-code") or data.split(b"<Code>")[1].split(b"</Code>")[0].decode()
            return f"{response.status} {code}"
        return "ok"
    except http.client.IncompleteRead:
        return "short"
    except (ConnectionError, http.client.RemoteDisconnected):  # a reset, or the close right after it
        return "reset"
    finally:
        conn.close()


def test_a_reset_answers_nothing_and_the_request_never_reaches_the_upstream(upstream: Upstream) -> None:
    with LatencyProxy(upstream.url, latency_s=0, reset_ratio=1.0) as proxy:
        seen = [outcome(proxy.url), outcome(proxy.url, "PUT", body=b"data")]
        stats = proxy.stats()
    assert seen == ["reset", "reset"]
    assert upstream.ran == []
    assert (stats.resets, stats.forwarded, stats.failed, stats.truncated, stats.faults) == (2, 0, 0, 0, 2)
    assert stats.by_fault == {"reset": 2}


def test_a_reset_after_forwarding_loses_the_answer_of_a_request_that_ran(upstream: Upstream) -> None:
    with LatencyProxy(upstream.url, latency_s=0, reset_ratio=1.0, reset_after_forward=True) as proxy:
        assert outcome(proxy.url, "PUT", body=b"data") == "reset"
        assert proxy.stats().resets == proxy.stats().forwarded == 1
    assert upstream.ran == ["PUT"]


def test_a_truncated_answer_states_its_whole_length_and_sends_part_of_it(upstream: Upstream) -> None:
    with LatencyProxy(upstream.url, latency_s=0, truncate_ratio=1.0) as proxy:
        host, port = proxy.url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=10)
        conn.request("GET", "/bucket/key")
        response = conn.getresponse()
        assert response.status == 200 and int(response.getheader("Content-Length")) == len(BODY)
        with pytest.raises(http.client.IncompleteRead) as cut:
            response.read()
        conn.close()
        assert 0 < len(cut.value.partial) < len(BODY)
        assert cut.value.partial == BODY[: len(cut.value.partial)]
        # An answer without a body cannot be cut: it goes back whole, and is not counted.
        assert outcome(proxy.url, "PUT", body=b"data") == "ok"
        stats = proxy.stats()
    assert (stats.truncated, stats.forwarded, stats.faults, stats.by_fault) == (1, 2, 1, {"truncate": 1})


def test_urllib3_streaming_a_truncated_body_raises_a_protocol_error(upstream: Upstream) -> None:
    """What the copy path reads through: a body cut short is an error, never a short object."""
    with LatencyProxy(upstream.url, latency_s=0, truncate_ratio=1.0) as proxy:
        pool = urllib3.connection_from_url(proxy.url)
        answer = pool.urlopen("GET", "/bucket/key", preload_content=False, retries=False)
        with pytest.raises(urllib3.exceptions.ProtocolError):
            b"".join(answer.stream(4096))
        with pytest.raises(urllib3.exceptions.ProtocolError):
            pool.urlopen("GET", "/bucket/key", retries=False)  # read whole (a listing page)
        pool.close()


@pytest.mark.parametrize(("kind", "seen"), [
    ("unavailable", "503 ServiceUnavailable"), ("slowdown", "503 SlowDown"), ("server-busy", "503 ServerBusy"),
    ("internal", "500 InternalError"),
])
def test_each_failure_kind_answers_as_its_provider_does(upstream: Upstream, kind: str, seen: str) -> None:
    with LatencyProxy(upstream.url, latency_s=0, fail_ratio=1.0, fail_kinds=[kind]) as proxy:
        assert outcome(proxy.url) == seen
        assert proxy.stats().by_fault == {kind: 1} and proxy.stats().failed == 1
    assert upstream.ran == []


def test_faults_hit_only_the_requests_fault_for_chooses(upstream: Upstream) -> None:
    listings = lambda method, path: method == "GET" and "list-type=2" in path  # noqa: E731
    with LatencyProxy(upstream.url, latency_s=0, reset_ratio=1.0, fault_for=listings) as proxy:
        assert outcome(proxy.url, path="/bucket?list-type=2") == "reset"
        assert outcome(proxy.url, path="/bucket/key") == "ok"
        assert outcome(proxy.url, "PUT", path="/bucket/key?list-type=2", body=b"x") == "ok"
        assert proxy.stats().resets == 1


def test_a_seed_replays_the_same_faults_and_kinds(upstream: Upstream) -> None:
    def faults(seed: int) -> list[str]:
        with LatencyProxy(upstream.url, latency_s=0, fail_ratio=0.2, reset_ratio=0.2, truncate_ratio=0.2,
                          fail_kinds=["slowdown", "server-busy", "internal"], seed=seed) as proxy:
            seen = [outcome(proxy.url) for _ in range(40)]
            stats = proxy.stats()
        assert stats.faults == sum(item != "ok" for item in seen)
        assert (stats.resets, stats.truncated) == (seen.count("reset"), seen.count("short"))
        return seen

    first = faults(3)
    assert faults(3) == first
    assert {"ok", "reset", "short"} <= set(first) and any(item.startswith("50") for item in first)
    assert faults(4) != first


def test_fail_ratio_alone_draws_as_it_always_did(upstream: Upstream) -> None:
    """The 503s of a seed fall on the same requests as before the other faults existed (the
    e2e fault tests' seeds keep their meaning): one draw per request, failed below the ratio."""
    import random

    draws = random.Random(5)
    expected = ["503 ServiceUnavailable" if draws.random() < 0.3 else "ok" for _ in range(30)]
    with LatencyProxy(upstream.url, latency_s=0, fail_ratio=0.3, seed=5) as proxy:
        assert [outcome(proxy.url) for _ in range(30)] == expected


def test_faults_can_be_turned_on_and_off_while_it_runs(upstream: Upstream) -> None:
    with LatencyProxy(upstream.url, latency_s=0) as proxy:
        assert outcome(proxy.url) == "ok"
        proxy.reset_ratio = 1.0
        assert outcome(proxy.url) == "reset"
        proxy.reset_ratio = 0.0
        assert outcome(proxy.url) == "ok"


@pytest.mark.parametrize("options", [
    {"reset_ratio": 1.5}, {"truncate_ratio": -0.1}, {"fail_ratio": 0.5, "reset_ratio": 0.4, "truncate_ratio": 0.2},
    {"fail_kinds": ["teapot"]}, {"fail_kinds": []},
])
def test_impossible_fault_settings_are_refused(options: dict) -> None:
    with pytest.raises(ValueError):
        LatencyProxy("http://127.0.0.1:9", **options)
