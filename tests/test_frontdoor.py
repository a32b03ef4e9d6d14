"""The front door: load balancers planned from the snapshot, rendered as HAProxy configurations
that the real ``haproxy -c`` accepts, and one run by the real HAProxy on 127.0.0.1 in front of
two local HTTP backends, one of them failing its health check."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import threading
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import yaml
from httpkit import Backend, free_port
from tlskit import pem_pair

from failover.config import TargetProfile
from failover.frontdoor import TLS_ACME, TLS_PROFILE, Server, backend_entries, node_entries, plan_balancer
from failover.haproxy import CONFIG_PATH, cloud_config, render
from failover.manifest import (
    Certificate,
    DnsZone,
    HealthCheck,
    Listener,
    LoadBalancer,
    Manifest,
    Record,
    SourceInfo,
    Stickiness,
    TargetGroup,
)

DNS_NAME = "front-1234.us-east-1.elb.amazonaws.com"
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"


def haproxy() -> str:
    found = shutil.which("haproxy")
    assert found, "haproxy is missing: run scripts/install-test-deps"
    return found


def manifest(*resources) -> Manifest:
    source = SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"])
    return Manifest(service="shop", taken_at="2024-01-15T10:30:00Z", source=source, resources=list(resources))


def classic(**fields) -> LoadBalancer:
    values = dict(
        id="front", name="front", region="us-east-1", scheme="internet-facing", dns_name=DNS_NAME, type="classic",
        listeners=[Listener(protocol="HTTP", port=80, instance_protocol="HTTP", instance_port=8080),
                   Listener(protocol="HTTPS", port=443, instance_protocol="HTTP", instance_port=8080, certificate=CERT_ARN)],
        targets=["i-1", "i-2"],
        health_check=HealthCheck(protocol="HTTP", port=8080, path="/healthz", interval_s=1, timeout_s=1,
                                 healthy_threshold=1, unhealthy_threshold=1),
        stickiness=Stickiness(type="lb_cookie", duration_s=600),
    )
    values.update(fields)
    return LoadBalancer(**values)


def zone(*records: Record) -> DnsZone:
    return DnsZone(id="Z1", name="shop.example.", region="global", records=list(records))


ALIAS = Record(name="shop.example.", type="A", ttl=None, values=[f"dualstack.{DNS_NAME}."])
WWW = Record(name="www.shop.example.", type="CNAME", ttl=300, values=[DNS_NAME])
CERT = Certificate(id=CERT_ARN, name="shop", region="us-east-1", domains=["shop.example", "www.shop.example"],
                   status="ISSUED", not_after=None)
PROFILE_TLS = TargetProfile.model_validate({"tls": {"shop.example": {"certificate": "c.pem", "key": "${env:KEY}"}}})


def check_config(tmp_path: Path, text: str) -> subprocess.CompletedProcess:
    path = tmp_path / "haproxy.cfg"
    path.write_text(text)
    return subprocess.run([haproxy(), "-c", "-f", str(path)], capture_output=True, text=True, timeout=60)


def certs_dir(tmp_path: Path, *names: str) -> Path:
    directory = tmp_path / "certs"
    directory.mkdir(exist_ok=True)
    for name in names:
        (directory / f"{name}.pem").write_text(pem_pair(name))
    return directory


ENTRIES = [{"source_id": "i-1", "private_ip": "10.0.1.5", "id": "n1"}, {"source_id": "i-2", "private_ip": "10.0.1.6", "id": "n2"},
           {"source_id": "i-9", "private_ip": "10.0.1.9", "id": "n9"}]


# -- planning ------------------------------------------------------------------------------------


def test_a_classic_balancer_is_planned_listener_by_listener_with_its_health_check_and_certificate_way() -> None:
    lb = classic()
    plan = plan_balancer(manifest(lb, CERT, zone(ALIAS, WWW)), lb, PROFILE_TLS, "shop-lb-front")

    http, https = plan.listeners
    assert (http.protocol, http.port, http.backend_port, http.mode, http.terminate_tls) == ("HTTP", 80, 8080, "http", False)
    assert (https.port, https.terminate_tls, https.tls, https.domains) == (443, True, TLS_PROFILE, ("shop.example",))
    assert http.health.path == "/healthz" and http.health.port == 8080 and http.sticky.duration_s == 600
    assert plan.dns_names == ("shop.example", "www.shop.example") and plan.refused == ()


def test_https_goes_by_acme_when_the_profile_has_no_certificate_and_names_point_at_the_balancer() -> None:
    lb = classic()
    acme = TargetProfile.model_validate({"acme": {"email": "ops@shop.example"}})

    by_acme = plan_balancer(manifest(lb, CERT, zone(ALIAS, WWW)), lb, acme, "x")
    nothing = plan_balancer(manifest(lb, CERT), lb, acme, "x")  # no DNS name points at it: ACME cannot validate
    neither = plan_balancer(manifest(lb, CERT, zone(ALIAS)), lb, TargetProfile(), "x")

    assert by_acme.listeners[1].tls == TLS_ACME and by_acme.acme_domains == ("shop.example", "www.shop.example")
    for plan in (nothing, neither):
        assert [lp.port for lp in plan.listeners] == [80]
        [refused] = plan.refused
        assert refused.startswith("HTTPS:443: no way to a certificate") and "shop.example" in refused


def test_an_alb_listener_forwards_to_its_target_group_port_and_nodes() -> None:
    web = TargetGroup(id="tg-web", name="web", protocol="HTTP", port=8080, targets=["i-1"],
                      health_check=HealthCheck(protocol="HTTP", path="/up"), stickiness=Stickiness(type="source_ip"))
    admin = TargetGroup(id="tg-admin", name="admin", protocol="HTTP", port=9000, targets=["i-2"])
    lb = LoadBalancer(id="arn:alb", name="alb", region="us-east-1", scheme="internet-facing", type="application",
                      listeners=[Listener(protocol="HTTP", port=80, target_group="tg-web"),
                                 Listener(protocol="HTTP", port=81, target_group="tg-admin"),
                                 Listener(protocol="UDP", port=53)],
                      target_groups=[web, admin], targets=["i-1", "i-2"])
    snapshot = manifest(lb)

    plan = plan_balancer(snapshot, lb, TargetProfile(), "x").with_servers(ENTRIES, snapshot)

    first, second = plan.listeners
    assert (first.backend_port, [s.address for s in first.servers], first.health.path) == (8080, ["10.0.1.5"], "/up")
    assert (second.backend_port, [s.address for s in second.servers], second.health.path) == (9000, ["10.0.1.6"], None)
    assert first.sticky.type == "source_ip"
    assert plan.refused == ("UDP:53: protocol is not one of HTTP, HTTPS, TCP, TLS, SSL (UDP cannot be carried)",)


def test_backends_are_the_new_nodes_of_its_targets_and_of_the_node_groups_that_name_it() -> None:
    lb = classic()
    outputs = {"nodes": {"nodes": {e["id"]: e for e in ENTRIES}},
               "groups": {"nodes": {"g1": {"source_id": "lt-1", "id": "g1", "private_ip": "10.0.2.7", "group": "asg-1"}}}}

    class Group:  # a node_group resource as the neighbouring kind will carry it
        id, kind, load_balancers = "asg-1", "node_group", ["front"]

    snapshot = manifest(lb)
    snapshot.resources.append(Group())  # type: ignore[arg-type]
    found = backend_entries(snapshot, lb, node_entries(outputs))

    assert sorted(e["private_ip"] for e in found) == ["10.0.1.5", "10.0.1.6", "10.0.2.7"]


# -- hostile values are data ---------------------------------------------------------------------


def test_names_paths_and_cookies_from_the_source_never_become_configuration(tmp_path: Path) -> None:
    lb = classic(
        name='front"\n    server evil 6.6.6.6:80\n#', id="front\nbind :1",
        health_check=HealthCheck(protocol="HTTP", path='/h" \n    server evil 6.6.6.6:80', port=8080),
        stickiness=Stickiness(type="app_cookie", cookie_name="SID\n    server evil 6.6.6.6:80"),
        listeners=[Listener(protocol="HTTP", port=80, instance_port=8080), Listener(protocol="HTTP", port=70000)],
    )
    snapshot = manifest(lb)
    plan = plan_balancer(snapshot, lb, TargetProfile(), "x").with_servers(
        [*ENTRIES, {"source_id": "i-1", "private_ip": "10.0.0.1:80 evil", "id": "bad"}], snapshot)
    text = render(plan, runtime=False, log="stdout format raw local0", bind="127.0.0.1")

    assert "6.6.6.6" not in text.replace("# ", "#").split("#")[0]
    for line in text.splitlines():
        assert "evil" not in line or line.lstrip().startswith("#"), line
    assert "server s1 10.0.1.5:8080 check" in text and "10.0.0.1:80" not in text
    assert "option httpchk" not in text  # the path was refused: a TCP connect check instead
    assert any("health-check path refused" in why for why in plan.refused)
    assert any("cookie name refused" in why for why in plan.refused)
    assert any(why.startswith("HTTP:70000: port out of range") for why in plan.refused)
    checked = check_config(tmp_path, text)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_configurations_pass_haproxy_check_with_tls_from_the_profile_and_by_acme(tmp_path: Path) -> None:
    lb = classic()
    snapshot = manifest(lb, CERT, zone(ALIAS, WWW))
    with_profile = plan_balancer(snapshot, lb, PROFILE_TLS, "x").with_servers(ENTRIES, snapshot)
    acme = TargetProfile.model_validate({"acme": {}})
    by_acme = plan_balancer(snapshot, lb.model_copy(update={"listeners": lb.listeners[1:]}), acme, "x")
    by_acme = by_acme.with_servers(ENTRIES, snapshot)
    certs = certs_dir(tmp_path, "shop.example")

    for plan in (with_profile, by_acme):
        text = render(plan, runtime=False, log="stdout format raw local0", certs_dir=str(certs))
        checked = check_config(tmp_path, text)
        assert checked.returncode == 0, checked.stdout + checked.stderr + text
    acme_text = render(by_acme, runtime=False, log="stdout", certs_dir=str(certs))
    assert "frontend fe_acme" in acme_text and "use_backend be_acme if acme_challenge" in acme_text


def test_the_node_cloud_config_installs_haproxy_its_configuration_certificates_and_acme() -> None:
    lb = classic()
    snapshot = manifest(lb, CERT, zone(ALIAS, WWW))
    plan = plan_balancer(snapshot, lb, TargetProfile.model_validate({"acme": {}}), "x").with_servers(ENTRIES, snapshot)

    config = cloud_config(plan, {"shop.example": "PEM"}, None, "https://acme.example/dir")

    files = {item["path"]: item for item in config["write_files"]}
    assert files[CONFIG_PATH]["content"] == render(plan)
    assert files["/etc/haproxy/certs/shop.example.pem"]["permissions"] == "0600"
    assert "--register-unsafely-without-email" in files["/usr/local/sbin/failover-acme"]["content"]
    assert "-d shop.example -d www.shop.example" in files["/usr/local/sbin/failover-acme"]["content"]
    assert set(config["packages"]) == {"haproxy", "certbot", "openssl"}
    assert ["/usr/local/sbin/failover-acme-deploy", "--placeholder", "shop.example"] in config["runcmd"]
    yaml.safe_dump(config)  # plain data, fit for #cloud-config


# -- the real HAProxy in front of two local backends ----------------------------------------------


@pytest.fixture
def backends() -> Iterator[tuple[Backend, Backend]]:
    healthy, failing = Backend("healthy", 200), Backend("failing", 503)
    yield healthy, failing
    healthy.stop()
    failing.stop()


def fetch(url: str, context: ssl.SSLContext | None = None) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5, context=context) as answer:  # noqa: S310 (a local URL)
            return answer.status, answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, ""


def test_haproxy_runs_the_rendered_configuration_and_skips_the_backend_failing_its_health_check(
    tmp_path: Path, backends: tuple[Backend, Backend]
) -> None:
    healthy, failing = backends
    http_port, https_port = free_port(), free_port()
    lb = classic(
        listeners=[Listener(protocol="HTTP", port=http_port, instance_port=8080),
                   Listener(protocol="HTTPS", port=https_port, instance_protocol="HTTP", instance_port=8080,
                            certificate=CERT_ARN)],
        stickiness=None,
        # each backend is checked on its own traffic port: the health check names none
        health_check=HealthCheck(protocol="HTTP", path="/healthz", interval_s=1, timeout_s=1,
                                 healthy_threshold=1, unhealthy_threshold=1),
    )
    snapshot = manifest(lb, CERT, zone(ALIAS))
    plan = plan_balancer(snapshot, lb, PROFILE_TLS, "x")
    servers = [{"source_id": "i-1", "private_ip": "127.0.0.1", "id": "a"}]
    plan = plan.with_servers(servers, snapshot)
    # two backends on one address, each on its own port
    plan = replace(plan, listeners=tuple(
        replace(lp, servers=(Server("i-1", "127.0.0.1", healthy.port), Server("i-2", "127.0.0.1", failing.port)))
        for lp in plan.listeners))
    certs = certs_dir(tmp_path, "shop.example")
    config = tmp_path / "haproxy.cfg"
    config.write_text(render(plan, runtime=False, log="stdout format raw local0", bind="127.0.0.1", certs_dir=str(certs)))
    process = subprocess.Popen([haproxy(), "-db", "-f", str(config)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE
    try:
        # wait (bounded, no timing asserted) until HAProxy answers and each frontend's backend has
        # taken the failing server out
        for url, context in ((f"http://127.0.0.1:{http_port}/", None), (f"https://127.0.0.1:{https_port}/", insecure)):
            answers: list[str] = []
            for _ in range(300):
                if process.poll() is not None:
                    break
                try:
                    answers.append(fetch(url, context)[1])
                except OSError:
                    threading.Event().wait(0.1)
                    continue
                if answers[-10:] == ["healthy"] * 10:
                    break
            assert process.poll() is None, process.stdout.read().decode() if process.stdout else ""
            assert answers[-10:] == ["healthy"] * 10, answers
        served_before = failing.served

        plain = [fetch(f"http://127.0.0.1:{http_port}/") for _ in range(10)]
        secure = [fetch(f"https://127.0.0.1:{https_port}/", insecure) for _ in range(10)]

        assert plain == [(200, "healthy")] * 10 and secure == [(200, "healthy")] * 10
        assert failing.served == served_before  # the backend failing its check got no request
        failing.health = 200  # it recovers: HAProxy puts it back
        seen = set()
        for _ in range(300):
            seen.add(fetch(f"http://127.0.0.1:{http_port}/")[1])
            if "failing" in seen:
                break
            threading.Event().wait(0.05)
        assert seen == {"healthy", "failing"}
    finally:
        process.terminate()
        process.wait(timeout=10)
