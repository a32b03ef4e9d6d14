"""``sync-buckets``: from the source (a moto_server process) while it answers, else from the
replica on the target (Azurite, local disk), with the data's age; undo removes only what
the run created."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import yaml

from failover.actions.base import ACTIONS, ActionContext
from failover.config import Config, load_config
from failover.engine import Engine, RunStatus
from failover.errors import OperationFailed
from failover.manifest import Bucket, Manifest, SourceInfo, now_iso
from failover.playbook import load_playbook
from failover.state import StateStore
from failover.targets import Targets
from failover.testing.emulators import Azurite
from failover.testing.servers import MotoServer

SyncBuckets = ACTIONS.get("sync-buckets")
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}
OBJECTS = {
    "index.html": (b"<h1>hello</h1>", "text/html", {"owner": "alice"}),
    "img/çà et là ✓.png": (os.urandom(50_000), "image/png", {"camera": "x100"}),
}
_runs = itertools.count(1)


@pytest.fixture(autouse=True)
def _aws_credentials(aws_env: None) -> None:
    """Fake credentials for every test (the source adapter reads the environment's)."""


@pytest.fixture
def source() -> Iterator[MotoServer]:
    """A source account of this test's own: some tests cut it off."""
    with MotoServer() as server:
        yield server


def fill(source: MotoServer, bucket: str, objects: dict[str, tuple[bytes, str, dict[str, str]]] = OBJECTS) -> None:
    s3 = boto3.client("s3", endpoint_url=source.url, **CREDENTIALS)
    s3.create_bucket(Bucket=bucket)
    for key, (body, content_type, meta) in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type, Metadata=meta)


def write_config(directory: Path, source: MotoServer, storage: dict[str, Any]) -> Config:
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump({
        "service": "svc",
        "state": ".failover",
        "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}, "endpoint_url": source.url},
        "targets": {"fallback": {"storage": storage}},
    }))
    return load_config(path)


@pytest.fixture
def prefix() -> str:
    return f"r{next(_runs)}-{os.getpid()}-"


@pytest.fixture
def azure_config(tmp_path: Path, source: MotoServer, azurite: Azurite, prefix: str) -> Config:
    return write_config(tmp_path, source, {"driver": "azure_blobs", "options": azurite.driver_options, "container_prefix": prefix})


def manifest(*buckets: str) -> Manifest:
    return Manifest(
        service="svc", taken_at=now_iso(), source=SourceInfo(provider="aws", account="123456789012", regions=["us-east-1"]),
        resources=[Bucket(id=name, name=name, region="us-east-1", objects=2, bytes=50_014, versioning=False) for name in buckets],
    )


def context(config: Config, *buckets: str, created: list[dict[str, Any]] | None = None, run_id: str = "run-1") -> ActionContext:
    return ActionContext(
        run_id=run_id, step_id="data", service="svc", config=config, target_name="fallback",
        manifest=manifest(*buckets), targets=Targets(config, "fallback"), created=list(created or []),
    )


def params(**values: Any) -> Any:
    return SyncBuckets.Params.model_validate(values)


def stored_keys(config: Config, bucket: str) -> list[str]:
    return sorted(item.key for item in Targets(config, "fallback").storage.iter_objects(bucket))


def stored_md5(config: Config, bucket: str, key: str) -> str:
    return hashlib.md5(b"".join(Targets(config, "fallback").storage.download_stream(bucket, key))).hexdigest()


# -- with the source -------------------------------------------------------------------

def test_plan_names_each_container_and_whether_a_replica_is_there(azure_config: Config, source: MotoServer, prefix: str) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media"), params())

    changes = SyncBuckets().plan(context(azure_config, "media", "logs"), params())

    assert [(c.operation, c.kind, c.name) for c in changes] == [
        ("create", "container", f"{prefix}logs"), ("update", "container", f"{prefix}media")
    ]
    assert "needs the source" in changes[0].detail


def test_copies_from_the_source_when_it_answers(azure_config: Config, source: MotoServer, prefix: str) -> None:
    fill(source, "media")
    fill(source, "logs", {"2024/01/01.log": (b"GET /\n" * 100, "text/plain", {})})
    ctx = context(azure_config, "media", "logs")

    outputs = SyncBuckets().apply(ctx, params())

    assert outputs["media"] == {
        "container": f"{prefix}media", "objects": 2, "bytes": sum(len(body) for body, _, _ in OBJECTS.values()),
        "copied": 2, "skipped": 0, "source": "aws", "replica_age_s": 0.0, "refused": [], "incomplete": [],
    }
    assert outputs["logs"]["copied"] == 1
    assert stored_keys(azure_config, "media") == sorted(OBJECTS)
    for key, (body, content_type, meta) in OBJECTS.items():
        assert stored_md5(azure_config, "media", key) == hashlib.md5(body).hexdigest()
        stored = Targets(azure_config, "fallback").storage.get_object("media", key)
        assert (stored.content_type, stored.meta) == (content_type, meta)
    assert sorted((item["kind"], item["id"]) for item in ctx.created) == [
        ("container", f"{prefix}logs"), ("container", f"{prefix}media")
    ]


def test_applying_again_copies_nothing(azure_config: Config, source: MotoServer) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media"), params())

    again = SyncBuckets().apply(context(azure_config, "media"), params())

    assert (again["media"]["copied"], again["media"]["skipped"]) == (0, 2)


def test_undo_deletes_the_containers_the_run_created(azure_config: Config, source: MotoServer) -> None:
    fill(source, "media")
    ctx = context(azure_config, "media")
    SyncBuckets().apply(ctx, params())

    SyncBuckets().undo(context(azure_config, "media", created=ctx.created), params())

    assert not Targets(azure_config, "fallback").storage.container_exists("media")


def test_undo_keeps_a_replica_that_was_there_and_removes_only_what_the_run_added(
    azure_config: Config, source: MotoServer
) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media", run_id="replicated-before"), params())
    fill(source, "media", {"new.txt": (b"added later", "text/plain", {})})
    ctx = context(azure_config, "media")

    assert SyncBuckets().apply(ctx, params())["media"]["copied"] == 1
    assert [(item["kind"], item["key"]) for item in ctx.created] == [("object", "new.txt")]

    SyncBuckets().undo(context(azure_config, "media", created=ctx.created), params())
    assert stored_keys(azure_config, "media") == sorted(OBJECTS)


def test_keys_escaping_local_disk_are_refused_and_reported(tmp_path: Path, source: MotoServer) -> None:
    disk = tmp_path / "disk"
    disk.mkdir()
    config = write_config(tmp_path, source, {"driver": "local", "options": {"key": str(disk)}, "container_prefix": "replica-"})
    fill(source, "media", {**OBJECTS, "../evil": (b"x", "text/plain", {}), "a//b": (b"y", "text/plain", {})})

    outputs = SyncBuckets().apply(context(config, "media"), params())

    assert outputs["media"]["refused"] == ["../evil", "a//b"]
    assert outputs["media"]["copied"] == 2
    assert not (disk / "evil").exists() and not (tmp_path / "evil").exists()


def test_a_bucket_not_in_the_snapshot_is_an_error(azure_config: Config) -> None:
    with pytest.raises(OperationFailed, match="no bucket nope in the snapshot"):
        SyncBuckets().apply(context(azure_config, "media"), params(buckets=["nope"]))


# -- with the source gone -----------------------------------------------------------------

def test_uses_the_replica_and_reports_its_age_when_the_source_is_gone(azure_config: Config, source: MotoServer, prefix: str) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media", run_id="earlier"), params())
    source.stop()
    ctx = context(azure_config, "media")
    messages: list[str] = []
    ctx.log = messages.append

    outputs = SyncBuckets().apply(ctx, params())

    media = outputs["media"]
    assert (media["source"], media["container"], media["objects"], media["copied"]) == ("replica", f"{prefix}media", 2, 0)
    assert isinstance(media["replica_age_s"], float) and 0 <= media["replica_age_s"] < 600
    assert ctx.created == []
    assert any("does not answer" in message and "cannot reach S3" in message for message in messages)


def test_fails_naming_each_bucket_without_a_replica_when_the_source_is_gone(
    azure_config: Config, source: MotoServer, prefix: str
) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media"), params())
    source.stop()

    with pytest.raises(OperationFailed) as failure:
        SyncBuckets().apply(context(azure_config, "media", "logs"), params())

    assert str(failure.value) == (
        f"no replica of bucket logs in container {prefix}logs; run failover replicate while the source is reachable"
    )


def test_a_damaged_replica_fails_unless_accepted(azure_config: Config, source: MotoServer) -> None:
    fill(source, "media")
    SyncBuckets().apply(context(azure_config, "media"), params())
    Targets(azure_config, "fallback").storage.delete_object("media", "index.html")
    source.stop()

    with pytest.raises(OperationFailed, match="lacks 1 and has changed 0 of the objects .*'index.html'"):
        SyncBuckets().apply(context(azure_config, "media"), params())
    outputs = SyncBuckets().apply(context(azure_config, "media"), params(accept_incomplete_replica=True))
    assert (outputs["media"]["source"], outputs["media"]["incomplete"]) == ("replica", ["index.html"])


def test_the_parameters_are_closed() -> None:
    with pytest.raises(ValueError):
        params(bucket="media")
    with pytest.raises(ValueError):
        params(workers=0)


# -- through the engine ------------------------------------------------------------------

def test_a_run_journals_the_containers_it_creates_and_its_rollback_removes_them(
    azure_config: Config, source: MotoServer, tmp_path: Path
) -> None:
    fill(source, "media")
    playbook_path = tmp_path / "data.yaml"
    playbook_path.write_text(yaml.safe_dump({"name": "data", "steps": [{"id": "data", "action": "sync-buckets"}]}))
    with StateStore(azure_config.state_dir) as store:
        store.save_snapshot(manifest("media"))
        engine = Engine(store, azure_config)

        run = engine.start(load_playbook(str(playbook_path)), target="fallback")
        assert run.status is RunStatus.SUCCEEDED
        [step] = engine.journal.steps(run.id)
        assert (step.outputs["media"]["copied"], step.outputs["media"]["source"]) == (2, "aws")
        assert [item["kind"] for item in engine.journal.created(run.id, "data")] == ["container"]
        assert store.last_replication("svc", "fallback", "media").copied == 2

        assert engine.rollback(run.id).status is RunStatus.ROLLED_BACK
    assert not Targets(azure_config, "fallback").storage.container_exists("media")
