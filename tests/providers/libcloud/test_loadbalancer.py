"""The ``loadbalancer`` capability over a real libcloud balancer driver (Brightbox's) against the
recorded responses libcloud ships: provision-load-balancers through it for a balancer without
HTTPS listeners, journaled, undone; with an HTTPS listener a node is planned instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from targetkit import context, manifest, node, write_config

from failover.actions.provision_load_balancers import ProvisionLoadBalancers, ProvisionLoadBalancersParams
from failover.manifest import DnsZone, Listener, LoadBalancer, Record
from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses

ensure_libcloud_test_secrets()

from libcloud.loadbalancer.drivers.brightbox import BrightboxLBDriver  # noqa: E402
from libcloud.test.loadbalancer.test_brightbox import BrightboxLBMockHttp  # noqa: E402

from providers.libcloud.drivers import forget_adapters  # noqa: E402


@pytest.fixture
def recorded():
    forget_adapters()
    BrightboxLBMockHttp.type = None
    with recorded_responses(BrightboxLBDriver, BrightboxLBMockHttp):
        BrightboxLBDriver.connectionCls.token = "test"
        yield
    forget_adapters()


def snapshot(*listeners: Listener):
    lb = LoadBalancer(id="front", name="front", region="us-east-1", scheme="internet-facing", type="classic",
                      dns_name="front-1.us-east-1.elb.amazonaws.com", listeners=list(listeners), targets=["i-web1"])
    return manifest(node("web-1", "i-web1"), lb)


@pytest.fixture
def config(tmp_path: Path):
    return write_config(tmp_path, {"loadbalancer": {"driver": "brightbox", "options": {"key": "user", "secret": "key"}}})


OUTPUTS = {"nodes": {"nodes": {"web-1": {"source_id": "i-web1", "id": "n1", "private_ip": "10.0.0.5"}}}}


def test_a_balancer_without_https_goes_through_the_driver_journaled_and_undone(recorded, config) -> None:
    manifest = snapshot(Listener(protocol="HTTP", port=80, instance_port=8080))
    ctx = context(config, manifest, step_id="front-door", outputs=OUTPUTS)

    changes = ProvisionLoadBalancers().plan(ctx, ProvisionLoadBalancersParams())
    outputs = ProvisionLoadBalancers().apply(ctx, ProvisionLoadBalancersParams())

    assert [(c.operation, c.name) for c in changes] == [("create", "social-app-lb-front-80")]
    assert "through the loadbalancer driver: HTTP:80 -> port 8080 of i-web1" in changes[0].detail
    entry = outputs["load_balancers"]["front"]
    assert (entry["via"], entry["id"]) == ("driver", "lba-o466u")  # the recorded answer's balancer
    assert ctx.created == [{"kind": "load_balancer", "id": "lba-o466u", "name": "social-app-lb-front-80",
                            "source_id": "front"}]
    # undo destroys what the journal holds (here the recorded account's balancer, standing in)
    undo = context(config, manifest, step_id="front-door",
                   created=[{"kind": "load_balancer", "id": "lba-1235f", "name": "social-app-lb-front-80"}])
    log: list[str] = []
    undo.log = log.append
    ProvisionLoadBalancers().undo(undo, ProvisionLoadBalancersParams())
    assert log == ["destroyed load balancer social-app-lb-front-80 (lba-1235f)"]


def test_an_https_listener_makes_it_a_node_even_with_a_driver(recorded, config) -> None:
    from failover.config import TargetProfile
    from failover.frontdoor import VIA_NODE, plan_balancer

    manifest = snapshot(Listener(protocol="HTTPS", port=443, instance_port=8080))
    www = Record(name="www.shop.example.", type="CNAME", ttl=60, values=["front-1.us-east-1.elb.amazonaws.com"])
    manifest.resources.append(DnsZone(id="Z1", name="shop.example.", region="global", records=[www]))
    profile = TargetProfile.model_validate({**config.targets["fallback"].model_dump(), "acme": {}})

    plan = plan_balancer(manifest, manifest.of_kind("load_balancer")[0], profile, "x")

    assert plan.via == VIA_NODE and "libcloud's balancer API carries no certificates" in plan.notes[0]
