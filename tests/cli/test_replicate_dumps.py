"""``failover replicate``, databases section, end to end: the real executable, the source's
database an RDS instance on a ``moto_server`` process (for the snapshot) whose data lives
in a real PostgreSQL started here (the DSN), the target local disk or Azurite. Dumps are
restored with ``pg_restore`` to prove them."""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from replicatekit import replicate, snapshot

from failover.adapters import storage_target
from failover.config import StorageSpec
from failover.naming import DUMPS_BUCKET, parse_dump_key
from failover.state import StateStore
from failover.testing.emulators import Azurite
from failover.testing.postgres import LocalPostgres
from providers.libcloud.drivers import forget_adapters

SERVICE_TAGS = [{"Key": "service", "Value": "social-app"}]
DATABASE = "orders-db"
WRONG = "Wr0ng-pw-xyzzy"
DUMP_KEY = re.compile(r"^orders-db/\d{8}T\d{6}Z\.dump$")


@pytest.fixture
def orders(postgres: LocalPostgres, monkeypatch: pytest.MonkeyPatch) -> str:
    """The source database "orders", seeded, its DSN in ORDERS_DB_DSN as the config refers to it."""
    postgres.recreate("orders")
    postgres.sql("orders", "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    postgres.sql("orders", "INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee'), (3, 'cake')")
    monkeypatch.setenv("ORDERS_DB_DSN", postgres.dsn("orders"))
    return "orders"


@pytest.fixture(params=["disk"])
def storage_config(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if request.param == "disk":
        disk = tmp_path / "replicas"
        disk.mkdir()
        return {"driver": "local", "options": {"key": str(disk)}, "container_prefix": "replica-"}
    azurite: Azurite = request.getfixturevalue("azurite")
    monkeypatch.setenv("AZURITE_KEY", azurite.driver_options["secret"])
    # A prefix of this test's own: Azurite's containers outlive a test.
    return {"driver": "azure_blobs", "options": {**azurite.driver_options, "secret": "${env:AZURITE_KEY}"},
            "container_prefix": f"t{os.getpid()}-{tmp_path.name[-12:].lower().replace('_', '-')}-"}


@pytest.fixture
def replica(storage_config: dict[str, Any]) -> Iterator[Any]:
    forget_adapters()
    yield storage_target(StorageSpec(**storage_config))
    forget_adapters()


def make_config(write_config, storage_config: dict[str, Any] | None, databases: dict[str, Any], **profile: Any) -> Path:
    return write_config(
        source={"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
        targets={"fallback": {**({"storage": storage_config} if storage_config else {}), **profile}},
        databases=databases,
    )


@pytest.fixture
def config(write_config, storage_config: dict[str, Any]) -> Path:
    return make_config(write_config, storage_config, {DATABASE: {"dsn": "${env:ORDERS_DB_DSN}", "keep": 2}})


def seed_rds(clients, identifier: str = DATABASE, engine: str = "postgres", version: str = "15.4") -> None:
    clients("rds").create_db_instance(
        DBInstanceIdentifier=identifier, Engine=engine, EngineVersion=version, DBInstanceClass="db.t3.micro",
        AllocatedStorage=20, MasterUsername="admin", MasterUserPassword="not-used-1", Tags=SERVICE_TAGS,
    )


def dumped(failover, config: Path) -> dict[str, Any]:
    """Run ``replicate --json``, expecting success; the one database row."""
    result = replicate(failover, config, "--json")
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    [row] = document["databases"]["items"]
    return row


def dump_keys(replica: Any) -> list[str]:
    if not replica.container_exists(DUMPS_BUCKET):
        return []
    return sorted(item.key for item in replica.iter_objects(DUMPS_BUCKET))


def state_files(tmp_path: Path) -> dict[str, bytes]:
    return {str(path): path.read_bytes() for path in (tmp_path / ".failover").rglob("*") if path.is_file()}


@pytest.mark.parametrize("storage_config", ["disk", "azure"], indirect=True)
def test_a_dump_is_streamed_to_the_target_verified_recorded_and_restores(
    clients, config: Path, failover, replica, postgres: LocalPostgres, orders: str, tmp_path: Path
) -> None:
    seed_rds(clients)
    snapshot(failover, config)

    row = dumped(failover, config)

    assert DUMP_KEY.match(row["key"]) and row["engine"] == "postgres" and row["error"] is None
    assert row["container"] == replica.container_name(DUMPS_BUCKET) and row["pruned"] == []
    content = b"".join(replica.download_stream(DUMPS_BUCKET, row["key"]))
    assert content.startswith(b"PGDMP")  # pg_dump's custom format
    assert (row["bytes"], row["md5"]) == (len(content), hashlib.md5(content).hexdigest())
    assert row["elapsed_s"] > 0 and row["bytes_per_s"] > 0

    postgres.recreate("restored")
    postgres.client("pg_restore", "--no-owner", "-d", "restored", input=content)
    assert postgres.sql("restored", "SELECT string_agg(item, ',' ORDER BY id) FROM orders") == "tea,coffee,cake"

    with StateStore(tmp_path / ".failover") as store:
        [record] = store.dumps("social-app", "fallback", DATABASE)
    assert (record.key, record.bytes, record.md5, record.engine) == (row["key"], row["bytes"], row["md5"], "postgres")
    assert record.started_at == row["taken_at"]
    assert all(postgres.password.encode() not in data for data in state_files(tmp_path).values())


@pytest.mark.parametrize("storage_config", ["disk"], indirect=True)
def test_people_get_a_dumps_table_on_stderr(clients, config: Path, failover, orders: str) -> None:
    seed_rds(clients)
    snapshot(failover, config)

    result = replicate(failover, config)

    assert result.code == 0, result.stderr
    assert result.stdout == ""
    assert "Database dumps" in result.stderr and DATABASE in result.stderr and ".dump" in result.stderr


def test_keep_2_leaves_the_two_newest_dumps_after_three_runs(
    clients, config: Path, failover, replica, orders: str, tmp_path: Path
) -> None:
    seed_rds(clients)
    snapshot(failover, config)

    rows = [dumped(failover, config) for _ in range(3)]

    made = [row["key"] for row in rows]
    assert len(set(made)) == 3  # never one dump over another
    assert [parse_dump_key(key).taken_at for key in made] == sorted(parse_dump_key(key).taken_at for key in made)
    assert dump_keys(replica) == sorted(made[1:])
    assert (rows[0]["pruned"], rows[1]["pruned"], rows[2]["pruned"]) == ([], [], [made[0]])
    with StateStore(tmp_path / ".failover") as store:
        records = store.dumps("social-app", "fallback", DATABASE, include_pruned=True)
    assert [(r.key, r.pruned_at is not None) for r in records] == [(made[2], False), (made[1], False), (made[0], True)]


def test_a_wrong_password_fails_leaves_no_dump_and_is_never_written(
    clients, config: Path, failover, replica, postgres: LocalPostgres, orders: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_rds(clients)
    snapshot(failover, config)
    monkeypatch.setenv("ORDERS_DB_DSN", postgres.dsn("orders", password=WRONG))

    result = replicate(failover, config, "--json")

    assert result.code == 1
    [row] = json.loads(result.stdout)["databases"]["items"]
    assert row["key"] is None and row["bytes"] == 0
    assert row["error"].startswith(f"pg_dump of orders-db (127.0.0.1:{postgres.port}/orders) failed (exit 1):")
    assert "password authentication failed" in row["error"] and "password authentication failed" in result.stderr
    assert dump_keys(replica) == []
    for text in (result.stdout, result.stderr, row["error"]):
        assert WRONG not in text
    files = state_files(tmp_path)
    assert any(path.endswith("state.db") for path in files)
    assert all(WRONG.encode() not in data for data in files.values())
    with StateStore(tmp_path / ".failover") as store:
        assert store.dumps("social-app", "fallback", include_pruned=True) == []


def test_an_unknown_database_is_invalid_input_and_nothing_is_copied(
    clients, write_config, storage_config: dict[str, Any], failover, replica, orders: str, tmp_path: Path
) -> None:
    config = make_config(write_config, storage_config, {
        DATABASE: {"dsn": "${env:ORDERS_DB_DSN}"}, "billing-db": {"dsn": "${env:ORDERS_DB_DSN}"},
    })
    seed_rds(clients)
    s3 = clients("s3")  # a bucket too: not copied either, since the input is wrong
    s3.create_bucket(Bucket="media")
    s3.put_bucket_tagging(Bucket="media", Tagging={"TagSet": SERVICE_TAGS})
    s3.put_object(Bucket="media", Key="a.txt", Body=b"a")
    snapshot(failover, config)

    result = replicate(failover, config, "--json")

    assert result.code == 2 and result.stdout == ""
    assert f"{config}: databases.billing-db: no database billing-db in snapshot" in result.stderr
    assert "(it has: orders-db)" in result.stderr and "Traceback" not in result.stderr
    assert sorted(path.name for path in (tmp_path / "replicas").iterdir()) == []
    with StateStore(tmp_path / ".failover") as store:
        assert store.dumps("social-app", include_pruned=True) == [] and store.replications("social-app") == []


def test_an_engine_without_dumps_is_invalid_input(clients, write_config, storage_config, failover, orders: str) -> None:
    config = make_config(write_config, storage_config, {"reports-db": {"dsn": "${env:ORDERS_DB_DSN}"}})
    seed_rds(clients, "reports-db", engine="sqlserver-ex", version="15.00")
    snapshot(failover, config)

    result = replicate(failover, config)

    assert result.code == 2
    assert "databases.reports-db: engine sqlserver-ex has no dump format" in result.stderr


def test_an_unset_dsn_or_a_profile_without_storage_is_invalid_input(
    clients, write_config, storage_config: dict[str, Any], failover, config: Path, orders: str,
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    seed_rds(clients)
    snapshot(failover, config)
    monkeypatch.delenv("ORDERS_DB_DSN")

    unset = replicate(failover, config)
    assert unset.code == 2
    assert f"{config}: databases.orders-db.dsn: environment variable ORDERS_DB_DSN is not set" in unset.stderr

    monkeypatch.setenv("ORDERS_DB_DSN", "mysql://app:pw@db/orders")
    mismatched = replicate(failover, config)
    assert mismatched.code == 2 and "database orders-db is postgres: the dsn must be a postgres one" in mismatched.stderr
    assert "app:pw" not in mismatched.stderr

    dns_only = make_config(write_config, None, {DATABASE: {"dsn": "${env:ORDERS_DB_DSN}"}},
                           dns={"driver": "powerdns", "options": {"key": "k", "host": "127.0.0.1", "port": 9,
                                                                  "api_version": "v1", "secure": False}})
    no_storage = replicate(failover, dns_only)
    assert no_storage.code == 2
    assert "targets.fallback.storage: replicate stores database dumps in the target's storage" in no_storage.stderr
    assert sorted(path.name for path in (tmp_path / "replicas").iterdir()) == []


# -- DSNs of any shape: the password never on a command line, never in a message -------------

SLASHED = "12/SECRET-slash-pw"  # unencoded in the DSNs below: the standard URL reading ends the host at its "/"


@pytest.fixture(scope="module")
def slashed() -> Iterator[LocalPostgres]:
    server = LocalPostgres(password=SLASHED).start()
    server.recreate("orders")
    server.sql("orders", "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    server.sql("orders", "INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee'), (3, 'cake')")
    yield server
    server.stop()


@pytest.fixture
def argv_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slashed: LocalPostgres) -> Path:
    """pg_dump first on PATH: a wrapper that writes its arguments to this file, then runs the real one."""
    bin_dir, log = tmp_path / "bin", tmp_path / "argv.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "pg_dump"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\nexec {slashed.bin / "pg_dump"} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


@pytest.mark.parametrize("dsn", [
    "postgresql://postgres:{password}@127.0.0.1:{port}/orders",  # unencoded
    "postgresql://postgres:{encoded}@127.0.0.1:{port}/orders?password={encoded}",  # twice, the same
], ids=["unencoded", "userinfo-and-query"])
def test_a_dsn_of_any_shape_dumps_and_its_password_reaches_no_argv_output_or_state(
    clients, config: Path, failover, replica, slashed: LocalPostgres, argv_log: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, dsn: str,
) -> None:
    seed_rds(clients)
    snapshot(failover, config)
    encoded = SLASHED.replace("/", "%2F")
    monkeypatch.setenv("ORDERS_DB_DSN", dsn.format(password=SLASHED, encoded=encoded, port=slashed.port))

    result = replicate(failover, config, "--json")

    assert result.code == 0, result.stderr
    [row] = json.loads(result.stdout)["databases"]["items"]
    assert b"".join(replica.download_stream(DUMPS_BUCKET, row["key"])).startswith(b"PGDMP")
    argv = argv_log.read_text()
    assert f"port={slashed.port} dbname=orders user=postgres" in argv  # the wrapper ran
    for text in (argv, result.stdout, result.stderr):
        assert "SECRET" not in text
    assert all(b"SECRET" not in data for data in state_files(tmp_path).values())


def test_a_wrong_unencoded_password_or_two_different_ones_never_reach_argv_or_a_message(
    clients, config: Path, failover, replica, slashed: LocalPostgres, argv_log: Path, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seed_rds(clients)
    snapshot(failover, config)
    monkeypatch.setenv("ORDERS_DB_DSN", f"postgresql://postgres:12/WRONG-SECRET@127.0.0.1:{slashed.port}/orders")

    wrong = replicate(failover, config, "--json")

    assert wrong.code == 1
    [row] = json.loads(wrong.stdout)["databases"]["items"]
    assert row["error"].startswith(f"pg_dump of orders-db (127.0.0.1:{slashed.port}/orders) failed (exit 1):")
    assert "password authentication failed" in row["error"]
    assert argv_log.exists() and "WRONG" not in argv_log.read_text()

    monkeypatch.setenv("ORDERS_DB_DSN", f"postgresql://postgres:{SLASHED}@127.0.0.1:{slashed.port}/orders"
                                        "?password=OTHER-SECRET")
    argv_log.unlink()
    two = replicate(failover, config, "--json")

    assert two.code == 2 and two.stdout == ""
    assert f"{config}: databases.orders-db.dsn: gives two passwords, in the userinfo and as ?password=" in two.stderr
    assert not argv_log.exists()  # refused before any tool ran
    for text in (wrong.stdout, wrong.stderr, two.stderr):
        assert "SECRET" not in text
    assert all(b"SECRET" not in data for data in state_files(tmp_path).values())
    assert dump_keys(replica) == []


def test_a_dump_on_local_disk_is_readable_by_its_owner_only_whatever_the_umask(
    clients, config: Path, failover, postgres: LocalPostgres, orders: str, tmp_path: Path
) -> None:
    seed_rds(clients)
    snapshot(failover, config)

    result = failover("replicate", "--target", "fallback", "-c", str(config), "--json", umask=0o022)

    assert result.code == 0, result.stderr
    [row] = json.loads(result.stdout)["databases"]["items"]
    container = tmp_path / "replicas" / row["container"]
    dump = container.joinpath(*row["key"].split("/"))
    assert oct(dump.stat().st_mode & 0o777) == "0o600"  # was 0o664
    folders = [container, *(path for path in container.rglob("*") if path.is_dir())]
    assert {oct(path.stat().st_mode & 0o777) for path in folders} == {"0o700"}
