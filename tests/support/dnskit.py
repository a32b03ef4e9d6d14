"""Helpers for the DNS action tests: a service snapshot with zones pointing at AWS, the
outputs a provision-nodes step gives, a config whose target DNS is a real PowerDNS, and
a view of that server through its API and over DNS (UDP, dnspython)."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import dns.resolver
import pytest
import yaml

from failover.actions.base import ActionContext
from failover.config import Config, load_config
from failover.manifest import Address, DnsZone, LoadBalancer, Manifest, Node, Record, SourceInfo
from failover.ports import RecordSet
from failover.targets import Targets
from failover.testing.emulators import PowerDns

KEY_VARIABLE = "FAILOVER_TEST_PDNS_KEY"
LB_HOST = "web-lb-123.us-east-1.elb.amazonaws.com"
OLD = {"web-1": "198.51.100.10", "web-2": "198.51.100.11", "web-2-eip": "198.51.100.20", "worker": "198.51.100.30"}
NEW = {"web-1": "192.0.2.11", "web-2": "192.0.2.12"}
DKIM = '"v=DKIM1; k=rsa; p=' + "A" * 230 + '" "' + "B" * 100 + '"'


# -- the snapshot ------------------------------------------------------------------------


def node(node_id: str, name: str, public_ip: str | None) -> Node:
    return Node(
        id=node_id, name=name, region="us-east-1", instance_type="t3.small", vcpus=2, memory_mib=2048,
        image_id="ami-1", image_name="ubuntu", architecture="x86_64", private_ip="10.0.0.1",
        public_ip=public_ip, user_data=None, state="running",
    )


def record(name: str, type: str, ttl: int | None, *values: str) -> Record:
    return Record(name=name, type=type, ttl=ttl, values=list(values))


def example_com() -> DnsZone:
    z = "example.com."
    return DnsZone(id="Z1", name=z, region="global", records=[
        record(z, "SOA", 900, "ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
        record(z, "NS", 172800, "ns-1.awsdns-01.org.", "ns-2.awsdns-02.co.uk."),
        record(z, "A", None, f"dualstack.{LB_HOST}."),  # apex alias to the load balancer
        record(z, "MX", 300, "10 mail.example.com.", "20 mx.backup.example.net."),
        record(z, "TXT", 300, '"v=spf1 include:_spf.example.net ~all"', '"google-site-verification=abc"'),
        record("www.example.com.", "CNAME", 300, LB_HOST.upper()),  # no trailing dot, upper case
        record("app.example.com.", "A", 60, OLD["web-1"], OLD["web-2"]),
        record("legacy.example.com.", "A", 300, OLD["web-2-eip"]),  # an Elastic IP of web-2
        record("worker.example.com.", "A", 300, OLD["worker"]),  # a node no step provisions
        record("mail.example.com.", "A", 300, "203.0.113.50"),  # nobody's address
        record("v6.example.com.", "AAAA", 300, "2001:DB8::10"),
        record("cdn.example.com.", "CNAME", 300, "d111111abcdef8.cloudfront.net."),
        record("docs.example.com.", "CNAME", 300, "example.github.io."),
        record("static.example.com.", "A", None, "s3-website-us-east-1.amazonaws.com."),  # alias to S3
        record("*.example.com.", "A", 300, OLD["web-1"]),
        record("dev.example.com.", "NS", 300, "ns1.dev-dns.example.net.", "ns2.dev-dns.example.net."),
        record("selector1._domainkey.example.com.", "TXT", 300, DKIM),
    ])


def example_org() -> DnsZone:
    z = "example.org."
    return DnsZone(id="Z2", name=z, region="global", records=[
        record(z, "SOA", 900, "ns-1.awsdns-01.org. awsdns-hostmaster.amazon.com. 1 7200 900 1209600 86400"),
        record(z, "NS", 172800, "ns-1.awsdns-01.org."),
        record(z, "A", 300, OLD["web-2"]),
        record(z, "TXT", 300, '"hello world"'),
    ])


def internal_zone() -> DnsZone:
    return DnsZone(id="Z3", name="internal.example.", region="global", private=True, records=[
        record("db.internal.example.", "A", 300, "10.0.0.5"),
    ])


def manifest(*zones: DnsZone) -> Manifest:
    return Manifest(
        service="svc", taken_at="2024-01-01T00:00:00Z",
        source=SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"]),
        resources=[
            node("i-web1", "web-1", OLD["web-1"]),
            node("i-web2", "web-2", OLD["web-2"]),
            node("i-worker", "worker", OLD["worker"]),
            Address(id="eipalloc-1", name="web-1-ip", region="us-east-1", ip=OLD["web-1"], attached_to="i-web1"),
            Address(id="eipalloc-2", name="web-2-extra", region="us-east-1", ip=OLD["web-2-eip"], attached_to="i-web2"),
            LoadBalancer(id="arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web-lb/123",
                         name="web-lb", region="us-east-1", scheme="internet-facing", dns_name=LB_HOST,
                         targets=["i-web1", "i-web2"]),
            *(zones or (example_com(), example_org(), internal_zone())),
        ],
    )


def provision_outputs(*names: str) -> dict[str, Any]:
    """What provision-nodes outputs for the nodes ``names`` (default: web-1 and web-2)."""
    names = names or ("web-1", "web-2")
    source_ids = {"web-1": "i-web1", "web-2": "i-web2"}
    entries = {
        name: {"id": f"new-{name}", "name": f"svc-{name}", "source_id": source_ids[name], "public_ip": NEW[name],
               "private_ip": "10.1.0.2", "size": "s-1vcpu-2gb", "image": "ubuntu-22-04-x64"}
        for name in names
    }
    return {"nodes": entries, "addresses": {e["source_id"]: e["public_ip"] for e in entries.values()}, **entries}


# -- the target ----------------------------------------------------------------------------


class CountingDns:
    """A DNS target that records every call (zones by their domain), and can fail after
    ``fail_after`` writes (a crash midway)."""

    WRITES = frozenset({"create_zone", "set_record", "delete_record", "delete_zone"})

    def __init__(self, inner: Any, fail_after: int | None = None) -> None:
        self.inner = inner
        self.fail_after = fail_after
        self.calls: list[tuple[Any, ...]] = []
        self._lock = threading.Lock()

    @property
    def writes(self) -> list[tuple[Any, ...]]:
        return [call for call in self.calls if call[0] in self.WRITES]

    def set_records(self, zone: Any, changes: Any) -> None:
        """The inner target's batch write, each change recorded as the single write it stands
        for; a crash after ``fail_after`` writes stores the changes before it (a crash between
        two batches: each batch is applied whole by the provider)."""
        done = []
        try:
            with self._lock:
                for change in changes:
                    if self.fail_after is not None and len(self.writes) >= self.fail_after:
                        raise RuntimeError("crash (test)")
                    self.calls.append(("set_record", zone.domain, change.name, change.type, change.ttl, change.values)
                                      if change.values else ("delete_record", zone.domain, change.name, change.type))
                    done.append(change)
        finally:
            if done:
                self.inner.set_records(zone, done)

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.inner, name)

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if name in self.WRITES and self.fail_after is not None and len(self.writes) >= self.fail_after:
                    raise RuntimeError("crash (test)")
                self.calls.append((name, *(getattr(a, "domain", a) for a in args)))
            return method(*args, **kwargs)

        return call


def write_config(directory: Path, pdns: PowerDns) -> Config:
    options = {**pdns.driver_options, "key": f"${{env:{KEY_VARIABLE}}}"}
    data = {
        "service": "svc",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}},
        "targets": {"fallback": {"dns": {"driver": "powerdns", "options": options}}},
    }
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


class DnsLab:
    """A PowerDNS server, the config that targets it, and ways to look at it."""

    def __init__(self, pdns: PowerDns, config: Config) -> None:
        self.pdns = pdns
        self.config = config
        self.targets = Targets(config, "fallback")
        self.resolver = dns.resolver.Resolver(configure=False)
        self.resolver.nameservers = ["127.0.0.1"]
        self.resolver.port = pdns.dns_port
        self.resolver.lifetime = 5

    @property
    def dns(self) -> Any:
        return self.targets.dns

    def context(self, snapshot: Manifest | None = None, *, outputs: dict[str, Any] | None = None,
                counting: CountingDns | None = None, created: list[dict[str, Any]] | None = None,
                run_id: str = "run-1", step_id: str = "dns") -> ActionContext:
        """A context over the target (through ``counting`` when given); ``created`` is the
        journal of an earlier attempt, for a resume."""
        return ActionContext(
            run_id=run_id, step_id=step_id, service="svc", config=self.config, target_name="fallback",
            manifest=snapshot or manifest(), targets=SimpleNamespace(dns=counting or self.dns),
            outputs=outputs or {}, created=list(created or []),
        )

    def counting(self, fail_after: int | None = None) -> CountingDns:
        return CountingDns(self.dns, fail_after)

    def zone_names(self) -> set[str]:
        return {zone.domain for zone in _all_zones(self.dns)}

    def sets(self, domain: str) -> dict[tuple[str, str], tuple[int | None, list[str]]]:
        """(name, type) -> (ttl, sorted values) of the zone's sets, but its SOA (whose serial every change bumps)."""
        zone = self.dns.find_zone(domain)
        assert zone is not None, f"zone {domain} is not on the target"
        sets = [rs for rs in self.dns.list_records(zone) if rs.type != "SOA"]
        return {(rs.name, rs.type): (rs.ttl, sorted(rs.values)) for rs in sets}

    def put(self, domain: str, *sets: RecordSet) -> None:
        """Create the zone (if needed) holding these sets: what the target had before the run."""
        zone = self.dns.find_zone(domain) or self.dns.create_zone(domain)
        for rs in sets:
            self.dns.set_record(zone, rs.name, rs.type, rs.ttl, rs.values)

    def answer(self, name: str, type: str = "A") -> tuple[int, list[str]] | None:
        """(ttl, sorted values) PowerDNS answers over UDP; None for no such name or data."""
        try:
            answer = self.resolver.resolve(name, type, raise_on_no_answer=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoNameservers):
            return None
        if answer.rrset is None:
            return None
        return answer.rrset.ttl, sorted(item.to_text() for item in answer.rrset)

    def wipe(self) -> None:
        for zone in _all_zones(self.dns):
            self.dns.delete_zone(zone)


def _all_zones(dns_target: Any) -> list[Any]:
    """Every zone on the server (the DnsTarget protocol only finds zones by name)."""
    return [dns_target.find_zone(zone.domain) for zone in dns_target.list_zones()]


@contextmanager
def dns_lab(directory: Path, pdns: PowerDns) -> Iterator[DnsLab]:
    """A test module's PowerDNS server (the ``powerdns`` fixture) in a config of its own; its
    API key reaches the config as ``${env:...}``."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(KEY_VARIABLE, pdns.api_key)
        yield DnsLab(pdns, write_config(directory, pdns))


# -- a vendor's recorded answers -------------------------------------------------------------


@contextmanager
def cloudflare_targets(directory: Path) -> Iterator[Targets]:
    """A target profile on libcloud's Cloudflare driver, answered by the responses libcloud's
    own tests recorded: zone example.com. (id 1234) with A, CNAME, MX, TXT and CAA records."""
    from failover.testing.libcloud_fixtures import ensure_libcloud_test_secrets, recorded_responses

    ensure_libcloud_test_secrets()
    from libcloud.dns.drivers.cloudflare import CloudFlareDNSDriver
    from libcloud.test.dns.test_cloudflare import CloudFlareMockHttp

    data = {
        "service": "svc",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}},
        "targets": {"cf": {"dns": {"driver": "cloudflare",
                                   "options": {"key": "user@example.com", "secret": "${env:FAILOVER_TEST_CF_KEY}"}}}},
    }
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(data))
    with recorded_responses(CloudFlareDNSDriver, CloudFlareMockHttp), pytest.MonkeyPatch.context() as patch:
        patch.setenv("FAILOVER_TEST_CF_KEY", "recorded")
        # The recordings are pages of 5: the driver must ask for pages of that size to read them all.
        patch.setattr(CloudFlareDNSDriver, "ZONES_PAGE_SIZE", 5)
        patch.setattr(CloudFlareDNSDriver, "RECORDS_PAGE_SIZE", 5)
        yield Targets(load_config(path), "cf")


def vendor_context(targets: Targets, snapshot: Manifest, outputs: dict[str, Any] | None = None) -> ActionContext:
    return ActionContext(run_id="run-1", step_id="dns", service="svc", config=targets.config, target_name=targets.name,
                         manifest=snapshot, targets=targets, outputs=outputs or {})
