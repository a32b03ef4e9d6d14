"""``failover replicate`` end to end: the real executable, the source a ``moto_server``
process snapshotted by ``failover inventory``, the target local disk or Azurite."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from replicatekit import replicate, replicated, snapshot

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.testing.emulators import Azurite
from providers.libcloud.drivers import forget_adapters

SERVICE_TAGS = [{"Key": "service", "Value": "social-app"}]
OBJECTS = {
    "index.html": b"<h1>hello</h1>",
    "img/logo one.png": os.urandom(20_000),
    "docs/été.txt": "ünïcødé".encode() * 100,
    "empty.txt": b"",
}
TARGETS = ["disk", "azure"]
_names = itertools.count(1)


@pytest.fixture
def bucket() -> str:
    """A bucket name of this test's own: Azurite's containers outlive a test."""
    return f"media-{next(_names)}-{os.getpid()}"


@pytest.fixture(params=TARGETS)
def storage_config(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The target profile's storage, as written in failover.yaml (secrets by reference)."""
    if request.param == "disk":
        disk = tmp_path / "replicas"
        disk.mkdir()
        return {"driver": "local", "options": {"key": str(disk)}, "container_prefix": "replica-"}
    azurite: Azurite = request.getfixturevalue("azurite")
    monkeypatch.setenv("AZURITE_KEY", azurite.driver_options["secret"])
    return {"driver": "azure_blobs", "options": {**azurite.driver_options, "secret": "${env:AZURITE_KEY}"},
            "container_prefix": "replica-"}


@pytest.fixture
def config(write_config, storage_config: dict[str, Any]) -> Path:
    return write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {"storage": storage_config}},
    )


@pytest.fixture
def replica(storage_config: dict[str, Any]) -> Iterator[Any]:
    """The target storage as the test reads it, in-process (secrets resolved from this environment)."""
    forget_adapters()
    yield storage_target(StorageSpec(**storage_config))
    forget_adapters()


def seed_bucket(clients, bucket: str, objects: dict[str, bytes]) -> None:
    s3 = clients("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": SERVICE_TAGS})
    for key, body in objects.items():
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/octet-stream")


def stored(replica: Any, bucket: str) -> dict[str, str]:
    """key -> MD5 of the content the target holds."""
    return {item.key: _md5(b"".join(replica.download_stream(bucket, item.key))) for item in replica.iter_objects(bucket)}


def _md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def test_copies_everything_then_nothing_then_only_what_changed(clients, config: Path, failover, replica, bucket: str) -> None:
    seed_bucket(clients, bucket, OBJECTS)
    snapshot(failover, config)

    first = replicated(failover, config)
    [row] = first["buckets"]["items"]
    size = sum(len(body) for body in OBJECTS.values())
    assert (row["bucket"], row["container"]) == (bucket, f"replica-{bucket}")
    assert (row["objects"], row["bytes"], row["copied"], row["copied_bytes"], row["skipped"]) == (4, size, 4, size, 0)
    assert row["error"] is None and row["elapsed_s"] > 0 and row["bytes_per_s"] > 0
    assert first["buckets"]["totals"]["copied"] == 4 and first["target"] == "fallback"
    assert stored(replica, bucket) == {key: _md5(body) for key, body in OBJECTS.items()}

    second = replicated(failover, config)
    [row] = second["buckets"]["items"]
    assert (row["copied"], row["copied_bytes"], row["skipped"]) == (0, 0, 4)

    clients("s3").put_object(Bucket=bucket, Key="index.html", Body=b"<h1>changed</h1>")
    third = replicated(failover, config)
    [row] = third["buckets"]["items"]
    assert (row["copied"], row["copied_bytes"], row["skipped"]) == (1, len(b"<h1>changed</h1>"), 3)
    assert stored(replica, bucket)["index.html"] == _md5(b"<h1>changed</h1>")


def test_people_get_a_table_on_stderr_and_nothing_on_stdout(clients, config: Path, failover, bucket: str) -> None:
    seed_bucket(clients, bucket, {"a.txt": b"a"})
    snapshot(failover, config)

    result = replicate(failover, config)

    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert bucket in result.stderr and "Replication of social-app to fallback done" in result.stderr


def test_a_source_emptied_is_not_propagated_with_delete(clients, config: Path, failover, replica, bucket: str) -> None:
    seed_bucket(clients, bucket, OBJECTS)
    snapshot(failover, config)
    replicated(failover, config)
    s3 = clients("s3")
    for key in OBJECTS:
        s3.delete_object(Bucket=bucket, Key=key)

    refused = replicate(failover, config, "--delete", "--json")

    assert refused.code == 1
    [row] = json.loads(refused.stdout)["buckets"]["items"]
    assert "refusing to delete all 4 objects" in row["error"]
    assert "refusing to delete all 4 objects" in refused.stderr and "Traceback" not in refused.stderr
    assert set(stored(replica, bucket)) == set(OBJECTS)

    forced = replicated(failover, config, "--delete", "--force")
    assert forced["buckets"]["items"][0]["deleted"] == 4
    assert stored(replica, bucket) == {}


def test_one_removed_object_is_deleted_with_delete_only(clients, config: Path, failover, replica, bucket: str) -> None:
    many = {f"file-{n:02}.txt": str(n).encode() for n in range(20)}
    seed_bucket(clients, bucket, many)
    snapshot(failover, config)
    replicated(failover, config)
    clients("s3").delete_object(Bucket=bucket, Key="file-00.txt")

    kept = replicated(failover, config)
    assert kept["buckets"]["items"][0]["deleted"] == 0 and "file-00.txt" in stored(replica, bucket)

    pruned = replicated(failover, config, "--delete")
    assert pruned["buckets"]["items"][0]["deleted"] == 1 and "file-00.txt" not in stored(replica, bucket)


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_an_unknown_target_profile_is_invalid_input(clients, config: Path, failover, bucket: str) -> None:
    seed_bucket(clients, bucket, {"a.txt": b"a"})
    snapshot(failover, config)

    result = failover("replicate", "--target", "nowhere", "-c", str(config), "--json")

    assert result.code == 2
    assert result.stdout == ""
    assert "targets.nowhere" in result.stderr and "no such target profile (known: fallback)" in result.stderr


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_no_snapshot_or_an_unknown_bucket_is_invalid_input(clients, config: Path, failover, bucket: str, tmp_path: Path) -> None:
    seed_bucket(clients, bucket, {"a.txt": b"a"})

    none_yet = replicate(failover, config)
    assert none_yet.code == 2 and "run `failover inventory`" in none_yet.stderr

    snapshot(failover, config)
    unknown = replicate(failover, config, "--bucket", "not-in-snapshot")
    assert unknown.code == 2 and "no bucket not-in-snapshot in snapshot" in unknown.stderr and bucket in unknown.stderr
    assert not (tmp_path / "replicas" / f"replica-{bucket}").exists()


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_an_unreachable_source_exits_4(clients, config: Path, failover, bucket: str) -> None:
    seed_bucket(clients, bucket, {"a.txt": b"a"})
    snapshot(failover, config)

    result = replicate(failover, config, env={"AWS_ENDPOINT_URL": "http://127.0.0.1:9"})

    assert result.code == 4
    assert "cannot reach AWS" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("storage_config", ["azure"], indirect=True)
def test_an_unset_target_secret_is_invalid_input(
    clients, config: Path, failover, bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_bucket(clients, bucket, {"a.txt": b"a"})
    snapshot(failover, config)
    monkeypatch.delenv("AZURITE_KEY")

    result = replicate(failover, config)

    assert result.code == 2
    assert "targets.fallback.storage.options.secret" in result.stderr and "AZURITE_KEY is not set" in result.stderr


def test_a_run_or_drill_holding_the_lock_makes_replicate_wait_with_exit_3(
    clients, config: Path, failover, replica, bucket: str
) -> None:
    from failover.engine.lock import ServiceLock
    from failover.state import StateStore

    seed_bucket(clients, bucket, {"a.txt": b"a"})
    snapshot(failover, config)
    with StateStore(config.parent / ".failover") as store:
        lock = ServiceLock(store, "social-app")
        lock.acquire("drill-under-way")  # held by this (live) process
        try:
            result = replicate(failover, config)
        finally:
            lock.release("drill-under-way")
        assert result.code == 3, result.stderr
        assert "social-app is locked by drill-under-way" in result.stderr
        assert replica.container_exists(bucket) is False  # nothing created, nothing copied
        assert lock.holder() is None

    assert replicated(failover, config)["ok"] is True  # free again
    with StateStore(config.parent / ".failover") as store:
        assert ServiceLock(store, "social-app").holder() is None  # released after the pass


# -- keys a target cannot hold (issue 10) ---------------------------------------------------------

LONG_KEY = "k" * 1024
HOSTILE = {
    "a": b"a file where local disk needs a folder",
    "a/b": b"under a",
    LONG_KEY: b"a file name too long for local disk",
    "x/y": b"the real x/y",
    "x//y": b"what Azure would store over x/y",
    "ctl\x01key": b"a control character",
    "esc\x1b[2Jkey": b"a terminal control",
}
REFUSED_ON = {
    "disk": {"a", LONG_KEY, "x//y", "ctl\x01key", "esc\x1b[2Jkey"},
    "azure": {"x//y", "ctl\x01key", "esc\x1b[2Jkey"},
}


def test_keys_a_target_cannot_hold_are_refused_one_by_one_and_the_rest_copied_and_recorded(
    request: pytest.FixtureRequest, clients, config: Path, failover, replica, bucket: str
) -> None:
    kind = request.node.callspec.params["storage_config"]
    seed_bucket(clients, bucket, {**OBJECTS, **HOSTILE})
    snapshot(failover, config)
    held = {key: body for key, body in {**OBJECTS, **HOSTILE}.items() if key not in REFUSED_ON[kind]}

    result = replicate(failover, config, "--json")

    assert result.code == 0, result.stderr
    [row] = json.loads(result.stdout)["buckets"]["items"]
    assert row["error"] is None
    assert set(row["refused_keys"]) == REFUSED_ON[kind]
    assert (row["objects"], row["copied"], row["refused"]) == (len(OBJECTS) + len(HOSTILE), len(held), len(REFUSED_ON[kind]))
    assert json.loads(result.stdout)["buckets"]["totals"]["refused"] == len(REFUSED_ON[kind])
    # The container still lists (Azure answered 500 to every listing after a control character),
    # and holds every other key, x/y with its own content.
    assert stored(replica, bucket) == {key: _md5(body) for key, body in held.items()}
    # Messages escape controls and cut long keys.
    assert "\x1b" not in result.stderr and "\x01" not in result.stderr
    assert "'esc\\x1b[2Jkey'" in result.stderr.replace("\n", "")
    assert LONG_KEY not in result.stderr
    from failover.state import StateStore

    with StateStore(config.parent / ".failover") as store:  # the pass is recorded: the RPO is measured from it
        assert store.last_replication("social-app", "fallback", bucket) is not None

    again = replicated(failover, config)  # the same keys refused, nothing copied again
    [row] = again["buckets"]["items"]
    assert (row["copied"], row["refused"], row["skipped"]) == (0, len(REFUSED_ON[kind]), len(held))

    # `check` lists the container and counts the refused keys: a warning, not an incomplete replica.
    checked = failover("check", "standard", "--target", "fallback", "-c", str(config), "--json")
    [replicas] = [item for item in json.loads(checked.stdout)["checks"] if item["name"] == "replicas"]
    assert replicas["status"] == "warn", replicas["detail"]
    assert f"{len(REFUSED_ON[kind])} object(s) with keys the target cannot hold were refused" in replicas["detail"]


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_a_long_key_is_refused_with_a_short_message(clients, config: Path, failover, bucket: str) -> None:
    seed_bucket(clients, bucket, {LONG_KEY: b"x", "ok.txt": b"y"})
    snapshot(failover, config)

    result = replicate(failover, config)

    assert result.code == 0, result.stderr
    assert "'" + "k" * 80 + "…' (1,024 characters)" in result.stderr.replace("\n", "")
    assert "k" * 81 not in result.stderr.replace("\n", "")


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_local_disk_replicas_are_private_and_leave_no_lock_files(
    clients, config: Path, failover, bucket: str, tmp_path: Path
) -> None:
    seed_bucket(clients, bucket, OBJECTS)
    snapshot(failover, config)
    scratch = tmp_path / "tmp"
    scratch.mkdir()

    # umask 022, as a login shell has it, and a $TMPDIR of the test's own to see what is left there
    result = failover("replicate", "--target", "fallback", "-c", str(config), env={"TMPDIR": str(scratch)},
                      umask=0o022)

    assert result.code == 0, result.stderr
    container = tmp_path / "replicas" / f"replica-{bucket}"
    files = [path for path in container.rglob("*") if path.is_file()]
    folders = [container, *(path for path in container.rglob("*") if path.is_dir())]
    assert len(files) == len(OBJECTS) and len(folders) >= 3
    assert {oct(path.stat().st_mode & 0o777) for path in files} == {"0o600"}
    assert {oct(path.stat().st_mode & 0o777) for path in folders} == {"0o700"}
    assert list(scratch.iterdir()) == []  # libcloud's <sha256>.lock per object, before
    assert not list(container.rglob(".*"))  # no temporary or lock file in the replica either


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_a_failed_bucket_still_reports_what_its_pass_found_and_refused(clients, config: Path, failover, bucket: str) -> None:
    seed_bucket(clients, bucket, {**OBJECTS, "ctl\x01key": b"refused"})
    snapshot(failover, config)
    replicated(failover, config)
    for key in list(OBJECTS)[:3]:
        clients("s3").delete_object(Bucket=bucket, Key=key)

    result = replicate(failover, config, "--delete", "--json")  # 3 of the 4 stored would go: refused

    assert result.code == 1
    [row] = json.loads(result.stdout)["buckets"]["items"]
    assert "refusing to delete 3 of the 4 objects" in row["error"]
    assert (row["objects"], row["copied"], row["refused"], list(row["refused_keys"])) == (2, 0, 1, ["ctl\x01key"])
    assert json.loads(result.stdout)["buckets"]["totals"]["refused"] == 1


@pytest.mark.parametrize("storage_config", ["azure"], indirect=True)
def test_a_key_of_many_accented_letters_is_listed_back_as_it_is(clients, config: Path, failover, replica, bucket: str) -> None:
    key = "é" * 100  # Azure's listing names no charset: requests guessed EUC-KR for it, and read "챕" * 100
    seed_bucket(clients, bucket, {key: b"x"})
    snapshot(failover, config)

    first = replicated(failover, config)

    assert first["buckets"]["items"][0]["copied"] == 1
    assert [item.key for item in replica.iter_objects(bucket)] == [key]
    again = replicated(failover, config)  # the copy is found under its own name: nothing copied again
    assert (again["buckets"]["items"][0]["copied"], again["buckets"]["items"][0]["skipped"]) == (0, 1)
