"""The provider-neutral manifest: the resource kinds of DESIGN.md and their fields.

A manifest is written in one canonical order (resources by kind, region, id; tags and
set-like lists sorted) so that two snapshots of the same account diff cleanly and are
byte-identical apart from ``taken_at``.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, ValidationError, model_serializer

from failover.clock import now_iso as now_iso  # re-exported: manifests are stamped with it
from failover.errors import InputError, ManifestError, Problem
from failover.files import read_input

SCHEMA_VERSION = 2
MAX_MANIFEST_BYTES = 256 * 1024 * 1024  # a manifest file given to diff: a regular file up to this


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResourceBase(_Model):
    id: str
    name: str
    region: str
    tags: dict[str, str] = Field(default_factory=dict)
    # False for a dependency: not tagged for the service but referenced by its resources (the
    # default VPC's shared security group, say). Recreated on the target under the service's
    # names like the rest; never renamed or deleted at the source.
    owned: bool = True

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """``owned`` is written only when false, ``replica_of`` only when set: a service's own
        resources read as they did in schema version 1."""
        data = handler(self)
        if data.get("owned") is True:
            del data["owned"]
        if "replica_of" in data and data["replica_of"] is None:
            del data["replica_of"]
        if "group" in data and data["group"] is None:
            del data["group"]
        return data


class Node(ResourceBase):
    kind: Literal["node"] = "node"
    instance_type: str
    vcpus: int | None
    memory_mib: int | None
    image_id: str | None
    image_name: str | None
    image_description: str | None = None
    architecture: str | None
    private_ip: str | None
    public_ip: str | None
    firewalls: list[str] = Field(default_factory=list)
    volumes: list[str] = Field(default_factory=list)
    root_volume_gib: int | None = None
    user_data: str | None
    state: str
    zone: str | None = None
    # A member of a scaling group: the id of its ``node_group``. provision-nodes builds the group's
    # ``desired`` nodes from its launch specification instead of copying its members.
    group: str | None = None


class Volume(ResourceBase):
    kind: Literal["volume"] = "volume"
    size_gib: int
    volume_type: str | None
    attached_to: str | None
    device: str | None
    zone: str | None = None


class PrefixList(_Model):
    """A managed prefix list a rule allowed, resolved into its CIDRs (in the rule's ``sources``) at inventory."""

    id: str
    name: str | None = None
    cidrs: list[str] = Field(default_factory=list)


class FirewallRule(_Model):
    direction: Literal["ingress", "egress"]
    protocol: str
    port_from: int | None
    port_to: int | None
    sources: list[str]
    prefix_lists: list[PrefixList] = Field(default_factory=list)  # written only when the rule names one

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if not data.get("prefix_lists"):
            data.pop("prefix_lists", None)
        return data


class Firewall(ResourceBase):
    kind: Literal["firewall"] = "firewall"
    description: str | None = None
    network: str | None = None
    rules: list[FirewallRule] = Field(default_factory=list)


class Subnet(_Model):
    id: str
    cidr: str
    zone: str | None


class Network(ResourceBase):
    kind: Literal["network"] = "network"
    cidr: str
    subnets: list[Subnet] = Field(default_factory=list)


class Address(ResourceBase):
    kind: Literal["address"] = "address"
    ip: str
    attached_to: str | None


class Bucket(ResourceBase):
    kind: Literal["bucket"] = "bucket"
    objects: int
    bytes: int
    versioning: bool


class Record(_Model):
    name: str
    type: str
    ttl: int | None
    values: list[str]


class DnsZone(ResourceBase):
    kind: Literal["dns_zone"] = "dns_zone"
    private: bool = False
    records: list[Record] = Field(default_factory=list)


class Endpoint(_Model):
    address: str | None
    port: int | None


class Database(ResourceBase):
    kind: Literal["database"] = "database"
    engine: str
    engine_version: str | None
    instance_class: str | None
    storage_gib: int | None
    endpoint: Endpoint | None
    replica_of: str | None = None  # a read replica: the id of the database it replicates


def _without_defaults(data: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``data`` without those of ``fields`` that hold nothing (None or empty): fields added after
    schema version 2 are written only when set, so older snapshots read byte for byte as before."""
    for name in fields:
        if name in data and data[name] in (None, [], {}):
            del data[name]
    return data


class Listener(_Model):
    protocol: str | None
    port: int | None
    # Added without a schema bump, written only when set:
    certificate: str | None = None  # the certificate's id (an ACM ARN) of an HTTPS/TLS listener
    target_group: str | None = None  # the target group it forwards to (ALB/NLB default action)
    instance_protocol: str | None = None  # classic ELB: the protocol and port the instances answer on
    instance_port: int | None = None

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        return _without_defaults(handler(self), ("certificate", "target_group", "instance_protocol", "instance_port"))


class HealthCheck(_Model):
    """How the balancer decides a backend is healthy; ``port`` None: the backend's traffic port."""

    protocol: str | None = None
    port: int | None = None
    path: str | None = None
    interval_s: int | None = None
    timeout_s: int | None = None
    healthy_threshold: int | None = None
    unhealthy_threshold: int | None = None


class Stickiness(_Model):
    """Session affinity: ``lb_cookie`` (the balancer's cookie), ``app_cookie`` (the application's
    cookie ``cookie_name``) or ``source_ip``; ``duration_s`` for a balancer cookie."""

    type: str
    duration_s: int | None = None
    cookie_name: str | None = None


class TargetGroup(_Model):
    id: str
    name: str
    protocol: str | None = None
    port: int | None = None
    health_check: HealthCheck | None = None
    stickiness: Stickiness | None = None
    targets: list[str] = Field(default_factory=list)  # node ids (groups of IP addresses name none)


class LoadBalancer(ResourceBase):
    kind: Literal["load_balancer"] = "load_balancer"
    scheme: str | None
    dns_name: str | None = None
    listeners: list[Listener] = Field(default_factory=list)
    targets: list[str] = Field(default_factory=list)
    # Added without a schema bump, written only when set:
    type: str | None = None  # "application", "network", "gateway" or "classic"
    target_groups: list[TargetGroup] = Field(default_factory=list)  # ALB/NLB
    health_check: HealthCheck | None = None  # classic ELB: one for all its instances
    stickiness: Stickiness | None = None  # classic ELB: a stickiness policy of its listeners
    security_groups: list[str] = Field(default_factory=list)  # the balancer's own security groups (ids)

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = ResourceBase._written(self, handler)
        return _without_defaults(data, ("type", "target_groups", "health_check", "stickiness", "security_groups"))


class LaunchSpec(_Model):
    """What a scaling group launches: a launch template's version or a launch configuration."""

    source: Literal["launch_template", "launch_configuration"]
    id: str  # the template's id, or the configuration's name
    name: str | None = None
    version: str | None = None  # a template's version number, as launched
    instance_type: str | None = None
    vcpus: int | None = None
    memory_mib: int | None = None
    image_id: str | None = None
    image_name: str | None = None
    image_description: str | None = None
    architecture: str | None = None
    root_volume_gib: int | None = None
    user_data: str | None = None
    firewalls: list[str] = Field(default_factory=list)


class NodeGroup(ResourceBase):
    """A scaling group (an AWS Auto Scaling group): its bounds, what it launches, where it registers."""

    kind: Literal["node_group"] = "node_group"
    min_size: int
    max_size: int
    desired: int
    launch: LaunchSpec | None  # None: the group's template or configuration could not be read
    subnet_ids: list[str] = Field(default_factory=list)  # where it launches (ids; a network's subnets are objects)
    load_balancers: list[str] = Field(default_factory=list)  # source load balancer ids (an ALB's ARN, a classic name)
    target_groups: list[str] = Field(default_factory=list)  # ALB/NLB target group ARNs it registers in
    health_check: str | None = None  # EC2 or ELB
    members: list[str] = Field(default_factory=list)  # node ids of the instances it ran at the snapshot


class Certificate(ResourceBase):
    kind: Literal["certificate"] = "certificate"
    domains: list[str] = Field(default_factory=list)
    status: str | None
    not_after: str | None


Resource = Annotated[
    Node | Volume | Firewall | Network | Address | Bucket | DnsZone | Database | LoadBalancer | Certificate | NodeGroup,
    Field(discriminator="kind"),
]

KINDS: tuple[str, ...] = (
    "node", "volume", "firewall", "network", "address", "bucket", "dns_zone", "database", "load_balancer", "certificate",
    "node_group",
)


class Unsupported(_Model):
    type: str
    id: str
    name: str | None = None
    region: str | None = None
    reason: str


class SourceInfo(_Model):
    provider: str
    account: str | None
    regions: list[str]
    # What the source's drivers cannot tell ("node.user_data" -> why): those fields are null (or
    # empty) in the resources, never guessed; plan says so. Written only when not empty.
    unknown: dict[str, str] = Field(default_factory=dict)

    @model_serializer(mode="wrap")
    def _written(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data = handler(self)
        if not data.get("unknown"):
            data.pop("unknown", None)
        return data


class Manifest(_Model):
    schema_version: Literal[2] = SCHEMA_VERSION
    service: str
    taken_at: str
    source: SourceInfo
    resources: list[Resource] = Field(default_factory=list)
    unsupported: list[Unsupported] = Field(default_factory=list)

    # -- reading -------------------------------------------------------------------
    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.resources if r.kind == kind]

    def primary_databases(self) -> list[Database]:
        """The databases that are restored: every one but read replicas (their primary carries the data)."""
        return [db for db in self.of_kind("database") if not db.replica_of]

    def replicas(self) -> list[Database]:
        return [db for db in self.of_kind("database") if db.replica_of]

    def find(self, kind: str, resource_id: str) -> Any | None:
        return next((r for r in self.resources if r.kind == kind and r.id == resource_id), None)

    def counts(self) -> dict[str, int]:
        counter = Counter(r.kind for r in self.resources)
        counts = {kind: counter[kind] for kind in KINDS if counter[kind]}
        if self.unsupported:
            counts["unsupported"] = len(self.unsupported)
        return counts

    def left_behind(self) -> dict[str, int]:
        """How many unsupported resources of each type the snapshot holds: what a failover leaves behind."""
        return dict(sorted(Counter(item.type for item in self.unsupported).items()))

    # -- canonical form --------------------------------------------------------------
    def canonical(self) -> Manifest:
        data = self.model_dump(mode="json")
        data["resources"] = sorted((_canonical_resource(r) for r in data["resources"]), key=_resource_key)
        data["unsupported"] = sorted(data["unsupported"], key=lambda u: (u["type"], u.get("region") or "", u["id"]))
        data["source"]["regions"] = sorted(data["source"]["regions"])
        return Manifest.model_validate(data)

    def to_dict(self) -> dict[str, Any]:
        return self.canonical().model_dump(mode="json")

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False) + "\n"

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)




def _resource_key(r: dict[str, Any]) -> tuple:
    return (KINDS.index(r["kind"]), r["region"], r["id"])


def _canonical_resource(r: dict[str, Any]) -> dict[str, Any]:
    r = dict(r)
    r["tags"] = dict(sorted(r["tags"].items()))
    kind = r["kind"]
    if kind == "node":
        r["firewalls"] = sorted(r["firewalls"])
        # volumes keep the instance's device order: the root volume first
    elif kind == "firewall":
        rules = [dict(rule, sources=sorted(rule["sources"])) for rule in r["rules"]]
        r["rules"] = sorted(rules, key=lambda x: (x["direction"], x["protocol"], x["port_from"] if x["port_from"] is not None else -2, x["port_to"] if x["port_to"] is not None else -2, x["sources"]))
    elif kind == "network":
        r["subnets"] = sorted(r["subnets"], key=lambda s: s["id"])
    elif kind == "dns_zone":
        r["records"] = sorted(r["records"], key=lambda x: (x["name"], x["type"], x["values"]))
    elif kind == "load_balancer":
        r["listeners"] = sorted(r["listeners"], key=lambda x: (x["port"] or 0, x["protocol"] or ""))
        r["targets"] = sorted(r["targets"])
        if r.get("target_groups"):
            groups = [dict(group, targets=sorted(group["targets"])) for group in r["target_groups"]]
            r["target_groups"] = sorted(groups, key=lambda g: g["id"])
    elif kind == "certificate":
        r["domains"] = sorted(r["domains"])
    elif kind == "node_group":
        for key in ("subnet_ids", "load_balancers", "target_groups", "members"):
            r[key] = sorted(r[key])
        if r.get("launch"):
            r["launch"] = dict(r["launch"], firewalls=sorted(r["launch"]["firewalls"]))
    return r


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """A stored manifest of an older schema, as this version reads it (the input is not changed).

    1 -> 2: resources gained ``owned`` (true: everything a version-1 snapshot holds was tagged for
    the service) and databases ``replica_of`` (null: version 1 did not record replicas)."""
    if data.get("schema_version") == 1:
        data = {**data, "schema_version": 2}
    return data


def parse_manifest(data: Any, file: str) -> Manifest:
    if not isinstance(data, dict):
        raise ManifestError([Problem(file=file, message="not a manifest (expected a JSON object)")])
    data = migrate(data)
    version = data.get("schema_version")
    if version != SCHEMA_VERSION:
        raise ManifestError([Problem(file=file, field="schema_version", message=f"unsupported schema version {version!r} (this failover reads {SCHEMA_VERSION})")])
    try:
        return Manifest.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False)[:20]:
            loc = [p for p in err["loc"] if not (isinstance(p, str) and p in KINDS)]
            field = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in loc).replace(".[", "[")
            problems.append(Problem(file=file, field=field or None, message=err["msg"]))
        raise ManifestError(problems) from None


def load_manifest(path: Path) -> Manifest:
    try:
        text = read_input(path, max_bytes=MAX_MANIFEST_BYTES, what="manifest")
    except InputError as exc:
        raise ManifestError(exc.problems) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ManifestError([Problem(file=str(path), line=exc.lineno, message=f"invalid JSON: {exc.msg}")]) from None
    return parse_manifest(data, str(path))


# -- diff ------------------------------------------------------------------------------

def diff(a: Manifest, b: Manifest) -> dict[str, Any]:
    """Resources added, removed and changed from ``a`` to ``b``, with field-level detail."""
    before = {(r["kind"], r["region"], r["id"]): r for r in a.to_dict()["resources"]}
    after = {(r["kind"], r["region"], r["id"]): r for r in b.to_dict()["resources"]}
    ident = lambda r: {"kind": r["kind"], "id": r["id"], "name": r["name"], "region": r["region"]}  # noqa: E731
    added = [ident(after[k]) for k in sorted(after.keys() - before.keys(), key=_key_order)]
    removed = [ident(before[k]) for k in sorted(before.keys() - after.keys(), key=_key_order)]
    changed = []
    for key in sorted(before.keys() & after.keys(), key=_key_order):
        changes = _field_changes(before[key], after[key], "")
        if changes:
            changed.append({**ident(after[key]), "changes": changes})
    return {"added": added, "removed": removed, "changed": changed}


def _key_order(key: tuple[str, str, str]) -> tuple:
    return (KINDS.index(key[0]), key[1], key[2])


def _field_changes(old: Any, new: Any, path: str) -> list[dict[str, Any]]:
    if old == new:
        return []
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for k in sorted(set(old) | set(new), key=str):
            out += _field_changes(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return out
    if isinstance(old, list) and isinstance(new, list):
        removed = [x for x in old if x not in new]
        added = [x for x in new if x not in old]
        if removed or added:
            return [{"field": path, "added": added, "removed": removed}]
        return [{"field": path, "before": old, "after": new}]  # same items, other order
    return [{"field": path, "before": old, "after": new}]
