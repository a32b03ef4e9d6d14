"""The fan-out of object copies (failover/fanout.py), moto S3 (a ``moto_server`` process) to Azurite:
what a task carries, local threads, and a Dask ``LocalCluster`` of worker processes. Every copy test
checks what a user would: every source object is in its container once, with the source's bytes
(read back from Azurite), and each key has exactly one result."""

from __future__ import annotations

import os
import pickle
from collections.abc import Iterator
from typing import Any

import cloudpickle
import pytest
from fanoutkit import AWS_SECRET, BUCKETS, SECRET_ENV, assert_every_object_there_once

from failover.fanout import CopyBatch, DaskExecutor, KeyToCopy, StorageEnds, ThreadExecutor, copy_buckets, plan_batches
from failover.ports import ObjectInfo
from failover.testing.emulators import AZURITE_KEY
from failover.testing.servers import free_port

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

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as empty, \
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

    with LocalCluster(n_workers=2, threads_per_worker=2, processes=True, dashboard_address=":0",
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
