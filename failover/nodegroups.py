"""Scaling groups on a target: a ``node_group`` becomes ``desired`` nodes built from its launch
specification (not copies of whichever instances ran that minute), named
``<service>-<group>-<n>`` (:func:`failover.naming.node_names`).

Each group node is planned as a node of its own (:func:`group_nodes` gives it as a ``Node`` whose
id is ``<group id>#<n>``), so mapping, cloud-init firewalls, adoption by name on a resume and undo
are those of every other node. The group's members stay in the manifest as nodes marked with
their ``group``; ``provision-nodes`` leaves them out. Target providers have no autoscaling that
failover drives: the plan says so, and the group stays at ``desired`` nodes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from failover.actions.base import ActionContext, Change
from failover.errors import InputError, ManifestError, Problem
from failover.manifest import Manifest, Node, NodeGroup
from failover.nodes import select_nodes

GROUP_NODE_SEPARATOR = "#"


def group_node_id(group_id: str, number: int) -> str:
    return f"{group_id}{GROUP_NODE_SEPARATOR}{number}"


@dataclass(frozen=True)
class GroupNodeName:
    """A group node as naming sees it: its id and the name it is named from."""

    id: str
    name: str


def group_node_names(manifest: Manifest) -> list[GroupNodeName]:
    """Every group node of the snapshot (``desired`` per group), named ``<group>-<n>``."""
    return [
        GroupNodeName(group_node_id(group.id, number), f"{group.name}-{number}")
        for group in manifest.of_kind("node_group") for number in range(1, group.desired + 1)
    ]


def groups_of(manifest: Manifest) -> dict[str, NodeGroup]:
    return {group.id: group for group in manifest.of_kind("node_group")}


def group_nodes(manifest: Manifest, groups: Sequence[NodeGroup] | None = None) -> list[Node]:
    """The nodes the groups (default: every group of the snapshot) become on a target, ``desired``
    each; a group whose launch specification could not be read is built like its first member."""
    out: list[Node] = []
    for group in manifest.of_kind("node_group") if groups is None else groups:
        template = _template(manifest, group)
        out += [_group_node(group, template, number) for number in range(1, group.desired + 1)]
    return out


def _template(manifest: Manifest, group: NodeGroup) -> dict[str, Any]:
    launch = group.launch
    if launch is not None and launch.instance_type and launch.image_id:
        return {
            "instance_type": launch.instance_type, "vcpus": launch.vcpus, "memory_mib": launch.memory_mib,
            "image_id": launch.image_id, "image_name": launch.image_name, "image_description": launch.image_description,
            "architecture": launch.architecture, "root_volume_gib": launch.root_volume_gib,
            "user_data": launch.user_data, "firewalls": list(launch.firewalls),
        }
    member = next((node for node in manifest.of_kind("node") if node.id in group.members), None)
    if member is None:
        raise ManifestError([Problem(
            file="snapshot", field=f"{group.id}.launch",
            message=f"node group {group.name}: its launch template or configuration was not readable and it ran "
            "no instance to build its nodes from; take a new snapshot",
        )])
    fields = ("instance_type", "vcpus", "memory_mib", "image_id", "image_name", "image_description", "architecture",
              "root_volume_gib", "user_data", "firewalls")
    return {field: getattr(member, field) for field in fields}


def _group_node(group: NodeGroup, template: dict[str, Any], number: int) -> Node:
    return Node(
        id=group_node_id(group.id, number), name=f"{group.name}-{number}", region=group.region, tags=dict(group.tags),
        private_ip=None, public_ip=None, volumes=[], state="running", group=group.id, **template,
    )


# -- selecting -------------------------------------------------------------------------------


def selected_groups(manifest: Manifest, select: Any) -> list[NodeGroup]:
    """The groups a provision-nodes selector names: by their tags, and by name or id when it names any."""
    return [
        group for group in manifest.of_kind("node_group")
        if all(group.tags.get(key) == value for key, value in select.tags.items())
        and (not select.names or group.name in select.names or group.id in select.names)
    ]


def select_with_groups(manifest: Manifest, select: Any) -> list[Node]:
    """The nodes provision-nodes builds (and apply-firewall protects): the selected nodes that no
    group of the snapshot ran, then the selected groups' nodes."""
    groups = groups_of(manifest)
    chosen = selected_groups(manifest, select)
    group_names = {name for group in groups.values() for name in (group.id, group.name)}
    node_names = [name for name in select.names if name not in group_names]
    if select.names and not node_names:
        plain: list[Node] = []
    else:
        plain = select_nodes(manifest, select.model_copy(update={"names": node_names}))
    unknown = [name for name in select.names if name in group_names and not any(name in (g.id, g.name) for g in chosen)]
    if unknown:
        raise InputError([Problem(file="playbook", field="with.select", message=f"node group {name!r} does not carry "
                                  "the selector's tags") for name in unknown])
    return [node for node in plain if node.group not in groups] + group_nodes(manifest, chosen)


def nodes_on_target(manifest: Manifest) -> list[Node]:
    """Every node a failover builds, selected or not: the nodes no group ran, and the groups' nodes
    (whose security-group rules name each other by group: apply-firewall's members)."""
    groups = groups_of(manifest)
    return [node for node in manifest.of_kind("node") if node.group not in groups] + group_nodes(manifest)


# -- plan and outputs ------------------------------------------------------------------------


def group_changes(ctx: ActionContext, groups: Sequence[NodeGroup], names: dict[str, str]) -> list[Change]:
    """A line per group: what it becomes, and that the target does not scale it."""
    changes = []
    scales = bool(getattr(ctx.targets.compute, "supports_autoscaling", False))
    for group in groups:
        nodes = [names[group_node_id(group.id, n)] for n in range(1, group.desired + 1)]
        launch = group.launch
        source = (f"launch template {launch.name or launch.id}" + (f" version {launch.version}" if launch.version else "")
                  if launch and launch.source == "launch_template"
                  else f"launch configuration {launch.id}" if launch else "its first member (launch data unreadable)")
        detail = (f"{group.desired} node(s) from {source}: {', '.join(nodes) or 'none'}; "
                  f"min {group.min_size}, max {group.max_size}; members at the snapshot not copied: "
                  f"{', '.join(group.members) or 'none'}")
        if group.load_balancers:
            detail += f"; backends of load balancer(s) {', '.join(group.load_balancers)}"
        if not scales:
            detail += "; no autoscaling on the target: the group stays at its desired count"
        changes.append(Change("check", "node_group", group.name, detail))
    return changes


def with_group_outputs(manifest: Manifest, outputs: dict[str, Any]) -> dict[str, Any]:
    """provision-nodes' outputs, its group nodes' entries carrying ``group`` (the node group's id),
    and each group member's source id in ``addresses`` given the address of the group node that
    takes its place (member k -> node k, round the group), so records that named a member move."""
    groups = groups_of(manifest)
    entries: dict[str, dict[str, Any]] = outputs["nodes"]
    by_group: dict[str, list[dict[str, Any]]] = {}
    for entry in entries.values():
        group_id, separator, _ = str(entry["source_id"]).rpartition(GROUP_NODE_SEPARATOR)
        if separator and group_id in groups:
            entry["group"] = group_id
            by_group.setdefault(group_id, []).append(entry)
    addresses = dict(outputs["addresses"])
    for group_id, built in by_group.items():
        built.sort(key=lambda entry: int(str(entry["source_id"]).rpartition(GROUP_NODE_SEPARATOR)[2]))
        for index, member in enumerate(groups[group_id].members):
            addresses.setdefault(member, built[index % len(built)]["public_ip"])
    return {**outputs, "addresses": addresses}
