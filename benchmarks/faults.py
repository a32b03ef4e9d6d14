"""Stress: ``failover run standard`` against a target whose every API (EC2 on moto, Azurite,
the PowerDNS API) answers a share of requests with 503, one seed after another, optionally
with busy loops keeping every core loaded. Prints figures; asserts nothing about time.

Each seed gets a fresh :class:`failover.testing.world.EmulatedWorld` (the sample service on a
source account, an empty target behind fault proxies seeded with the seed), takes an
inventory (the source is not behind a proxy), runs the real CLI, and then counts on the
emulators themselves, by name, what exists on the target: live nodes on moto EC2, security
groups, containers, zones. A duplicate is a name there more than once; an unjournaled
resource is one the run's journal does not name.

    python -m benchmarks.faults                          # seeds 1-5, 20% of target requests answered 503
    python -m benchmarks.faults --seeds 1-10 --busy 2    # and two busy loops (one per core) meanwhile
    python -m benchmarks.faults --fail-ratio 0.3 --json

Exit status: 0 when every seed's run succeeded with no duplicate and nothing unjournaled,
1 otherwise, 130 interrupted.
"""

# ruff: noqa: E402 - the imports after the first two come after the path fix below
from __future__ import annotations

import sys
from pathlib import Path

if __name__ == "__main__":  # this directory comes first on sys.path then, and this file's name hides the package
    sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

import argparse
import json
import multiprocessing
import os
import time
from collections import Counter
from contextlib import contextmanager
from typing import Any

from rich.table import Table

from failover.cli.common import console, print_json
from failover.engine.journal import Journal
from failover.state import StateStore
from failover.testing.world import EmulatedWorld


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", default="1-5", help="seeds, as 1-5 or 1,4,9 (default 1-5)")
    parser.add_argument("--fail-ratio", type=float, default=0.2, help="share of target requests answered 503")
    parser.add_argument("--storage", choices=("azurite", "s3", "local"), default="azurite")
    parser.add_argument("--busy", type=int, default=0, help="busy-loop processes running meanwhile (0: none)")
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    return parser.parse_args(argv)


def seeds_of(text: str) -> list[int]:
    seeds: list[int] = []
    for part in text.split(","):
        first, _, last = part.partition("-")
        seeds += range(int(first), int(last or first) + 1)
    return seeds


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results = []
    with busy_loops(args.busy):
        for seed in seeds_of(args.seeds):
            results.append(one_seed(seed, args.fail_ratio, args.storage))
            if not args.json:
                console.print(f"seed {seed}: {'ok' if results[-1]['ok'] else 'FAILED'}")
    document = {
        "fail_ratio": args.fail_ratio, "storage": args.storage, "busy_loops": args.busy, "cpus": os.cpu_count(),
        "seeds": results, "passed": sum(result["ok"] for result in results), "ok": all(r["ok"] for r in results),
    }
    if args.json:
        print_json(document)
    else:
        print_table(document)
    return document


def one_seed(seed: int, fail_ratio: float, storage: str) -> dict[str, Any]:
    started = time.monotonic()
    load_before = os.getloadavg()[0]
    with EmulatedWorld(storage=storage, fail_ratio=fail_ratio, seed=seed) as world:
        taken = world.failover("inventory")
        if taken.code != 0:
            raise SystemExit(f"seed {seed}: inventory failed: {taken.stderr}")
        for proxy in world.proxies.values():
            proxy.reset_stats()
        run_started = time.monotonic()
        ran = world.failover("run", "standard", "--target", world.target, "--yes", "--json", *world.run_vars,
                             timeout=900)
        run_s = time.monotonic() - run_started
        document = _json(ran.stdout)
        stats = {name: proxy.stats() for name, proxy in world.proxies.items()}
        census, ids = target_census(world)
        journaled = {item["id"] for entry in document.get("steps", []) for item in entry.get("created", [])}
        status = world.failover("status", document["run_id"], "--json").json() if "run_id" in document else {}
        retried = step_retries(world, document.get("run_id"))
    duplicates = {kind: sorted(name for name, count in counts.items() if count > 1) for kind, counts in census.items()}
    unjournaled = sorted(ids - journaled)  # containers and zones: the dumps' container was there before the run
    attempts = {entry["id"]: entry["attempts"] for entry in status.get("steps", [])}
    ok = ran.code == 0 and not any(duplicates.values()) and not unjournaled
    return {
        "seed": seed, "ok": ok, "code": ran.code, "status": document.get("status"), "error": document.get("error"),
        "run_s": round(run_s, 1), "total_s": round(time.monotonic() - started, 1),
        "load_1m": [round(load_before, 1), round(os.getloadavg()[0], 1)],
        "requests": {name: stat.requests for name, stat in stats.items()},
        "503s": {name: stat.failed for name, stat in stats.items()},
        "step_attempts": {step_id: count for step_id, count in attempts.items() if count > 1},
        "step_retries": retried,
        "duplicates": duplicates, "unjournaled": unjournaled,
    }


def step_retries(world: EmulatedWorld, run_id: str | None) -> list[str]:
    """Why steps were tried again (request retries absorbed the other 503s): ``step: error``."""
    if run_id is None:
        return []
    with StateStore(world.state_dir) as store:
        events = Journal(store).events(run_id)
    return [f"{event['step_id']}: {event['detail']['error']}" for event in events if event["event"] == "step-retry"]


def target_census(world: EmulatedWorld) -> tuple[dict[str, Counter[str]], set[str]]:
    """How many of each name the target holds, read from the emulators (never through the
    proxies), and the ids of its nodes and security groups (which the journal names)."""
    instances = world.target_instances()
    described = world.compute_client().describe_security_groups()["SecurityGroups"]
    groups = [group for group in described if group["GroupName"] != "default"]
    counts = {
        "node": Counter(_name_tag(node) for node in instances),
        "firewall": Counter(group["GroupName"] for group in groups),
        "container": Counter(world.containers()),
        "zone": Counter(world.zones()),
    }
    return counts, {node["InstanceId"] for node in instances} | {group["GroupId"] for group in groups}


def _name_tag(node: dict[str, Any]) -> str:
    return next((tag["Value"] for tag in node.get("Tags", []) if tag["Key"] == "Name"), node["InstanceId"])


def _json(text: str) -> dict[str, Any]:
    try:
        return json.loads(text)
    except ValueError:
        return {}


@contextmanager
def busy_loops(count: int):
    """``count`` processes spinning on a core each until the block ends."""
    processes = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(count)]
    for process in processes:
        process.start()
    try:
        yield
    finally:
        for process in processes:
            process.terminate()
            process.join()


def _spin() -> None:
    while True:
        pass


def print_table(document: dict[str, Any]) -> None:
    table = Table(title=f"run standard, {document['fail_ratio']:.0%} of target requests answered 503, "
                        f"{document['busy_loops']} busy loops on {document['cpus']} cores")
    for column in ("seed", "result", "run s", "total s", "load 1m", "503s (compute/storage/dns)", "requests",
                   "steps retried", "duplicates", "unjournaled"):
        table.add_column(column)
    for r in document["seeds"]:
        table.add_row(
            str(r["seed"]), "ok" if r["ok"] else f"FAILED (exit {r['code']}): {r['error']}", str(r["run_s"]),
            str(r["total_s"]), " -> ".join(map(str, r["load_1m"])),
            "/".join(str(r["503s"].get(name, 0)) for name in ("compute", "storage", "dns")),
            str(sum(r["requests"].values())),
            ", ".join(f"{step} x{count}" for step, count in r["step_attempts"].items()) or "none",
            str(sum(len(names) for names in r["duplicates"].values())), str(len(r["unjournaled"])),
        )
    console.print(table)
    console.print(f"{document['passed']} of {len(document['seeds'])} seeds passed")


if __name__ == "__main__":
    try:
        sys.exit(0 if main()["ok"] else 1)
    except KeyboardInterrupt:
        sys.exit(130)
