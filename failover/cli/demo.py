"""``failover demo``: the story offline, on embedded mock clouds."""

from __future__ import annotations

import contextlib
import logging
import tempfile
import time
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.table import Table

from failover.cli.common import DebugOption, JsonOption, Tasks, console, print_json
from failover.errors import OperationFailed

app = typer.Typer()


@app.command()
def demo(
    state: Annotated[
        Optional[Path], typer.Option("--state", help="Keep the demo's state here (default: a temporary directory).")
    ] = None,
    json_out: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """The whole story offline on embedded mock clouds: a sample service on a mock AWS, inventoried."""
    try:
        from moto import mock_aws
    except ImportError:
        raise OperationFailed("the demo needs moto: pip install 'failover[demo]'") from None
    import boto3

    from failover import demo as sample
    from failover.config import Config
    from failover.inventory import take_snapshot
    from failover.state import StateStore

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    sample.fake_credentials()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="failover-demo-") as tmp, mock_aws():
        state_dir = state or Path(tmp) / "state"
        console.print("[bold]1.[/] A mock AWS account runs [bold]social-app[/]: web nodes, a worker, a bucket, a zone, "
                      "a Postgres database, a load balancer, a certificate, a queue and a table; a staging service beside it.")
        session = boto3.session.Session()
        with console.status("seeding the mock account") if console.is_terminal else contextlib.nullcontext():
            seeded = sample.seed_sample_service(lambda svc, region: session.client(svc, region_name=region))
        config = Config.model_validate({**sample.sample_config(state_dir), "path": Path(tmp) / "failover.yaml"})
        console.print("[bold]2.[/] failover inventory: every region and service read in parallel.")
        with StateStore(config.state_dir) as store, Tasks("inventory") as progress:
            info, manifest = take_snapshot(config, store, progress)
        elapsed = time.monotonic() - started
        if json_out:
            print_json({"snapshot": info.to_dict(), "manifest": manifest.to_dict(), "elapsed_s": round(elapsed, 3)})
            return
        table = Table(title=f"Snapshot {info.id}", title_justify="left")
        for column in ("kind", "name", "region", "detail"):
            table.add_column(column)
        for r in manifest.resources:
            table.add_row(r.kind, r.name, r.region, _detail(r))
        for u in manifest.unsupported:
            table.add_row("[yellow]unsupported[/]", u.name or u.id, u.region or "", u.type)
        console.print(table)
        console.print(f"[bold]3.[/] {len(manifest.resources)} resources of social-app kept off the provider "
                      f"({len(seeded['nodes'])} us-east-1 nodes seeded; the staging neighbour left out) in {elapsed:.1f}s.")


def _detail(r) -> str:
    if r.kind == "node":
        return f"{r.instance_type} ({r.vcpus} vCPU, {r.memory_mib} MiB), {r.image_name or r.image_id}, ip {r.public_ip}"
    if r.kind == "bucket":
        return f"{r.objects} objects, {r.bytes} bytes, versioning {'on' if r.versioning else 'off'}"
    if r.kind == "dns_zone":
        return f"{len(r.records)} records"
    if r.kind == "firewall":
        return f"{len(r.rules)} rules"
    if r.kind == "database":
        return f"{r.engine} {r.engine_version}, {r.instance_class}"
    if r.kind == "volume":
        return f"{r.size_gib} GiB {r.volume_type}, attached to {r.attached_to}"
    if r.kind == "load_balancer":
        return f"{r.scheme}, {len(r.listeners)} listeners, {len(r.targets)} targets"
    if r.kind == "address":
        return f"{r.ip} -> {r.attached_to}"
    if r.kind == "network":
        return f"{r.cidr}, {len(r.subnets)} subnets"
    if r.kind == "certificate":
        return f"{', '.join(r.domains)} ({r.status})"
    return ""

