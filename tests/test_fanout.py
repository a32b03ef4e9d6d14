"""The fan-out of object copies (failover/fanout.py): moto S3 (a ``moto_server`` process) to Azurite,
on local threads, on a Dask ``LocalCluster`` of worker processes, and on a ``dask scheduler`` with two
``dask worker`` processes started as commands, one of them killed mid-run.

Every test checks what a user would: every source object is in its container once, with the
source's bytes (read back from Azurite), and each key has exactly one result.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import cloudpickle
import pytest
import yaml
from libcloud.storage.providers import Provider, get_driver

from failover.config import Config, load_config
from failover.fanout import (
    CopyBatch,
    DaskExecutor,
    KeyResult,
    KeyToCopy,
    StorageEnds,
    ThreadExecutor,
    copy_buckets,
    plan_batches,
)
from failover.ports import ObjectInfo
from failover.testing.emulators import AZURITE_ACCOUNT, AZURITE_KEY, Azurite
from failover.testing.servers import MotoServer, free_port, stop_process

ROOT = Path(__file__).resolve().parents[1]
# Values no task may carry: the AWS secret key and Azurite's account key, read by workers from their environment.
AWS_SECRET = "aws-secret-FANOUT-7f3c9d0e1b"
SECRET_ENV = {
    "AWS_ACCESS_KEY_ID": "fanout-key-id",
    "AWS_SECRET_ACCESS_KEY": AWS_SECRET,
    "AWS_DEFAULT_REGION": "us-east-1",
    "FANOUT_AZ_KEY": AZURITE_KEY,
}
BUCKETS = {"media": 30, "logs": 20}  # bucket -> objects


def body_of(bucket: str, n: int) -> bytes:
    return (f"{bucket}/{n}:".encode() * 200)[: 1000 + 37 * n]


@pytest.fixture(scope="module")
def secrets_env() -> Iterator[None]:
    """The secrets in this process's environment, which worker processes started from it inherit."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in SECRET_ENV.items():
            patch.setenv(name, value)
        for name in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL"):
            patch.delenv(name, raising=False)
        yield


@pytest.fixture(scope="module")
def source(moto_server: MotoServer, secrets_env: None) -> MotoServer:
    """Two buckets with objects of different sizes, one with metadata, and one key no target may hold."""
    s3 = boto3.client("s3", endpoint_url=moto_server.url, region_name="us-east-1")
    for bucket, count in BUCKETS.items():
        s3.create_bucket(Bucket=bucket)
        for n in range(count):
            s3.put_object(Bucket=bucket, Key=f"dir/{n:03d}.bin", Body=body_of(bucket, n))
    s3.put_object(Bucket="media", Key="tagged.txt", Body=b"hello", ContentType="text/plain", Metadata={"owner": "ops"})
    s3.put_object(Bucket="media", Key="a/../escape", Body=b"x")  # refused: a '..' segment
    return moto_server


def source_objects(server: MotoServer, bucket: str) -> dict[str, bytes]:
    s3 = boto3.client("s3", endpoint_url=server.url, region_name="us-east-1")
    keys = [item["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for item in page.get("Contents", [])]
    return {key: s3.get_object(Bucket=bucket, Key=key)["Body"].read() for key in keys if ".." not in key}


def write_config(directory: Path, endpoint_url: str, azurite: Azurite, prefix: str) -> Config:
    options = {**azurite.driver_options, "secret": "${env:FANOUT_AZ_KEY}"}
    data = {
        "service": "social-app",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}, "endpoint_url": endpoint_url},
        "targets": {"fallback": {"storage": {"driver": "azure_blobs", "options": options, "container_prefix": prefix}}},
    }
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return load_config(path)


def stored_in_azurite(azurite: Azurite, container: str) -> dict[str, bytes]:
    """Every blob of ``container`` with its bytes, read back from Azurite by a driver of the test's own."""
    driver = get_driver(Provider.AZURE_BLOBS)(key=AZURITE_ACCOUNT, secret=AZURITE_KEY, host="127.0.0.1",
                                              port=azurite.port, secure=False)
    blobs = driver.list_container_objects(driver.get_container(container))
    names = [blob.name for blob in blobs]
    assert len(names) == len(set(names))
    return {blob.name: b"".join(driver.download_object_as_stream(blob)) for blob in blobs}


def assert_every_object_there_once(source: MotoServer, azurite: Azurite, prefix: str, result: Any) -> None:
    assert result.ok, [(bucket.bucket, bucket.failed) for bucket in result.buckets]
    for bucket in result.buckets:
        expected = source_objects(source, bucket.bucket)
        stored = stored_in_azurite(azurite, prefix + bucket.bucket)
        assert sorted(stored) == sorted(expected)
        assert {key: hashlib.md5(body).hexdigest() for key, body in stored.items()} == {
            key: hashlib.md5(body).hexdigest() for key, body in expected.items()}
        # one result per key copied, every one of them ok and verified
        assert sorted(bucket.results) == sorted(expected)
        assert bucket.copied == len(expected) and not bucket.failed


@pytest.fixture
def config_for(tmp_path: Path, source: MotoServer, azurite: Azurite):
    return lambda prefix: write_config(tmp_path, source.url, azurite, prefix)


# -- the task carries no secret ---------------------------------------------------------------


def test_a_task_carries_no_secret_only_references(config_for) -> None:
    config = config_for("nosecret-")
    ends = StorageEnds.of(config, "fallback")
    items = [ObjectInfo(key=f"k{n}", size=n, hash=f"{n:032x}") for n in range(7)]
    batches = plan_batches(ends, "media", "us-east-1", items, 3)
    assert [len(batch.keys) for batch in batches] == [3, 3, 1]
    for dumped in (pickle.dumps(batches), cloudpickle.dumps(batches)):
        for secret in (AZURITE_KEY, AWS_SECRET, SECRET_ENV["AWS_ACCESS_KEY_ID"]):
            assert secret.encode() not in dumped
        assert b"${env:FANOUT_AZ_KEY}" in dumped  # the reference travels; the worker resolves it
    assert pickle.loads(pickle.dumps(batches[0])) == batches[0]


def test_a_worker_without_the_secret_in_its_environment_fails_the_keys_and_names_the_variable(
    config_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = config_for("nosecretenv-")
    monkeypatch.delenv("FANOUT_AZ_KEY")
    batch = CopyBatch(ends=StorageEnds.of(config, "fallback"), bucket="media", region="us-east-1",
                      keys=(KeyToCopy(key="dir/000.bin", size=1000),))
    [result] = ThreadExecutor(1).run_batches([batch])
    assert not result.ok and "environment variable FANOUT_AZ_KEY is not set" in (result.error or "")


def test_a_scheduler_that_does_not_answer_is_a_provider_error_exit_4() -> None:
    from failover.errors import ExitCode, ProviderUnreachable

    with pytest.raises(ProviderUnreachable, match="cannot reach the Dask scheduler") as raised:
        DaskExecutor(f"tcp://127.0.0.1:{free_port()}", connect_timeout=1)
    assert raised.value.exit_code == ExitCode.PROVIDER


def test_a_scheduler_without_workers_is_a_provider_error_exit_4() -> None:
    from distributed import LocalCluster

    from failover.errors import ProviderUnreachable

    with LocalCluster(n_workers=0, processes=False, dashboard_address=None) as empty, \
            pytest.raises(ProviderUnreachable, match="has no worker"):
        DaskExecutor(empty.scheduler_address, connect_timeout=1)


# -- local threads ------------------------------------------------------------------------------


def test_an_executor_runs_any_function_of_a_batch_each_batch_once() -> None:
    # what the evacuate command's own batches plug into: run_batches(batches, fn) -> each batch's results
    results = list(ThreadExecutor(3).run_batches(range(10), fn=lambda batch: [batch, -batch]))
    assert sorted(results) == sorted([*range(10), *(-n for n in range(10))])


def test_local_threads_copy_every_object_once_verified_and_refuse_an_unsafe_key(source, azurite, config_for) -> None:
    result = copy_buckets(config_for("threads-"), "fallback", list(BUCKETS), threads=4, batch_keys=10)
    assert result.executor == "ThreadExecutor"
    assert_every_object_there_once(source, azurite, "threads-", result)
    media = result.buckets[0]
    assert media.refused == {"a/../escape": "a '.' or '..' path segment"}
    assert result.to_dict()["buckets"][0]["refused"] == {"a/../escape": "a '.' or '..' path segment"}

    again = copy_buckets(config_for("threads-"), "fallback", list(BUCKETS), threads=4)
    assert [bucket.copied for bucket in again.buckets] == [0, 0]
    assert [bucket.skipped for bucket in again.buckets] == [BUCKETS["media"] + 1, BUCKETS["logs"]]


# -- Dask ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def local_cluster(secrets_env: None) -> Iterator[Any]:
    from distributed import Client, LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=None,
                      silence_logs=40) as cluster, Client(cluster, set_as_default=False) as client:
        client.wait_for_workers(2)
        yield client


def test_a_local_cluster_of_worker_processes_copies_every_object_once(source, azurite, config_for, local_cluster) -> None:
    pids = set(local_cluster.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids  # the copies run in two other processes
    executor = DaskExecutor(local_cluster)
    assert executor.parallelism == 4
    result = copy_buckets(config_for("localcluster-"), "fallback", list(BUCKETS), executor=executor, batch_keys=10)
    assert result.executor == "DaskExecutor" and result.batches >= 8
    assert_every_object_there_once(source, azurite, "localcluster-", result)


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
