"""``restore-databases``: mode dsn restores the newest dump for real into a throwaway
PostgreSQL server (and into ``mysql`` through a stand-in client); mode node creates
database nodes on a moto_server target whose cloud-init installs the engine and restores."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from pydantic import ValidationError
from targetkit import (
    RUN_ID,
    compute_spec,
    context,
    database,
    live_instances,
    manifest,
    tags_of,
    user_data_of,
    write_config,
)

from failover.actions.restore_databases import RestoreDatabases, RestoreDatabasesParams
from failover.cloudinit import cloud_config_parts, comment_text
from failover.databases.base import rds_instance_class_shape as instance_class_shape
from failover.databases.node import database_node, node_problem, restore_script
from failover.databases.postgres import postgres_major
from failover.dsn import parse_dsn
from failover.errors import ConfigError, InputError, OperationFailed
from failover.mapping import choose_image, choose_size
from failover.naming import DUMPS_BUCKET, DumpKey, dump_key, parse_dump_key
from failover.ports import ImageInfo, SizeInfo
from failover.targets import Targets
from failover.testing.postgres import DEFAULT_PASSWORD, LocalPostgres

PASSWORD = DEFAULT_PASSWORD  # the postgres fixture's (tests/conftest.py): s3cret-Pw'd


def now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)
ORDERS = manifest(database("orders-db"))


# -- dumps from the throwaway PostgreSQL server (the postgres fixture of tests/conftest.py) ----


@pytest.fixture
def dumps(postgres: LocalPostgres) -> dict[str, bytes]:
    """Two dumps of the source database "orders": yesterday's (2 orders) and today's (3)."""
    postgres.sql("postgres", "DROP DATABASE IF EXISTS orders")
    postgres.sql("postgres", "CREATE DATABASE orders")
    postgres.sql("orders", "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    postgres.sql("orders", "INSERT INTO orders VALUES (1, 'tea'), (2, 'coffee')")
    older = postgres.dump("orders")
    postgres.sql("orders", "INSERT INTO orders VALUES (3, 'cake')")
    return {"older": older, "newer": postgres.dump("orders")}


@pytest.fixture
def restored(postgres: LocalPostgres) -> str:
    """An empty database on the "target" server, to restore into."""
    postgres.sql("postgres", "DROP DATABASE IF EXISTS restored")
    postgres.sql("postgres", "CREATE DATABASE restored")
    return "restored"


def storage_profile(tmp_path: Path) -> dict[str, Any]:
    (tmp_path / "storage").mkdir(exist_ok=True)
    return {"driver": "local", "options": {"key": str(tmp_path / "storage")}, "container_prefix": "replica-"}


@pytest.fixture
def config(tmp_path: Path):
    return write_config(tmp_path, {"storage": storage_profile(tmp_path)})


def store_dump(config, key: str, content: bytes) -> None:
    storage = Targets(config, "fallback").storage
    storage.ensure_container(DUMPS_BUCKET)
    storage.upload_stream(DUMPS_BUCKET, key, [content])


def store_dumps(config, dumps: dict[str, bytes], database: str = "orders-db") -> tuple[str, str]:
    older = dump_key(database, "postgres", now() - timedelta(days=1))
    newer = dump_key(database, "postgres", now() - timedelta(hours=2))
    store_dump(config, older, dumps["older"])
    store_dump(config, newer, dumps["newer"])
    store_dump(config, dump_key("other-db", "postgres", now()), b"not ours")
    return older, newer


def params(**values: Any) -> RestoreDatabasesParams:
    return RestoreDatabasesParams.model_validate(values)


# -- mode dsn, into a real PostgreSQL -------------------------------------------------------


def test_dsn_mode_restores_the_newest_dump_into_the_server(config, postgres, dumps, restored) -> None:
    _, newer = store_dumps(config, dumps)
    log: list[str] = []
    ctx = context(config, ORDERS, step_id="databases", log=log)

    outputs = RestoreDatabases().apply(ctx, params(mode="dsn", dsn=postgres.dsn(restored)))

    assert postgres.sql(restored, "SELECT string_agg(item, ',' ORDER BY id) FROM orders") == "tea,coffee,cake"
    entry = outputs["databases"]["orders-db"]
    assert entry == outputs["orders-db"]
    assert entry == {
        "mode": "dsn", "engine": "postgres", "engine_version": "15.4",
        "dump_container": "replica-failover-dumps", "dump_key": newer,
        "dump_taken_at": parse_dump_key(newer).taken_at.isoformat().replace("+00:00", "Z"),
        "dump_age_s": entry["dump_age_s"],
        "host": "127.0.0.1", "port": postgres.port, "database": "restored", "restored_bytes": len(dumps["newer"]),
    }
    assert 7200 <= entry["dump_age_s"] < 7200 + 60
    assert PASSWORD not in json.dumps(outputs) and PASSWORD not in "\n".join(log)
    assert ctx.created == []  # an existing server: nothing created, nothing to roll back


def test_dsn_mode_again_replaces_instead_of_duplicating(config, postgres, dumps, restored) -> None:
    store_dumps(config, dumps)
    postgres.sql(restored, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    postgres.sql(restored, "INSERT INTO orders VALUES (99, 'stale')")
    ctx = context(config, ORDERS, step_id="databases")

    RestoreDatabases().apply(ctx, params(mode="dsn", dsn=postgres.dsn(restored)))
    RestoreDatabases().apply(ctx, params(mode="dsn", dsn=postgres.dsn(restored)))

    assert postgres.sql(restored, "SELECT count(*), max(id) FROM orders") == "3|3"


def test_dsn_mode_with_a_wrong_password_fails_without_showing_it(config, postgres, dumps, restored) -> None:
    store_dumps(config, dumps)
    wrong = "Wr0ng-pass"

    with pytest.raises(OperationFailed) as caught:
        RestoreDatabases().apply(context(config, ORDERS), params(mode="dsn", dsn=postgres.dsn(restored, password=wrong)))

    message = str(caught.value)
    assert f"pg_restore into 127.0.0.1:{postgres.port}/restored failed" in message
    assert "password authentication failed" in message
    assert wrong not in message and "postgres:" not in message


def test_dsn_mode_plan_names_the_dump_and_the_server_only(config, postgres, dumps) -> None:
    _, newer = store_dumps(config, dumps)

    [change] = RestoreDatabases().plan(context(config, ORDERS), params(mode="dsn", dsn=postgres.dsn("restored")))

    assert change.operation == "update" and change.name == "orders-db"
    assert change.detail.startswith(f"restore replica-failover-dumps/{newer} (2.0 h old) into 127.0.0.1:{postgres.port}/restored")
    assert PASSWORD not in change.detail


def test_dsn_mode_into_mysql_streams_the_gunzipped_dump_with_credentials_in_an_option_file(
    tmp_path: Path, config, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir, seen = tmp_path / "bin", tmp_path / "seen"
    bin_dir.mkdir(), seen.mkdir()
    fake_mysql = bin_dir / "mysql"
    fake_mysql.write_text(
        "#!/bin/sh\n"
        f'printf "%s\\n" "$@" > {seen}/argv\n'
        f'cp "$(printf "%s\\n" "$@" | sed -n "s/^--defaults-extra-file=//p")" {seen}/options\n'
        f"cat > {seen}/stdin\n"
    )
    fake_mysql.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    sql = b"CREATE TABLE t (id int);\nINSERT INTO t VALUES (1);\n" * 1000
    key = dump_key("shop-db", "mysql", now())
    store_dump(config, key, gzip.compress(sql))
    snapshot = manifest(database("shop-db", engine="mysql", version="8.0.35", instance_class="db.m5.large"))

    outputs = RestoreDatabases().apply(
        context(config, snapshot), params(mode="dsn", dsn=f"mysql://shop:{PASSWORD.replace(chr(39), '%27')}@db.internal:3307/shop")
    )

    assert (seen / "stdin").read_bytes() == sql
    argv = (seen / "argv").read_text()
    assert "--database=shop" in argv and PASSWORD not in argv
    options = (seen / "options").read_text()
    assert f'password="{PASSWORD}"' in options and 'host="db.internal"' in options and 'port="3307"' in options
    assert outputs["shop-db"]["host"] == "db.internal" and outputs["shop-db"]["dump_key"] == key
    assert outputs["shop-db"]["restored_bytes"] == len(sql)


# -- dumps that are not there ----------------------------------------------------------------


def test_no_dumps_container_is_an_error_naming_container_and_prefix(config) -> None:
    with pytest.raises(OperationFailed, match="no dump of database orders-db: container replica-failover-dumps does not exist") as caught:
        RestoreDatabases().plan(context(config, ORDERS), params(mode="dsn", dsn="postgresql://u@h/d"))
    assert "replica-failover-dumps/orders-db/<UTC time>.dump" in str(caught.value)


def test_no_dump_of_the_database_is_an_error_naming_container_and_prefix(config) -> None:
    store_dump(config, dump_key("other-db", "postgres", now()), b"x")
    store_dump(config, "orders-db/latest.dump", b"x")  # not a dump's key

    with pytest.raises(OperationFailed, match="no dump of database orders-db in container replica-failover-dumps under orders-db/"):
        RestoreDatabases().apply(context(config, ORDERS), params(mode="dsn", dsn="postgresql://u@h/d"))


# -- parameters ------------------------------------------------------------------------------


def test_parameters_tie_the_dsn_to_its_mode_without_repeating_it() -> None:
    with pytest.raises(ValidationError, match="mode dsn needs dsn"):
        params(mode="dsn")
    with pytest.raises(ValidationError) as caught:
        params(mode="node", dsn="postgresql://u:TOPSECRET@h/d")
    assert "dsn is for mode dsn only" in str(caught.value)
    assert all("TOPSECRET" not in str(error["msg"]) for error in caught.value.errors())


def test_selection_problems_are_input_errors(config) -> None:
    two = manifest(database("orders-db"), database("users-db"), database("legacy", engine="oracle-ee"))
    with pytest.raises(InputError) as caught:
        RestoreDatabases().plan(context(config, two), params(mode="dsn", dsn="postgresql://u@h/d", select={"names": ["orders-db", "users-db", "nope"]}))
    assert [line.split(": ", 2)[-1] for line in caught.value.lines()] == [
        "no database 'nope' in the snapshot",
        "mode dsn restores one database; select one of orders-db, users-db",
    ]
    with pytest.raises(InputError, match="legacy: engine oracle-ee has no dumps"):
        RestoreDatabases().plan(context(config, two), params())


def test_dsns_are_read_in_both_spellings_and_never_shown() -> None:
    url = parse_dsn("postgresql://app:p%40ss@db.example:6432/orders?sslmode=require")
    assert (url.family, url.host, url.port, url.database, url.user, url.password) == ("postgres", "db.example", 6432, "orders", "app", "p@ss")
    assert url.options == (("sslmode", "require"),)
    keywords = parse_dsn("host=db.example port=5433 dbname=orders user=app password='it\\'s' sslmode=disable")
    assert (keywords.host, keywords.port, keywords.database, keywords.user) == ("db.example", 5433, "orders", "app")
    assert keywords.password == "it's" and keywords.options == (("sslmode", "disable"),)
    assert "p@ss" not in repr(url) and url.describe() == "db.example:6432/orders"
    with pytest.raises(InputError) as caught:
        parse_dsn("oracle://scott:tiger@h/d")
    assert "tiger" not in str(caught.value)


def test_instance_classes_and_versions() -> None:
    assert instance_class_shape("db.t3.medium") == (2, 4096)
    assert instance_class_shape("db.t4g.micro") == (2, 1024)
    assert instance_class_shape("db.t2.small") == (1, 2048)
    assert instance_class_shape("db.m5.large") == (2, 8192)
    assert instance_class_shape("db.m6g.4xlarge") == (16, 65536)
    assert instance_class_shape("db.r6i.2xlarge") == (8, 65536)
    assert instance_class_shape("db.x2g.large") is None
    assert instance_class_shape("cache.t3.micro") is None
    assert postgres_major("15.4") == "15"
    assert postgres_major("9.6.22") == "9.6"


def test_a_database_node_is_sized_like_its_instance_class_and_runs_ubuntu_22_04() -> None:
    node = database_node(database("orders-db", instance_class="db.r5.large"))
    sizes = [SizeInfo("s-2-8", "2 vCPU 8 GB", 2, 8192, 50, 0.06), SizeInfo("s-2-16", "2 vCPU 16 GB", 2, 16384, 50, 0.09)]
    images = [ImageInfo("img-2004", "Ubuntu 20.04 LTS"), ImageInfo("img-2204", "Ubuntu 22.04 LTS"), ImageInfo("img-d12", "Debian 12")]

    assert choose_size(node, sizes, {})[0].id == "s-2-16"  # db.r5.large: 2 vCPUs, 16 GiB
    assert choose_image(node, images, {})[0].id == "img-2204"


# -- mode node: a database node whose cloud-init restores ------------------------------------


@pytest.fixture
def node_config(tmp_path: Path, target):
    profile = {"compute": compute_spec(target), "storage": storage_profile(tmp_path), "images": {"ubuntu-22.04-lts": "ami-1e749f67"}}
    return write_config(tmp_path, profile)


def test_node_mode_plan_sizes_the_node_from_the_instance_class(node_config, dumps) -> None:
    _, newer = store_dumps(node_config, dumps)

    [change] = RestoreDatabases().plan(context(node_config, ORDERS), params())

    assert change.operation == "create" and change.name == "social-app-orders-db"
    assert "sizes with >= 2 vCPUs, 4096 MiB and 20 GiB of disk" in change.detail  # db.t3.medium, 20 GiB of storage
    assert "image ami-1e749f67 (override images[ubuntu-22.04-lts])" in change.detail
    assert f"PostgreSQL 15; restores replica-failover-dumps/{newer}" in change.detail
    assert "copied in by hand (this storage makes no URLs)" in change.detail  # local disk


def test_node_mode_creates_a_labelled_node_whose_cloud_init_installs_and_restores(node_config, dumps, target) -> None:
    _, newer = store_dumps(node_config, dumps)
    ctx = context(node_config, ORDERS, step_id="databases")

    outputs = RestoreDatabases().apply(ctx, params(size="t3.large"))

    [instance] = live_instances(target)
    assert tags_of(instance)["Name"] == "social-app-orders-db" and instance["InstanceType"] == "t3.large"
    assert tags_of(instance).items() >= {"failover-run": RUN_ID, "failover-step": "databases", "failover-source": "orders-db"}.items()
    [config] = cloud_config_parts(user_data_of(target, instance["InstanceId"]))
    [script] = config["write_files"]
    assert script["path"] == "/usr/local/sbin/failover-restore-orders-db" and script["permissions"] == "0700"
    assert config["runcmd"] == [["/usr/local/sbin/failover-restore-orders-db"]]
    text = script["content"]
    assert "apt-get install -y -q postgresql-15" in text and "apt.postgresql.org" in text
    assert "listen_addresses = '*'" in text and "host all all $network scram-sha-256" in text
    assert f"replica-failover-dumps/{newer}" in text
    assert "DUMP_URL=''" in text  # local disk makes no URLs: the dump is copied in by hand
    assert "pg_restore --create --clean --if-exists" in text and text.endswith("--dbname=postgres < \"$DUMP\"\n")

    entry = outputs["orders-db"]
    assert entry == outputs["databases"]["orders-db"]
    assert {k: entry[k] for k in ("mode", "node_id", "node_name", "port", "dump_key", "dump_fetch", "adopted")} == {
        "mode": "node", "node_id": instance["InstanceId"], "node_name": "social-app-orders-db", "port": 5432,
        "dump_key": newer, "dump_fetch": "manual", "adopted": False,
    }
    assert entry["private_ip"] == instance["PrivateIpAddress"]
    assert [item["id"] for item in ctx.created] == [instance["InstanceId"]]


def test_node_mode_fetches_the_dump_by_url_where_the_storage_adapter_signs_one(node_config, dumps, target) -> None:
    _, newer = store_dumps(node_config, dumps)
    real = Targets(node_config, "fallback")

    class SigningStorage:
        """The storage adapter with the ``object_url`` method restore-databases looks for."""

        def __init__(self, storage: Any) -> None:
            self._storage = storage

        def __getattr__(self, name: str) -> Any:
            return getattr(self._storage, name)

        def object_url(self, bucket: str, key: str, expires: float) -> str:
            return f"https://storage.example/{self.container_name(bucket)}/{key}?expires={int(expires)}&sig=x"

    targets = SimpleNamespace(compute=real.compute, storage=SigningStorage(real.storage), profile=real.profile)
    ctx = context(node_config, ORDERS, targets=targets)
    [change] = RestoreDatabases().plan(ctx, params())
    assert "fetched by a time-limited URL" in change.detail

    outputs = RestoreDatabases().apply(ctx, params())

    [instance] = live_instances(target)
    text = cloud_config_parts(user_data_of(target, instance["InstanceId"]))[0]["write_files"][0]["content"]
    assert f"DUMP_URL='https://storage.example/replica-failover-dumps/{newer}?expires=21600&sig=x'" in text
    assert outputs["orders-db"]["dump_fetch"] == "url"


def test_node_mode_reapply_adopts_and_undo_destroys_unless_kept(node_config, dumps, target) -> None:
    store_dumps(node_config, dumps)
    RestoreDatabases().apply(context(node_config, ORDERS), params())

    resumed = context(node_config, ORDERS, created=[])  # a crash before the journal heard of the node
    outputs = RestoreDatabases().apply(resumed, params())
    assert outputs["orders-db"]["adopted"] and len(live_instances(target)) == 1

    RestoreDatabases().undo(resumed, params(keep_node=True))
    assert len(live_instances(target)) == 1
    RestoreDatabases().undo(resumed, params())
    assert live_instances(target) == []


def test_node_mode_unknown_instance_class_asks_for_a_size(node_config, dumps) -> None:
    store_dumps(node_config, dumps, database="big-db")
    snapshot = manifest(database("big-db", instance_class="db.x2iedn.32xlarge"))

    with pytest.raises(ConfigError, match="big-db: .*no vCPU count or memory for db.x2iedn.32xlarge; add a sizes override"):
        RestoreDatabases().plan(context(node_config, snapshot), params())


def test_the_database_nodes_restore_command_restores_the_dump(postgres, dumps, tmp_path: Path) -> None:
    dump = parse_dump_key(dump_key("orders-db", "postgres", now()))
    script = restore_script(database("orders-db"), dump, "replica-failover-dumps", None)
    [line] = [line for line in script.splitlines() if "pg_restore" in line]
    # As the node runs it, against this machine's server instead of the node's own.
    command = line.replace("runuser -u postgres -- ", "").replace("pg_restore", str(postgres.bin / "pg_restore"), 1)
    (tmp_path / "orders.dump").write_bytes(dumps["newer"])
    postgres.sql("orders", "DELETE FROM orders")
    env = {**os.environ, "DUMP": str(tmp_path / "orders.dump"), "PGHOST": "127.0.0.1", "PGPORT": str(postgres.port),
           "PGUSER": "postgres", "PGPASSWORD": PASSWORD}

    for _ in range(2):  # running the script again restores again
        subprocess.run(["sh", "-c", command], check=True, env=env, capture_output=True)

    assert postgres.sql("orders", "SELECT count(*) FROM orders") == "3"


def test_mysql_and_mariadb_nodes_install_their_engine() -> None:
    dump = parse_dump_key(dump_key("shop-db", "mariadb", now()))
    mariadb = restore_script(database("shop-db", engine="mariadb", version="10.6.14"), dump, "replica-failover-dumps", None)
    assert "apt-get install -y -q mariadb-server" in mariadb
    assert "/etc/mysql/mariadb.conf.d/zz-failover.cnf" in mariadb
    assert 'gunzip -c "$DUMP" | mysql' in mariadb
    mysql = restore_script(database("shop-db", engine="mysql", version="8.0.35"), dump, "c", "https://x/y?a=1&b='2'")
    assert "apt-get install -y -q mysql-server" in mysql and "systemctl restart mysql" in mysql
    assert "DUMP_URL='https://x/y?a=1&b='\"'\"'2'\"'\"''" in mysql  # quoted for the shell


# -- the mode follows the dsn; dsn_env names the variable holding it --------------------------


def test_the_mode_follows_the_dsn_and_an_empty_dsn_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TARGET_DB_DSN", "postgresql://u@h/d")
    assert params().restore_mode == "node"
    assert params(dsn="postgresql://u@h/d").restore_mode == "dsn"
    assert params(dsn="").restore_mode == "node"  # a playbook var whose default is ""
    assert params(dsn_env="").restore_mode == "node"
    assert params(dsn_env="TARGET_DB_DSN").restore_mode == "dsn"
    assert params(mode="dsn", dsn_env="TARGET_DB_DSN").restore_mode == "dsn"
    with pytest.raises(ValidationError, match="mode dsn needs dsn"):
        params(mode="dsn", dsn="")
    with pytest.raises(ValidationError, match="dsn_env is for mode dsn only"):
        params(mode="node", dsn_env="TARGET_DB_DSN")
    with pytest.raises(ValidationError, match="give dsn or dsn_env, not both"):
        params(dsn="postgresql://u@h/d", dsn_env="TARGET_DB_DSN")
    with pytest.raises(ValidationError, match="dsn_env: 'postgresql://u@h/d' is not an environment variable name"):
        params(dsn_env="postgresql://u@h/d")


def test_dsn_env_restores_into_the_server_its_variable_names(
    config, postgres, dumps, restored, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, newer = store_dumps(config, dumps)
    monkeypatch.setenv("FAILOVER_TEST_TARGET_DSN", postgres.dsn(restored))
    log: list[str] = []
    ctx = context(config, ORDERS, step_id="databases", log=log)

    [change] = RestoreDatabases().plan(ctx, params(dsn_env="FAILOVER_TEST_TARGET_DSN"))
    outputs = RestoreDatabases().apply(ctx, params(dsn_env="FAILOVER_TEST_TARGET_DSN"))

    assert change.detail.startswith(f"restore replica-failover-dumps/{newer}")
    assert postgres.sql(restored, "SELECT string_agg(item, ',' ORDER BY id) FROM orders") == "tea,coffee,cake"
    assert outputs["orders-db"]["mode"] == "dsn" and outputs["orders-db"]["database"] == restored
    shown = json.dumps(outputs) + "\n".join(log) + change.detail
    assert PASSWORD not in shown and "postgres:" not in shown


def test_dsn_env_unset_or_empty_is_a_parameter_problem_and_later_an_input_error(
    config, dumps, monkeypatch: pytest.MonkeyPatch
) -> None:
    store_dumps(config, dumps)
    monkeypatch.delenv("FAILOVER_TEST_UNSET_DSN", raising=False)
    with pytest.raises(ValidationError, match="dsn_env: environment variable FAILOVER_TEST_UNSET_DSN is not set"):
        params(dsn_env="FAILOVER_TEST_UNSET_DSN")
    monkeypatch.setenv("FAILOVER_TEST_UNSET_DSN", "")
    with pytest.raises(ValidationError, match="dsn_env: environment variable FAILOVER_TEST_UNSET_DSN is empty"):
        params(dsn_env="FAILOVER_TEST_UNSET_DSN")
    monkeypatch.setenv("FAILOVER_TEST_UNSET_DSN", "postgresql://u@h/d")
    validated = params(dsn_env="FAILOVER_TEST_UNSET_DSN")
    monkeypatch.delenv("FAILOVER_TEST_UNSET_DSN")  # gone between validation and the call
    with pytest.raises(InputError, match="environment variable FAILOVER_TEST_UNSET_DSN is not set"):
        RestoreDatabases().apply(context(config, ORDERS), validated)


# -- in a drill ------------------------------------------------------------------------------


def drill_context(config, snapshot, **kwargs: Any):
    ctx = context(config, snapshot, step_id="databases", **kwargs)
    ctx.drill_prefix = "drill"
    return ctx


def test_a_drill_in_mode_dsn_validates_the_newest_dump_and_never_writes_into_the_server(
    config, postgres, dumps, restored
) -> None:
    _, newer = store_dumps(config, dumps)
    postgres.sql(restored, "CREATE TABLE orders (id int PRIMARY KEY, item text)")
    postgres.sql(restored, "INSERT INTO orders VALUES (99, 'the real data')")
    log: list[str] = []
    ctx = drill_context(config, ORDERS, log=log)

    [change] = RestoreDatabases().plan(ctx, params(dsn=postgres.dsn(restored)))
    outputs = RestoreDatabases().apply(ctx, params(dsn=postgres.dsn(restored)))
    RestoreDatabases().undo(ctx, params(dsn=postgres.dsn(restored)))

    assert postgres.sql(restored, "SELECT id, item FROM orders") == "99|the real data"  # untouched
    assert change.operation == "check" and change.detail.startswith(f"validate replica-failover-dumps/{newer}")
    entry = outputs["orders-db"]
    assert {k: entry[k] for k in ("mode", "dump_key", "restored", "validated", "validated_bytes", "note")} == {
        "mode": "dsn", "dump_key": newer, "restored": False, "validated": True,
        "validated_bytes": len(dumps["newer"]), "note": "validated, not restored (drill)",
    }
    assert entry["archive_entries"] >= 3  # the table, its data, its primary key
    assert any("validated, not restored (drill)" in line for line in log)
    assert ctx.created == []
    assert PASSWORD not in json.dumps(outputs) + "\n".join(log)


def test_a_drill_in_mode_dsn_fails_on_a_truncated_pg_dump_archive(config, postgres, dumps, restored) -> None:
    key = dump_key("orders-db", "postgres", now())
    store_dump(config, key, dumps["newer"][:-40])  # its table of contents still reads

    with pytest.raises(OperationFailed, match=f"dump {key} is not a valid pg_dump archive: .*end of file"):
        RestoreDatabases().apply(drill_context(config, ORDERS), params(dsn=postgres.dsn(restored)))


def test_a_drill_in_mode_dsn_gunzips_a_mysql_dump_through_and_fails_on_a_truncated_one(config) -> None:
    snapshot = manifest(database("shop-db", engine="mysql", version="8.0.35"))
    sql = b"INSERT INTO t VALUES (1);\n" * 5000
    store_dump(config, dump_key("shop-db", "mysql", now() - timedelta(hours=1)), gzip.compress(sql))
    dsn = "mysql://shop@db.internal/shop"  # never reached: there is no mysql client here at all

    outputs = RestoreDatabases().apply(drill_context(config, snapshot), params(dsn=dsn))

    assert outputs["shop-db"]["validated"] is True and outputs["shop-db"]["sql_bytes"] == len(sql)
    assert outputs["shop-db"]["validated_bytes"] == len(gzip.compress(sql))
    truncated = dump_key("shop-db", "mysql", now())
    store_dump(config, truncated, gzip.compress(sql)[:-100])
    with pytest.raises(OperationFailed, match=f"dump {truncated} is truncated"):
        RestoreDatabases().apply(drill_context(config, snapshot), params(dsn=dsn))


def test_a_drill_in_mode_node_creates_the_database_node_under_the_drill_name(node_config, dumps, target) -> None:
    store_dumps(node_config, dumps)
    ctx = drill_context(node_config, ORDERS)

    [change] = RestoreDatabases().plan(ctx, params())
    outputs = RestoreDatabases().apply(ctx, params())

    assert change.name == "drill-social-app-orders-db"
    [instance] = live_instances(target)
    assert tags_of(instance)["Name"] == "drill-social-app-orders-db"
    assert outputs["orders-db"]["node_name"] == "drill-social-app-orders-db"
    RestoreDatabases().undo(ctx, params())
    assert live_instances(target) == []


# -- what reaches a database node's root script ----------------------------------------------


def test_engine_versions_reach_the_root_script_only_as_digits_and_dots() -> None:
    dump = parse_dump_key(dump_key("orders-db", "postgres", now()))
    for engine, version in (("postgres", "9.6; touch /tmp/x"), ("mysql", "8.0\ntouch /tmp/x"),
                            ("postgres", "15.4\n"), ("postgres", "１５.4"), ("postgres", None), ("mariadb", "10.6 ")):
        db = database("orders-db", engine=engine, version=version)
        assert node_problem(db) is not None, version
        with pytest.raises(ValueError, match="orders-db"):
            restore_script(db, dump, "replica-failover-dumps", None)
    assert node_problem(database("orders-db", engine="postgres", version="9.6; touch /tmp/x")) == (
        "engine version '9.6; touch /tmp/x' is not digits and dots: refused")
    for engine, version in (("postgres", "9.6.22"), ("mysql", None), ("aurora-mysql", "8.0.mysql_aurora.3.04.0")):
        assert node_problem(database("orders-db", engine=engine, version=version)) is None
    assert "apt-get install -y -q postgresql-9.6\n" in restore_script(
        database("orders-db", version="9.6.22"), dump, "replica-failover-dumps", None)


def test_names_keys_and_containers_reach_the_root_script_as_data(tmp_path: Path) -> None:
    marker = tmp_path / "injected"
    hostile = f"orders'$(touch {marker})\n`touch {marker}`;touch {marker}"
    dump = DumpKey(hostile, now(), ".dump")
    container = f"replica-$(touch {marker})"
    script = restore_script(database(hostile), dump, container, f"https://x/$(touch {marker})")

    assert subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True).returncode == 0
    lines = script.splitlines()
    assert not any(line.lstrip().startswith(("touch", "`", ";")) for line in lines)
    assert [line for line in lines if "$(touch" in line and not line.startswith("#")] == [
        line for line in lines if line.startswith("DUMP_URL=")  # single-quoted: a word, never run
    ]
    # What the node prints when the dump is missing, run as the node would: printed, never run.
    [missing] = [line for line in lines if line.startswith("  printf")]
    printed = subprocess.run(["sh", "-c", missing], capture_output=True, text=True, check=True).stderr
    assert comment_text(f"{container}/{dump.key}") in printed and not marker.exists()


# -- DSNs of any shape: the password never on pg_restore's command line, never in a message ---

SLASHED = "12/SECRET-slash-pw"


@pytest.fixture(scope="module")
def slashed() -> Iterator[LocalPostgres]:
    """A target server whose password has a "/", written unencoded in the DSNs below."""
    server = LocalPostgres(password=SLASHED).start()
    yield server
    server.stop()


@pytest.fixture
def pg_restore_argv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, slashed: LocalPostgres) -> Path:
    """pg_restore first on PATH: a wrapper that writes its arguments to this file, then runs the real one."""
    bin_dir, log = tmp_path / "bin", tmp_path / "argv.log"
    bin_dir.mkdir()
    wrapper = bin_dir / "pg_restore"
    wrapper.write_text(f'#!/bin/sh\nprintf "%s\\n" "$@" >> {log}\nexec {slashed.bin / "pg_restore"} "$@"\n')
    wrapper.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return log


def test_an_unencoded_password_restores_and_reaches_no_argv_output_or_log(
    config, dumps, slashed: LocalPostgres, pg_restore_argv: Path
) -> None:
    store_dumps(config, dumps)
    slashed.recreate("restored")
    log: list[str] = []
    ctx = context(config, ORDERS, step_id="databases", log=log)
    dsn = f"postgresql://postgres:{SLASHED}@127.0.0.1:{slashed.port}/restored"

    [change] = RestoreDatabases().plan(ctx, params(dsn=dsn))
    outputs = RestoreDatabases().apply(ctx, params(dsn=dsn))

    assert slashed.sql("restored", "SELECT string_agg(item, ',' ORDER BY id) FROM orders") == "tea,coffee,cake"
    assert outputs["orders-db"]["database"] == "restored" and outputs["orders-db"]["port"] == slashed.port
    argv = pg_restore_argv.read_text()
    assert f"--dbname=host=127.0.0.1 port={slashed.port} dbname=restored user=postgres" in argv
    for text in (argv, json.dumps(outputs), "\n".join(log), change.detail):
        assert "SECRET" not in text


def test_a_wrong_unencoded_password_or_two_passwords_never_reach_argv_or_the_error(
    config, dumps, slashed: LocalPostgres, pg_restore_argv: Path
) -> None:
    store_dumps(config, dumps)
    slashed.recreate("restored")
    wrong = f"postgresql://postgres:12/WRONG-SECRET@127.0.0.1:{slashed.port}/restored"

    with pytest.raises(OperationFailed) as failed:
        RestoreDatabases().apply(context(config, ORDERS), params(dsn=wrong))

    assert f"pg_restore into 127.0.0.1:{slashed.port}/restored failed" in str(failed.value)
    assert "password authentication failed" in str(failed.value)
    assert "SECRET" not in str(failed.value) and "SECRET" not in pg_restore_argv.read_text()
    pg_restore_argv.unlink()
    two = f"postgresql://postgres:{SLASHED}@127.0.0.1:{slashed.port}/restored?password=OTHER-SECRET"
    with pytest.raises(InputError) as refused:
        RestoreDatabases().apply(context(config, ORDERS), params(dsn=two))
    assert "gives two passwords, in the userinfo and as ?password=" in str(refused.value)
    assert "SECRET" not in str(refused.value) and not pg_restore_argv.exists()


def test_secret_options_of_a_dsn_go_in_a_service_file_never_on_the_command_line(tmp_path: Path) -> None:
    from failover.databases.postgres import PostgreSQL

    dsn = parse_dsn("postgresql://app:pw@db.internal/orders?sslmode=require&sslpassword=KEY-SECRET")
    command, env = PostgreSQL().restore_command(dsn, tmp_path)

    assert not any("SECRET" in arg or "password=" in arg for arg in command)
    service = Path(env["PGSERVICEFILE"])
    assert service.read_text() == "[failover]\nsslpassword=KEY-SECRET\n" and service.stat().st_mode & 0o777 == 0o600
    assert env["PGSERVICE"] == "failover" and env["PGPASSWORD"] == "pw"


def test_a_read_replica_is_left_behind_and_its_primary_restored(node_config, dumps) -> None:
    """The replica has no dump of its own and needs none: never a second standalone copy."""
    _, newer = store_dumps(node_config, dumps)
    replica = database("orders-db-replica").model_copy(update={"replica_of": "orders-db"})
    with_replica = manifest(database("orders-db"), replica)

    changes = RestoreDatabases().plan(context(node_config, with_replica), params())

    assert [(c.operation, c.name) for c in changes] == [("create", "social-app-orders-db"),
                                                         ("none", "orders-db-replica")]
    assert changes[1].detail == "read replica of orders-db: left behind; its primary is restored"
    assert f"restores replica-failover-dumps/{newer}" in changes[0].detail
