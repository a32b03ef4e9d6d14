"""Endpoints rewritten: user data that names endpoints only the source has (its nodes' public
IPs and Elastic IPs, RDS endpoints, load balancers' DNS names, S3 bucket hostnames) gets each
replaced by its counterpart on the target, through one explicit substitution map that ``plan``
prints and the step's outputs record. An endpoint named in user data with no counterpart is
left as it is and listed as a warning.

Where each counterpart comes from, in order:

- a node's public IP or Elastic IP: the node's new address in the outputs of a step this one
  needs (another ``provision-nodes``: members of a scaling group included); else the service's
  DNS name whose A record holds it (``cutover-dns`` points that name at the new node);
- an RDS endpoint: the restored database's address (its node's private address, else its public
  one, or the DSN's host) in the outputs of a ``restore-databases`` step this one needs;
- a load balancer's DNS name: the new load balancer's address in the outputs of a step this one
  needs that built it; else the service's DNS name that CNAMEs or aliases it (the load balancer's
  own backends are created before any new load balancer exists; ``cutover-dns`` moves the name);
- an S3 bucket's hostname (virtual-hosted or path style, global or regional): the URL of the
  bucket's replica container, where the target storage gives one.

Everything substituted in is an IP address, a host name or a URL checked as such: no value read
from the source reaches user data except as the source wrote it there.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from failover.dnsnames import alias_host, canonical_ip, fqdn, is_alias

HOST = re.compile(r"(?=.{1,253}\.?$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")
URL = re.compile(r"https?://[A-Za-z0-9.-]+(?::\d{1,5})?(?:/[A-Za-z0-9._~%/-]*)?")


@dataclass(frozen=True)
class Endpoint:
    """A source-only endpoint and where its counterpart is (or would be) found."""

    text: str  # as it appears in user data
    kind: str  # address, database, load_balancer, bucket
    of: str  # the resource it belongs to: "web-1 (i-0abc)"
    new: str | None  # the counterpart; None when not known (yet)
    via: str  # how the counterpart is found, or why there is none
    pending: bool = False  # known only when the run gets there (a plan's view)


@dataclass
class SubstitutionMap:
    endpoints: list[Endpoint] = field(default_factory=list)

    def _pattern(self) -> re.Pattern[str] | None:
        texts = sorted({e.text for e in self.endpoints}, key=len, reverse=True)
        if not texts:
            return None
        # The scheme before an endpoint is matched too: a URL that replaces a host brings its own.
        return re.compile(r"(?<![A-Za-z0-9.-])((?:https?://)?)(" + "|".join(map(re.escape, texts))
                          + r")(?![A-Za-z0-9-]|\.[A-Za-z0-9])", re.IGNORECASE)

    def named_in(self, text: str | None) -> list[Endpoint]:
        """The endpoints ``text`` names, once each, in the map's order."""
        pattern = self._pattern()
        if not text or pattern is None:
            return []
        found = {match.group(2).lower() for match in pattern.finditer(text)}
        return [e for e in self.endpoints if e.text.lower() in found]

    def apply(self, text: str | None) -> str | None:
        """``text`` with every endpoint that has a counterpart replaced (one pass: a substituted
        value is never substituted again)."""
        pattern = self._pattern()
        if not text or pattern is None:
            return text
        new = {e.text.lower(): e.new for e in self.endpoints if e.new}

        def substitute(match: re.Match[str]) -> str:
            scheme, found = match.group(1), new.get(match.group(2).lower())
            if found is None:
                return match.group(0)
            return found if URL.fullmatch(found) else scheme + found

        return pattern.sub(substitute, text)


# -- building the map --------------------------------------------------------------------------


def build_map(
    manifest: Any, outputs: Mapping[str, Any], needs: Mapping[str, str], *, planning: bool, storage: Any = None,
) -> SubstitutionMap:
    """The substitution map of a step: from the snapshot, the outputs of the steps it needs (a
    plan has none yet: what they would give is said in ``via``) and ``needs`` (step id -> action)."""
    names = _dns_names(manifest)
    endpoints: list[Endpoint] = []
    endpoints += _addresses(manifest, outputs, names)
    endpoints += _databases(manifest, outputs, needs, planning)
    endpoints += _load_balancers(manifest, outputs, names)
    endpoints += _buckets(manifest, storage)
    return SubstitutionMap(endpoints)


def _label(resource: Any) -> str:
    return f"{resource.name} ({resource.id})" if resource.name != resource.id else resource.id


def _addresses(manifest: Any, outputs: Mapping[str, Any], names: _DnsNames) -> list[Endpoint]:
    nodes = {node.id: node for node in manifest.of_kind("node")}
    owners: dict[str, Any] = {}
    for node in nodes.values():
        if node.public_ip:
            owners.setdefault(node.public_ip, node)
    for address in manifest.of_kind("address"):
        owners.setdefault(address.ip, nodes.get(address.attached_to) or address)
    new = _new_node_addresses(outputs)
    out = []
    for ip, owner in sorted(owners.items()):
        if canonical_ip(ip) is None:
            continue
        if owner.id in new:
            out.append(Endpoint(ip, "address", _label(owner), new[owner.id], "its new node's address"))
        elif name := names.a_record(ip):
            out.append(Endpoint(ip, "address", _label(owner), name, f"DNS name {name} (cutover-dns points it at the "
                                "new node)"))
        else:
            why = ("its node is not built by a step this one needs, and no DNS name of the service points at it"
                   if owner.kind == "node" else "not attached to a node, and no DNS name of the service points at it")
            out.append(Endpoint(ip, "address", _label(owner), None, why))
    return out


def _new_node_addresses(outputs: Mapping[str, Any]) -> dict[str, str]:
    found: dict[str, str] = {}
    for out in outputs.values():
        if not isinstance(out, Mapping):
            continue
        for source_id, ip in (out.get("addresses") or {}).items():
            if isinstance(ip, str) and _is_ip(ip):
                found.setdefault(str(source_id), ip)
    return found


def _databases(manifest: Any, outputs: Mapping[str, Any], needs: Mapping[str, str], planning: bool) -> list[Endpoint]:
    restoring = [step for step, action in needs.items() if action == "restore-databases"]
    out = []
    for db in manifest.of_kind("database"):
        if db.endpoint is None or not db.endpoint.address or not HOST.fullmatch(db.endpoint.address):
            continue
        text, restored_as = db.endpoint.address, db.replica_of or db.id
        primary = manifest.find("database", restored_as) if db.replica_of else db
        label = primary.name if primary is not None else restored_as
        if not restoring:
            out.append(Endpoint(text, "database", _label(db), None,
                                "no restore-databases step among this step's needs"))
            continue
        if planning:
            via = f"the address of database {label} as restored by step {', '.join(restoring)}"
            out.append(Endpoint(text, "database", _label(db), None, via, pending=True))
            continue
        address = next((a for step in restoring if (a := _restored_address(outputs.get(step), label))), None)
        via = f"database {label} restored by step {', '.join(restoring)}"
        out.append(Endpoint(text, "database", _label(db), address,
                            via if address else f"{via}: no address in its outputs (refused, or restored elsewhere)"))
    return out


def _restored_address(out: Any, name: str) -> str | None:
    if not isinstance(out, Mapping):
        return None
    entry = (out.get("databases") or {}).get(name)
    if not isinstance(entry, Mapping):
        return None
    for key in ("private_ip", "public_ip", "host"):
        value = entry.get(key)
        if isinstance(value, str) and (_is_ip(value) or HOST.fullmatch(value)) and value != "localhost":
            return value
    return None


def _load_balancers(manifest: Any, outputs: Mapping[str, Any], names: _DnsNames) -> list[Endpoint]:
    built = _new_load_balancers(outputs)
    out = []
    for lb in manifest.of_kind("load_balancer"):
        if not lb.dns_name or not HOST.fullmatch(lb.dns_name):
            continue
        text = lb.dns_name.rstrip(".")
        if lb.id in built:
            out.append(Endpoint(text, "load_balancer", _label(lb), built[lb.id], "the new load balancer's address"))
        elif name := names.pointing_at(lb.dns_name):
            out.append(Endpoint(text, "load_balancer", _label(lb), name,
                                f"DNS name {name}, which points at it (cutover-dns moves it to the target)"))
        else:
            out.append(Endpoint(text, "load_balancer", _label(lb), None,
                                "no step this one needs built its counterpart, and no DNS name of the service "
                                "points at it"))
    return out


def _new_load_balancers(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Source load balancer id -> the new one's address, from the outputs of a step that built
    load balancers: ``load_balancers: {<source id>: {address | public_ip | dns_name} or address}``."""
    found: dict[str, str] = {}
    for out in outputs.values():
        balancers = out.get("load_balancers") if isinstance(out, Mapping) else None
        if not isinstance(balancers, Mapping):
            continue
        for source_id, entry in balancers.items():
            values = [entry] if isinstance(entry, str) else [
                entry.get(key) for key in ("address", "public_ip", "dns_name") if isinstance(entry, Mapping)]
            value = next((v for v in values if isinstance(v, str) and (_is_ip(v) or HOST.fullmatch(v))), None)
            if value:
                found.setdefault(str(source_id), value)
    return found


def _buckets(manifest: Any, storage: Any) -> list[Endpoint]:
    out = []
    container_url = getattr(storage, "container_url", None)
    for bucket in manifest.of_kind("bucket"):
        url = container_url(bucket.id) if callable(container_url) else None
        url = url.rstrip("/") if isinstance(url, str) and URL.fullmatch(url) else None
        via = "its replica container's URL" if url else "the target storage gives no URL for its replica container"
        for host in _bucket_hosts(bucket.id, bucket.region):
            out.append(Endpoint(host, "bucket", bucket.id, url, via))
    return out


def _bucket_hosts(bucket: str, region: str) -> list[str]:
    hosts = [f"{bucket}.s3.amazonaws.com", f"{bucket}.s3.{region}.amazonaws.com", f"{bucket}.s3-{region}.amazonaws.com",
             f"{bucket}.s3.dualstack.{region}.amazonaws.com",
             f"s3.amazonaws.com/{bucket}", f"s3.{region}.amazonaws.com/{bucket}"]
    return [host for host in hosts if HOST.fullmatch(host.split("/", 1)[0])]


# -- the service's DNS names -----------------------------------------------------------------


class _DnsNames:
    """What the snapshot's public zones say: which name holds an address, which names a host."""

    def __init__(self, zones: Iterable[Any]) -> None:
        self.by_ip: dict[str, str] = {}
        self.by_host: dict[str, str] = {}
        for zone in sorted(zones, key=lambda z: z.name):
            if zone.private:
                continue
            for record in sorted(zone.records, key=lambda r: (len(r.name), r.name)):
                name = fqdn(record.name).rstrip(".")
                if not HOST.fullmatch(name) or name.startswith("*"):
                    continue
                kind = record.type.upper()
                if kind in ("A", "AAAA") and not is_alias(record):
                    for value in record.values:
                        if (ip := canonical_ip(value)) is not None:
                            self.by_ip.setdefault(str(ip), name)
                elif kind == "CNAME" or is_alias(record):
                    for value in record.values[:1]:
                        self.by_host.setdefault(alias_host(value), name)

    def a_record(self, ip: str) -> str | None:
        found = canonical_ip(ip)
        return self.by_ip.get(str(found)) if found is not None else None

    def pointing_at(self, host: str) -> str | None:
        return self.by_host.get(alias_host(host))


def _dns_names(manifest: Any) -> _DnsNames:
    return _DnsNames(manifest.of_kind("dns_zone"))


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


# -- reporting ---------------------------------------------------------------------------------


@dataclass
class Rewritten:
    """What the rewrite did to a step's nodes: the substitutions made and the endpoints left."""

    substitutions: dict[str, dict[str, Any]] = field(default_factory=dict)  # endpoint -> {to, kind, of, via, nodes}
    unresolved: dict[str, dict[str, Any]] = field(default_factory=dict)  # endpoint -> {kind, of, why, nodes}

    def add(self, endpoint: Endpoint, node: str) -> None:
        if endpoint.new or endpoint.pending:
            entry = self.substitutions.setdefault(endpoint.text, {
                "to": endpoint.new, "kind": endpoint.kind, "of": endpoint.of, "via": endpoint.via, "nodes": []})
        else:
            entry = self.unresolved.setdefault(endpoint.text, {
                "kind": endpoint.kind, "of": endpoint.of, "why": endpoint.via, "nodes": []})
        entry["nodes"].append(node)

    def to_dict(self) -> dict[str, Any]:
        return {"substitutions": self.substitutions, "unresolved": self.unresolved}


def rewrite_all(mapping: SubstitutionMap, user_data: Sequence[tuple[str, str | None]]) -> tuple[list[str | None], Rewritten]:
    """Each (node name, user data) rewritten, and what was substituted or left, per endpoint."""
    report = Rewritten()
    out = []
    for name, text in user_data:
        for endpoint in mapping.named_in(text):
            report.add(endpoint, name)
        out.append(mapping.apply(text))
    return out, report
