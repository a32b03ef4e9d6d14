"""``node-mapping``: every node a failover would recreate gets a target size and image.

The nodes are the snapshot's running or stopped ones (what ``provision-nodes`` recreates
by default; a scaling group's members give way to the group's nodes, from its launch specification), mapped exactly as its plan maps them (:mod:`failover.mapping`): the
profile's ``sizes`` and ``images`` overrides first, then the target's catalogue in the
profile's location. So are the database nodes the playbook's ``restore-databases`` steps
would create (node mode): sized from the instance class, on the image it asks for
(Ubuntu 22.04 unless the step says otherwise), with the step's own overrides. A database
such a step would refuse (an engine version that is not digits and dots) fails the check too.
"""

from __future__ import annotations

from typing import Any

from failover.actions.base import ACTIONS
from failover.checks.base import CHECKS, Check, CheckContext, Outcome, failed, passed, plural, warned
from failover.databases.base import engine_for
from failover.databases.node import DB_IMAGE_NAME, database_node, node_problem
from failover.errors import FailoverError
from failover.manifest import Node
from failover.mapping import map_nodes, node_label
from failover.nodegroups import group_nodes, groups_of
from failover.nodes import PROVISIONED_STATES
from failover.playbook import load_playbook
from failover.templates import resolve

MAX_SHOWN = 5


def nodes_to_build(manifest: Any) -> list[Node]:
    """The running or stopped nodes no scaling group ran, and the groups' nodes (their launch specification)."""
    groups = groups_of(manifest)
    plain = [node for node in manifest.of_kind("node") if node.state in PROVISIONED_STATES and node.group not in groups]
    return plain + group_nodes(manifest)


@CHECKS.register("node-mapping")
class NodeMapping(Check):
    summary = "Every node of the snapshot maps onto a target size and image."
    order = 50
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        nodes = nodes_to_build(ctx.manifest)
        databases, refused = database_nodes(ctx)
        if not nodes and not databases and not refused:
            return passed("no running or stopped node in the snapshot, and no database node to create")
        if ctx.profile.compute is None:
            count = plural(len(nodes) + len(databases) + len(refused), "node")
            return ctx.no_capability("compute", f"the snapshot has {count} to recreate")
        compute, profile = ctx.targets.compute, ctx.profile
        location = compute.location()  # the profile's location as the target knows it (by id or name)
        if location is not None:
            profile = profile.model_copy(update={"compute": profile.compute.model_copy(update={"location": location.id})})
        sizes, images, locations = compute.sizes(), compute.images(), [location.id] if location else None
        mapping = map_nodes(nodes, sizes, images, profile, locations)
        pairs = list(zip(nodes, mapping.nodes, strict=True))
        errors, warnings = list(mapping.errors), list(mapping.warnings)
        for node, params in databases:  # each with its step's overrides
            overridden = profile.model_copy(update={
                "sizes": {**profile.sizes, **({node.instance_type: params.size} if params.size else {})},
                "images": {**profile.images, **({DB_IMAGE_NAME: params.image} if params.image else {})},
            })
            one = map_nodes([node], sizes, images, overridden, locations)
            pairs.append((node, one.nodes[0]))
            errors += [f"database {message}" for message in one.errors]
            warnings += [f"database {message}" for message in one.warnings]
        errors += [f"database {name}: {why}" for name, why in refused.items()]
        mapped = {
            node_label(node): {
                "size": choice.size.id if choice.size else None,
                "image": choice.image.id if choice.image else None,
            }
            for node, choice in pairs
        }
        total = plural(len(pairs) + len(refused), "node")
        data = {"nodes": mapped, "databases": [node.name for node, _ in databases], "refused": refused,
                "errors": errors, "warnings": warnings, "location": mapping.location}
        if errors:
            unmappable = sum(1 for _, item in pairs if item.size is None or item.image is None) + len(refused)
            shown = "; ".join(errors[:MAX_SHOWN])
            more = f"; and {len(errors) - MAX_SHOWN} more" if len(errors) > MAX_SHOWN else ""
            return failed(f"{unmappable} of {total} cannot be mapped: {shown}{more}", **data)
        chosen = sorted({entry["size"] for entry in mapped.values()})
        with_databases = f" (with {plural(len(databases), 'database node')})" if databases else ""
        text = f"{total}{with_databases} mapped onto {plural(len(chosen), 'size')} ({', '.join(chosen)})"
        if warnings:
            return warned(f"{text}; {'; '.join(warnings[:MAX_SHOWN])}", **data)
        return passed(text, **data)


class _AnyEnv(dict):
    """Every ``${env:NAME}`` counts as set, to a placeholder: the check only needs to know
    whether a DSN is given, never its value."""

    def __contains__(self, name: object) -> bool:
        return True

    def __missing__(self, name: str) -> str:
        return "set"


def database_nodes(ctx: CheckContext) -> tuple[list[tuple[Node, Any]], dict[str, str]]:
    """(the database as a node, its step's parameters) for every snapshot database a
    ``restore-databases`` step of the playbook would restore on a new node, and the databases
    such a step would refuse (name -> why). A playbook that does not validate gives none
    (``playbook-valid`` names its problems)."""
    try:
        book = load_playbook(ctx.playbook, vars_override=ctx.vars)
    except FailoverError:
        return [], {}
    params_model = ACTIONS.get("restore-databases").Params
    found: dict[str, tuple[Node, Any]] = {}
    refused: dict[str, str] = {}
    for step in book.steps:
        if step.action != "restore-databases":
            continue
        try:
            params = params_model.model_validate(resolve(step.with_, vars=book.vars, outputs={}, env=_AnyEnv()))
        except (FailoverError, ValueError):
            continue  # parameters known only at run time (a step's outputs): the run's plan maps them
        if params.restore_mode != "node":
            continue
        for database in ctx.manifest.primary_databases():
            chosen = not params.select.names or database.name in params.select.names
            if not chosen or engine_for(database.engine) is None:
                continue
            if (problem := node_problem(database)) is not None:
                refused[database.name] = problem
            else:
                found.setdefault(database.id, (database_node(database), params))
    return list(found.values()), refused
