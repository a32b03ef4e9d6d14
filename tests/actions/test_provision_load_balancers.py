"""``provision-load-balancers`` against a target on libcloud's EC2 driver and a moto_server
process: the load-balancer node as the emulated cloud holds it (its cloud-init's HAProxy
configuration, checked by the real ``haproxy -c``), TLS from the profile, re-applies after a
crash, undo; and ``cutover-dns`` pointing the balancer's names at it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from targetkit import RUN_ID, compute_spec, context, live_instances, manifest, node, tags_of, user_data_of, write_config
from tlskit import pem_pair

from failover.actions.base import ACTIONS
from failover.actions.cutover_dns import Cutover, NewAddresses
from failover.actions.provision_load_balancers import ProvisionLoadBalancers, ProvisionLoadBalancersParams
from failover.actions.provision_nodes import ProvisionNodes, ProvisionNodesParams
from failover.checks.tls import TlsCertificates
from failover.cloudinit import cloud_config_parts
from failover.dnsnames import ZoneRename
from failover.errors import OperationFailed
from failover.haproxy import CONFIG_PATH
from failover.manifest import Certificate, DnsZone, HealthCheck, Listener, LoadBalancer, Record

DNS_NAME = "front-1.us-east-1.elb.amazonaws.com"
CERT_ARN = "arn:aws:acm:us-east-1:123456789012:certificate/abc"
LB_NAME = "social-app-lb-front"


def snapshot():
    lb = LoadBalancer(
        id="front", name="front", region="us-east-1", scheme="internet-facing", dns_name=DNS_NAME, type="classic",
        listeners=[Listener(protocol="HTTP", port=80, instance_protocol="HTTP", instance_port=8080),
                   Listener(protocol="HTTPS", port=443, instance_protocol="HTTP", instance_port=8080, certificate=CERT_ARN)],
        targets=["i-web1", "i-web2"],
        health_check=HealthCheck(protocol="HTTP", port=8080, path="/healthz", interval_s=10, timeout_s=5,
                                 healthy_threshold=2, unhealthy_threshold=3),
    )
    certificate = Certificate(id=CERT_ARN, name="shop", region="us-east-1", domains=["social.example"],
                              status="ISSUED", not_after=None)
    zone = DnsZone(id="Z1", name="social.example.", region="global", records=[
        Record(name="social.example.", type="A", ttl=None, values=[f"dualstack.{DNS_NAME}."]),
        Record(name="www.social.example.", type="CNAME", ttl=300, values=[DNS_NAME]),
    ])
    return manifest(node("web-1", "i-web1", tags={"role": "web"}), node("web-2", "i-web2", private_ip="10.20.1.11"),
                    lb, certificate, zone)


@pytest.fixture
def tls_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    pem = pem_pair("social.example")
    certificate, key = pem.split("-----END CERTIFICATE-----\n")
    (tmp_path / "social.crt").write_text(certificate + "-----END CERTIFICATE-----\n")
    monkeypatch.setenv("SOCIAL_TLS_KEY", key)
    return key


@pytest.fixture
def config(tmp_path: Path, target, tls_key):
    tls = {"social.example": {"certificate": "social.crt", "key": "${env:SOCIAL_TLS_KEY}"}}
    return write_config(tmp_path, {"compute": compute_spec(target), "tls": tls})


def nodes_outputs(config, manifest) -> dict[str, Any]:
    return ProvisionNodes().apply(context(config, manifest), ProvisionNodesParams())


def lb_context(config, manifest, outputs, **kwargs):
    return context(config, manifest, step_id="front-door", outputs={"nodes": outputs}, **kwargs)


def apply(ctx) -> dict[str, Any]:
    return ProvisionLoadBalancers().apply(ctx, ProvisionLoadBalancersParams())


def balancer_nodes(target) -> list[dict[str, Any]]:
    return [i for i in live_instances(target) if tags_of(i).get("Name") == LB_NAME]


def haproxy_config(target, instance_id: str) -> str:
    [config] = cloud_config_parts(user_data_of(target, instance_id))
    return next(item["content"] for item in config["write_files"] if item["path"] == CONFIG_PATH)


def test_registered_with_a_closed_schema() -> None:
    assert ACTIONS.get("provision-load-balancers") is ProvisionLoadBalancers
    with pytest.raises(ValueError):
        ProvisionLoadBalancersParams.model_validate({"selct": []})


def test_plan_names_the_balancer_node_its_listeners_and_how_https_gets_its_certificate(config, target) -> None:
    changes = ProvisionLoadBalancers().plan(context(config, snapshot()), ProvisionLoadBalancersParams())

    create = next(c for c in changes if c.kind == "load_balancer")
    assert (create.operation, create.name) == ("create", LB_NAME)
    assert "HAProxy" in create.detail and "HTTPS:443 -> port 8080 of i-web1, i-web2 (health: HTTP /healthz)" in create.detail
    [certificate] = [c for c in changes if c.kind == "certificate"]
    assert certificate.detail == "from the profile's tls: (social.example)"
    assert balancer_nodes(target) == []  # a plan creates nothing


def test_apply_builds_a_haproxy_node_in_front_of_the_new_nodes(config, target, tls_key, tmp_path) -> None:
    ns = nodes_outputs(config, snapshot())
    log: list[str] = []
    ctx = lb_context(config, snapshot(), ns, log=log)

    outputs = apply(ctx)

    [instance] = balancer_nodes(target)
    entry = outputs["load_balancers"]["front"]
    assert (entry["id"], entry["via"], entry["address"]) == (instance["InstanceId"], "node", instance.get("PublicIpAddress"))
    assert outputs["dns_names"] == {DNS_NAME: entry["address"]}
    assert tags_of(instance)["failover-run"] == RUN_ID
    text = haproxy_config(target, instance["InstanceId"])
    backends = sorted(ns["nodes"][name]["private_ip"] for name in ("web-1", "web-2"))
    assert [line.split()[2] for line in text.splitlines() if line.strip().startswith("server s")] == [
        f"{address}:8080" for address in backends] * 2
    assert "http-check send meth GET uri /healthz" in text
    # the real HAProxy accepts it (the certificate directory is the node's; here a local one)
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "social.example.pem").write_text(pem_pair("social.example"))
    local = text.replace("crt /etc/haproxy/certs/", f"crt {certs}/").replace("stats socket", "# stats socket")
    (tmp_path / "node.cfg").write_text(local)
    checked = subprocess.run([shutil.which("haproxy") or "haproxy", "-c", "-f", str(tmp_path / "node.cfg")],
                             capture_output=True, text=True, timeout=60)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # the key reached the node's user data only: never the outputs, the journal or a message
    key_line = tls_key.splitlines()[1]
    assert key_line in user_data_of(target, instance["InstanceId"])
    assert key_line not in repr(outputs) + repr(ctx.created) + "\n".join(log)


def test_reapply_and_a_crash_before_the_journal_adopt_the_node_and_undo_removes_it(config, target) -> None:
    ns = nodes_outputs(config, snapshot())
    apply(lb_context(config, snapshot(), ns))  # created; kill -9 before the journal heard of it

    resumed = lb_context(config, snapshot(), ns, created=[])
    outputs = apply(resumed)

    assert len(balancer_nodes(target)) == 1 and outputs["load_balancers"]["front"]["adopted"] is True
    # the node and its firewall (made before it), both found by their run label
    assert sorted((item["kind"], item["name"]) for item in resumed.created) == [("firewall", LB_NAME), ("node", LB_NAME)]
    ProvisionLoadBalancers().undo(resumed, ProvisionLoadBalancersParams())
    ProvisionLoadBalancers().undo(resumed, ProvisionLoadBalancersParams())  # idempotent
    assert balancer_nodes(target) == []
    assert len(live_instances(target)) == 2  # the web nodes are the nodes step's to undo


def test_without_the_nodes_step_it_fails_naming_it(config, target) -> None:
    with pytest.raises(OperationFailed, match="needs the provision-nodes step"):
        apply(context(config, snapshot(), step_id="front-door"))
    assert balancer_nodes(target) == []


def test_an_https_listener_without_a_certificate_way_is_refused_and_the_rest_goes_on(tmp_path, target) -> None:
    config = write_config(tmp_path, {"compute": compute_spec(target)})
    ns = nodes_outputs(config, snapshot())

    outputs = apply(lb_context(config, snapshot(), ns))

    entry = outputs["load_balancers"]["front"]
    assert [item["port"] for item in entry["listeners"]] == [80]
    [refused] = entry["refused"]
    assert refused.startswith("HTTPS:443: no way to a certificate")
    [instance] = balancer_nodes(target)
    assert "fe_443" not in haproxy_config(target, instance["InstanceId"])


def test_cutover_points_the_balancers_alias_and_cname_at_the_new_balancer() -> None:
    new = NewAddresses({"i-web1": "203.0.113.1"}, ["nodes"], planning=False,
                       balancers={"front": "203.0.113.50"})
    cutover = Cutover(snapshot(), new, ZoneRename(None)).zone(snapshot().of_kind("dns_zone")[0])

    rewrites = {key: rewrite.values for key, rewrite in cutover.rewrites.items()}
    assert rewrites[("social.example.", "A")] == ("203.0.113.50",)
    assert rewrites[("www.social.example.", "A")] == ("203.0.113.50",)
    assert rewrites[("www.social.example.", "CNAME")] == ()  # deleted first: a CNAME name holds nothing else
    by_host = NewAddresses({}, ["nodes"], planning=False, balancers={"front": "lb-7.fallback.example"})
    cutover = Cutover(snapshot(), by_host, ZoneRename(None)).zone(snapshot().of_kind("dns_zone")[0])
    assert cutover.rewrites[("www.social.example.", "CNAME")].values == ("lb-7.fallback.example.",)
    assert [u["reason"] for u in cutover.unmoved] == [
        "load balancer front: its counterpart lb-7.fallback.example is a host name, and the zone apex cannot be a CNAME"]


def test_the_tls_check_fails_for_an_https_listener_without_a_way_and_passes_with_one(tmp_path, target, tls_key) -> None:
    from failover.checks.base import CheckContext
    from failover.targets import Targets

    def run(profile: dict[str, Any]):
        config = write_config(tmp_path, {"compute": compute_spec(target), **profile})
        ctx = CheckContext(config=config, target_name="fallback", targets=Targets(config, "fallback"), store=None,
                           playbook="standard", manifest=snapshot())
        return TlsCertificates().run(ctx)

    missing = run({})
    profile = run({"tls": {"*.social.example": {"certificate": "social.crt", "key": "${env:SOCIAL_TLS_KEY}"},
                           "social.example": {"certificate": "social.crt", "key": "${env:SOCIAL_TLS_KEY}"}}})
    unset = run({"tls": {"social.example": {"certificate": "nowhere.crt", "key": "${env:NOT_SET_ANYWHERE}"}}})
    acme = run({"acme": {"email": "ops@social.example"}})

    assert missing.status == "fail" and "front HTTPS:443: no way to a certificate" in missing.detail
    assert profile.status == "pass" and "1 from the profile's tls:" in profile.detail
    assert unset.status == "fail" and "NOT_SET_ANYWHERE is not set" in unset.detail and "no file nowhere.crt" in unset.detail
    assert acme.status == "pass" and acme.data["listeners"][0]["domains"] == ["social.example", "www.social.example"]
    assert tls_key.splitlines()[1] not in repr([missing, profile, unset, acme])
