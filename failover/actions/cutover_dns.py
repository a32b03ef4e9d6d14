"""``cutover-dns``: point the service's names at the new nodes.

Which records move is read from the snapshot, where they still point at AWS:

- an A record whose address is a node's public IP or an Elastic IP attached to a node
  gets that node's new public IP (addresses of nodes that were not provisioned stay);
- a CNAME or alias to a load balancer points at its counterpart on the target, when a step
  this one needs built it (``provision-load-balancers``: an A set of its address, or a CNAME
  to its host name); otherwise it becomes an A set of the new public IPs of the load
  balancer's target nodes (below the apex the CNAME set is deleted first: a name with a
  CNAME can hold nothing else);
- whatever cannot move (an address no node of the snapshot has, a CNAME to an AWS host
  that is not a moved load balancer, an IPv6 address) is left as it is and reported in
  ``unmoved``.

Each set is written with the step's TTL, after its previous value was journaled; undo
puts every one back exactly. The new addresses come from the outputs of the steps this
one needs (a ``provision-nodes`` step's ``addresses`` and ``nodes``).

In a drill (and without a ``prefix`` of its own) the cutover happens in the copies under
the drill's prefix (``drill.example.com.``), which copy-dns-zones made: the real zones
are never written.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field, field_validator

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.dnsnames import (
    TargetZone,
    ZoneRename,
    alias_host,
    canonical_ip,
    check_prefix,
    fqdn,
    is_alias,
    read_zones,
    remember_before_change,
    replaced_sets,
    restore_replaced_sets,
    same_values,
    selected_zones,
    set_id,
    unique,
)
from failover.errors import Interrupted, NothingToDo, OperationFailed
from failover.ports import DnsTarget, RecordChange, RecordSet

CUTOVER_BATCH = 100  # record sets journaled, then written in one request where the target takes batches

# Hosts under these domains are AWS's: a record pointing there stops answering with the account.
AWS_DOMAINS = (
    "amazonaws.com.", "amazonaws.com.cn.", "cloudfront.net.", "awsglobalaccelerator.com.",
    "elasticbeanstalk.com.", "on.aws.", "awsapps.com.",
)


class CutoverDnsParams(Params):
    ttl: int = Field(ge=1, le=604800, description="TTL, in seconds, of every record set the cutover writes.")
    zones: list[str] | None = Field(
        None, min_length=1, description="Names of the snapshot's zones to cut over (default: every public zone)."
    )
    nodes_from: list[str] | None = Field(
        None, min_length=1,
        description="Ids of the steps whose outputs carry the new nodes' addresses (default: every step this "
        "one needs whose outputs have 'addresses' or 'nodes').",
    )
    prefix: str | None = Field(
        None,
        description="The zones were copied under this label (copy-dns-zones' prefix, for a drill): cut over there.",
    )

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, value: str | None) -> str | None:
        return check_prefix(value)


@dataclass(frozen=True)
class Rewrite:
    """A record set as the cutover wants it; no values: the set is deleted."""

    name: str
    type: str
    values: tuple[str, ...]

    @property
    def key(self) -> tuple[str, str]:
        return (self.name, self.type)

    def done(self, current: RecordSet | None, ttl: int) -> bool:
        if not self.values:
            return current is None
        return current is not None and current.ttl == ttl and same_values(self.type, current.values, self.values)


@dataclass
class ZoneCutover:
    source: str
    domain: str
    rewrites: dict[tuple[str, str], Rewrite] = field(default_factory=dict)
    unmoved: list[dict[str, Any]] = field(default_factory=list)

    def rewrite(self, name: str, type: str, values: list[str]) -> None:
        self.rewrites[(name, type)] = Rewrite(name, type, tuple(unique(values, type)))

    def leave(self, record: Any, values: list[str], reason: str) -> None:
        entry = {"zone": self.source, "name": record.name, "type": record.type.upper(), "values": values}
        self.unmoved.append({**entry, "reason": reason})


class NewAddresses:
    """The new public IP of each source node, from the outputs of the steps that provisioned them.

    While planning (nothing has run yet) a node without one gets a placeholder that names it."""

    def __init__(self, by_node_id: Mapping[str, str], steps: list[str], planning: bool,
                 balancers: Mapping[str, str] | None = None) -> None:
        self.by_node_id = dict(by_node_id)
        self.balancers = dict(balancers or {})  # source load balancer id -> its counterpart's address
        self.steps = steps
        self.placeholders = planning and not self.by_node_id

    @classmethod
    def from_outputs(cls, outputs: Mapping[str, Any], nodes_from: list[str] | None, *, planning: bool) -> NewAddresses:
        step_ids = nodes_from if nodes_from is not None else [i for i, out in outputs.items() if _has_addresses(out)]
        found: dict[str, str] = {}
        for step_id in step_ids:
            out = outputs.get(step_id)
            if not _has_addresses(out):
                if planning:
                    continue
                hint = " (has it run? it must be in needs)" if out is None else ""
                raise OperationFailed(
                    f"cutover-dns: nodes_from: step {step_id!r} has no node addresses in its outputs{hint}"
                )
            for node_id, address in _addresses(out).items():
                if found.setdefault(node_id, address) != address:
                    raise OperationFailed(f"cutover-dns: two steps give node {node_id} different new addresses")
        if not found and not planning:
            raise OperationFailed(
                "cutover-dns: no new node addresses: the step needs a provision-nodes step "
                "(list it in needs, or name it in nodes_from)"
            )
        return cls(found, step_ids, planning, _balancer_addresses(outputs))

    def of(self, node: Any) -> str | None:
        if self.placeholders:
            return f"<new address of {node.name}>"
        return self.by_node_id.get(node.id)

    def of_balancer(self, lb: Any) -> str | None:
        if self.placeholders and not self.balancers:
            return f"<new address of load balancer {lb.name}>"
        return self.balancers.get(lb.id)


def _balancer_addresses(outputs: Mapping[str, Any]) -> dict[str, str]:
    """Source load balancer id -> the new balancer's address, from provision-load-balancers outputs."""
    found: dict[str, str] = {}
    for out in outputs.values():
        balancers = out.get("load_balancers") if isinstance(out, Mapping) else None
        if isinstance(balancers, Mapping):
            for lb_id, entry in balancers.items():
                if isinstance(entry, Mapping) and entry.get("address"):
                    found[str(lb_id)] = str(entry["address"])
    return found


def _has_addresses(out: Any) -> bool:
    return isinstance(out, Mapping) and any(isinstance(out.get(key), Mapping) for key in ("addresses", "nodes"))


def _addresses(out: Mapping[str, Any]) -> dict[str, str]:
    """``addresses`` (source node id -> new IP), completed from ``nodes`` entries."""
    found = {str(k): str(v) for k, v in (out.get("addresses") or {}).items() if v}
    for entry in (out.get("nodes") or {}).values():
        if isinstance(entry, Mapping) and entry.get("source_id") and entry.get("public_ip"):
            found.setdefault(str(entry["source_id"]), str(entry["public_ip"]))
    return found


class Cutover:
    """The snapshot's old addresses and load balancers, and where each now goes."""

    def __init__(self, manifest: Any, new: NewAddresses, rename: ZoneRename) -> None:
        self.new = new
        self.rename = rename
        self.nodes = {node.id: node for node in manifest.of_kind("node")}
        owners = [(node.public_ip, node) for node in self.nodes.values()]
        addresses = [address for address in manifest.of_kind("address") if address.attached_to in self.nodes]
        owners += [(address.ip, self.nodes[address.attached_to]) for address in addresses]
        self.node_by_ip = {ip: node for address, node in owners if address and (ip := canonical_ip(address))}
        self.lb_by_host = {alias_host(lb.dns_name): lb for lb in manifest.of_kind("load_balancer") if lb.dns_name}

    def zone(self, zone: Any) -> ZoneCutover:
        apex = fqdn(zone.name)
        cutover = ZoneCutover(source=apex, domain=self.rename.zone(apex))
        for record in zone.records:
            type, name = record.type.upper(), self.rename.name(record.name, apex)
            if type in ("A", "AAAA") and not is_alias(record):
                self._addresses(cutover, record, name, type)
            elif type == "CNAME" or is_alias(record):
                self._host(cutover, record, name, apex)
        return cutover

    def _addresses(self, cutover: ZoneCutover, record: Any, name: str, type: str) -> None:
        after, left = [], {}
        for value in record.values:
            node = self.node_by_ip.get(canonical_ip(value))
            new = self.new.of(node) if node is not None else None
            after.append(new or value)  # an address that cannot move stays in the set
            if new is None:
                left.setdefault(self._why_unmoved(node), []).append(value)
        if len(after) > sum(map(len, left.values())):
            cutover.rewrite(name, type, after)
        for reason, values in left.items():
            cutover.leave(record, values, reason)

    def _why_unmoved(self, node: Any) -> str:
        if node is None:
            return "no node or Elastic IP of the snapshot has this address"
        steps = ", ".join(self.new.steps) or "none"
        return f"node {node.name} ({node.id}) has no new address (steps read: {steps})"

    def _host(self, cutover: ZoneCutover, record: Any, name: str, apex: str) -> None:
        if not record.values:
            return
        host = alias_host(record.values[0])
        lb = self.lb_by_host.get(host)
        values = list(record.values)
        if lb is not None:
            self._load_balancer(cutover, record, name, lb)
        elif host.endswith(AWS_DOMAINS):
            cutover.leave(record, values, f"points at {host}, an AWS host that is not a load balancer of the snapshot")
        elif is_alias(record) and fqdn(record.name) == apex:
            cutover.leave(record, values, "an alias at the zone apex to a host that is not a load balancer")

    def _load_balancer(self, cutover: ZoneCutover, record: Any, name: str, lb: Any) -> None:
        balancer = self.new.of_balancer(lb)
        if balancer is not None:
            self._to_balancer(cutover, record, name, lb, balancer)
            return
        targets = [self.nodes[node_id] for node_id in lb.targets if node_id in self.nodes]
        addresses = [address for address in map(self.new.of, targets) if address]
        values = list(record.values)
        if not addresses:
            cutover.leave(record, values, f"load balancer {lb.name}: none of its target nodes has a new address")
            return
        cutover.rewrite(name, "CNAME", [])
        cutover.rewrite(name, "A", addresses)
        if record.type.upper() == "AAAA":
            cutover.leave(record, values, f"IPv6 alias of load balancer {lb.name}: the new nodes have IPv4 addresses "
                                          "(the name answers A only)")


    def _to_balancer(self, cutover: ZoneCutover, record: Any, name: str, lb: Any, address: str) -> None:
        """The name points at the new load balancer: an A set of its address, or a CNAME to its
        host name (an apex alias to a host name cannot be a CNAME: left as it is, reported)."""
        values = list(record.values)
        if canonical_ip(address) is not None or address.startswith("<"):
            cutover.rewrite(name, "CNAME", [])
            cutover.rewrite(name, "A", [address])
            if record.type.upper() == "AAAA":
                cutover.leave(record, values, f"IPv6 alias of load balancer {lb.name}: its counterpart has an IPv4 "
                                              "address (the name answers A only)")
        elif fqdn(record.name) == cutover.source:
            cutover.leave(record, values, f"load balancer {lb.name}: its counterpart {address} is a host name, and "
                                          "the zone apex cannot be a CNAME")
        else:
            cutover.rewrite(name, "A", [])
            cutover.rewrite(name, "CNAME", [fqdn(address)])


@ACTIONS.register("cutover-dns")
class CutoverDns(Action):
    """Rewrite the records that pointed at the old nodes or load balancers to the new nodes'
    public addresses, with the step's TTL; report the records that cannot move."""

    summary = "Point DNS records (A, CNAMEs and aliases to load balancers) at the new nodes; report what cannot move."
    Params = CutoverDnsParams
    example = {"ttl": 60, "zones": ["example.com."]}

    def plan(self, ctx: ActionContext, params: CutoverDnsParams) -> list[Change]:
        cutovers = _cutovers(ctx, params, planning=True)
        changes: list[Change] = []
        for cutover, target in zip(cutovers, read_zones(ctx.targets.dns, [c.domain for c in cutovers]), strict=True):
            note = "" if target.zone is not None else " (the zone is not on the target yet)"
            for rewrite in _pending(cutover, target.sets, params.ttl):
                changes.append(_change(rewrite, target.sets.get(rewrite.key), params.ttl, note))
            for u in cutover.unmoved:
                changes.append(Change("none", "record", f"{u['name']} {u['type']}", f"left as it is: {u['reason']}"))
        return changes

    def apply(self, ctx: ActionContext, params: CutoverDnsParams) -> dict[str, Any]:
        dns: DnsTarget = ctx.targets.dns
        cutovers = _cutovers(ctx, params, planning=False)
        targets = read_zones(dns, [cutover.domain for cutover in cutovers])
        missing = [cutover.domain for cutover, target in zip(cutovers, targets, strict=True) if target.zone is None]
        if missing:
            names = ", ".join(missing)
            raise OperationFailed(f"cutover-dns: zones not on the target: {names}: copy them first (copy-dns-zones)")
        for cutover, target in zip(cutovers, targets, strict=True):
            _cut_over_zone(ctx, dns, cutover, target, params.ttl)
        return {
            "changed": [change for cutover in cutovers for change in _changed(ctx, cutover, params.ttl)],
            "unmoved": [entry for cutover in cutovers for entry in cutover.unmoved],
        }

    def undo(self, ctx: ActionContext, params: CutoverDnsParams) -> None:
        restored = restore_replaced_sets(ctx.targets.dns, replaced_sets(ctx.created))
        if restored:
            ctx.info(f"restored {len(restored)} record sets: {', '.join(restored)}")


def _cutovers(ctx: ActionContext, params: CutoverDnsParams, *, planning: bool) -> list[ZoneCutover]:
    if not ctx.manifest.of_kind("dns_zone"):
        raise NothingToDo("no DNS zones in the snapshot")
    if not ctx.manifest.of_kind("node") and not ctx.manifest.of_kind("load_balancer"):
        raise NothingToDo("no nodes or load balancers in the snapshot: no record points at anything that moves")
    new = NewAddresses.from_outputs(ctx.outputs, params.nodes_from, planning=planning)
    cutover = Cutover(ctx.manifest, new, ZoneRename(params.prefix or ctx.drill_prefix))
    return [cutover.zone(zone) for zone in selected_zones(ctx.manifest, params.zones)]


def _pending(cutover: ZoneCutover, current: Mapping[tuple[str, str], RecordSet], ttl: int) -> list[Rewrite]:
    """The rewrites not done yet, deletions first (a CNAME must go before its name gets an A set)."""
    pending = [r for r in cutover.rewrites.values() if not r.done(current.get(r.key), ttl)]
    return sorted(pending, key=lambda r: bool(r.values))


def _cut_over_zone(ctx: ActionContext, dns: DnsTarget, cutover: ZoneCutover, target: TargetZone, ttl: int) -> None:
    zone, current = target.zone, target.sets
    pending = _pending(cutover, current, ttl)
    set_records = getattr(dns, "set_records", None)
    if set_records is not None:  # a request per batch of sets, not per set
        for start in range(0, len(pending), CUTOVER_BATCH):
            if ctx.cancel.is_set():
                raise Interrupted(f"cutover-dns: cancelled while cutting over {zone.domain}")
            batch = pending[start:start + CUTOVER_BATCH]
            for rewrite in batch:  # journaled before the write: undo knows what each set was
                remember_before_change(ctx, zone, rewrite.name, rewrite.type, current.get(rewrite.key))
            set_records(zone, [RecordChange(r.name, r.type, ttl, tuple(r.values)) for r in batch])
            for rewrite in batch:
                ctx.info(f"{rewrite.name} {rewrite.type}: {', '.join(rewrite.values) or 'deleted'}")
        return
    for rewrite in pending:
        if ctx.cancel.is_set():
            raise Interrupted(f"cutover-dns: cancelled while cutting over {zone.domain}")
        remember_before_change(ctx, zone, rewrite.name, rewrite.type, current.get(rewrite.key))
        if rewrite.values:
            dns.set_record(zone, rewrite.name, rewrite.type, ttl, rewrite.values)
        else:
            dns.delete_record(zone, rewrite.name, rewrite.type)
        ctx.info(f"{rewrite.name} {rewrite.type}: {', '.join(rewrite.values) or 'deleted'}")


def _changed(ctx: ActionContext, cutover: ZoneCutover, ttl: int) -> list[dict[str, Any]]:
    """Every set this step changed, in this attempt or an earlier one (its journal says which)."""
    journaled = {item["id"]: item for item in replaced_sets(ctx.created)}
    changed = []
    for rewrite in cutover.rewrites.values():
        item = journaled.get(set_id(cutover.domain, rewrite.name, rewrite.type))
        if item is not None:
            before = (item["before"] or {}).get("values", [])
            where = {"zone": cutover.domain, "name": rewrite.name, "type": rewrite.type}
            changed.append({**where, "before": before, "after": list(rewrite.values), "ttl": ttl})
    return changed


def _change(rewrite: Rewrite, before: RecordSet | None, ttl: int, note: str) -> Change:
    label = f"{rewrite.name} {rewrite.type}"
    if not rewrite.values:
        return Change("delete", "record", label, f"{', '.join(before.values) if before else ''} -> (deleted){note}")
    after = f"{', '.join(rewrite.values)} (ttl {ttl})"
    if before is None:
        return Change("create", "record", label, f"{after}{note}")
    return Change("update", "record", label, f"{', '.join(before.values)} (ttl {before.ttl}) -> {after}{note}")
