"""The fan-out on a cluster started as a user would: ``dask scheduler`` and two ``dask worker``
processes copy moto S3 to Azurite, every object there once; one worker SIGKILLed mid-run changes
nothing in the result."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from fanoutkit import (
    AWS_SECRET,
    BUCKETS,
    ROOT,
    assert_every_object_there_once,
    source_objects,
    stored_in_azurite,
    write_config,
)

from failover.fanout import CopyBatch, DaskExecutor, KeyResult, copy_buckets
from failover.testing.servers import free_port, stop_process


@pytest.fixture(scope="module")
def cli_cluster(secrets_env: None) -> Iterator[str]:
    """``dask scheduler`` and two ``dask worker`` processes, started as a user would, with failover
    importable from this checkout and the secrets in their environment."""
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    scheduler = subprocess.Popen(
        [sys.executable, "-m", "dask", "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    workers = [
        subprocess.Popen(
            # --no-nanny: one process per worker (half the start-up), and a killed worker stays dead
            [sys.executable, "-m", "dask", "worker", address, "--nthreads", "2", "--no-dashboard", "--no-nanny",
             "--name", f"w{n}"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        for n in range(2)
    ]
    try:
        yield address
    finally:
        for process in [*workers, scheduler]:
            process.terminate()  # all at once: each takes a moment to close
        for process in [*workers, scheduler]:
            stop_process(process, grace=5)


def cli_client(address: str) -> Any:
    from distributed import Client

    client = Client(address, timeout=30, set_as_default=False)
    client.wait_for_workers(2, timeout=60)
    return client


def test_a_scheduler_and_two_worker_commands_copy_every_object_once(source, azurite, config_for, cli_cluster) -> None:
    with cli_client(cli_cluster) as client:
        assert len(client.nthreads()) == 2
    # copy_buckets connects by address, as `--scheduler tcp://HOST:8786` does
    result = copy_buckets(config_for("cli-"), "fallback", list(BUCKETS), scheduler=cli_cluster, batch_keys=10)
    assert result.executor == "DaskExecutor"
    assert_every_object_there_once(source, azurite, "cli-", result)


def test_evacuate_with_scheduler_copies_on_the_cluster(source, azurite, config_for, cli_cluster) -> None:
    """``failover evacuate --scheduler``: the batches go to the cluster's workers, every object
    lands once, verified, and the state records each copy (a second evacuation copies nothing)."""
    import json

    from failover.testing.world import failover_command

    s3 = boto3.client("s3", endpoint_url=source.url, region_name="us-east-1")
    for bucket in BUCKETS:
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "service", "Value": "social-app"}]})
    config = config_for("evac-")
    env = {**os.environ, "FAILOVER_CONFIG": str(config.path)}

    # passes run until the deadline (each catching new writes): one evacuation of 90 s
    done = subprocess.run([*failover_command(), "evacuate", "--target", "fallback", "--deadline", "90s",
                           "--scheduler", cli_cluster, "--json"], cwd=config.path.parent, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert AWS_SECRET not in done.stdout + done.stderr
    summary = [json.loads(line) for line in done.stdout.splitlines() if line.strip()][-1]
    assert summary["complete"] and summary["passes"] >= 1, summary
    copied = {bucket["bucket"]: bucket["copied"] for bucket in summary["buckets"]}
    for bucket, count in BUCKETS.items():
        expected = source_objects(source, bucket)
        assert stored_in_azurite(azurite, f"evac-{bucket}") == expected
        # copied once over every pass: later passes find each copy recorded and leave it
        assert copied[bucket] == len(expected) >= count


class KillingOneWorker:
    """A ``DaskExecutor`` that SIGKILLs a worker process holding batches, once the first results are in."""

    def __init__(self, client: Any) -> None:
        self.dask = DaskExecutor(client, retries=0)  # a lost worker's batch is re-run by the scheduler, not by retries
        self.parallelism = self.dask.parallelism
        self.client = client
        self.killed: dict[str, Any] = {}

    def run_batches(self, batches: list[CopyBatch]) -> Iterator[KeyResult]:
        for n, result in enumerate(self.dask.run_batches(batches)):
            if n == 0 and not self.killed:
                self._kill_a_busy_worker()
            yield result

    def _kill_a_busy_worker(self) -> None:
        pids = self.client.run(os.getpid)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            busy = {worker: tasks for worker, tasks in self.client.processing().items() if tasks}
            if busy:
                worker, tasks = next(iter(busy.items()))
                os.kill(pids[worker], signal.SIGKILL)
                self.killed = {"worker": worker, "pid": pids[worker], "tasks": len(tasks)}
                return
            time.sleep(0.01)
        raise AssertionError("no worker was busy")


def test_a_worker_killed_mid_run_changes_nothing_in_the_result(source, azurite, config_for, cli_cluster) -> None:
    from failover.testing.proxy import LatencyProxy

    with cli_client(cli_cluster) as client, LatencyProxy(source.url, latency_s=0.01) as slow_source:
        config = write_config(config_for("kill-").path.parent, slow_source.url, azurite, "kill-")
        executor = KillingOneWorker(client)
        result = copy_buckets(config, "fallback", list(BUCKETS), executor=executor, batch_keys=4)
        assert executor.killed["tasks"] >= 1
        assert executor.killed["pid"] not in client.run(os.getpid).values()  # that process is gone
        assert len(client.nthreads()) == 1  # the other worker did the rest
    assert_every_object_there_once(source, azurite, "kill-", result)
