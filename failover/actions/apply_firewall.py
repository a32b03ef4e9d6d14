"""``apply-firewall``: the nodes' security groups on the target.

Where the target's libcloud driver has a firewall API, each source security group of the
selected nodes becomes a target firewall of a deterministic name, holding the group's
rules (ingress and egress): CIDR sources kept, and a source that was another security
group replaced by the private addresses of that group's members on the target (the nodes
provision-nodes created). A rule left with no source (its group has no member on the
target) is dropped and reported.

Two ways onto the nodes, and ``plan`` says which per group:

- at node creation, where the driver takes firewalls at ``create_node`` (EC2): provision-nodes
  makes each firewall first with its rules of fixed (CIDR) sources (``creation_firewalls``)
  and creates the nodes inside it; this step then only adds the rules naming groups, once
  the members' addresses exist (one convergence per group), and attaches nothing;
- attached after the nodes exist, elsewhere (and for nodes adopted from before): one
  listing says which nodes lack which firewall, then a bounded pool attaches them.

A firewall provision-nodes made carries its step label; this step converges it without
relabelling, and its undo leaves it to provision-nodes' undo, which runs after the nodes
are gone (a cloud refuses to delete a firewall still in use).

Where there is no firewall API, provision-nodes wrote the rules into each node's
cloud-init as an nftables firewall; this step checks that it did, from its outputs.

In a drill the firewalls are named from ``<prefix>-<service>`` like the drill's nodes, and
only firewalls of the drill's own run are adopted.

Outputs::

    via:           "firewall API" or "cloud-init nftables"
    firewalls:     {<source group id>: {id, name, source_name, rules, nodes, adopted,
                                         in_it_already, attached}}  (firewall API; node ids:
                   in_it_already were in it before this step, created in it; attached: by this step)
    nodes:         {<target node name>: [<source group id>, ...]}
    dropped_rules: ["<group>: <rule>: <why>", ...]
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import Interrupted, OperationFailed
from failover.firewalls import (
    STEP_LABEL,
    TargetNode,
    at_creation,
    delete_firewalls,
    groups_of,
    initial_rules,
    is_cidr,
    rule_set,
    translate_rules,
)
from failover.manifest import Firewall, Node
from failover.naming import firewall_names, node_names
from failover.nodegroups import nodes_on_target, select_with_groups  # groups' nodes, not their members
from failover.nodes import (
    MAX_PARALLEL,
    RUN_LABEL,
    SOURCE_LABEL,
    VIA_API,
    VIA_CLOUD_INIT,
    NodeSelector,
    check_adoptable,
    in_parallel,
    recorded,
    run_labels,
)
from failover.ports import ComputeTarget, FirewallInfo, FirewallRuleInfo


class ApplyFirewallParams(Params):
    select: NodeSelector = Field(
        default_factory=NodeSelector,
        description="Whose security groups to carry over; by default every node that was running or stopped.",
    )


@dataclass(frozen=True)
class FirewallPlan:
    group: Firewall
    name: str
    rules: tuple[FirewallRuleInfo, ...]
    dropped: tuple[str, ...]
    members: tuple[TargetNode, ...]  # the selected nodes it is attached to


@ACTIONS.register("apply-firewall")
class ApplyFirewall(Action):
    """Carry the nodes' security groups over: target firewalls, or a check of the cloud-init ones."""

    summary = ("Carry the nodes' security groups over: target firewalls where the driver has an API, "
               "else check cloud-init's.")
    Params = ApplyFirewallParams
    example = {"select": {"tags": {"role": "web"}}}

    def plan(self, ctx: ActionContext, params: ApplyFirewallParams) -> list[Change]:
        nodes = select_with_groups(ctx.manifest, params.select)
        compute = ctx.targets.compute
        if not compute.supports_firewalls:
            return [_cloud_init_change(ctx, node) for node in nodes if node.firewalls]
        return [_api_change(ctx, compute, group, nodes) for group in groups_of(ctx.manifest, nodes)]

    def apply(self, ctx: ActionContext, params: ApplyFirewallParams) -> dict[str, Any]:
        nodes = select_with_groups(ctx.manifest, params.select)
        compute = ctx.targets.compute
        if not compute.supports_firewalls:
            return verify_cloud_init(ctx, nodes)
        plans = plan_firewalls(ctx, compute, nodes)
        made = {plan.group.id: _find_or_create(ctx, compute, plan) for plan in plans}
        attached = _attach_missing(ctx, compute, plans, {group_id: firewall for group_id, (firewall, _) in made.items()})
        return {
            "via": VIA_API,
            "firewalls": {plan.group.id: _firewall_entry(plan, *made[plan.group.id], attached) for plan in plans},
            "nodes": _groups_by_node(ctx, nodes),
            "dropped_rules": [dropped for plan in plans for dropped in plan.dropped],
        }

    def undo(self, ctx: ActionContext, params: ApplyFirewallParams) -> None:
        compute = ctx.targets.compute
        if not compute.supports_firewalls:
            return  # nothing was created: the firewalls live in the nodes' cloud-init
        delete_firewalls(ctx, compute, groups_of(ctx.manifest, select_with_groups(ctx.manifest, params.select)))


# -- without a firewall API: cloud-init -------------------------------------------------------


def verify_cloud_init(ctx: ActionContext, nodes: Sequence[Node]) -> dict[str, Any]:
    """Check that provision-nodes wrote each node's security groups into its cloud-init."""
    provisioned = _provisioned_entries(ctx)
    names = node_names(ctx.manifest, ctx.naming_service)
    problems = []
    for node in (node for node in nodes if node.firewalls):
        entry = provisioned.get(node.id)
        if entry is None:
            problems.append(f"{names[node.id]}: no outputs of provision-nodes for it (list that step in needs)")
        elif entry.get("firewall") != VIA_CLOUD_INIT or set(entry.get("security_groups", ())) != set(node.firewalls):
            problems.append(
                f"{names[node.id]}: provision-nodes wrote {entry.get('firewall')} for {entry.get('security_groups')}, "
                f"not {VIA_CLOUD_INIT} for {sorted(node.firewalls)}"
            )
    if problems:
        raise OperationFailed("cannot confirm the nodes' cloud-init firewalls: " + "; ".join(problems))
    ctx.info(f"{VIA_CLOUD_INIT}: the security groups were written into the nodes' cloud-init by provision-nodes")
    return {"via": VIA_CLOUD_INIT, "firewalls": {}, "nodes": _groups_by_node(ctx, nodes), "dropped_rules": []}


def _cloud_init_change(ctx: ActionContext, node: Node) -> Change:
    name = node_names(ctx.manifest, ctx.naming_service)[node.id]
    groups = ", ".join(node.firewalls)
    detail = f"{VIA_CLOUD_INIT}: {groups} rendered into the node's cloud-init by provision-nodes"
    return Change("check", "firewall", name, detail)


# -- with a firewall API ------------------------------------------------------------------


def plan_firewalls(ctx: ActionContext, compute: ComputeTarget, nodes: Sequence[Node]) -> list[FirewallPlan]:
    """The target firewall of every security group of ``nodes``, its rules translated."""
    groups = groups_of(ctx.manifest, nodes)
    built = nodes_on_target(ctx.manifest)
    members = {group.id: [node for node in built if group.id in node.firewalls] for group in groups}
    referenced = {source for group in groups for rule in group.rules for source in rule.sources if not is_cidr(source)}
    for group_id in referenced - members.keys():
        members[group_id] = [node for node in built if group_id in node.firewalls]
    on_target = _target_nodes(ctx, compute, {node.id for listed in members.values() for node in listed})
    names = firewall_names(ctx.manifest, ctx.naming_service)
    selected = {node.id for node in nodes}
    plans = []
    for group in groups:
        rules, dropped = translate_rules(group, members, on_target)
        attach_to = [on_target[node.id] for node in members[group.id] if node.id in selected]
        plans.append(FirewallPlan(group, names[group.id], tuple(rules), tuple(dropped), tuple(attach_to)))
    return plans


def _attach_missing(
    ctx: ActionContext, compute: ComputeTarget, plans: Sequence[FirewallPlan], firewalls: dict[str, FirewallInfo]
) -> dict[str, set[str]]:
    """Attach each firewall to the member nodes not yet in it (not created in it): one listing
    says which, then a bounded pool attaches node by node (a node's firewalls one after the
    other: each attachment rewrites the node's whole list). A node that provision-nodes created
    inside the firewall (its ``firewall_ids``) is in it: only the others are listed (a listing
    of 100 nodes is most of this step's time on EC2). Firewall id -> node ids attached."""
    created_in = {entry["id"]: frozenset(entry.get("firewall_ids") or ()) for entry in _provisioned_entries(ctx).values()}
    unsure = {node.id for plan in plans for node in plan.members
              if firewalls[plan.group.id].id not in created_in.get(node.id, frozenset())}
    current = {**created_in, **(compute.attached_firewalls(unsure) if unsure else {})}
    missing: dict[str, list[FirewallInfo]] = {}
    for plan in plans:
        firewall = firewalls[plan.group.id]
        for node in plan.members:
            if firewall.id not in current.get(node.id, ()):
                missing.setdefault(node.id, []).append(firewall)

    def attach(node_id: str) -> None:
        for firewall in missing[node_id]:
            if ctx.cancel.is_set():
                raise Interrupted(f"cancelled before attaching firewall {firewall.name} to node {node_id}")
            compute.attach_firewall(firewall.id, node_id)

    in_parallel(sorted(missing), attach, label=lambda node_id: f"node {node_id}")
    if missing:
        ctx.info(f"attached {sum(len(listed) for listed in missing.values())} firewalls to {len(missing)} nodes "
                 f"after their creation, up to {MAX_PARALLEL} at a time")
    attached: dict[str, set[str]] = {}
    for node_id, listed in missing.items():
        for firewall in listed:
            attached.setdefault(firewall.id, set()).add(node_id)
    return attached


def _firewall_entry(
    plan: FirewallPlan, firewall: FirewallInfo, adopted: bool, attached: dict[str, set[str]]
) -> dict[str, Any]:
    nodes = [node.id for node in plan.members]
    attached_now = attached.get(firewall.id, set())
    return {
        "id": firewall.id,
        "name": plan.name,
        "source_name": plan.group.name,
        "rules": len(plan.rules),
        "nodes": nodes,
        "adopted": adopted,
        "in_it_already": [node_id for node_id in nodes if node_id not in attached_now],
        "attached": [node_id for node_id in nodes if node_id in attached_now],
    }


def _find_or_create(ctx: ActionContext, compute: ComputeTarget, plan: FirewallPlan) -> tuple[FirewallInfo, bool]:
    """The plan's firewall: adopted when it exists with the same rules; when it is this run's
    (labelled or journaled) with other rules, what a failed attempt left half made: its rules
    are converged. Created otherwise, and journaled the moment it exists."""
    existing = compute.find_firewall(plan.name)
    if existing is not None:
        check_adoptable(ctx, "firewall", plan.name, existing.id, existing.labels)
        ours = existing.labels.get(RUN_LABEL) == ctx.run_id or recorded(ctx, existing.id)
        made_here = existing.labels.get(STEP_LABEL, ctx.step_id) == ctx.step_id  # else provision-nodes' to undo
        if ours and made_here and not recorded(ctx, existing.id):
            # Created by this run, which crashed before the journal heard of it: it is ours to undo.
            ctx.record("firewall", existing.id, name=plan.name, source_id=plan.group.id)
        if rule_set(existing.rules) == rule_set(plan.rules):
            return existing, True
        if not ours:
            raise OperationFailed(
                f"firewall {plan.name} ({existing.id}) exists on the target with other rules, and this run did not "
                f"create it: delete or rename it, then run again"
            )
        ctx.info(f"firewall {plan.name} ({existing.id}): converging its rules (made by this run, "
                 f"before the nodes or by an earlier attempt)")
        # Not relabelled with this step: the step that made it keeps it to undo.
        labels = {key: value for key, value in _labels(ctx, plan).items() if key != STEP_LABEL}
        return compute.set_firewall_rules(existing.id, plan.rules, labels=labels), True
    if ctx.cancel.is_set():
        raise Interrupted(f"cancelled before creating firewall {plan.name}")

    def journal(firewall_id: str) -> None:
        ctx.record("firewall", firewall_id, name=plan.name, source_id=plan.group.id)

    created = compute.create_firewall(plan.name, plan.rules, labels=_labels(ctx, plan), on_created=journal)
    ctx.info(f"created firewall {plan.name} ({created.id}) from {plan.group.id}")
    return created, False


def _labels(ctx: ActionContext, plan: FirewallPlan) -> dict[str, str]:
    return {**run_labels(ctx), SOURCE_LABEL: plan.group.id}


def _api_change(ctx: ActionContext, compute: ComputeTarget, group: Firewall, nodes: Sequence[Node]) -> Change:
    name = firewall_names(ctx.manifest, ctx.naming_service)[group.id]
    names = node_names(ctx.manifest, ctx.naming_service)
    members = ", ".join(names[node.id] for node in nodes if group.id in node.firewalls)
    existing = compute.find_firewall(name)
    if existing is not None:
        return Change("none", "firewall", name, f"{VIA_API}: exists as {existing.id}; attach to {members} where missing")
    via_groups = sorted({source for rule in group.rules for source in rule.sources if not is_cidr(source)})
    translated = f"; sources {', '.join(via_groups)} become their members' new private addresses" if via_groups else ""
    detail = f"{VIA_API}: from {group.id} ({group.name}), {len(group.rules)} rules{translated}; "
    if at_creation(compute):
        fixed = len(initial_rules(group))
        detail += (f"at node creation: provision-nodes makes it before the nodes with its {fixed} rules of fixed "
                   f"sources and creates {members} in it; this step sets the rest once the nodes exist")
    else:
        detail += f"attached after the nodes exist, up to {MAX_PARALLEL} at a time: {members}"
    return Change("create", "firewall", name, detail)


# -- nodes on the target ---------------------------------------------------------------------


def _target_nodes(ctx: ActionContext, compute: ComputeTarget, source_ids: set[str]) -> dict[str, TargetNode]:
    """Source id -> the node on the target: from provision-nodes' outputs, else found by
    its deterministic name; nodes not on the target are left out."""
    entries = _provisioned_entries(ctx)
    names = node_names(ctx.manifest, ctx.naming_service)
    found = {}
    for source_id in sorted(source_ids):
        entry = entries.get(source_id)
        if entry is not None:
            found[source_id] = TargetNode(source_id, entry["id"], entry["name"], entry.get("private_ip"))
        elif (node := compute.find_node(names[source_id])) is not None:
            private_ip = node.private_ips[0] if node.private_ips else None
            found[source_id] = TargetNode(source_id, node.id, node.name, private_ip)
    return found


def _provisioned_entries(ctx: ActionContext) -> dict[str, dict[str, Any]]:
    """Source id -> provision-nodes' output entry, from the outputs of the steps this one needs."""
    entries = {}
    for outputs in ctx.outputs.values():
        for entry in (outputs or {}).get("nodes", {}).values() if isinstance(outputs, dict) else ():
            if isinstance(entry, dict) and "source_id" in entry:
                entries[entry["source_id"]] = entry
    return entries


def _groups_by_node(ctx: ActionContext, nodes: Sequence[Node]) -> dict[str, list[str]]:
    names = node_names(ctx.manifest, ctx.naming_service)
    return {names[node.id]: sorted(node.firewalls) for node in nodes if node.firewalls}

