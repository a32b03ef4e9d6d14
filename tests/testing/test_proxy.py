"""LatencyProxy: faithful pass-through, latency, counting, fault injection, clean stop."""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from failover.testing.proxy import LatencyProxy


class Echo(BaseHTTPRequestHandler):
    """Answers every request with a JSON description of what it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_any(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        answer = json.dumps(
            {"method": self.command, "path": self.path, "headers": dict(self.headers.items()), "body": body.decode("latin-1")}
        ).encode()
        self.send_response(201 if self.command == "PUT" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Upstream", "echo")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_HEAD = do_POST = do_PUT = do_DELETE = do_any


@pytest.fixture
def upstream() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(5)


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None):
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def test_passes_method_path_query_headers_and_body_through(upstream: str) -> None:
    with LatencyProxy(upstream, latency_s=0) as proxy:
        proxy_host = proxy.url.removeprefix("http://")
        status, headers, body = request(
            proxy.url,
            "PUT",
            "/bucket/a%20key%2Bplus?tagging=&x-id=PutObject",
            body=b"\x00binary\xffpayload",
            headers={"X-Amz-Meta-Colour": "blue", "Content-Type": "application/octet-stream"},
        )
    seen = json.loads(body)
    assert status == 201
    assert headers["X-Upstream"] == "echo"
    assert seen["method"] == "PUT"
    assert seen["path"] == "/bucket/a%20key%2Bplus?tagging=&x-id=PutObject"
    assert seen["headers"]["X-Amz-Meta-Colour"] == "blue"
    assert seen["headers"]["Host"] == proxy_host  # kept: signatures cover it
    assert seen["body"] == b"\x00binary\xffpayload".decode("latin-1")


def test_post_form_and_head(upstream: str) -> None:
    with LatencyProxy(upstream, latency_s=0) as proxy:
        _, _, body = request(
            proxy.url, "POST", "/", body=b"Action=DescribeInstances&Version=2016-11-15",
            headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
        )
        status, headers, head_body = request(proxy.url, "HEAD", "/bucket/key")
    assert json.loads(body)["body"] == "Action=DescribeInstances&Version=2016-11-15"
    assert status == 200 and head_body == b""
    assert int(headers["Content-Length"]) > 0  # the length a GET would get


def test_adds_latency_to_every_request(upstream: str) -> None:
    with LatencyProxy(upstream, latency_s=0.1) as proxy:
        started = time.monotonic()
        for _ in range(3):
            request(proxy.url, "GET", "/")
        assert time.monotonic() - started >= 0.3


def test_counts_concurrent_requests_by_service(upstream: str) -> None:
    signed = {"Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/ec2/aws4_request, Signature=x"}

    with LatencyProxy(upstream, latency_s=0.001) as proxy:

        def client() -> None:
            for _ in range(25):
                request(proxy.url, "POST", "/", body=b"x", headers=signed)

        threads = [threading.Thread(target=client) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        request(proxy.url, "GET", "/unsigned")
        stats = proxy.stats()
        assert stats.requests == 201 and stats.forwarded == 201 and stats.failed == 0
        assert stats.by_service == {"ec2": 200, "unsigned": 1}
        proxy.reset_stats()
        assert proxy.requests == 0


def test_fail_ratio_answers_a_fraction_with_503(upstream: str) -> None:
    with LatencyProxy(upstream, latency_s=0, fail_ratio=0.5, seed=7) as proxy:
        statuses = [request(proxy.url, "GET", "/")[0] for _ in range(200)]
        stats = proxy.stats()
    assert set(statuses) == {200, 503}
    assert stats.failed == statuses.count(503) and stats.forwarded == statuses.count(200)
    assert 60 < stats.failed < 140


def test_fail_ratio_one_never_reaches_upstream(upstream: str) -> None:
    with LatencyProxy(upstream, latency_s=0, fail_ratio=1.0) as proxy:
        status, _, body = request(proxy.url, "GET", "/")
    assert status == 503 and b"ServiceUnavailable" in body
    with pytest.raises(ValueError):
        LatencyProxy(upstream, fail_ratio=1.5)


def test_unreachable_upstream_is_a_502() -> None:
    from failover.testing.servers import free_port

    with LatencyProxy(f"http://127.0.0.1:{free_port()}", latency_s=0) as proxy:
        status, _, _ = request(proxy.url, "GET", "/")
        assert status == 502 and proxy.stats().upstream_errors == 1


def test_stop_closes_kept_alive_connections_and_threads(upstream: str) -> None:
    proxy = LatencyProxy(upstream, latency_s=0).start()
    host, port = proxy.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", "/")
    conn.getresponse().read()  # the connection stays open, its handler thread waiting
    before = threading.active_count()
    proxy.stop()
    assert threading.active_count() < before
    assert not any(t.name == "latency-proxy" for t in threading.enumerate())
    conn.close()
    with pytest.raises(RuntimeError):
        _ = proxy.url


@pytest.mark.slow
def test_boto3_through_the_proxy_to_moto_server(aws_env: None, tmp_path, moto_server) -> None:
    """S3 (REST, binary bodies, odd keys), Route53 (REST XML) and EC2 (query POST) round-trip."""
    import boto3

    with LatencyProxy(moto_server.url, latency_s=0.001) as proxy:
        session = boto3.session.Session()
        s3 = session.client("s3", region_name="us-east-1", endpoint_url=proxy.url)
        s3.create_bucket(Bucket="bench")
        s3.put_object(Bucket="bench", Key="dir/a key+plus ü.bin", Body=bytes(range(256)) * 40)
        assert s3.get_object(Bucket="bench", Key="dir/a key+plus ü.bin")["Body"].read() == bytes(range(256)) * 40
        assert s3.head_object(Bucket="bench", Key="dir/a key+plus ü.bin")["ContentLength"] == 10240
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="bench", Prefix="dir/")["Contents"]] == ["dir/a key+plus ü.bin"]
        s3.put_bucket_tagging(Bucket="bench", Tagging={"TagSet": [{"Key": "service", "Value": "web"}]})
        assert s3.get_bucket_tagging(Bucket="bench")["TagSet"] == [{"Key": "service", "Value": "web"}]

        route53 = session.client("route53", region_name="us-east-1", endpoint_url=proxy.url)
        zone = route53.create_hosted_zone(Name="example.com", CallerReference="r1")["HostedZone"]["Id"]
        route53.change_resource_record_sets(
            HostedZoneId=zone,
            ChangeBatch={"Changes": [{"Action": "CREATE", "ResourceRecordSet": {
                "Name": "www.example.com", "Type": "A", "TTL": 60, "ResourceRecords": [{"Value": "192.0.2.1"}]}}]},
        )
        types = {r["Type"] for r in route53.list_resource_record_sets(HostedZoneId=zone)["ResourceRecordSets"]}
        assert types == {"SOA", "NS", "A"}

        ec2 = session.client("ec2", region_name="eu-west-1", endpoint_url=proxy.url)
        vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16")["Vpc"]["VpcId"]
        assert vpc in [v["VpcId"] for v in ec2.describe_vpcs()["Vpcs"]]

        stats = proxy.stats()
        assert stats.upstream_errors == 0 and stats.failed == 0
        assert {"s3", "route53", "ec2"} <= set(stats.by_service)


@pytest.mark.slow
def test_injected_503s_are_retried_by_the_inventory_session(aws_env: None, moto_server) -> None:
    """The 503 the proxy answers is what botocore and AwsSession take for a throttled cloud."""
    from providers.aws.session import AwsSession, is_transient

    with LatencyProxy(moto_server.url, latency_s=0, fail_ratio=0.3, seed=1) as proxy:
        session = AwsSession(endpoint_url=proxy.url, max_backoff=0.01, max_attempts=10)
        for _ in range(20):
            assert session.call("sts", "us-east-1", "get_caller_identity")["Account"]
        assert session.retries == proxy.stats().failed > 0

        import boto3
        from botocore.config import Config

        always = LatencyProxy(moto_server.url, latency_s=0, fail_ratio=1.0).start()
        try:
            sts = boto3.client("sts", region_name="us-east-1", endpoint_url=always.url,
                               config=Config(retries={"total_max_attempts": 1}))
            with pytest.raises(Exception) as raised:
                sts.get_caller_identity()
            assert is_transient(raised.value)
        finally:
            always.stop()


def test_a_bandwidth_cap_passes_large_answers_through_whole(upstream: str) -> None:
    payload = bytes(range(256)) * 400  # 100 KiB: paced in several pieces, answered back in a larger echo
    with LatencyProxy(upstream, latency_s=0, bandwidth_bps=20 * 1024 * 1024) as proxy:
        status, headers, body = request(proxy.url, "PUT", "/bucket/big", body=payload)
        again = request(proxy.url, "GET", "/bucket/small")
    assert status == 201 and int(headers["Content-Length"]) == len(body)
    assert json.loads(body)["body"] == payload.decode("latin-1")
    assert again[0] == 200 and json.loads(again[2])["path"] == "/bucket/small"
    with pytest.raises(ValueError, match="bandwidth_bps"):
        LatencyProxy(upstream, bandwidth_bps=0)
