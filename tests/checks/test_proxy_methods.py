"""The counter ``failover check``'s read-only test relies on: LatencyProxy counts the
requests it receives by HTTP method (here in front of the package's PowerDNS API)."""

from __future__ import annotations

import json
import urllib.request

from checkkit import Peers

from failover.testing.proxy import LatencyProxy


def call(url: str, method: str, key: str, body: dict | None = None) -> int:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(f"{url}/api/v1/servers/localhost/zones", data=data, method=method,
                                     headers={"X-API-Key": key, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_the_proxy_counts_requests_by_method_and_resets_them(peers: Peers) -> None:
    with LatencyProxy(f"http://127.0.0.1:{peers.pdns.api_port}", latency_s=0.0) as proxy:
        key = peers.pdns.api_key
        assert call(proxy.url, "GET", key) == 200
        assert call(proxy.url, "GET", key) == 200
        assert call(proxy.url, "HEAD", key) in (200, 405)
        assert call(proxy.url, "POST", key, {"name": "bad name"}) in (400, 422)  # refused, but counted as sent
        assert call(proxy.url, "DELETE", key) in (404, 405)
        assert proxy.stats().by_method == {"DELETE": 1, "GET": 2, "HEAD": 1, "POST": 1}
        assert proxy.stats().requests == 5
        proxy.reset_stats()
        assert proxy.stats().by_method == {}
