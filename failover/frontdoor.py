"""The front door: what each ``load_balancer`` of the snapshot becomes on the target.

For every balancer this plans its listeners (protocol, port, the backend port and health
check, stickiness), resolves its backends (the new nodes that replace its targets), and says
how each HTTPS listener gets a certificate:

- ``profile``: the target profile's ``tls:`` has a certificate for one of the listener's
  domains (the source certificate's domains, or the names DNS points at the balancer);
- ``acme``: the profile has ``acme:`` and DNS names point at the balancer (cut over to the new
  one, they let the load-balancer node answer ACME's HTTP-01 challenge);
- none: the listener cannot be carried (refused, named; the ``tls-certificates`` check fails).

Everything read from the source is data: ports are checked integers, protocols come from a
closed list, addresses are parsed, a health-check path or cookie name passes a strict
charset or is refused (named in ``refused``); names reach the proxy configuration only in
comments, in the comment charset of :mod:`failover.cloudinit`.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from failover.config import TargetProfile
from failover.dnsnames import alias_host, fqdn, is_alias
from failover.manifest import HealthCheck, Listener, LoadBalancer, Manifest, Stickiness, TargetGroup

VIA_NODE = "node"
VIA_DRIVER = "driver"
TLS_PROFILE = "profile"
TLS_ACME = "acme"

# Source protocol -> (HAProxy mode, TLS terminated by the balancer).
PROTOCOLS: dict[str, tuple[str, bool]] = {
    "HTTP": ("http", False), "HTTPS": ("http", True), "TCP": ("tcp", False), "TLS": ("tcp", True),
    "SSL": ("tcp", True),
}
BACKEND_TLS = frozenset({"HTTPS", "TLS", "SSL"})
# A path HAProxy's configuration reads as one plain word: RFC 3986 characters without quotes,
# '#', '$', '\\' or spaces; '%' only as an escape.
HEALTH_PATH = re.compile(r"^/(?:[A-Za-z0-9._~!&()*+,;=:@/?-]|%[0-9A-Fa-f]{2})*$")
COOKIE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
HOST_NAME = re.compile(r"^(?:\*\.)?(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{1,63}$")
MAX_HEALTH_PATH = 256


@dataclass(frozen=True)
class Server:
    """One backend: the new node that replaced ``source_id``, at its private address."""

    source_id: str
    address: str
    port: int


@dataclass(frozen=True)
class Health:
    """A checked health check: HTTP with a path, or a TCP connect (``path`` None)."""

    path: str | None
    port: int | None  # None: the server's traffic port
    interval_s: int = 30
    timeout_s: int = 5
    rise: int = 3
    fall: int = 3


@dataclass(frozen=True)
class Sticky:
    type: str  # "lb_cookie", "app_cookie" or "source_ip"
    duration_s: int | None = None
    cookie_name: str | None = None


@dataclass(frozen=True)
class ListenerPlan:
    protocol: str
    port: int
    mode: str  # "http" or "tcp"
    terminate_tls: bool
    backend_port: int
    backend_tls: bool
    backend_ids: tuple[str, ...]  # source node ids behind it (before nodes exist)
    group: str | None  # the target group's id (ALB/NLB)
    health: Health | None
    sticky: Sticky | None
    tls: str | None = None  # TLS_PROFILE, TLS_ACME, or None (no TLS, or no way: refused)
    domains: tuple[str, ...] = ()  # the names the certificate must cover
    servers: tuple[Server, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.protocol}:{self.port}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "protocol": self.protocol, "port": self.port, "backend_port": self.backend_port,
            "tls": self.tls, "domains": list(self.domains),
            "health_check": (f"HTTP {self.health.path}" if self.health.path else "TCP connect") if self.health else None,
            "backends": [{"source_id": s.source_id, "address": s.address, "port": s.port} for s in self.servers],
        }


@dataclass(frozen=True)
class BalancerPlan:
    lb: LoadBalancer
    name: str  # on the target
    via: str
    listeners: tuple[ListenerPlan, ...]
    refused: tuple[str, ...] = ()  # what could not be carried, each "<listener>: <why>"
    dns_names: tuple[str, ...] = ()  # names that pointed at the source balancer (alias, CNAME)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def acme_domains(self) -> tuple[str, ...]:
        return tuple(sorted({d for lp in self.listeners if lp.tls == TLS_ACME for d in lp.domains}))

    @property
    def profile_domains(self) -> tuple[str, ...]:
        return tuple(sorted({d for lp in self.listeners if lp.tls == TLS_PROFILE for d in lp.domains}))

    def with_servers(self, entries: Iterable[Mapping[str, Any]], manifest: Manifest) -> BalancerPlan:
        """The plan with each listener's backends: the new nodes of ``entries`` (provision-nodes
        outputs) that replace its targets; entries without a usable private address are left out."""
        entries = list(entries)
        listeners = []
        for lp in self.listeners:
            group = next((g for g in self.lb.target_groups if g.id == lp.group), None)
            servers = [
                Server(str(entry["source_id"]), address, lp.backend_port)
                for entry in backend_entries(manifest, self.lb, entries, group)
                if (address := _private_address(entry.get("private_ip"))) is not None
            ]
            listeners.append(replace(lp, servers=tuple(sorted(set(servers), key=lambda s: (s.address, s.source_id)))))
        return replace(self, listeners=tuple(listeners))


# -- backends: the contract with provision-nodes (and node groups) ---------------------------


def node_entries(outputs: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Every new node in the outputs of the steps a step needs: the ``nodes`` entries of each
    (``{source_id, private_ip, public_ip, ..., group?}``), as provision-nodes writes them."""
    found: dict[str, Mapping[str, Any]] = {}
    for out in outputs.values():
        nodes = out.get("nodes") if isinstance(out, Mapping) else None
        if isinstance(nodes, Mapping):
            for entry in nodes.values():
                if isinstance(entry, Mapping) and entry.get("source_id"):
                    found.setdefault(f"{entry['source_id']}/{entry.get('id')}", entry)
    return list(found.values())


def backend_entries(
    manifest: Manifest, lb: LoadBalancer, entries: Iterable[Mapping[str, Any]], group: TargetGroup | None = None
) -> list[Mapping[str, Any]]:
    """The new nodes behind ``lb`` (or one of its target groups): (1) those replacing the source
    instances it targets, (2) those built for every ``node_group`` whose ``load_balancers``
    lists it (their entries carry ``group: <node_group id>``)."""
    wanted = set(group.targets if group is not None and group.targets else lb.targets)
    groups = {g.id for g in manifest.of_kind("node_group") if lb.id in (getattr(g, "load_balancers", None) or [])}
    return [e for e in entries if str(e.get("source_id")) in wanted or (e.get("group") and e.get("group") in groups)]


def _private_address(value: Any) -> str | None:
    try:
        address = ipaddress.ip_address(str(value))
    except ValueError:
        return None
    return str(address) if address.version == 4 else None


# -- planning ----------------------------------------------------------------------------------


def names_pointing_at(manifest: Manifest, lb: LoadBalancer) -> list[str]:
    """The names whose alias or CNAME pointed at ``lb`` in the snapshot's zones (no trailing dot)."""
    if not lb.dns_name:
        return []
    host = alias_host(lb.dns_name)
    names = set()
    for zone in manifest.of_kind("dns_zone"):
        for record in zone.records:
            pointing = record.type.upper() == "CNAME" or is_alias(record)
            if pointing and record.values and alias_host(record.values[0]) == host:
                names.add(fqdn(record.name).rstrip("."))
    return sorted(name for name in names if HOST_NAME.fullmatch(name))


def certificate_domains(manifest: Manifest, certificate_id: str | None) -> list[str]:
    if not certificate_id:
        return []
    certificate = manifest.find("certificate", certificate_id)
    domains = certificate.domains if certificate is not None else []
    return sorted({d.lower().rstrip(".") for d in domains if HOST_NAME.fullmatch(d.lower().rstrip("."))})


def profile_certificate(profile: TargetProfile, domain: str) -> str | None:
    """The ``tls:`` key covering ``domain`` (exactly, or a wildcard one label deep)."""
    if domain in profile.tls:
        return domain
    parent = domain.split(".", 1)[1] if "." in domain else ""
    wildcard = f"*.{parent}"
    return wildcard if parent and wildcard in profile.tls else None


def tls_way(profile: TargetProfile, domains: Sequence[str], dns_names: Sequence[str]) -> tuple[str | None, tuple[str, ...]]:
    """How an HTTPS listener gets its certificate, and for which names."""
    covered = [d for d in dict.fromkeys([*domains, *dns_names]) if profile_certificate(profile, d)]
    if covered:
        return TLS_PROFILE, tuple(covered)
    if profile.acme is not None and dns_names:
        return TLS_ACME, tuple(d for d in dns_names if not d.startswith("*."))
    return None, ()


def plan_balancer(manifest: Manifest, lb: LoadBalancer, profile: TargetProfile, name: str) -> BalancerPlan:
    """What ``lb`` becomes on the target (before its backends exist: see ``with_servers``)."""
    dns_names = names_pointing_at(manifest, lb)
    refused: list[str] = []
    listeners: list[ListenerPlan] = []
    for listener in lb.listeners:
        label = f"{listener.protocol or '?'}:{listener.port if listener.port is not None else '?'}"
        planned, why = _listener(manifest, lb, listener, profile, dns_names)
        if planned is None:
            refused.append(f"{label}: {why}")
            continue
        if why:
            refused.append(f"{label}: {why}")
        listeners.append(planned)
    has_tls = any(lp.terminate_tls for lp in listeners)
    via = VIA_DRIVER if profile.loadbalancer is not None and not has_tls else VIA_NODE
    notes = ()
    if profile.loadbalancer is not None and has_tls:
        notes = ("an HTTPS listener: built as a load-balancer node (libcloud's balancer API carries no certificates)",)
    return BalancerPlan(lb=lb, name=name, via=via, listeners=tuple(listeners), refused=tuple(refused),
                        dns_names=tuple(dns_names), notes=notes)


def _port(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535 else None


def _listener(
    manifest: Manifest, lb: LoadBalancer, listener: Listener, profile: TargetProfile, dns_names: Sequence[str]
) -> tuple[ListenerPlan | None, str | None]:
    protocol = (listener.protocol or "").upper()
    if protocol not in PROTOCOLS:
        return None, "protocol is not one of HTTP, HTTPS, TCP, TLS, SSL (UDP cannot be carried)"
    port = _port(listener.port)
    if port is None:
        return None, "port out of range 1-65535"
    mode, terminate = PROTOCOLS[protocol]
    group = next((g for g in lb.target_groups if g.id == listener.target_group), None)
    if group is None and lb.target_groups and not listener.target_group:
        group = lb.target_groups[0]
    backend_protocol = (listener.instance_protocol or (group.protocol if group else None) or protocol).upper()
    backend_port = _port(listener.instance_port) or _port(group.port if group else None) or port
    if lb.type == "classic" or lb.health_check is not None:
        check, sticky_source = lb.health_check, lb.stickiness
    else:
        check, sticky_source = (group.health_check, group.stickiness) if group else (None, None)
    notes = []
    health, why = _health(check, mode)
    if why:
        notes.append(why)
    sticky, why = _sticky(sticky_source, mode)
    if why:
        notes.append(why)
    plan = ListenerPlan(
        protocol=protocol, port=port, mode=mode, terminate_tls=terminate, backend_port=backend_port,
        backend_tls=backend_protocol in BACKEND_TLS, group=group.id if group else None,
        backend_ids=tuple(sorted(group.targets if group and group.targets else lb.targets)),
        health=health, sticky=sticky,
    )
    if terminate:
        way, domains = tls_way(profile, certificate_domains(manifest, listener.certificate), dns_names)
        if way is None:
            names = ", ".join([*certificate_domains(manifest, listener.certificate), *dns_names]) or "none known"
            return None, (f"no way to a certificate (domains: {names}): add the profile's tls: for one, "
                          "or acme: with DNS names pointing at the balancer")
        plan = replace(plan, tls=way, domains=domains)
    return plan, "; ".join(notes) or None


def _health(check: HealthCheck | None, mode: str) -> tuple[Health | None, str | None]:
    if check is None:
        return Health(path=None, port=None), None
    interval = check.interval_s if isinstance(check.interval_s, int) and 1 <= check.interval_s <= 3600 else 30
    timeout = check.timeout_s if isinstance(check.timeout_s, int) and 1 <= check.timeout_s <= 3600 else 5
    rise = check.healthy_threshold if isinstance(check.healthy_threshold, int) and 1 <= check.healthy_threshold <= 100 else 3
    fall = check.unhealthy_threshold if isinstance(check.unhealthy_threshold, int) and 1 <= check.unhealthy_threshold <= 100 else 3
    port = _port(check.port) if check.port is not None else None
    base = Health(path=None, port=port, interval_s=interval, timeout_s=timeout, rise=rise, fall=fall)
    protocol = (check.protocol or "").upper()
    if protocol not in ("HTTP", "HTTPS") or mode != "http":
        return base, None
    path = check.path or "/"
    if len(path) > MAX_HEALTH_PATH or not HEALTH_PATH.fullmatch(path):
        return base, "health-check path refused (not a plain URL path): checked by TCP connect instead"
    return replace(base, path=path), None


def _sticky(stickiness: Stickiness | None, mode: str) -> tuple[Sticky | None, str | None]:
    if stickiness is None:
        return None, None
    kind = stickiness.type.lower()
    duration = stickiness.duration_s if isinstance(stickiness.duration_s, int) and 1 <= stickiness.duration_s <= 7 * 86400 else None
    if kind == "source_ip":
        return Sticky("source_ip"), None
    if mode != "http":
        return None, None  # cookies are HTTP's: AWS applies them to HTTP listeners only, too
    if kind == "lb_cookie":
        return Sticky("lb_cookie", duration_s=duration), None
    if kind == "app_cookie":
        if stickiness.cookie_name and COOKIE_NAME.fullmatch(stickiness.cookie_name):
            return Sticky("app_cookie", cookie_name=stickiness.cookie_name), None
        return None, "stickiness cookie name refused (not a plain token): left out"
    return None, "stickiness of an unknown type: left out"


def plan_balancers(manifest: Manifest, profile: TargetProfile, names: Mapping[str, str]) -> list[BalancerPlan]:
    return [plan_balancer(manifest, lb, profile, names[lb.id]) for lb in manifest.of_kind("load_balancer")]


def https_listeners_without_certificate(manifest: Manifest, profile: TargetProfile) -> list[str]:
    """Each HTTPS/TLS listener of the snapshot that has no way to a certificate, described."""
    out = []
    for lb in manifest.of_kind("load_balancer"):
        plan = plan_balancer(manifest, lb, profile, lb.name)
        out += [f"{lb.name}: {why}" for why in plan.refused if "no way to a certificate" in why]
    return out
