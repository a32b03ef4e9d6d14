"""Benchmark: ``failover evacuate``'s memory over a growing bucket, and its estimate against the clock.

1. **Peak RSS of one pass** over a bucket of 10k, 50k and 100k objects (``--scales``): the source
   a ``moto_server`` process, the target local disk (so that no emulator's own memory or speed is
   in the figure; moto's S3 bounds the time). The bucket grows between the scales (the objects of
   the smaller scale stay), and each pass runs in a process of its own (``--child``), which prints
   its peak RSS (``ru_maxrss``), its RSS after the imports (the reference, measured in the same
   run) and what it listed and copied. Goal: flat, under 300 MB.
2. **The ETA's error at half-time**: a bucket of ``--eta-objects`` objects of ``--eta-kb`` KB read
   through a ``LatencyProxy`` capping the source's bandwidth (``--eta-cap-kbps``), copied in one
   pass in this process. The progress event nearest to half of the copy's measured duration gives
   the estimated time left; its error is |estimated - actual time left| over the copy's duration.
   Goal: within 15%.
3. **Throughput on 1, 2 and 4 Dask workers** (``--only workers``; arguments of its own through
   ``--fanout "..."``): :mod:`benchmarks.fanout`, the same executor and per-batch copy
   (``failover.fanout.copy_batch``) that ``evacuate --scheduler`` hands its batches to, behind a
   proxy capping each source connection's bandwidth, as ratios to 1 worker. Goal: 4 workers >= 3x.

    python -m benchmarks.evacuate                                    # 10k, 50k, 100k; 300 x 200 KB at 1 MB/s
    python -m benchmarks.evacuate --scales 1000,5000 --eta-objects 60 --json

Exit status: 0 goals met, 1 a pass did not copy what was seeded, 2 a goal missed.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import yaml

from failover.config import load_config
from failover.evacuate import EvacuateOptions, evacuate
from failover.state import StateStore
from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer

REGION = "us-east-1"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": REGION}
RSS_GOAL_MB = 300
ETA_GOAL = 0.15
SEED_WORKERS = 16
ROOT = Path(__file__).resolve().parents[1]  # the checkout the child passes import failover from


def fake_credentials() -> None:
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION=REGION)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        os.environ.pop(key, None)


def seed(url: str, bucket: str, start: int, stop: int, size: int) -> None:
    """Objects ``start`` to ``stop`` of ``bucket`` (made first, tagged ``service: <bucket>``: each
    case selects its own bucket), random bytes each."""
    s3 = boto3.client("s3", endpoint_url=url, **CREDENTIALS)
    if start == 0:
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "service", "Value": bucket}]})

    def put(index: int) -> None:
        s3.put_object(Bucket=bucket, Key=f"objects/{index:07}.bin", Body=os.urandom(size))

    with ThreadPoolExecutor(SEED_WORKERS) as pool:
        list(pool.map(put, range(start, stop)))


def write_config(workdir: Path, endpoint: str, bucket: str) -> Path:
    (workdir / "replicas").mkdir(exist_ok=True)
    path = workdir / "failover.yaml"
    path.write_text(yaml.safe_dump({
        "service": "bench", "state": ".failover",
        "source": {"provider": "aws", "regions": [REGION], "select": {"tags": {"service": bucket}},
                   "endpoint_url": endpoint},
        "targets": {"disk": {"storage": {"driver": "local", "options": {"key": str(workdir / "replicas")}}}},
    }))
    return path


class Recorded:
    """The events, each with the monotonic and wall time it came at."""

    def __init__(self) -> None:
        self.events: list[tuple[float, datetime, dict[str, Any]]] = []

    def emit(self, event: dict[str, Any]) -> None:
        self.events.append((time.monotonic(), datetime.now(UTC), event))

    def first(self, name: str) -> tuple[float, datetime, dict[str, Any]]:
        return next(item for item in self.events if item[2]["event"] == name)


def one_pass(config_path: Path, workers: int, events: Any) -> dict[str, Any]:
    config = load_config(config_path)
    options = EvacuateOptions(target="disk", deadline=datetime.now(UTC) + timedelta(hours=6), workers=workers,
                              max_passes=1)
    with StateStore(config.state_dir) as store:
        return evacuate(config, options, events, store=store).document


def child(config_path: Path, workers: int) -> None:
    """One pass in this process; prints its figures as one JSON document."""
    base_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.monotonic()
    summary = one_pass(config_path, workers, Recorded())
    [bucket] = summary["buckets"]
    print(json.dumps({
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "base_rss_mb": round(base_mb, 1), "seconds": round(time.monotonic() - started, 1),
        "objects": bucket["objects"], "copied": bucket["copied"], "unchanged": bucket["unchanged"],
        "complete": bucket["complete"],
    }))


def rss_case(moto: MotoServer, workdir: Path, scales: list[int], size: int, workers: int,
             log: Any) -> list[dict[str, Any]]:
    config = write_config(workdir, moto.url, "bench-rss")
    rows, seeded = [], 0
    for scale in scales:
        started = time.monotonic()
        seed(moto.url, "bench-rss", seeded, scale, size)
        log(f"seeded {scale - seeded} objects in {time.monotonic() - started:.0f}s")
        seeded = scale
        ran = subprocess.run([sys.executable, "-m", "benchmarks.evacuate", "--child", str(config), "--workers",
                              str(workers)], capture_output=True, text=True, check=False, cwd=ROOT,
                             env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))})
        if ran.returncode != 0:
            raise SystemExit(f"the pass over {scale} objects failed: {ran.stderr[-2000:]}")
        row = {"scale": scale, **json.loads(ran.stdout.splitlines()[-1])}
        log(f"{scale} objects: peak RSS {row['peak_rss_mb']} MB (after imports {row['base_rss_mb']} MB),"
            f" copied {row['copied']} in {row['seconds']}s")
        rows.append(row)
    return rows


def eta_case(moto: MotoServer, workdir: Path, objects: int, size: int, cap: float, workers: int,
             log: Any) -> dict[str, Any]:
    seed(moto.url, "bench-eta", 0, objects, size)
    with LatencyProxy(moto.url, latency_s=0, bytes_per_s=cap) as proxy:
        recorded = Recorded()
        summary = one_pass(write_config(workdir, proxy.url, "bench-eta"), workers, recorded)
    start = recorded.first("planned")[0]
    end = recorded.first("pass_done")[0]
    duration = end - start
    progress = [item for item in recorded.events
                if item[2]["event"] == "progress" and item[2]["left_s"] is not None]
    at, _, event = min(progress, key=lambda item: abs(item[0] - (start + duration / 2)))
    estimated_left = event["left_s"]
    actual_left = end - at
    error = abs(estimated_left - actual_left) / duration
    row = {"objects": objects, "bytes": objects * size, "cap_bytes_per_s": cap, "copy_s": round(duration, 1),
           "at_s": round(at - start, 1), "estimated_left_s": round(estimated_left, 1),
           "actual_left_s": round(actual_left, 1), "error": round(error, 3),
           "copied": summary["copied"], "complete": summary["complete"]}
    log(f"ETA at {row['at_s']}s of {row['copy_s']}s: {row['estimated_left_s']}s left estimated,"
        f" {row['actual_left_s']}s actual: error {error:.1%} of the copy")
    return row


CASES = ("rss", "eta", "workers")


def _cases(value: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in value.split(",") if part.strip())
    unknown = [part for part in chosen if part not in CASES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"cases are {', '.join(CASES)}; not {', '.join(unknown) or 'nothing'}")
    return chosen


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.evacuate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--scales", default="10000,50000,100000", help="bucket sizes, ascending (objects)")
    parser.add_argument("--size", type=int, default=100, help="bytes per object of the RSS bucket")
    parser.add_argument("--workers", type=int, default=16)
    parser.add_argument("--eta-objects", type=int, default=300)
    parser.add_argument("--eta-kb", type=int, default=200)
    parser.add_argument("--eta-cap-kbps", type=float, default=1000, help="the source's bandwidth cap, KB/s")
    parser.add_argument("--only", type=_cases, default=CASES, help="the cases to run, e.g. rss,eta (default: all three)")
    parser.add_argument("--fanout", default="", help='arguments of the Dask workers case (benchmarks/fanout.py), e.g. "--objects 8"')
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    fake_credentials()
    if args.child is not None:
        child(args.child, args.workers)
        return {}

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    scales = sorted(int(value) for value in args.scales.split(","))
    with MotoServer() as moto, tempfile.TemporaryDirectory(prefix="bench-evacuate-") as tmp:
        (Path(tmp) / "rss").mkdir()
        (Path(tmp) / "eta").mkdir()
        rss = rss_case(moto, Path(tmp) / "rss", scales, args.size, args.workers, log) if "rss" in args.only else []
        eta = eta_case(moto, Path(tmp) / "eta", args.eta_objects, args.eta_kb * 1000, args.eta_cap_kbps * 1000,
                       args.workers, log) if "eta" in args.only else None
    workers = None
    if "workers" in args.only:
        from benchmarks.fanout import GOAL as WORKERS_GOAL
        from benchmarks.fanout import main as fanout_main

        workers = fanout_main(shlex.split(args.fanout))
        four = next((case for case in workers["cases"] if case["workers"] == 4), None)
        workers["goal"], workers["goal_met"] = WORKERS_GOAL, four is None or (four["ratio"] or 0) >= WORKERS_GOAL
    reference = rss[0]["peak_rss_mb"] if rss else 1.0
    result = {
        "rss": rss, "rss_ratio_to_smallest": [round(row["peak_rss_mb"] / reference, 2) for row in rss],
        "rss_goal_mb": RSS_GOAL_MB, "rss_goal_met": all(row["peak_rss_mb"] < RSS_GOAL_MB for row in rss),
        "eta": eta, "eta_goal": ETA_GOAL, "eta_goal_met": eta is None or eta["error"] <= ETA_GOAL,
        "workers": workers, "workers_goal_met": workers is None or workers["goal_met"],
        "copied_all": all(row["complete"] for row in rss) and (eta is None or eta["complete"])
        and (workers is None or workers["all_copied"]),
    }
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for row, ratio in zip(rss, result["rss_ratio_to_smallest"], strict=True):
            print(f"{row['scale']:>7} objects: peak RSS {row['peak_rss_mb']:6.1f} MB (x{ratio} of the smallest;"
                  f" {row['base_rss_mb']} MB after imports), {row['seconds']}s")
        if eta is not None:
            print(f"ETA at half-time: error {eta['error']:.1%} of a {eta['copy_s']}s copy (goal {ETA_GOAL:.0%})")
    return result


if __name__ == "__main__":
    outcome = main()
    if outcome:
        met = outcome["rss_goal_met"] and outcome["eta_goal_met"] and outcome["workers_goal_met"]
        sys.exit(1 if not outcome["copied_all"] else 0 if met else 2)
