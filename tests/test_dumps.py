"""``failover.replicate.dumps`` in-process, into local-disk storage: MySQL dumps through a stand-in
``mysqldump`` put first on PATH (no MySQL server here; the PostgreSQL path runs for real
in tests/cli/test_replicate_dumps.py), gzip streaming, the same-second rule, pruning."""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import sys
import textwrap
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from failover.adapters import storage_target
from failover.config import DatabaseSpec, StorageSpec
from failover.databases.postgres import PostgreSQL
from failover.dsn import parse_dsn
from failover.errors import ConfigError, InputError
from failover.naming import DUMPS_BUCKET, dump_key
from failover.ports import ObjectInfo
from failover.replicate.dumps import DumpFailed, check_dsn, database_dsn, dump_database, prune, store_dump
from failover.state import DumpRecord, StateStore
from providers.libcloud.drivers import forget_adapters

SERVICE, TARGET = "social-app", "fallback"
PASSWORD = 'My$ql "pw" \\ 1'
MYSQL_DSN = "mysql://shop:My%24ql%20%22pw%22%20%5C%201@db.internal:3307/shop"
SQL_LINES = 60_000  # about 2.5 MB of SQL: many pipe reads, many gzip pieces


class RecordingStorage:
    """The real local-disk adapter; the sizes of the chunks each upload was handed are kept."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.uploads: dict[str, list[int]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def upload_stream(self, bucket: str, key: str, chunks: Iterable[bytes], content_type: str | None = None,
                      meta: dict[str, str] | None = None) -> ObjectInfo:
        sizes = self.uploads.setdefault(key, [])

        def counted() -> Iterator[bytes]:
            for chunk in chunks:
                sizes.append(len(chunk))
                yield chunk

        return self.inner.upload_stream(bucket, key, counted(), content_type=content_type, meta=meta)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[RecordingStorage]:
    (tmp_path / "disk").mkdir()
    forget_adapters()
    yield RecordingStorage(storage_target(StorageSpec(driver="local", options={"key": str(tmp_path / "disk")},
                                                      container_prefix="replica-")))
    forget_adapters()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[StateStore]:
    with StateStore(tmp_path / "state") as opened:
        yield opened


@pytest.fixture
def fake_mysqldump(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A ``mysqldump`` first on PATH: it logs its arguments and its option file (content and
    mode) to ``mysqldump.log``, then writes SQL_LINES lines of SQL, or fails as FAKE_EXIT says."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "mysqldump"
    script.write_text(f"#!{sys.executable}\n" + textwrap.dedent(f"""
        import json, os, sys
        options = next(a.split("=", 1)[1] for a in sys.argv if a.startswith("--defaults-extra-file="))
        log = {{"argv": sys.argv[1:], "options": open(options).read(), "mode": os.stat(options).st_mode & 0o777,
                "options_path": options}}
        with open({str(tmp_path / "mysqldump.log")!r}, "w") as file:
            json.dump(log, file)
        code = int(os.environ.get("FAKE_EXIT", "0"))
        if code:
            sys.stdout.write("-- MySQL dump, partial\\n")
            sys.stdout.flush()
            secret = {PASSWORD!r}  # as a careless tool might print it
            sys.stderr.write("mysqldump: Got error: 1045: Access denied for user 'shop' (password " + secret + ")\\n")
            sys.exit(code)
        for n in range({SQL_LINES}):
            sys.stdout.write(f"INSERT INTO orders VALUES ({{n}}, 'item {{n}}');\\n")
    """))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return tmp_path / "mysqldump.log"


def expected_sql() -> bytes:
    return "".join(f"INSERT INTO orders VALUES ({n}, 'item {n}');\n" for n in range(SQL_LINES)).encode()


def stored(storage: Any, key: str) -> bytes:
    return b"".join(storage.download_stream(DUMPS_BUCKET, key))


def keys(storage: Any) -> list[str]:
    return sorted(item.key for item in storage.iter_objects(DUMPS_BUCKET))


def dump(storage: Any, store: StateStore, **options: Any):
    settings = {"service": SERVICE, "target_name": TARGET, "database": "shop-db", "engine": "mysql",
                "dsn": parse_dsn(MYSQL_DSN), **options}
    return dump_database(storage, store, **settings)


class Clock:
    """A clock that gives the listed moments in turn (the last one from then on)."""

    def __init__(self, *moments: datetime) -> None:
        self.moments = list(moments)

    def __call__(self) -> datetime:
        return self.moments.pop(0) if len(self.moments) > 1 else self.moments[0]


T0 = datetime(2024, 1, 15, 10, 30, 0, 250_000, tzinfo=UTC)


# -- MySQL through a stand-in mysqldump --------------------------------------------------------


def test_a_mysql_dump_is_gzipped_while_it_streams_and_the_password_stays_off_the_command_line(
    storage: RecordingStorage, store: StateStore, fake_mysqldump: Path
) -> None:
    progress: list[int] = []

    result = dump(storage, store, progress=progress.append, clock=Clock(T0))

    assert result.key == "shop-db/20240115T103000Z.sql.gz" and result.container == "replica-failover-dumps"
    content = stored(storage, result.key)
    assert gzip.decompress(content) == expected_sql()
    assert (result.bytes, result.md5) == (len(content), hashlib.md5(content).hexdigest())
    sizes = storage.uploads[result.key]
    assert len(sizes) > 2 and max(sizes) < len(content)  # handed over piece by piece, never whole
    assert progress[-1] == len(content) and progress == sorted(progress)

    log = json.loads(fake_mysqldump.read_text())
    assert log["argv"][1:] == ["--single-transaction", "--routines", "--triggers", "--databases", "shop"]
    assert not any(PASSWORD in arg or "My$ql" in arg for arg in log["argv"])
    assert log["mode"] == 0o600 and 'password="My$ql \\"pw\\" \\\\ 1"' in log["options"]
    assert 'host="db.internal"' in log["options"] and 'port="3307"' in log["options"]
    assert not Path(log["options_path"]).exists()  # gone with the dump

    [record] = store.dumps(SERVICE, TARGET, "shop-db")
    assert (record.key, record.bytes, record.md5, record.engine) == (result.key, result.bytes, result.md5, "mysql")
    assert record.started_at == "2024-01-15T10:30:00Z" and record.pruned_at is None


def test_a_failing_dump_tool_leaves_nothing_and_its_message_hides_the_password(
    storage: RecordingStorage, store: StateStore, fake_mysqldump: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_EXIT", "2")

    with pytest.raises(DumpFailed) as failed:
        dump(storage, store, clock=Clock(T0))

    message = str(failed.value)
    assert message.startswith("mysqldump of shop-db (db.internal:3307/shop) failed (exit 2): mysqldump: Got error: 1045")
    assert "***" in message and PASSWORD not in message
    assert storage.uploads  # something was streamed before the tool failed...
    assert keys(storage) == []  # ...and deleted
    assert store.dumps(SERVICE, TARGET, include_pruned=True) == []


def test_a_second_dump_in_the_same_second_waits_for_the_next_one(
    storage: RecordingStorage, store: StateStore, fake_mysqldump: Path
) -> None:
    slept: list[float] = []
    first = dump(storage, store, clock=Clock(T0), sleep=slept.append)
    second = dump(storage, store, clock=Clock(T0 + timedelta(milliseconds=500), T0 + timedelta(seconds=1)), sleep=slept.append)

    assert (first.key, second.key) == ("shop-db/20240115T103000Z.sql.gz", "shop-db/20240115T103001Z.sql.gz")
    assert slept == [pytest.approx(0.25)]
    assert keys(storage) == [first.key, second.key]

    with pytest.raises(DumpFailed, match="already stored as shop-db/20240115T103001Z.sql.gz: refusing to replace it"):
        dump(storage, store, clock=Clock(T0 + timedelta(seconds=1)), sleep=slept.append)
    assert keys(storage) == [first.key, second.key]
    assert stored(storage, second.key) == stored(storage, first.key)  # not overwritten (same SQL, same gzip)
    assert len(store.dumps(SERVICE, TARGET, "shop-db")) == 2


def test_a_dump_made_elsewhere_is_stored_verified_and_recorded_as_a_dump_of_now(
    storage: RecordingStorage, store: StateStore
) -> None:
    body = [b"PGDMP", b" a stand-in archive"]
    result = store_dump(storage, store, service=SERVICE, target_name=TARGET, database="orders-db", engine="postgres",
                        chunks=iter(body), clock=Clock(T0))

    assert (result.key, result.container) == ("orders-db/20240115T103000Z.dump", "replica-failover-dumps")
    assert stored(storage, result.key) == b"".join(body)
    assert (result.bytes, result.md5) == (len(b"".join(body)), hashlib.md5(b"".join(body)).hexdigest())
    [record] = store.dumps(SERVICE, TARGET, "orders-db")
    assert (record.key, record.bytes, record.md5, record.started_at) == (result.key, result.bytes, result.md5,
                                                                         "2024-01-15T10:30:00Z")
    with pytest.raises(ValueError, match="no dump format"):
        store_dump(storage, store, service=SERVICE, target_name=TARGET, database="x", engine="oracle", chunks=[b"x"])


# -- keeping the newest N ---------------------------------------------------------------------


def place(storage: Any, store: StateStore | None, database: str, engine: str, taken_at: datetime, body: bytes = b"x") -> str:
    key = dump_key(database, engine, taken_at)
    storage.ensure_container(DUMPS_BUCKET)
    info = storage.upload_stream(DUMPS_BUCKET, key, [body])
    if store is not None:
        store.save_dump(DumpRecord(
            id=f"dump-{database}-{taken_at:%H%M}", service=SERVICE, target=TARGET, database=database, engine=engine,
            container="replica-failover-dumps", key=key, started_at=taken_at.isoformat(), finished_at=taken_at.isoformat(),
            bytes=info.size, md5=info.md5,
        ))
    return key


def test_prune_keeps_the_newest_dumps_of_that_database_only(storage: RecordingStorage, store: StateStore) -> None:
    ours = [place(storage, store, "orders-db", "postgres", T0 + timedelta(hours=hour)) for hour in range(4)]
    other = place(storage, store, "orders-db-2", "postgres", T0)  # a prefix of its own: orders-db-2/
    foreign = place(storage, None, "orders-db", "mysql", T0 - timedelta(days=3))  # another format: not this engine's
    nested = place(storage, None, "orders-db/archive", "postgres", T0 - timedelta(days=3))

    pruned = prune(storage, store, service=SERVICE, target_name=TARGET, database="orders-db", engine="postgres", keep=2)

    assert pruned == [ours[1], ours[0]]
    assert keys(storage) == sorted([ours[2], ours[3], other, foreign, nested])
    assert [r.key for r in store.dumps(SERVICE, TARGET, "orders-db")] == [ours[3], ours[2]]
    gone = [r for r in store.dumps(SERVICE, TARGET, "orders-db", include_pruned=True) if r.pruned_at]
    assert sorted(r.key for r in gone) == sorted(ours[:2])
    assert prune(storage, store, service=SERVICE, target_name=TARGET, database="orders-db", engine="postgres", keep=2) == []


# -- DSNs and command lines -----------------------------------------------------------------


def test_the_pg_dump_command_line_holds_no_password(tmp_path: Path) -> None:
    dsn = parse_dsn("postgresql://app:s%27cret%20pw@db.internal:5433/orders?sslmode=require")

    command, env = PostgreSQL().dump_command(dsn, tmp_path)

    assert command[1:3] == ["-Fc", "--no-password"]
    assert command[3] == "--dbname=host=db.internal port=5433 dbname=orders user=app sslmode=require"
    assert env["PGPASSWORD"] == "s'cret pw" and not any("cret" in arg for arg in command)


def test_database_dsn_is_read_now_and_never_repeated_in_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DatabaseSpec(dsn="${env:ORDERS_DB_DSN}")
    monkeypatch.delenv("ORDERS_DB_DSN", raising=False)
    with pytest.raises(ConfigError) as unset:
        database_dsn(spec, file="failover.yaml", name="orders-db")
    assert unset.value.lines() == ["failover.yaml: databases.orders-db.dsn: environment variable ORDERS_DB_DSN is not set"]

    monkeypatch.setenv("ORDERS_DB_DSN", "oracle://scott:tiger-pw@db/orders")
    with pytest.raises(InputError) as bad:
        database_dsn(spec, file="failover.yaml", name="orders-db")
    assert bad.value.lines()[0].startswith("failover.yaml: databases.orders-db.dsn: not a postgresql://")
    assert "tiger-pw" not in str(bad.value)

    monkeypatch.setenv("ORDERS_DB_DSN", "postgresql://app:pw@db/orders")
    dsn = database_dsn(spec, file="failover.yaml", name="orders-db")
    assert (dsn.family, dsn.host, dsn.database, dsn.password) == ("postgres", "db", "orders", "pw")
    with pytest.raises(InputError, match="databases.orders-db.dsn: database orders-db is mysql: the dsn must be a mysql one"):
        check_dsn(dsn, "mysql", file="failover.yaml", name="orders-db")
    with pytest.raises(InputError, match="names no database"):
        check_dsn(parse_dsn("mysql://app:pw@db"), "mariadb", file="failover.yaml", name="orders-db")
    check_dsn(dsn, "aurora-postgresql", file="failover.yaml", name="orders-db")
