"""Nodes recreated on the target: selecting the snapshot's nodes, planning each onto the
target (size, image, name, labels, firewall path), finding or creating them idempotently
(journaled the moment they exist), and destroying what a run created.

``provision-nodes`` is the action over these; ``restore-databases`` (its database nodes) and
``apply-firewall`` (which nodes get which groups) use them too, as do the checks that
predict what a run will create.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import Field

from failover.actions.base import ActionContext, Change, Params
from failover.cloudinit import firewall_cloud_config, refused_rules, with_cloud_config
from failover.config import TargetProfile
from failover.errors import (
    ConfigError,
    FailoverError,
    InputError,
    Interrupted,
    ManifestError,
    OperationFailed,
    Problem,
    TransientError,
)
from failover.manifest import Firewall, Manifest, Node
from failover.mapping import ImageChoice, MappingResult, SizeChoice, map_nodes, node_label
from failover.naming import node_names, slug
from failover.ports import ComputeTarget, FirewallInfo, NodeInfo
from failover.retry import in_context

MAX_PARALLEL = 8
# Nodes waited for at the same time: a waiting thread mostly sleeps, and the target reads the
# states of all of them in one listing (compute.wait_running), so more cost no more requests.
WAIT_PARALLEL = 64
PROVISIONED_STATES = frozenset({"running", "stopped", "pending", "stopping"})
RUN_LABEL = "failover-run"
SOURCE_LABEL = "failover-source"
DRILL_LABEL = "failover-drill"
RESERVED_KEYS = frozenset({"nodes", "addresses", "endpoints"})

VIA_API = "firewall API"
VIA_CLOUD_INIT = "cloud-init nftables"
VIA_NONE = "none"


class NodeSelector(Params):
    tags: dict[str, str] = Field(default_factory=dict, description="Only nodes carrying all these tags, with these values.")
    names: list[str] = Field(default_factory=list, description="Only the nodes of these names (or source ids).")


@dataclass(frozen=True)
class NodePlan:
    """One node to create on the target (or to find there)."""

    source_id: str
    source_name: str
    key: str  # the node's key in the outputs
    name: str  # on the target
    size: SizeChoice
    image: ImageChoice
    user_data: str | None
    labels: dict[str, str]
    firewall: str
    security_groups: tuple[str, ...] = ()
    refused_rules: tuple[str, ...] = ()  # security-group rules the cloud-init firewall could not carry
    firewalls: tuple[FirewallInfo, ...] = ()  # target firewalls the node is created in (firewall API, at creation)


# -- selecting -------------------------------------------------------------------------------


def select_nodes(manifest: Manifest, select: NodeSelector) -> list[Node]:
    """The snapshot's nodes the selector names, in snapshot order; InputError for names it lacks."""
    nodes = [node for node in manifest.of_kind("node") if node.state in PROVISIONED_STATES]
    missing = [name for name in select.names if not any(name in (node.name, node.id) for node in nodes)]
    if missing:
        message = "no running or stopped node {!r} in the snapshot"
        raise InputError([Problem(file="playbook", field="with.select.names", message=message.format(name)) for name in missing])
    return [
        node for node in nodes
        if all(node.tags.get(key) == value for key, value in select.tags.items())
        and (not select.names or node.name in select.names or node.id in select.names)
    ]


def output_keys(nodes: Sequence[Node]) -> dict[str, str]:
    """Source id -> the node's key in the outputs: its name where that is unambiguous."""
    counts = Counter(node.name for node in nodes)
    return {
        node.id: node.name if counts[node.name] == 1 and node.name not in RESERVED_KEYS else node.id
        for node in nodes
    }


# -- planning ------------------------------------------------------------------------------


def plan_nodes(ctx: ActionContext, nodes: Sequence[Node]) -> list[NodePlan]:
    """What each node becomes on the target; ConfigError listing every node that cannot be mapped."""
    if not nodes:
        return []
    mapping = map_onto_target(ctx, nodes)
    firewall_via = VIA_API if ctx.targets.compute.supports_firewalls else VIA_CLOUD_INIT
    names, keys = node_names(ctx.manifest, ctx.naming_service), output_keys(nodes)
    for warning in mapping.warnings:
        ctx.info(warning)
    plans = []
    for node in nodes:
        choice = mapping.for_node(node.id)
        groups = node_firewalls(ctx.manifest, node) if firewall_via == VIA_CLOUD_INIT else []
        refused = refused_rules(groups)
        for rule in refused:
            ctx.info(f"{names[node.id]}: firewall rule refused (left out, so the node admits less): {rule}")
        plans.append(NodePlan(
            source_id=node.id, source_name=node.name, key=keys[node.id], name=names[node.id],
            size=choice.size, image=choice.image,
            user_data=with_cloud_config(node.user_data, firewall_cloud_config(groups)) if groups else node.user_data,
            labels={**run_labels(ctx), SOURCE_LABEL: node.id},
            firewall=firewall_via if node.firewalls else VIA_NONE,
            security_groups=tuple(node.firewalls),
            refused_rules=tuple(refused),
        ))
    return plans


def run_labels(ctx: ActionContext) -> dict[str, str]:
    """The run's labels, and in a drill the drill's (its prefix as a label value: ``drill-eu``)."""
    return {**ctx.labels, DRILL_LABEL: slug(ctx.drill_prefix)} if ctx.drill_prefix else ctx.labels


def check_adoptable(ctx: ActionContext, kind: str, name: str, resource_id: str, labels: dict[str, str]) -> None:
    """In a drill, refuse what this run did not create: adopting it would time nothing and
    make the drill depend on (and its teardown skip) a resource of someone else's."""
    ours = labels.get(RUN_LABEL) == ctx.run_id or any(item["id"] == resource_id for item in ctx.created)
    if ctx.drill_prefix and not ours:
        left_by = labels.get(RUN_LABEL)
        origin = f" by run {left_by} (`failover rollback {left_by}` removes it)" if left_by else ""
        raise OperationFailed(
            f"{kind} {name} ({resource_id}) exists on the target, created{origin or ' outside this drill'}; "
            f"a drill creates its own: remove it, or drill under another --prefix"
        )


def map_onto_target(ctx: ActionContext, nodes: Sequence[Node], profile: TargetProfile | None = None) -> MappingResult:
    """Sizes and images for ``nodes`` (by the target profile's rules and overrides, or
    ``profile``'s); ConfigError listing every node's reason when any fails."""
    compute, profile = ctx.targets.compute, profile or ctx.targets.profile
    location = compute.location()  # the profile's location as the target knows it (by id or name)
    if location is not None:
        profile = profile.model_copy(update={"compute": profile.compute.model_copy(update={"location": location.id})})
    label = (f"{location.name} ({location.id})" if location.name and location.name != location.id else location.id) \
        if location is not None else None
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="failover-catalogue") as pool:  # both listed at once
        sizes, images = pool.submit(in_context(compute.sizes)), pool.submit(in_context(compute.images))
        sizes, images = sizes.result(), images.result()
    mapping = map_nodes(nodes, sizes, images, profile, [location.id] if location else None, label)
    if not mapping.ok:
        file = str(ctx.config.path) if ctx.config is not None else "failover.yaml"
        field = f"targets.{ctx.target_name}"
        raise ConfigError([
            Problem(file=file, field=field, message=f"cannot map onto the target: {error}") for error in mapping.errors
        ])
    return mapping


def node_firewalls(manifest: Manifest, node: Node) -> list[Firewall]:
    """The snapshot's security groups of a node; ManifestError when the snapshot lacks one
    (its rules are unknown: carrying the others alone would open or close the wrong ports)."""
    return snapshot_groups(manifest, node.firewalls, field=f"{node.id}.firewalls", owner=f"node {node_label(node)}",
                           hint="tag it with the service's selector tags and take a new snapshot")


def snapshot_groups(manifest: Manifest, groups: list[str], *, field: str, owner: str, hint: str) -> list[Firewall]:
    """The snapshot's firewalls of ``groups`` (ids), in their order; ManifestError naming each
    one the snapshot lacks (``field`` of the snapshot, ``owner`` the resource that names it)."""
    found = {fw.id: fw for fw in manifest.of_kind("firewall")}
    missing = [group for group in groups if group not in found]
    if missing:
        raise ManifestError([Problem(
            file="snapshot", field=field, message=f"security group {group} of {owner} is not in the snapshot; {hint}",
        ) for group in missing])
    return [found[group] for group in groups]


def node_change(ctx: ActionContext, plan: NodePlan, existing: NodeInfo | None) -> Change:
    if existing is not None and ctx.drill_prefix and existing.labels.get(RUN_LABEL) != ctx.run_id:
        detail = (f"exists as {existing.id}, not made by this drill: the drill would stop here "
                  "(remove it, or drill under another --prefix)")
        return Change("check", "node", plan.name, detail)
    if existing is not None:
        detail = (
            f"from {plan.source_name} ({plan.source_id}): exists as {existing.id} ({existing.state}, size "
            f"{existing.size_id or '?'}, image {existing.image_id or '?'}): adopted, not created again"
        )
        return Change("none", "node", plan.name, detail)
    detail = (
        f"from {plan.source_name} ({plan.source_id}): size {plan.size.id} ({plan.size.why}); "
        f"image {plan.image.id} {plan.image.name} ({plan.image.why}); firewall: {plan.firewall}"
        + (f", {len(plan.refused_rules)} rules refused" if plan.refused_rules else "")
    )
    return Change("create", "node", plan.name, detail)


# -- creating --------------------------------------------------------------------------------

Item = TypeVar("Item")
Result = TypeVar("Result")


def ensure_nodes(
    ctx: ActionContext, plans: Sequence[NodePlan], *, wait: bool, timeout: float
) -> dict[str, tuple[NodeInfo, bool]]:
    """Source id -> (node, adopted): every planned node found or created (MAX_PARALLEL at a
    time) and (``wait``) waited for from the moment it exists, on threads of its own (up to
    WAIT_PARALLEL), so a node slow to start holds up no creation and the waits share their
    readings (one listing for many nodes where the target can). Every node is finished (so
    everything created is journaled) before the failures are raised together."""
    compute = ctx.targets.compute
    if not plans:
        return {}
    with ThreadPoolExecutor(max_workers=min(WAIT_PARALLEL, len(plans)), thread_name_prefix="failover-wait") as waits:

        def ensure(plan: NodePlan) -> tuple[NodeInfo | Future[NodeInfo], bool]:
            node, adopted = find_or_create(ctx, compute, plan)
            if wait:
                return waits.submit(in_context(compute.wait_running), node.id, timeout=timeout, cancel=ctx.cancel), adopted
            return node, adopted

        made = attempt_all(plans, ensure, workers=MAX_PARALLEL)
    failures, ready = [], {}
    for plan, result, error in made:
        node, adopted = result if error is None else (None, False)
        if isinstance(node, Future):
            error = node.exception()
            node = node.result() if error is None else None
        if error is not None:
            failures.append((plan.name, error))
        else:
            ready[plan.source_id] = (node, adopted)
    if failures:
        raise combined_error(failures)
    return ready


def find_or_create(ctx: ActionContext, compute: ComputeTarget, plan: NodePlan) -> tuple[NodeInfo, bool]:
    """The node of the plan's name, adopted if it exists; else created and journaled at once."""
    existing = compute.find_node(plan.name)
    if existing is not None:
        check_adoptable(ctx, "node", plan.name, existing.id, existing.labels)
        if existing.labels.get(RUN_LABEL) == ctx.run_id and not recorded(ctx, existing.id):
            # Created by this run, which crashed before the journal heard of it: it is ours to undo.
            ctx.record("node", existing.id, name=plan.name, source_id=plan.source_id)
        ctx.info(f"node {plan.name} exists ({existing.id}): adopted")
        return existing, True
    if ctx.cancel.is_set():
        raise Interrupted(f"cancelled before creating node {plan.name}")
    in_firewalls = {"firewalls": plan.firewalls} if plan.firewalls else {}
    node = compute.create_node(
        plan.name, plan.size.id, plan.image.id, user_data=plan.user_data, labels=plan.labels, **in_firewalls
    )
    ctx.record("node", node.id, name=plan.name, source_id=plan.source_id)
    ctx.info(f"created node {plan.name} ({node.id})")
    return node, False


def recorded(ctx: ActionContext, resource_id: str) -> bool:
    return any(item["id"] == resource_id for item in ctx.created)


def in_parallel(items: Sequence[Item], work: Callable[[Item], Result], *, label: Callable[[Item], str]) -> list[Result]:
    """``work`` on every item in a bounded pool; every item is finished (so everything created
    is journaled) before the failures are raised together."""
    outcomes = attempt_all(items, work, workers=MAX_PARALLEL)
    failures = [(label(item), error) for item, _, error in outcomes if error is not None]
    if failures:
        raise combined_error(failures)
    return [result for _, result, _ in outcomes]


def attempt_all(
    items: Sequence[Item], work: Callable[[Item], Result], *, workers: int
) -> list[tuple[Item, Result | None, BaseException | None]]:
    """(item, result, None) or (item, None, error) for every item, ``work`` run on ``workers`` threads."""
    if not items:
        return []
    with ThreadPoolExecutor(max_workers=min(workers, len(items)), thread_name_prefix="failover-node") as pool:
        futures = [pool.submit(in_context(work), item) for item in items]
    return [(item, None, future.exception()) if future.exception() is not None else (item, future.result(), None)
            for item, future in zip(items, futures, strict=True)]


def combined_error(failures: Sequence[tuple[str, BaseException]]) -> BaseException:
    """One error for many: a bug as itself, an interruption first, transient only when all are."""
    for _, error in failures:
        if not isinstance(error, FailoverError):
            return error
    interrupted = next((error for _, error in failures if isinstance(error, Interrupted)), None)
    if interrupted is not None:
        return interrupted
    message = "; ".join(f"{name}: {error}" for name, error in failures)
    if all(isinstance(error, TransientError) for _, error in failures):
        waits = [error.retry_after for _, error in failures if error.retry_after is not None]
        return TransientError(message, retry_after=max(waits) if waits else None)
    return OperationFailed(message)


def node_outputs(plans: Sequence[NodePlan], ready: dict[str, tuple[NodeInfo, bool]]) -> dict[str, Any]:
    entries = {plan.key: node_entry(plan, *ready[plan.source_id]) for plan in plans}
    addresses = {entry["source_id"]: entry["public_ip"] for entry in entries.values()}
    return {"nodes": entries, "addresses": addresses, **entries}


def node_entry(plan: NodePlan, node: NodeInfo, adopted: bool) -> dict[str, Any]:
    return {
        "id": node.id,
        "name": node.name or plan.name,
        "source_id": plan.source_id,
        "source_name": plan.source_name,
        "public_ip": node.public_ips[0] if node.public_ips else None,
        "private_ip": node.private_ips[0] if node.private_ips else None,
        "size": node.size_id or plan.size.id,
        "image": node.image_id or plan.image.id,
        "state": node.state,
        "adopted": adopted,
        "firewall": plan.firewall,
        "security_groups": list(plan.security_groups),
        "refused_rules": list(plan.refused_rules),
        "firewall_ids": [firewall.id for firewall in plan.firewalls] if not adopted else [],
    }


# -- undoing ---------------------------------------------------------------------------------


def destroy_nodes(ctx: ActionContext, names: Sequence[str]) -> None:
    """Destroy the nodes this step created: those journaled, and those of ``names`` carrying
    this run's label (created right before a crash, never journaled). Gone already is fine."""
    compute = ctx.targets.compute
    ids = {item["id"]: item.get("name", item["id"]) for item in ctx.created if item["kind"] == "node"}
    for name in names:
        node = compute.find_node(name)
        if node is not None and node.labels.get(RUN_LABEL) == ctx.run_id:
            ids.setdefault(node.id, name)
    for node_id, name in sorted(ids.items()):
        if compute.destroy_node(node_id):
            ctx.info(f"destroyed node {name} ({node_id})")
