"""Benchmark: object copies fanned out on 1, 2 and 4 Dask workers, as ratios to 1 worker.

The source is S3 (a ``moto_server`` process) behind ``LatencyProxy`` capping every connection's
bandwidth (``--cap-kib`` KiB/s), as a provider or a long link does; the target is Azurite. For
each worker count a ``LocalCluster`` of that many worker *processes* (one thread each: one
connection to the source each) is started and warmed up (failover imported, one object copied)
before the clock starts; then ``failover.fanout.copy_buckets`` copies the bucket into a fresh
container, verified. Throughput (MiB/s) and its ratio to 1 worker's in the same run are printed.

    python -m benchmarks.fanout                        # 16 x 1 MiB at 256 KiB/s per connection, a batch each
    python -m benchmarks.fanout --objects 8 --size-kib 64 --cap-kib 256 --workers 1 2 --json

Goal: 4 workers >= 3x the throughput of 1. Exit status: 0 goal met and every container holds
what was seeded, 1 counts differ, 2 the goal missed.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import boto3
import yaml

from failover.config import load_config
from failover.fanout import DaskExecutor, StorageEnds, copy_batch, copy_buckets, plan_batches
from failover.ports import ObjectInfo
from failover.testing.emulators import Azurite
from failover.testing.proxy import LatencyProxy
from failover.testing.servers import MotoServer

KIB, MIB = 1024, 1024 * 1024
GOAL = 3.0  # 4 workers' throughput / 1 worker's: at least this
BUCKET = "media"
ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_DEFAULT_REGION": "us-east-1"}


def seed(server: MotoServer, objects: int, size: int) -> None:
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    s3.create_bucket(Bucket="warmup")
    for n in range(4):
        s3.put_object(Bucket="warmup", Key=f"warm/{n}", Body=b"warm")
    for n in range(objects):
        s3.put_object(Bucket=BUCKET, Key=f"obj/{n:05d}", Body=os.urandom(size))


def write_config(directory: Path, source_url: str, azurite: Azurite, prefix: str) -> Any:
    options = {**azurite.driver_options, "secret": "${env:BENCH_AZ_KEY}"}
    data = {
        "service": "bench",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "bench"}}, "endpoint_url": source_url},
        "targets": {"t": {"storage": {"driver": "azure_blobs", "options": options, "container_prefix": prefix}}},
    }
    path = directory / f"{prefix}failover.yaml"
    path.write_text(yaml.safe_dump(data))
    return load_config(path)


def run_case(workers: int, directory: Path, source_url: str, azurite: Azurite, batch_keys: int) -> dict[str, Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=logging.ERROR) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(workers)
        executor = DaskExecutor(client)
        # Warm every worker up, outside the clock: imports, and the adapters of this very config
        # (a worker opens them once per process and reuses them for every batch after).
        config = write_config(directory, source_url, azurite, f"b{workers}-")
        copy_buckets(config, "t", {"warmup": "us-east-1"}, executor=executor, batch_keys=1)
        warm = plan_batches(StorageEnds.of(config, "t"), "warmup", "us-east-1", [ObjectInfo(key="warm/0", size=4)], 1)
        client.run(copy_batch, warm[0])  # on every worker, whichever batches it got above
        started = time.monotonic()
        result = copy_buckets(config, "t", [BUCKET], executor=executor, batch_keys=batch_keys)
        elapsed = time.monotonic() - started
    bucket = result.buckets[0]
    return {
        "workers": workers, "seconds": round(elapsed, 3), "objects": bucket.objects, "copied": bucket.copied,
        "bytes": bucket.copied_bytes, "mib_per_s": round(bucket.copied_bytes / MIB / elapsed, 3),
        "batches": result.batches, "ok": result.ok,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=16)
    parser.add_argument("--size-kib", type=int, default=1024)
    parser.add_argument("--cap-kib", type=int, default=256, help="bandwidth of each source connection, KiB/s")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--batch-keys", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    os.environ.update(ENV)
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-fanout-")))
        source = stack.enter_context(MotoServer())
        azurite = stack.enter_context(Azurite())
        os.environ["BENCH_AZ_KEY"] = azurite.driver_options["secret"]
        seed(source, args.objects, args.size_kib * KIB)
        proxy = stack.enter_context(LatencyProxy(source.url, latency_s=0, bandwidth_bps=args.cap_kib * KIB))
        cases = [run_case(n, directory, proxy.url, azurite, args.batch_keys) for n in args.workers]
    reference = cases[0]["mib_per_s"]
    for case in cases:
        case["ratio"] = round(case["mib_per_s"] / reference, 2) if reference else None
    report = {
        "objects": args.objects, "size_kib": args.size_kib, "cap_kib_per_s": args.cap_kib,
        "cpus": os.cpu_count(), "load": os.getloadavg()[0], "cases": cases,
        "all_copied": all(case["ok"] and case["copied"] == args.objects for case in cases),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"{args.objects} x {args.size_kib} KiB, source capped at {args.cap_kib} KiB/s per connection, "
              f"load {report['load']:.1f} on {report['cpus']} cores")
        for case in cases:
            print(f"  {case['workers']} worker(s): {case['seconds']:7.2f} s  {case['mib_per_s']:6.2f} MiB/s"
                  f"  x{case['ratio']}  ({case['copied']}/{case['objects']} copied, {case['batches']} batches)")
    return report


if __name__ == "__main__":
    result = main()
    four = next((case for case in result["cases"] if case["workers"] == 4), None)
    sys.exit(1 if not result["all_copied"] else 2 if four is not None and four["ratio"] < GOAL else 0)
