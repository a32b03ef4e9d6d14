"""``node-mapping``: every node a failover would recreate gets a target size and image.

The nodes are the snapshot's running or stopped ones (what ``provision-nodes`` recreates
by default), mapped exactly as its plan maps them (:mod:`failover.mapping`): the
profile's ``sizes`` and ``images`` overrides first, then the target's catalogue in the
profile's location.
"""

from __future__ import annotations

from failover.actions.provision_nodes import PROVISIONED_STATES
from failover.checks.base import (
    CHECKS,
    Check,
    CheckContext,
    Outcome,
    failed,
    passed,
    plural,
    warned,
)
from failover.mapping import map_nodes, node_label

MAX_SHOWN = 5


@CHECKS.register("node-mapping")
class NodeMapping(Check):
    summary = "Every node of the snapshot maps onto a target size and image."
    order = 50
    needs_snapshot = True

    def run(self, ctx: CheckContext) -> Outcome:
        nodes = [node for node in ctx.manifest.of_kind("node") if node.state in PROVISIONED_STATES]
        if not nodes:
            return passed("no running or stopped node in the snapshot")
        if ctx.profile.compute is None:
            return ctx.no_capability("compute", f"the snapshot has {plural(len(nodes), 'node')} to recreate")
        compute, profile = ctx.targets.compute, ctx.profile
        location = compute.location()  # the profile's location as the target knows it (by id or name)
        if location is not None:
            profile = profile.model_copy(update={"compute": profile.compute.model_copy(update={"location": location.id})})
        mapping = map_nodes(nodes, compute.sizes(), compute.images(), profile, [location.id] if location else None)
        mapped = {
            node_label(node): {
                "size": choice.size.id if choice.size else None,
                "image": choice.image.id if choice.image else None,
            }
            for node, choice in zip(nodes, mapping.nodes)
        }
        data = {"nodes": mapped, "errors": mapping.errors, "warnings": mapping.warnings, "location": mapping.location}
        if mapping.errors:
            unmappable = sum(1 for item in mapping.nodes if item.size is None or item.image is None)
            shown = "; ".join(mapping.errors[:MAX_SHOWN])
            more = f"; and {len(mapping.errors) - MAX_SHOWN} more" if len(mapping.errors) > MAX_SHOWN else ""
            return failed(f"{unmappable} of {plural(len(nodes), 'node')} cannot be mapped: {shown}{more}", **data)
        sizes = sorted({entry["size"] for entry in mapped.values()})
        text = f"{plural(len(nodes), 'node')} mapped onto {plural(len(sizes), 'size')} ({', '.join(sizes)})"
        if mapping.warnings:
            return warned(f"{text}; {'; '.join(mapping.warnings[:MAX_SHOWN])}", **data)
        return passed(text, **data)
