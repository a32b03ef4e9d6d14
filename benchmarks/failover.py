"""Benchmark: a whole failover of a 20-node service with 2,000 objects and 200 DNS records,
on emulated clouds. Prints figures; asserts nothing about time.

The source is a ``moto_server`` process (an AWS account) running the service: nodes in
one security group, a bucket, a zone whose A records name the nodes, a Postgres database.
The target: compute is a second ``moto_server`` through libcloud's EC2 driver; storage is
Azurite when it is installed, else libcloud's ``local`` driver; DNS is PowerDNS when it is
installed, else the file DNS driver (``failover.testing.memdns``). The output says which.

As on failover day (the default, ``--source gone``): ``failover inventory``, then ``failover
replicate`` and a database dump on the target, then the source's server stops and ``failover
run standard`` works from the snapshot and the replicas. With ``--source up`` nothing is
replicated beforehand and ``sync-buckets`` copies the bucket from the source during the run.
The CLI runs in this process, through its own code (``failover.cli.demo.Commands``); the
replication is the library's pass (``failover.replicate``), shown as the demo shows it.

Figures, from the run's journal: each step's start and duration; the makespan (the run's
start to its end) and the time from the run's start to healthy; the critical path (the
longest path through the playbook's DAG, each step weighted by its duration: what unlimited
parallelism with no overhead would take) and the makespan over it; the makespan over the
``nodes`` step (issue 16: what the firewall and the rest add to creating the nodes), the
time before that step starts (the steps it needs: ``databases``, for the endpoint rewrite, and with
it the first listing of the target's catalogue) and after it ends, and the makespan over the run's
start to the nodes step's end. Then (unless ``--no-alone``) the run is rolled back and the nodes
step runs alone, in a playbook of its own onto the same target: the makespan over that run's is
issue 16's goal (<= 1.3 at 100 nodes), the reference measured in the same bench.
Also the command's wall time, and the time seeding, inventory and replication took.

    python -m benchmarks.failover                                   # 20 nodes, 2,000 objects, 200 records
    python -m benchmarks.failover --nodes 3 --objects 20 --records 10 --storage local --dns file --json
    python -m benchmarks.failover --nodes 100 --objects 200 --records 120       # issue 16's 100-node run
    python -m benchmarks.failover --nodes 100 --objects 200 --records 120 --firewall after  # attached after

Exit status: 0 the run succeeded and every count matches what was seeded, 1 otherwise,
130 interrupted.
"""

# ruff: noqa: E402 - the imports after the first two come after the path fix below
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # this directory comes first on sys.path then, and this file's name hides the package
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import os
import tempfile
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from failover import demo as world
from failover.cli.common import console, print_json
from failover.cli.demo import Commands, replicate, show, timeline_table
from failover.errors import Interrupted
from failover.testing.emulators import Azurite, EmulatorMissing, PowerDns

SERVICE = "bench-app"
REGION = "us-east-1"
BUCKET = "bench-app-media"
ZONE = "bench.example."
DATABASE = ("bench-db", "postgres")
SEED_WORKERS = 16
STORAGES = ("auto", "azurite", "local")
DNS_SERVERS = ("auto", "powerdns", "file")


@dataclass(frozen=True)
class Scale:
    nodes: int = 20
    objects: int = 2000
    records: int = 200  # record sets created in the zone (the provider's own SOA and NS not counted)
    object_size: int = 10_000

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.objects < 0 or self.records < self.nodes + 1:
            raise ValueError("at least one node, and at least nodes + 1 records (the apex and one per node)")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--nodes", type=int, default=Scale.nodes)
    parser.add_argument("--objects", type=int, default=Scale.objects)
    parser.add_argument("--records", type=int, default=Scale.records)
    parser.add_argument("--object-size", type=int, default=Scale.object_size, help="bytes per object")
    parser.add_argument("--storage", choices=STORAGES, default="auto", help="auto: Azurite if installed, else local disk")
    parser.add_argument("--dns", choices=DNS_SERVERS, default="auto", help="auto: PowerDNS if installed, else the file driver")
    parser.add_argument("--source", choices=("gone", "up"), default="gone", help="gone: the account is terminated before the run")
    parser.add_argument("--parallelism", type=int, default=4, help="the run's --parallelism")
    parser.add_argument("--firewall", choices=("at-creation", "after"), default="at-creation",
                        help="after: the nodes are created without their firewalls and apply-firewall attaches them")
    parser.add_argument("--alone", action=argparse.BooleanOptionalAction, default=True,
                        help="then roll the run back and run the nodes step alone, the goal's reference")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    scale = Scale(args.nodes, args.objects, args.records, args.object_size)
    world.fake_credentials()
    with tempfile.TemporaryDirectory(prefix="failover-bench-") as directory, ExitStack() as stack:
        workdir = Path(directory)
        stack.enter_context(warnings.catch_warnings())
        warnings.filterwarnings("ignore", message=world.LOCAL_DISK_WARNING)
        stack.enter_context(world.temporary_files_in(workdir / "tmp"))
        clouds = stack.enter_context(world.embedded_clouds(workdir))
        storage_label, clouds.storage = storage_target(args.storage, stack, workdir)
        dns_label, clouds.dns = dns_target(args.dns, stack)
        result, timeline = Bench(scale, clouds, args).run()
    result["emulators"] = {"source": "moto_server", "compute": "moto_server (EC2 API, libcloud EC2 driver)",
                           "storage": storage_label, "dns": dns_label}
    if args.json:
        print_json(result)
    else:
        print_figures(result, timeline)
    return result


# -- the target's storage and DNS --------------------------------------------------------------


def storage_target(wanted: str, stack: ExitStack, workdir: Path) -> tuple[str, dict[str, Any]]:
    """(label, storage spec): Azurite when wanted or, for auto, installed; else local disk."""
    if wanted in ("auto", "azurite"):
        try:
            azurite = stack.enter_context(Azurite())
            return "azurite", {"driver": "azure_blobs", "options": azurite.driver_options}
        except EmulatorMissing:
            if wanted == "azurite":
                raise
    (workdir / "target-storage").mkdir()
    return "local", {"driver": "local", "options": {"key": str(workdir / "target-storage")}}


def dns_target(wanted: str, stack: ExitStack) -> tuple[str, dict[str, Any] | None]:
    """(label, DNS spec): PowerDNS when wanted or, for auto, installed; else the file driver (spec None)."""
    if wanted in ("auto", "powerdns"):
        try:
            pdns = stack.enter_context(PowerDns())
            return "powerdns", {"driver": "powerdns", "options": pdns.driver_options}
        except EmulatorMissing:
            if wanted == "powerdns":
                raise
    return "file (failover.testing.memdns)", None


# -- the service on the source -----------------------------------------------------------------


def seed_service(clouds: world.EmbeddedClouds, scale: Scale) -> None:
    """Nodes web-01.. in one security group, the bucket's objects, the zone's records (the apex
    and one A record per node, then TXT records), and a Postgres database."""
    client = clouds.source_client
    addresses = seed_nodes(client("ec2", REGION), scale.nodes)
    seed_objects(client, scale.objects, scale.object_size)
    seed_zone(client("route53", REGION), addresses, scale.records)
    name, engine = DATABASE
    client("rds", REGION).create_db_instance(
        DBInstanceIdentifier=name, Engine=engine, EngineVersion="15.4", DBInstanceClass="db.t3.medium",
        AllocatedStorage=20, MasterUsername="app", MasterUserPassword="bench-password-1", Tags=tags(name),
    )


def tags(name: str, **extra: str) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in {"Name": name, "service": SERVICE, **extra}.items()]


def seed_nodes(ec2: Any, count: int) -> list[str]:
    """``count`` running nodes in the default VPC (so each has a public IP); their IPs, in name order."""
    image = ec2.describe_images(Owners=["amazon"], Filters=[{"Name": "name", "Values": ["*ubuntu*"]}])["Images"][0]["ImageId"]
    group = ec2.create_security_group(
        GroupName="bench-web", Description="web tier",
        TagSpecifications=[{"ResourceType": "security-group", "Tags": tags("bench-web")}],
    )["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[
        {"IpProtocol": "tcp", "FromPort": port, "ToPort": port, "IpRanges": [{"CidrIp": "0.0.0.0/0"}]} for port in (80, 443)
    ])

    def launch(index: int) -> str:
        instance = ec2.run_instances(
            ImageId=image, InstanceType="t3.medium", MinCount=1, MaxCount=1, SecurityGroupIds=[group], UserData=world.USER_DATA,
            TagSpecifications=[{"ResourceType": "instance", "Tags": tags(f"web-{index:02}", role="web")}],
        )["Instances"][0]
        return instance["PublicIpAddress"]

    with ThreadPoolExecutor(SEED_WORKERS) as pool:
        return list(pool.map(launch, range(1, count + 1)))


def seed_objects(client: Any, count: int, size: int) -> None:
    s3 = client("s3", REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_bucket_tagging(Bucket=BUCKET, Tagging={"TagSet": tags(BUCKET)})
    keys = [f"media/{index:06}.bin" for index in range(count)]
    with ThreadPoolExecutor(SEED_WORKERS) as pool:
        list(pool.map(lambda key: s3.put_object(Bucket=BUCKET, Key=key, Body=os.urandom(size)), keys))


def seed_zone(route53: Any, addresses: list[str], records: int) -> None:
    zone_id = route53.create_hosted_zone(Name=ZONE, CallerReference="bench")["HostedZone"]["Id"]
    route53.change_tags_for_resource(ResourceType="hostedzone", ResourceId=zone_id.split("/")[-1], AddTags=tags(ZONE))
    sets = [(ZONE, "A", addresses[0])]
    sets += [(f"web-{index:02}.{ZONE}", "A", address) for index, address in enumerate(addresses, start=1)]
    sets += [(f"txt-{index:03}.{ZONE}", "TXT", f'"bench record {index}"') for index in range(records - len(sets))]
    changes = [{"Action": "CREATE", "ResourceRecordSet": {"Name": name, "Type": kind, "TTL": 300,
                                                          "ResourceRecords": [{"Value": value}]}}
               for name, kind, value in sets]
    route53.change_resource_record_sets(HostedZoneId=zone_id, ChangeBatch={"Changes": changes})


# -- the bench ---------------------------------------------------------------------------------


@dataclass
class Bench:
    scale: Scale
    clouds: world.EmbeddedClouds
    args: argparse.Namespace

    def run(self) -> tuple[dict[str, Any], world.Timeline]:
        """The figures, and the run's timeline."""
        phases: dict[str, float] = {}
        config_file = self.clouds.write_config(service=SERVICE, regions=[REGION])
        commands = Commands(config_file)
        with timed(phases, "seeding"):
            warming = world.warm_up(self.clouds.compute)
            seed_service(self.clouds, self.scale)
        with timed(phases, "inventory"):
            commands.run("inventory")
        with timed(phases, "replication"):
            if self.args.source == "gone":
                replicate(config_file)
            world.place_dump(config_file, *DATABASE)
        if self.args.source == "gone":
            self.clouds.terminate_source()
        warming.join()
        run_args = ("run", self.playbook(config_file.parent), "--target", world.TARGET,
                    "--var", f"health_url={self.clouds.app.url}",
                    "--parallelism", str(self.args.parallelism), "--yes")
        with timed(phases, "run command"):
            succeeded, run = commands.run(*run_args, check=False)
        timeline = world.timeline(run, _definition(config_file, run["run_id"]))
        figures = self.figures(config_file, run, timeline, succeeded, phases)
        if self.args.alone:
            figures["run"].update(self.nodes_alone(commands, config_file, run["run_id"], timeline.makespan_s))
            figures["ok"] = figures["ok"] and figures["run"]["nodes_alone_s"] is not None
        return figures, timeline

    def nodes_alone(self, commands: Commands, config_file: Path, run_id: str, makespan_s: float) -> dict[str, Any]:
        """The reference of issue 16's goal, measured in the same bench: the run rolled back, then
        a playbook of the nodes step alone (``provision-nodes`` as ``standard`` has it, without
        the steps it needs) run onto the same target: its makespan includes what the step pays
        alone (the target's catalogue listed, the firewalls made), which ``standard`` pays in
        the steps before it."""
        commands.run("rollback", run_id, check=False)
        path = config_file.parent / "nodes-alone.yaml"
        step = {"id": "nodes", "action": "provision-nodes"}
        if self.args.firewall == "after":
            step["with"] = {"firewall_at_creation": False}
        import yaml

        path.write_text(yaml.safe_dump({"name": "nodes-alone", "steps": [step]}, sort_keys=False))
        succeeded, alone = commands.run("run", str(path), "--target", world.TARGET,
                                        "--parallelism", str(self.args.parallelism), "--yes", check=False)
        alone_timeline = world.timeline(alone, _definition(config_file, alone["run_id"]))
        alone_s = alone_timeline.makespan_s
        return {
            "nodes_alone_run": {"run_id": alone["run_id"], "status": alone["status"], "error": alone["error"]},
            "nodes_alone_s": round(alone_s, 3) if succeeded else None,
            "makespan_over_nodes_alone": round(makespan_s / alone_s, 3) if succeeded and alone_s else None,
        }

    def playbook(self, directory: Path) -> str:
        """``standard``, or with ``--firewall after`` a copy whose nodes are created without their
        firewalls, which apply-firewall then attaches (the way of drivers that take none at creation)."""
        if self.args.firewall == "at-creation":
            return world.PLAYBOOK
        from importlib import resources

        import yaml

        from failover.playbook import BUILTIN_PACKAGE

        document = yaml.safe_load((resources.files(BUILTIN_PACKAGE) / f"{world.PLAYBOOK}.yaml").read_text())
        for step in document["steps"]:
            if step["action"] == "provision-nodes":
                step["with"] = {**step.get("with", {}), "firewall_at_creation": False}
        path = directory / "standard-firewall-after.yaml"
        path.write_text(yaml.safe_dump(document, sort_keys=False))
        return str(path)

    def figures(
        self, config_file: Path, run: dict[str, Any], timeline: world.Timeline, succeeded: bool, phases: dict[str, float]
    ) -> dict[str, Any]:
        critical_s, critical_steps = world.critical_path(timeline.steps)
        healthy = timeline.ended("healthy")
        steps = {step.id: step for step in timeline.steps}
        nodes_s = steps["nodes"].duration_s if "nodes" in steps else 0.0
        nodes_start = steps["nodes"].start_s if "nodes" in steps else None
        nodes_end = steps["nodes"].end_s if "nodes" in steps else None
        counts = self.counts(config_file, run)
        expected = self.expected()
        return {
            "scale": asdict(self.scale),
            "source": self.args.source,
            "parallelism": self.args.parallelism,
            "firewall": self.args.firewall,
            "phases_s": {name: round(seconds, 3) for name, seconds in phases.items()},
            "run": {
                "run_id": run["run_id"], "status": run["status"], "error": run["error"],
                "command_wall_s": round(phases["run command"], 3),
                "makespan_s": round(timeline.makespan_s, 3),
                "healthy_after_s": None if healthy is None else round(healthy, 3),
                "critical_path_s": round(critical_s, 3),
                "critical_path": critical_steps,
                "makespan_over_critical_path": round(timeline.makespan_s / critical_s, 3) if critical_s else None,
                # issue 16: the whole run against its nodes step alone (goal <= 1.3 at 100 nodes)
                "nodes_step_s": round(nodes_s, 3),
                "firewall_step_s": round(steps["firewall"].duration_s, 3) if "firewall" in steps else None,
                "makespan_over_nodes_step": round(timeline.makespan_s / nodes_s, 3) if nodes_s else None,
                # what the run spends before the nodes step starts (the steps it needs: databases, for the
                # endpoint rewrite) and after it ends (firewall, front door, health, cutover)
                "before_nodes_s": round(nodes_start, 3) if nodes_start is not None else None,
                "after_nodes_s": round(timeline.makespan_s - nodes_end, 3) if nodes_end is not None else None,
                "makespan_over_nodes_end": round(timeline.makespan_s / nodes_end, 3) if nodes_end else None,
            },
            "timeline": [step.to_dict() for step in timeline.steps],
            "counts": counts,
            "expected": expected,
            "ok": succeeded and counts == expected,
        }

    def counts(self, config_file: Path, run: dict[str, Any]) -> dict[str, int]:
        """What the target holds after the run, and what the run says it did."""
        outputs = {step["id"]: step["outputs"] or {} for step in run["steps"]}
        targets = _targets(config_file)
        served = world.dns_answers(targets.dns, ZONE)
        own_sets = sum(1 for key in served if key in (f"{ZONE} SOA", f"{ZONE} NS"))
        stored = sum(1 for _ in targets.storage.iter_objects(BUCKET)) if targets.storage.container_exists(BUCKET) else 0
        return {
            "nodes": len(outputs.get("nodes", {}).get("nodes", {})),
            "database_nodes": len(outputs.get("databases", {}).get("databases", {})),
            "objects_on_target": stored,
            "dns_record_sets_on_target": len(served) - own_sets,
            "dns_sets_cut_over": len(outputs.get("cutover", {}).get("changed", [])),
        }

    def expected(self) -> dict[str, int]:
        return {
            "nodes": self.scale.nodes, "database_nodes": 1, "objects_on_target": self.scale.objects,
            "dns_record_sets_on_target": self.scale.records, "dns_sets_cut_over": self.scale.nodes + 1,
        }


@contextmanager
def timed(phases: dict[str, float], name: str):
    started = time.perf_counter()
    yield
    phases[name] = time.perf_counter() - started


def _targets(config_file: Path) -> Any:
    from failover.config import load_config
    from failover.targets import Targets

    return Targets(load_config(config_file), world.TARGET)


def _definition(config_file: Path, run_id: str) -> dict[str, Any]:
    from failover.config import load_config
    from failover.engine.journal import Journal
    from failover.state import StateStore

    with StateStore(load_config(config_file).state_dir) as store:
        return Journal(store).run(run_id).definition


# -- the report --------------------------------------------------------------------------------


def print_figures(result: dict[str, Any], timeline: world.Timeline) -> None:
    run, scale, emulators = result["run"], result["scale"], result["emulators"]
    console.print()
    console.print(f"[bold]Failover of a {scale['nodes']}-node service[/], {scale['objects']:,} objects of "
                  f"{scale['object_size']:,} bytes, {scale['records']} DNS records; source {result['source']} during the run; "
                  f"storage on {emulators['storage']}, DNS on {emulators['dns']}, compute on {emulators['compute']}.")
    show(timeline_table(timeline, title=f"Run {run['run_id']} ({run['status']}): the timeline from its journal"))
    table = Table(title="Figures", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    before_the_run = {name: seconds for name, seconds in result["phases_s"].items() if name != "run command"}
    rows = [
        ("run start to healthy", _seconds(run["healthy_after_s"])),
        ("makespan (run start to end)", _seconds(run["makespan_s"])),
        ("critical path", f"{_seconds(run['critical_path_s'])} ({' -> '.join(run['critical_path'])})"),
        ("makespan / critical path", f"{run['makespan_over_critical_path']}"),
        ("nodes step; firewall step", f"{_seconds(run['nodes_step_s'])}; {_seconds(run['firewall_step_s'])}"),
        ("makespan / nodes step", f"{run['makespan_over_nodes_step']}"),
        ("before the nodes step; after it", f"{_seconds(run['before_nodes_s'])}; {_seconds(run['after_nodes_s'])}"),
        ("makespan / run start to the nodes step's end", f"{run['makespan_over_nodes_end']}"),
        *([("nodes step alone (its own run, after a rollback)", _seconds(run["nodes_alone_s"])),
           ("makespan / nodes step alone (goal <= 1.3)", f"{run['makespan_over_nodes_alone']}")]
          if "nodes_alone_s" in run else []),
        ("`failover run` wall time", _seconds(run["command_wall_s"])),
        *((f"{name} (before the run)", _seconds(seconds)) for name, seconds in before_the_run.items()),
        *((f"{name}: counted / expected", f"{count} / {result['expected'][name]}") for name, count in result["counts"].items()),
    ]
    for name, value in rows:
        table.add_row(name, value)
    show(table)
    verdict = "[green]ok[/]" if result["ok"] else "[red]counts differ or the run failed[/]"
    console.print(f"Result: {verdict}" + (f": {run['error']}" if run["error"] else ""))


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}s"


if __name__ == "__main__":
    try:
        outcome = main()
    except (KeyboardInterrupt, Interrupted):
        sys.exit(130)
    sys.exit(0 if outcome["ok"] else 1)
