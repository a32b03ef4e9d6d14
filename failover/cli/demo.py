"""``failover demo``: the whole story offline, on embedded mock clouds (``failover.demo``).

A mock AWS account runs the sample service, and its provider gives a day's notice: ``failover
evacuate --deadline 24h`` snapshots it and gets its zone and bucket onto the target (with a
database dump where replication keeps them), and keeps making passes until the account is
terminated, sooner than announced, after the first pass: its server stops, and the evacuation
ends there. ``failover drill`` proves the playbook in names of its own and tears it down.
``failover check`` says the service can leave all the same, and ``failover run standard``
moves it to the other clouds, from the snapshot and the replicas. The commands run in this
process, through the CLI's own code, as a user would type them. The demo then prints the
run's timeline from its journal and checks the outcome: the new nodes, DNS answering with
their addresses, every object's bytes.

Every process and file of the demo goes away at the end, on an error or Ctrl-C too
(``--keep DIR`` keeps the files).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from failover import demo as world
from failover.cli.common import JsonOption, console, print_json
from failover.cli.replicate import TransferProgress, print_summary
from failover.errors import ExitCode, InputError, Interrupted, OperationFailed, Problem

app = typer.Typer()

BAR_WIDTH = 40
MIN_BAR_WIDTH = 16
TIMELINE_COLUMNS_WIDTH = 66  # what the timeline's other columns take
LOG_WIDTH = 120  # of tables when stderr is not a terminal
# module -> the package that brings it: the embedded AWS accounts, libcloud's local storage driver
DEMO_PACKAGES = {"moto": "moto[server]", "flask": "moto[server]", "fasteners": "fasteners"}
STATUS_STYLES = {"succeeded": "green", "failed": "red", "interrupted": "yellow", "running": "yellow"}


@app.command()
def demo(
    keep: Annotated[
        Path | None,
        typer.Option("--keep", metavar="DIR", show_default=False,
                     help="Keep the demo's files (config, state, target storage and DNS) in DIR, a new directory."),
    ] = None,
    source: Annotated[
        str,
        typer.Option("--from", metavar="SOURCE",
                     help="How the source is read: aws (a mock AWS account) or libcloud (libcloud drivers: an "
                          "EC2-compatible compute API, objects on disk, DNS in a zone file)."),
    ] = "aws",
    json_out: JsonOption = False,
) -> None:
    """The whole story offline on embedded mock clouds: a sample service on a mock AWS account is
    evacuated before the account is terminated (``--from libcloud``: read through libcloud drivers, inventoried
    and replicated), and the service fails over to other clouds."""
    _check_source(source)
    _check_packages()
    _check_keep(keep)
    world.fake_credentials()
    warnings.filterwarnings("ignore", message=world.LOCAL_DISK_WARNING)
    story = Story()
    with _workdir(keep) as workdir, world.temporary_files_in(workdir / "tmp"), \
            world.embedded_clouds(workdir, source) as clouds:
        report = story.tell(clouds)
    if json_out:
        print_json(report)
    else:
        print_report(report, story.timeline)
    if not report["ok"]:
        raise OperationFailed(f"the failover did not succeed: {report['run']['error'] or 'see the checks above'}")


def _check_packages() -> None:
    missing = [package for module, package in DEMO_PACKAGES.items() if importlib.util.find_spec(module) is None]
    if missing:
        raise OperationFailed(f"the demo needs {', '.join(missing)}: pip install 'failover[demo]'")


def _check_source(source: str) -> None:
    if source not in world.SOURCES:
        raise InputError([Problem(file="arguments", field="--from",
                                  message=f"{source!r} is not a demo source (known: {', '.join(world.SOURCES)})")])


def _check_keep(keep: Path | None) -> None:
    if keep is not None and keep.exists() and (not keep.is_dir() or any(keep.iterdir())):
        raise InputError([Problem(file="arguments", field="--keep", message=f"{keep} exists and is not an empty directory")])


@contextlib.contextmanager
def _workdir(keep: Path | None) -> Iterator[Path]:
    if keep is not None:
        keep.mkdir(parents=True, exist_ok=True)
        yield keep.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="failover-demo-") as directory:
        yield Path(directory)


# -- the story --------------------------------------------------------------------------------


@dataclass
class Story:
    """Tells the story chapter by chapter on stderr, timing each; ``tell`` returns the report."""

    phases: list[dict[str, Any]] = field(default_factory=list)
    timeline: world.Timeline | None = None
    chapters: int = 0
    _started: float = field(default_factory=time.monotonic)

    def tell(self, clouds: world.EmbeddedClouds) -> dict[str, Any]:
        clouds.tls = world.write_demo_certificate(clouds.workdir)
        config_file = clouds.write_config()
        self.phases.append({"name": "start the clouds", "seconds": round(time.monotonic() - self._started, 3)})
        console.print(f"[bold]failover demo[/]: every cloud runs on this machine; the config is {escape(str(config_file))}")
        commands = Commands(config_file)

        through_libcloud = clouds.source_kind == "libcloud"
        with self.chapter("seed", LIBCLOUD_SEED if through_libcloud else SEED):
            warming = world.warm_up(clouds.compute)
            world.seed_sample_service(clouds.source_client)
            world.seed_https_front_door(clouds.source_client)
            expected_objects = world.source_objects(clouds.source_client("s3"), world.BUCKET)
            if through_libcloud:
                clouds.copy_to_libcloud_source()
        if through_libcloud:
            with self.chapter("inventory", LIBCLOUD_INVENTORY):
                taken = commands.run("inventory")
                snapshot = taken["snapshot"]
                console.print(f"   snapshot {snapshot['id']}: {_counts(snapshot['counts'])}")
            with self.chapter("replicate", REPLICATE):
                # read through libcloud, the service has no database to dump
                summary = _replication_summary(replicate(config_file).to_dict(), None)
            with self.chapter("terminate", TERMINATE.format(url=clouds.source.url)):
                clouds.terminate_source()
                warming.join()
        else:
            def terminate_after_the_first_pass(event: dict[str, Any]) -> None:
                if event["event"] == "pass_done" and event["pass"] == 1:
                    console.print(f"\n   {TERMINATE.format(url=clouds.source.url)}")
                    clouds.terminate_source()

            with self.chapter("notice", NOTICE.format(deadline=world.EVACUATION_DEADLINE)):
                evacuation = commands.evacuate("--target", world.TARGET, "--deadline", world.EVACUATION_DEADLINE,
                                               on_event=terminate_after_the_first_pass)
                warming.join()
                snapshot = world.stored_snapshot(config_file, evacuation["snapshot"]["id"])
                console.print(f"   snapshot {snapshot['id']}: {_counts(snapshot['counts'])}")
                dump = world.place_dump(config_file, "orders-db", "postgres")
                console.print(f"   and the newest dump of orders-db, stored as {escape(dump)}")
                summary = _evacuation_summary(evacuation, dump)
        with self.chapter("drill", DRILL):
            drill = commands.run("drill", world.PLAYBOOK, "--target", world.TARGET, "--var", f"health_url={clouds.app.url}")
            console.print(f"   recovery time {drill['rto_s']:.1f}s (objective {drill['rto_objective_s'] / 60:.0f}m), "
                          f"torn down in {drill['teardown_s']:.1f}s, the target as before: {_yes(drill['clean'])}")
        with self.chapter("ready", READY):
            ready = commands.run("check", world.PLAYBOOK, "--target", world.TARGET)
        with self.chapter("failover", FAILOVER), world.SourceWatch(clouds.source.url) as watch:
            run_args = ("run", world.PLAYBOOK, "--target", world.TARGET, "--var", f"health_url={clouds.app.url}", "--yes")
            succeeded, run = commands.run(*run_args, check=False)
        with self.chapter("check"):
            report = self.outcome(clouds, config_file, run, watch, expected_objects)

        report.update(snapshot=snapshot, replication=summary,
                      drill=_drill_summary(drill), check=_check_summary(ready))
        report["ok"] = succeeded and report["ok"] and drill["clean"] and ready["ready"]
        report["elapsed_s"] = round(time.monotonic() - self._started, 3)
        report["phases"] = self.phases
        return report

    @contextlib.contextmanager
    def chapter(self, name: str, text: str | None = None) -> Iterator[None]:
        if text is not None:
            self.chapters += 1
            console.print(f"\n[bold]{self.chapters}.[/] {text}")
        started = time.monotonic()
        yield
        self.phases.append({"name": name, "seconds": round(time.monotonic() - started, 3)})

    def outcome(self, clouds: world.EmbeddedClouds, config_file: Path, run: dict[str, Any], watch: world.SourceWatch,
                expected_objects: dict[str, world.SourceObject]) -> dict[str, Any]:
        """The report's facts: the run and its timeline from the journal, and what is on the targets now."""
        definition, manifest = _journaled(config_file, run)
        self.timeline = world.timeline(run, definition)
        targets = _targets(config_file)
        outputs = {step["id"]: step["outputs"] or {} for step in run["steps"]}
        nodes = _nodes(outputs, manifest)
        changed = outputs.get("cutover", {}).get("changed", [])
        served = world.dns_answers(targets.dns, world.ZONE)
        front_door = _front_door(outputs)
        new_ips = {node["new_ip"] for node in nodes if node["new_ip"]} | {lb["address"] for lb in front_door if lb["address"]}
        dns = {"changed": changed, "served": served, "rewritten_to_new_ips": world.check_cutover(changed, served, new_ips)}
        objects = world.verify_objects(targets.storage, world.BUCKET, expected_objects)
        objects["read_from"] = outputs.get("data", {}).get(world.BUCKET, {}).get("source")
        source = {**watch.to_dict(), "terminated": not world.answers(clouds.source.url),
                  "provider": manifest.source.provider}
        return {
            "service": manifest.service,
            "ok": objects["ok"] and dns["rewritten_to_new_ips"] and not source["reachable_during_run"],
            "source": source,
            "run": _run_summary(run, self.timeline),
            "timeline": [step.to_dict() for step in self.timeline.steps],
            "nodes": nodes,
            "front_door": front_door,
            "dns": dns,
            "objects": objects,
            "health": outputs.get("healthy") or None,
        }


SEED = ("A mock AWS account (moto_server) runs [bold]social-app[/]: web nodes, a worker, a reporting node in a second "
        "region, a bucket, a zone, a Postgres database, an HTTPS load balancer (app.social.example), a certificate, "
        "a queue and a table; "
        "a staging service beside it.")
INVENTORY = "Every region and service of the account read into a snapshot, kept off the provider:"
LIBCLOUD_SEED = ("The same service on a cloud failover reads only through [bold]libcloud[/] (source.provider: libcloud): "
                 "its nodes behind an EC2-compatible compute API (moto_server, libcloud's EC2 driver), its bucket as a "
                 "container on disk (libcloud's local driver), its zone in a zone file (a libcloud DNS driver).")
LIBCLOUD_INVENTORY = ("The nodes selected by their tags, the container and the zone by name, read through the three "
                      "libcloud drivers into the same provider-neutral snapshot:")
REPLICATE = "Replicas kept on the target ahead of time: the bucket and the zone, incrementally and verified,"
NOTICE = ("[bold]The provider gives notice[/]: the account goes within {deadline}. `evacuate` snapshots every region "
          "and service, then gets the zone and the bucket onto the target (most important first, newest objects "
          "first), in passes until the deadline or until the account goes:")
DRILL = ("A drill, the account gone (a drill never needs it): the real playbook into names of their own (drill-social-app-..., "
         "drill.social.example.), health-checked, timed, then torn down:")
TERMINATE = "[bold red]The account is terminated[/]: its server stops; nothing answers at {url} any more."
READY = "Is failover possible without the account? `check` reads only the state and the target:"
FAILOVER = ("The service fails over with the built-in [bold]standard[/] playbook, from the snapshot and the replicas "
            "alone, onto other clouds: compute on a second provider (EC2 API, through libcloud), storage on local disk, "
            "DNS in a zone file; a local app answers the health check for the new nodes.")


@dataclass
class Commands:
    """``failover`` commands run in this process through the CLI's own code, as typed (plus
    ``--config`` and ``--json``); what they tell people goes to stderr as usual."""

    config_file: Path

    def evacuate(self, *args: str, on_event: Any) -> dict[str, Any]:
        """``failover evacuate``'s summary (the last of its JSON lines); ``on_event`` gets each
        event as it is printed; what it tells people goes to stderr."""
        from failover.cli import main

        console.print(f"   [dim]$ failover evacuate {escape(' '.join(args))}[/]")
        captured = EventTap(on_event)
        with contextlib.redirect_stdout(captured):
            code = main.run(["evacuate", *args, "--config", str(self.config_file), "--json"])
        if code == ExitCode.INTERRUPTED:
            raise Interrupted("the demo was interrupted during `failover evacuate`; its clouds are stopped")
        lines = captured.getvalue().strip().splitlines()
        if code != ExitCode.OK or not lines:
            raise OperationFailed(f"`failover evacuate` failed (exit {code}): its error is above")
        return json.loads(lines[-1])

    def run(self, *args: str, check: bool = True) -> Any:
        """The command's JSON document; with ``check=False``, ``(succeeded, document)``."""
        from failover.cli import main

        console.print(f"   [dim]$ failover {escape(' '.join(args))}[/]")
        captured = io.StringIO()
        with contextlib.redirect_stdout(captured):
            code = main.run([*args, "--config", str(self.config_file), "--json"])
        if code == ExitCode.INTERRUPTED:
            raise Interrupted(f"the demo was interrupted during `failover {args[0]}`; its clouds are stopped")
        text = captured.getvalue().strip()
        if not text or (check and code != ExitCode.OK):
            raise OperationFailed(f"`failover {args[0]}` failed (exit {code}): its error is above")
        document = json.loads(text)
        return document if check else (code == ExitCode.OK, document)


class EventTap(io.StringIO):
    """Standard output that hands each JSON line to ``on_event`` as it is written."""

    def __init__(self, on_event: Any) -> None:
        super().__init__()
        self.on_event = on_event
        self._partial = ""

    def write(self, text: str) -> int:
        written = super().write(text)
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.strip():
                self.on_event(json.loads(line))
        return written


def replicate(config_file: Path) -> Any:
    """``failover replicate --target fallback`` as the command shows it (its progress and
    tables on stderr), the pass made by the library (``world.replicate_ahead``)."""
    console.print(f"   [dim]$ failover replicate --target {world.TARGET}[/]")
    with TransferProgress() as progress:
        result = world.replicate_ahead(config_file, progress)
    print_summary(result)
    if not result.ok:
        raise OperationFailed(f"`failover replicate` failed: {'; '.join(result.failures)}")
    return result


def _yes(value: bool) -> str:
    return "[green]yes[/]" if value else "[red]no[/]"


def _drill_summary(document: dict[str, Any]) -> dict[str, Any]:
    fields = ("drill", "run", "status", "rto_s", "rto_objective_s", "teardown_s", "clean")
    return {key: document.get(key) for key in fields}


def _check_summary(document: dict[str, Any]) -> dict[str, Any]:
    return {"ready": document["ready"], "counts": document["counts"],
            "checks": {check["name"]: check["status"] for check in document["checks"]}}


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{kind.replace('_', ' ')}: {count}" for kind, count in counts.items() if count)


def _targets(config_file: Path) -> Any:
    from failover.config import load_config
    from failover.targets import Targets

    return Targets(load_config(config_file), world.TARGET)


def _journaled(config_file: Path, run: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The playbook the run ran, as journaled, and the snapshot it worked from."""
    from failover.config import load_config
    from failover.engine.journal import Journal
    from failover.state import StateStore

    config = load_config(config_file)
    with StateStore(config.state_dir) as store:
        return Journal(store).run(run["run_id"]).definition, store.load_snapshot(config.service, run["snapshot"])[1]


def _front_door(outputs: dict[str, Any]) -> list[dict[str, Any]]:
    """Each load balancer's counterpart on the target: where it answers, its listeners and how
    each HTTPS one got its certificate."""
    balancers = outputs.get("front-door", {}).get("load_balancers", {})
    return [
        {"source_id": source_id, "name": entry["name"], "via": entry["via"], "address": entry.get("address"),
         "old_dns_name": entry.get("dns_name"), "dns_names": entry.get("dns_names", []),
         "listeners": [{"protocol": item["protocol"], "port": item["port"], "tls": item["tls"],
                        "backends": len(item["backends"])} for item in entry.get("listeners", [])],
         "refused": entry.get("refused", [])}
        for source_id, entry in sorted(balancers.items())
    ]


def _nodes(outputs: dict[str, Any], manifest: Any) -> list[dict[str, Any]]:
    """Each new node beside the source resource it replaces: the nodes, then the database nodes."""
    nodes = [_node_row(entry, manifest) for entry in outputs.get("nodes", {}).get("nodes", {}).values()]
    databases = outputs.get("databases", {}).get("databases", {})
    return [*sorted(nodes, key=lambda node: node["source_name"]),
            *(_database_row(name, entry, manifest) for name, entry in sorted(databases.items()))]


def _node_row(entry: dict[str, Any], manifest: Any) -> dict[str, Any]:
    node = manifest.find("node", entry["source_id"])
    return {
        "kind": "node", "source_name": entry["source_name"], "source_id": entry["source_id"], "old_ip": _old_ip(manifest, node),
        "name": entry["name"], "id": entry["id"], "new_ip": entry["public_ip"], "size": entry["size"], "image": entry["image"],
    }


def _database_row(name: str, entry: dict[str, Any], manifest: Any) -> dict[str, Any]:
    database = next((db for db in manifest.of_kind("database") if db.name == name), None)
    endpoint = database.endpoint.address if database is not None and database.endpoint else None
    return {
        "kind": "database", "source_name": name, "source_id": database.id if database else None, "old_ip": endpoint,
        "name": entry.get("node_name"), "id": entry.get("node_id"), "new_ip": entry.get("public_ip"),
        "size": None, "image": None, "dump": f"{entry['dump_container']}/{entry['dump_key']}",
    }


def _old_ip(manifest: Any, node: Any) -> str | None:
    """The node's address on AWS: its Elastic IP, else its public IP, else its private one."""
    if node is None:
        return None
    elastic = next((address.ip for address in manifest.of_kind("address") if address.attached_to == node.id), None)
    return elastic or node.public_ip or node.private_ip


def _run_summary(run: dict[str, Any], timeline: world.Timeline) -> dict[str, Any]:
    healthy = timeline.ended("healthy")
    return {
        "run_id": run["run_id"], "playbook": run["playbook"], "target": run["target"], "snapshot": run["snapshot"],
        "status": run["status"], "error": run["error"], "started_at": run["started_at"], "ended_at": run["ended_at"],
        "duration_s": round(timeline.makespan_s, 3),
        "healthy_after_s": None if healthy is None else round(healthy, 3),
    }


def _replication_summary(document: dict[str, Any], dump: str | None) -> dict[str, Any]:
    buckets = document.get("buckets", {}).get("items", [])
    fields = ("bucket", "container", "objects", "copied", "bytes")
    return {
        "buckets": [{key: bucket.get(key) for key in fields} for bucket in buckets],
        "dump": dump,
        "elapsed_s": document.get("elapsed_s"),
    }


def _evacuation_summary(summary: dict[str, Any], dump: str) -> dict[str, Any]:
    fields = ("bucket", "container", "objects", "copied", "bytes", "complete")
    return {
        "buckets": [{key: bucket.get(key) for key in fields} for bucket in summary["buckets"]],
        "dump": dump, "deadline": summary["deadline"], "passes": summary["passes"], "complete": summary["complete"],
        "stopped_by": summary["stopped_by"],
        "zones": [zone["zone"] for zone in summary.get("zones", {}).get("items", [])],
    }


# -- the report, for people -------------------------------------------------------------------


def print_report(report: dict[str, Any], timeline: world.Timeline | None) -> None:
    if timeline is not None:
        console.print()
        show(timeline_table(timeline, title=f"Run {report['run']['run_id']}: the timeline from its journal"))
    show(nodes_table(report["nodes"]))
    for lb in report.get("front_door", []):
        listeners = ", ".join(f"{item['protocol']}:{item['port']}" + (f" (certificate: {item['tls']})" if item["tls"] else "")
                              for item in lb["listeners"])
        console.print(f"Front door: {escape(lb['old_dns_name'] or lb['source_id'])} -> [bold]{escape(lb['name'])}[/] "
                      f"at {lb['address']} ({'a node running HAProxy' if lb['via'] == 'node' else 'the loadbalancer driver'}), "
                      f"{listeners}, in front of the new nodes")
    for change in report["dns"]["changed"]:
        console.print(f"DNS: {change['name']} {change['type']} {', '.join(change['before'])} -> "
                      f"[bold]{', '.join(change['after'])}[/] (ttl {change['ttl']}), served by the target DNS now")
    objects = report["objects"]
    console.print(f"Data: {objects['verified']} of {objects['expected']} objects of {objects['bucket']} verified byte for byte "
                  f"in {objects['container']} on the target (read from the {objects['read_from']}).")
    source = report["source"]
    reached = "[red]answered[/]" if source["reachable_during_run"] else "never answered"
    console.print(f"Source: {source['endpoint']} {reached} during the run ({source['probes_during_run']} knocks).")
    run = report["run"]
    verdict = "[bold green]back online[/]" if report["ok"] else "[bold red]not back online[/]"
    healthy = f", healthy after {run['healthy_after_s']:.1f}s" if run["healthy_after_s"] is not None else ""
    console.print(f"\n{report['service']} is {verdict} elsewhere: run {run['status']} in {run['duration_s']:.1f}s{healthy}; "
                  f"the whole demo took {report['elapsed_s']:.1f}s.")


def show(table: Table) -> None:
    """A table at the terminal's width; in a log or a pipe, wider than rich's default 80 columns."""
    wide = console if console.is_terminal else Console(stderr=True, highlight=False, width=max(console.width, LOG_WIDTH))
    wide.print(table)


def timeline_table(timeline: world.Timeline, *, title: str, width: int | None = None) -> Table:
    """Each step's start, duration and a bar on the run's time axis (``width`` characters, by
    default what the console has room for)."""
    room = console.width if console.is_terminal else LOG_WIDTH
    width = width or min(BAR_WIDTH, max(MIN_BAR_WIDTH, room - TIMELINE_COLUMNS_WIDTH))
    span = max(timeline.makespan_s, max((step.end_s or 0.0 for step in timeline.steps), default=0.0), 1e-9)
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD)
    for column, justify in (("step", "left"), ("action", "left"), ("status", "left"), ("start", "right"),
                            ("duration", "right")):
        table.add_column(column, justify=justify, no_wrap=True)
    table.add_column(f"0 … {span:.1f}s", min_width=width, no_wrap=True)
    for step in timeline.steps:
        style = STATUS_STYLES.get(step.status, "dim")
        start = "" if step.start_s is None else f"{step.start_s:.2f}s"
        duration = "" if step.start_s is None else f"{step.duration_s:.2f}s"
        table.add_row(escape(step.id), step.action, f"[{style}]{step.status}[/]", start, duration,
                      f"[{style}]{bar(step, span, width)}[/]")
    return table


def bar(step: world.StepTime, span: float, width: int) -> str:
    if step.start_s is None:
        return ""
    offset = min(width - 1, round(step.start_s / span * width))
    length = max(1, round(step.duration_s / span * width))
    return " " * offset + "█" * min(length, width - offset)


def nodes_table(nodes: list[dict[str, Any]]) -> Table:
    table = Table(title="The service's nodes, on the target now", title_justify="left", box=box.SIMPLE_HEAD)
    for column in ("node", "address on AWS", "new node", "new IP", "size"):
        table.add_column(column, no_wrap=True)
    for node in nodes:
        database = node["kind"] == "database"
        label = f"{node['source_name']} (database)" if database else node["source_name"]
        old = "an RDS endpoint" if database else node["old_ip"] or ""
        table.add_row(escape(label), old, node["id"] or "", node["new_ip"] or "", node["size"] or "")
    return table
