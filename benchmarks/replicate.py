"""Benchmark: failover's bucket replication against ``rclone copy`` on the same pair.

The source is S3 (a ``moto_server`` process) holding two buckets, many small objects and
a few large ones; the targets are Azure Blob storage (Azurite) and S3 again (a second
``moto_server``, through libcloud's S3 driver). For each target and bucket, in the same
run: failover's ``Replicator`` (as ``failover replicate`` drives it) copies the bucket
into a fresh container and copies it again with nothing changed; then ``rclone copy``
copies the same bucket into a container of its own, with as many transfers as failover
has workers. Wall times, the CPU time of each side (failover: this process; rclone: its
process) and of the servers are printed. Each failover copy gets a new source adapter, as
each ``failover replicate`` does, but its boto3 client is made before the clock starts
(botocore parses about a megabyte of JSON models for it: 0.05-0.2 s, printed apart), as
the target's libcloud driver is; rclone's time includes starting its process. With
``--repeat N`` each contender runs N times, alternating which goes first, and the medians
are compared: the machine is shared, and single runs are noisy.

    python -m benchmarks.replicate                         # 2,000 x 10 KB and 20 x 10 MB
    python -m benchmarks.replicate --repeat 3              # the same, from the repository's root
    python -m benchmarks.replicate --small 200 --large 2 --targets azure --json

Goals: failover's first copy is no slower than rclone's (time ratio <= 1.0), and a re-run
with nothing changed takes at most 10% of the first copy. Exit status: 0 goals met and
every container holds what was seeded, 1 counts differ, 2 a goal missed, 130 interrupted.

``--scale 5000,20000`` measures instead what one pass of tiny objects costs failover itself,
per object, against rclone on the same pair (moto S3 to moto S3 through libcloud's S3
driver) in the same run: the bucket grows to each count in turn, and each count is copied
into fresh containers by a failover pass in a child process of its own (its CPU seconds
around the pass, and its peak RSS) and by ``rclone copy`` (its CPU seconds, start
included). Goals: failover's CPU <= 2 ms per object, and its peak RSS grows by less than
1 KB per object from the smallest count to the largest.

    python -m benchmarks.replicate --scale 5000,20000 --object-bytes 100
    python -m benchmarks.replicate --scale 2000 --profile /tmp/pass.prof   # + pstats dump /tmp/pass.prof.2000

With ``--profile FILE`` each count's failover pass runs under cProfile (CPU time of every
thread) and writes ``FILE.<count>`` for ``python -m pstats``; its CPU figures are then the
profiler's too, not the acceptance figures.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import boto3

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.replicate.buckets import Replicator, listed
from failover.state import StateStore
from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer
from providers.aws.objects import S3Objects
from providers.aws.session import AwsSession

KB, MB = 1000, 1000 * 1000
RATIO_GOAL = 1.0  # failover's first copy / rclone's: at most this
RERUN_GOAL = 0.10  # failover's no-change re-run / its first copy: at most this
TARGETS = ("azure", "s3")
REGION = "us-east-1"
SEED_WORKERS = 16
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}


@dataclass(frozen=True)
class Dataset:
    """A source bucket of ``count`` objects of ``size`` bytes each."""

    bucket: str
    count: int
    size: int

    @property
    def label(self) -> str:
        return f"{self.count} x {_size_label(self.size)}"


@dataclass(frozen=True)
class Scale:
    small: int = 2000
    small_size: int = 10 * KB
    large: int = 20
    large_size: int = 10 * MB
    targets: tuple[str, ...] = TARGETS
    workers: int = 16
    repeat: int = 1

    @property
    def datasets(self) -> list[Dataset]:
        sets = [Dataset("small-objects", self.small, self.small_size), Dataset("large-objects", self.large, self.large_size)]
        return [dataset for dataset in sets if dataset.count > 0]


@dataclass
class Timing:
    """One copy: wall time, CPU seconds of the copying process and of the two servers, and
    what ended up in the target container."""

    seconds: float = 0.0
    cpu_s: float = 0.0
    source_cpu_s: float = 0.0
    target_cpu_s: float = 0.0
    copied: int = 0
    stored: int = 0
    setup_s: float = 0.0  # failover: making the source's client, before the clock started


@dataclass
class Case:
    """One target and dataset: the median of each contender's runs (by wall time), every
    run's wall time, and what went wrong with the counts in any run."""

    target: str
    dataset: str
    objects: int
    bytes: int
    failover: Timing = field(default_factory=Timing)
    failover_rerun: Timing = field(default_factory=Timing)
    rclone: Timing = field(default_factory=Timing)
    runs: dict[str, list[float]] = field(default_factory=lambda: {"failover": [], "failover_rerun": [], "rclone": []})
    mismatches: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        """failover's first copy against rclone's (below 1: failover is faster)."""
        return _ratio(self.failover.seconds, self.rclone.seconds)

    @property
    def rerun_share(self) -> float:
        return _ratio(self.failover_rerun.seconds, self.failover.seconds)

    def add(self, side: str, timing: Timing, expected_copied: int) -> None:
        """Record one run of ``side``, checking that it copied and stored what it should."""
        self.runs[side].append(timing)
        if timing.copied != expected_copied or timing.stored != self.objects:
            self.mismatches.append(f"{side}: copied {timing.copied} (expected {expected_copied}), "
                                   f"container holds {timing.stored} of {self.objects}")

    def settle(self) -> None:
        """Keep each side's median run; ``runs`` keeps every run's wall time."""
        for side, timings in self.runs.items():
            setattr(self, side, sorted(timings, key=lambda timing: timing.seconds)[(len(timings) - 1) // 2])
            self.runs[side] = [round(timing.seconds, 3) for timing in timings]

    def to_dict(self) -> dict[str, Any]:
        return {
            **asdict(self), "ratio": round(self.ratio, 3), "rerun_share": round(self.rerun_share, 3),
            "ratio_met": self.ratio <= RATIO_GOAL, "rerun_met": self.rerun_share <= RERUN_GOAL,
            "counts_match": not self.mismatches,
        }


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def _size_label(size: int) -> str:
    return f"{size // MB} MB" if size >= MB else f"{size // KB} KB" if size >= KB else f"{size} B"


# -- the clouds ----------------------------------------------------------------------------

@dataclass
class Target:
    """A target server and how failover (a libcloud storage spec) and rclone (a remote) reach it."""

    kind: str
    server: Any  # MotoServer or Azurite: has ``.process``

    def spec(self, prefix: str) -> StorageSpec:
        if self.kind == "azure":
            return StorageSpec(driver="azure_blobs", options=self.server.driver_options, container_prefix=prefix)
        options = {"key": "testing", "secret": "testing", "host": "127.0.0.1", "port": self.server.port,
                   "secure": False, "region": REGION}
        return StorageSpec(driver="s3", options=options, container_prefix=prefix)

    def rclone_remote(self) -> dict[str, str]:
        if self.kind == "azure":
            return {"TYPE": "azureblob", "USE_EMULATOR": "true", "ENDPOINT": f"http://127.0.0.1:{self.server.port}/devstoreaccount1"}
        return s3_remote(self.server.url)


def s3_remote(url: str) -> dict[str, str]:
    return {
        "TYPE": "s3", "PROVIDER": "Other", "ENDPOINT": url, "ACCESS_KEY_ID": "testing", "SECRET_ACCESS_KEY": "testing",
        "REGION": REGION, "FORCE_PATH_STYLE": "true",
    }


def fake_credentials() -> None:
    """Local emulators only: never let a real profile or endpoint leak in."""
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


def seed(source_url: str, datasets: list[Dataset]) -> None:
    """Fill each dataset's bucket with distinct random objects, straight into moto."""
    s3 = boto3.client("s3", endpoint_url=source_url, **CREDENTIALS)
    for dataset in datasets:
        s3.create_bucket(Bucket=dataset.bucket)
        keys = [f"objects/{index:06}.bin" for index in range(dataset.count)]
        with ThreadPoolExecutor(SEED_WORKERS) as pool:
            list(pool.map(partial(put_random, s3, dataset), keys))


def put_random(s3: Any, dataset: Dataset, key: str) -> None:
    s3.put_object(Bucket=dataset.bucket, Key=key, Body=os.urandom(dataset.size))


def process_cpu_s(process: subprocess.Popen | None) -> float:
    """User + system CPU seconds a running child process has used so far (Linux /proc)."""
    if process is None:
        return 0.0
    fields = Path(f"/proc/{process.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def measuring(timing: Timing, source: MotoServer, target: Target, cpu: Callable[[], float]) -> Iterator[None]:
    started = time.perf_counter()
    cpu_started, source_started, target_started = cpu(), process_cpu_s(source.process), process_cpu_s(target.server.process)
    yield
    timing.seconds = time.perf_counter() - started
    timing.cpu_s = cpu() - cpu_started
    timing.source_cpu_s = process_cpu_s(source.process) - source_started
    timing.target_cpu_s = process_cpu_s(target.server.process) - target_started


def children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the contenders ----------------------------------------------------------------------------

def run_failover(dataset: Dataset, source: MotoServer, target: Target, workdir: Path, workers: int, run: int) -> tuple[Timing, Timing]:
    """failover's first copy into a fresh container, then the re-run with nothing changed."""
    storage = storage_target(target.spec(f"failover{run}-"))
    timings = (Timing(), Timing())
    with StateStore(workdir / f"state-{target.kind}-{run}") as store:
        for timing in timings:
            # A new source adapter per copy, as each ``failover replicate`` has; its boto3 client
            # (botocore parses ~1 MB of service and endpoint JSON: 0.05-0.2 s) is made before
            # the clock starts, like the target's driver, which libcloud makes in no time.
            objects = S3Objects(AwsSession(endpoint_url=source.url, pool_size=workers))
            started = time.perf_counter()
            objects.session.client("s3", REGION)
            timing.setup_s = time.perf_counter() - started
            replicator = Replicator(objects, storage, store, service="bench", target_name=target.kind, workers=workers)
            with measuring(timing, source, target, time.process_time):
                result = replicator.replicate([dataset.bucket])
            timing.copied = result.buckets[0].copied
            timing.stored = _stored(storage, dataset.bucket)
    return timings


def run_rclone(dataset: Dataset, source: MotoServer, target: Target, workers: int, run: int) -> Timing:
    """``rclone copy`` of the bucket into a container of its own, at the same parallelism."""
    prefix = f"rclone{run}-"
    command = ["rclone", "copy", f"src:{dataset.bucket}", f"dst:{prefix}{dataset.bucket}",
               "--transfers", str(workers), "--checkers", str(workers), "--stats", "0"]
    timing = Timing()
    with measuring(timing, source, target, children_cpu_s):
        completed = subprocess.run(command, env=rclone_env(source, target), capture_output=True, text=True, check=False)
    if completed.returncode != 0:
        raise RuntimeError(f"rclone failed ({completed.returncode}): {completed.stderr.strip()[-2000:]}")
    timing.stored = timing.copied = _stored(storage_target(target.spec(prefix)), dataset.bucket)
    return timing


def run_case(dataset: Dataset, source: MotoServer, target: Target, workdir: Path, scale: Scale,
             log: Callable[[str], None]) -> Case:
    """Each contender ``scale.repeat`` times, alternating which goes first (a busy machine drifts)."""
    case = Case(target.kind, dataset.label, dataset.count, dataset.count * dataset.size)

    def failover(run: int) -> None:
        first, rerun = run_failover(dataset, source, target, workdir, scale.workers, run)
        case.add("failover", first, dataset.count)
        case.add("failover_rerun", rerun, 0)
        log(f"{target.kind}, {dataset.label}, run {run + 1}: failover {first.seconds:.2f}s, re-run {rerun.seconds:.2f}s"
            f" (source client made beforehand in {first.setup_s:.2f}s, {rerun.setup_s:.2f}s)")

    def rclone(run: int) -> None:
        timing = run_rclone(dataset, source, target, scale.workers, run)
        case.add("rclone", timing, dataset.count)
        log(f"{target.kind}, {dataset.label}, run {run + 1}: rclone {timing.seconds:.2f}s")

    for run in range(scale.repeat):
        for contender in (failover, rclone) if run % 2 == 0 else (rclone, failover):
            contender(run)
    case.settle()
    return case


def rclone_env(source: MotoServer, target: Target) -> dict[str, str]:
    """Remotes ``src`` and ``dst`` by environment; without AWS_CA_BUNDLE, which rclone fails on here."""
    env = {key: value for key, value in os.environ.items() if key != "AWS_CA_BUNDLE"}
    env.update({f"RCLONE_CONFIG_SRC_{key}": value for key, value in s3_remote(source.url).items()})
    env.update({f"RCLONE_CONFIG_DST_{key}": value for key, value in target.rclone_remote().items()})
    return env


def _stored(storage: Any, bucket: str) -> int:
    return len(listed(storage, bucket)) if storage.container_exists(bucket) else 0  # listed: retried when reset


# -- running -------------------------------------------------------------------------------------

def started_target(kind: str, stack: ExitStack) -> Target:
    server = MotoServer() if kind == "s3" else Azurite()
    return Target(kind, stack.enter_context(server))


def benchmark(scale: Scale, log: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    if shutil.which("rclone") is None:
        raise RuntimeError("rclone is not installed: run scripts/install-test-deps (as root)")
    fake_credentials()
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    cases: list[Case] = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="failover-bench-")))
        source = stack.enter_context(MotoServer())
        log(f"seeding {', '.join(d.label for d in scale.datasets)} into moto_server {source.url}")
        started = time.perf_counter()
        seed(source.url, scale.datasets)
        log(f"seeded in {time.perf_counter() - started:.1f}s")
        for kind in scale.targets:
            target = started_target(kind, stack)
            cases += [run_case(dataset, source, target, workdir, scale, log) for dataset in scale.datasets]
    documents = [case.to_dict() for case in cases]
    return {
        "scale": {**asdict(scale), "targets": list(scale.targets)},
        "goals": {"ratio": RATIO_GOAL, "rerun_share": RERUN_GOAL},
        "cases": documents,
        "counts_match": all(doc["counts_match"] for doc in documents),
        "goals_met": all(doc["ratio_met"] and doc["rerun_met"] for doc in documents),
    }


def report(result: dict[str, Any]) -> str:
    header = (f"{'target':<7}{'objects':<14}{'failover s':>11}{'rclone s':>10}{'ratio':>7}{'re-run s':>10}{'share':>7}"
              f"{'CPU failover':>14}{'CPU rclone':>12}  goals")
    lines = [header]
    for case in result["cases"]:
        failover, rerun, rclone = case["failover"], case["failover_rerun"], case["rclone"]
        goals = ", ".join([
            "ratio " + ("met" if case["ratio_met"] else "NOT met"), "re-run " + ("met" if case["rerun_met"] else "NOT met"),
            *([] if case["counts_match"] else ["counts MISMATCH"]),
        ])
        lines.append(
            f"{case['target']:<7}{case['dataset']:<14}{failover['seconds']:>11.2f}{rclone['seconds']:>10.2f}"
            f"{case['ratio']:>7.2f}{rerun['seconds']:>10.2f}{case['rerun_share']:>7.1%}"
            f"{failover['cpu_s']:>14.2f}{rclone['cpu_s']:>12.2f}  {goals}"
        )
    if result["scale"]["repeat"] > 1:
        lines += ["", "every run's wall time (s), the median above:", *(
            f"  {case['target']:<7}{case['dataset']:<14}failover {_listed(case['runs']['failover'])}   re-run"
            f" {_listed(case['runs']['failover_rerun'])}   rclone {_listed(case['runs']['rclone'])}"
            for case in result["cases"]
        )]
    setups = [case[side]["setup_s"] for case in result["cases"] for side in ("failover", "failover_rerun")]
    if setups:
        lines += ["", f"failover's source client, made before each copy's clock started: {min(setups):.2f}-{max(setups):.2f}s"]
    lines += [
        "",
        "servers' CPU seconds during each copy (source moto / target):",
        *(
            f"  {case['target']:<7}{case['dataset']:<14}failover {case['failover']['source_cpu_s']:.1f} /"
            f" {case['failover']['target_cpu_s']:.1f}   rclone {case['rclone']['source_cpu_s']:.1f} /"
            f" {case['rclone']['target_cpu_s']:.1f}"
            for case in result["cases"]
        ),
        "",
        f"goals: failover / rclone <= {RATIO_GOAL:g}; re-run <= {RERUN_GOAL:.0%} of the first copy: "
        + ("met" if result["goals_met"] else "NOT met"),
    ]
    lines += [f"counts MISMATCH, {case['target']} {case['dataset']}: {problem}"
              for case in result["cases"] for problem in case["mismatches"]]
    return "\n".join(lines)


def _listed(seconds: list[float]) -> str:
    return ", ".join(f"{value:.2f}" for value in seconds)


# -- per-object CPU and memory of one pass (--scale) ---------------------------------------------

CPU_GOAL_MS = 2.0  # failover's own CPU per object of a pass
RSS_GOAL_KB = 1.0  # peak RSS growth per object between the smallest and the largest count
SCALE_BUCKET = "tiny-objects"


def grow_bucket(source_url: str, have: int, want: int, size: int) -> None:
    s3 = boto3.client("s3", endpoint_url=source_url, **CREDENTIALS)
    if have == 0:
        s3.create_bucket(Bucket=SCALE_BUCKET)
    keys = [f"objects/{index:07}.bin" for index in range(have, want)]
    with ThreadPoolExecutor(SEED_WORKERS) as pool:
        list(pool.map(partial(put_random, s3, Dataset(SCALE_BUCKET, 0, size)), keys))


def pass_in_child(source_url: str, target_port: int, prefix: str, state: Path, workers: int,
                  profile: str | None = None) -> dict[str, Any]:
    """One failover pass in a process of its own; its figures as it measured them. With ``profile``
    (a file name, suffixed with the count), the child writes a cProfile dump of its pass there."""
    job = {"source": source_url, "port": target_port, "prefix": prefix, "state": str(state), "workers": workers,
           "profile": profile}
    completed = subprocess.run([sys.executable, "-m", "benchmarks.replicate", "--child-pass", json.dumps(job)],
                               capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1])
    if completed.returncode != 0:
        raise RuntimeError(f"failover pass failed ({completed.returncode}): {completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout)


def child_pass(job: dict[str, Any]) -> dict[str, Any]:
    """The child's side: build the clients, then measure the pass alone (CPU seconds of this
    process across its threads, wall time), and report the process's peak RSS."""
    fake_credentials()
    options = {"key": "testing", "secret": "testing", "host": "127.0.0.1", "port": job["port"], "secure": False,
               "region": REGION}
    storage = storage_target(StorageSpec(driver="s3", options=options, container_prefix=job["prefix"]))
    storage.driver  # noqa: B018 - built before the clock starts, as the source's client
    objects = S3Objects(AwsSession(endpoint_url=job["source"], pool_size=job["workers"]), workers=job["workers"])
    objects.session.client("s3", REGION)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with StateStore(Path(job["state"])) as store:
        replicator = Replicator(objects, storage, store, service="bench", target_name="s3", workers=job["workers"])
        with profiled(job.get("profile")):
            cpu, main_cpu, started = time.process_time(), time.thread_time(), time.perf_counter()
            result = replicator.replicate([SCALE_BUCKET]).buckets[0]
            cpu, main_cpu = time.process_time() - cpu, time.thread_time() - main_cpu
            seconds = time.perf_counter() - started
    return {"copied": result.copied, "objects": result.objects, "cpu_s": cpu, "seconds": seconds,
            "main_thread_cpu_s": main_cpu,
            "rss_before_mb": rss_before / 1024, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


@contextmanager
def profiled(path: str | None) -> Iterator[None]:
    """cProfile over every thread of the pass (the copies run on worker threads, each profiled
    by a profiler of its own, merged at the end), dumped to ``path`` for pstats; the figures of
    a profiled pass are not the acceptance figures (profiling costs about as much CPU again)."""
    if not path:
        yield
        return
    import cProfile
    import pstats
    import threading

    profilers = [cProfile.Profile(time.thread_time)]  # CPU seconds: waits on the network cost none

    def start_in_thread(*_: Any) -> None:  # a new thread's first event: from then on its own profiler
        profiler = cProfile.Profile(time.thread_time)
        profilers.append(profiler)
        profiler.enable()

    threading.setprofile(start_in_thread)
    profilers[0].enable()
    try:
        yield
    finally:
        profilers[0].disable()
        threading.setprofile(None)
        stats = pstats.Stats(profilers[0])
        for profiler in profilers[1:]:
            stats.add(profiler)
        stats.dump_stats(path)


def rclone_pass(source: MotoServer, target: MotoServer, prefix: str, workers: int) -> dict[str, Any]:
    """``rclone copy`` of the bucket into a container of its own: its CPU seconds and peak RSS."""
    command = ["rclone", "copy", f"src:{SCALE_BUCKET}", f"dst:{prefix}{SCALE_BUCKET}",
               "--transfers", str(workers), "--checkers", str(workers), "--stats", "0"]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=rclone_env(source, Target("s3", target)), stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise RuntimeError(f"rclone failed ({process.returncode}): {process.stderr.read().decode()[-2000:]}")
    return {"cpu_s": usage.ru_utime + usage.ru_stime, "seconds": time.perf_counter() - started,
            "peak_rss_mb": usage.ru_maxrss / 1024}


def scale_benchmark(counts: list[int], size: int, workers: int, log: Callable[[str], None],
                    profile: str | None = None) -> dict[str, Any]:
    if shutil.which("rclone") is None:
        raise RuntimeError("rclone is not installed: run scripts/install-test-deps (as root)")
    fake_credentials()
    rows = []
    with ExitStack() as stack:
        workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="failover-bench-")))
        source, target = stack.enter_context(MotoServer()), stack.enter_context(MotoServer())
        have = 0
        for count in sorted(counts):
            log(f"growing the source bucket to {count:,} objects of {size} bytes")
            grow_bucket(source.url, have, count, size)
            have = count
            dump = f"{profile}.{count}" if profile else None
            failover = pass_in_child(source.url, target.port, f"failover{count}-", workdir / f"state-{count}", workers,
                                     dump)
            log(f"{count:,}: failover {failover['seconds']:.1f}s, CPU {failover['cpu_s']:.2f}s, "
                f"peak RSS {failover['peak_rss_mb']:.0f} MB")
            rclone = rclone_pass(source, target, f"rclone{count}-", workers)
            log(f"{count:,}: rclone {rclone['seconds']:.1f}s, CPU {rclone['cpu_s']:.2f}s")
            rows.append({
                "objects": count, "failover": failover, "rclone": rclone,
                "failover_cpu_ms_per_object": 1000 * failover["cpu_s"] / count,
                "rclone_cpu_ms_per_object": 1000 * rclone["cpu_s"] / count,
                "cpu_ratio": _ratio(failover["cpu_s"], rclone["cpu_s"]),
                "counts_match": failover["copied"] == count,
            })
    smallest, largest = rows[0], rows[-1]
    growth = (largest["failover"]["peak_rss_mb"] - smallest["failover"]["peak_rss_mb"]) * 1024
    per_object_kb = growth / (largest["objects"] - smallest["objects"]) if len(rows) > 1 else 0.0
    return {
        "object_bytes": size, "workers": workers, "rows": rows, "rss_growth_kb_per_object": per_object_kb,
        "goals": {"cpu_ms_per_object": CPU_GOAL_MS, "rss_kb_per_object": RSS_GOAL_KB},
        "cpu_met": all(row["failover_cpu_ms_per_object"] <= CPU_GOAL_MS for row in rows),
        "rss_met": per_object_kb < RSS_GOAL_KB,
        "counts_match": all(row["counts_match"] for row in rows),
    }


def scale_report(result: dict[str, Any]) -> str:
    lines = [f"{'objects':>8}{'failover CPU s':>16}{'ms/object':>11}{'rclone CPU s':>14}{'ms/object':>11}{'ratio':>7}"
             f"{'failover s':>12}{'rclone s':>10}{'peak RSS MB':>13}"]
    for row in result["rows"]:
        lines.append(
            f"{row['objects']:>8,}{row['failover']['cpu_s']:>16.2f}{row['failover_cpu_ms_per_object']:>11.2f}"
            f"{row['rclone']['cpu_s']:>14.2f}{row['rclone_cpu_ms_per_object']:>11.2f}{row['cpu_ratio']:>7.2f}"
            f"{row['failover']['seconds']:>12.1f}{row['rclone']['seconds']:>10.1f}{row['failover']['peak_rss_mb']:>13.1f}"
        )
    lines += [
        "",
        f"failover's peak RSS grows {result['rss_growth_kb_per_object']:.3f} KB per object "
        f"(goal < {RSS_GOAL_KB:g}): {'met' if result['rss_met'] else 'NOT met'}",
        f"failover's CPU per object <= {CPU_GOAL_MS:g} ms: {'met' if result['cpu_met'] else 'NOT met'}",
    ]
    if not result["counts_match"]:
        lines.append("counts MISMATCH: a failover pass did not copy every object")
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> tuple[Scale, bool]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    defaults = Scale()
    parser.add_argument("--small", type=int, default=defaults.small, help="how many small objects")
    parser.add_argument("--small-kb", type=int, default=defaults.small_size // KB, help="size of a small object")
    parser.add_argument("--large", type=int, default=defaults.large, help="how many large objects")
    parser.add_argument("--large-kb", type=int, default=defaults.large_size // KB, help="size of a large object")
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated: azure, s3")
    parser.add_argument("--workers", type=int, default=defaults.workers, help="failover's workers = rclone's transfers")
    parser.add_argument("--repeat", type=int, default=defaults.repeat, help="runs of each contender; medians are shown")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    targets = tuple(name.strip() for name in args.targets.split(",") if name.strip())
    unknown = sorted(set(targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)} (known: {', '.join(TARGETS)})")
    scale = Scale(args.small, args.small_kb * KB, args.large, args.large_kb * KB, targets, args.workers, max(1, args.repeat))
    return scale, args.json


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child-pass"]:
        result = child_pass(json.loads(argv[1]))
        print(json.dumps(result))
        return {"counts_match": True, "goals_met": True}
    scale_counts, argv = _option(argv, "--scale")
    object_bytes, argv = _option(argv, "--object-bytes")
    profile, argv = _option(argv, "--profile")
    scale, as_json = parse_args(argv)
    log = (lambda _: None) if as_json else (lambda message: print(f"[bench] {message}", file=sys.stderr, flush=True))
    if scale_counts:
        counts = [int(part) for part in scale_counts.split(",") if part.strip()]
        result = scale_benchmark(counts, int(object_bytes or 100), scale.workers, log,
                                 str(Path(profile).resolve()) if profile else None)
        print(json.dumps(result, indent=2) if as_json else scale_report(result))
        return {**result, "goals_met": result["cpu_met"] and result["rss_met"]}
    result = benchmark(scale, log)
    print(json.dumps(result, indent=2) if as_json else report(result))
    return result


def _option(argv: list[str], name: str) -> tuple[str | None, list[str]]:
    """``name VALUE`` taken out of ``argv`` (the two modes share the other options)."""
    if name not in argv:
        return None, argv
    at = argv.index(name)
    return argv[at + 1], argv[:at] + argv[at + 2:]


if __name__ == "__main__":
    try:
        outcome = main()
        sys.exit(0 if outcome["counts_match"] and outcome["goals_met"] else 1 if not outcome["counts_match"] else 2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
