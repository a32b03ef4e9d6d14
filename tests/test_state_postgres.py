"""The state on PostgreSQL (``state: postgresql://...``), against a real server started by
failover.testing.postgres: the same migrations and behaviour as the SQLite store, the lock
as an advisory lock contended by two processes on two state handles, ``state export`` /
``import`` between the backends, and the e2e story (inventory, replicate, account gone,
drill, check, run, rollback) on a PostgreSQL state."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from failover.engine.journal import Journal, RunRecord
from failover.errors import FailoverError
from failover.state import MIGRATIONS, DrillRecord, DumpRecord, ReplicaObject, ReplicationRecord, StateStore
from failover.testing.plugin import started_world
from failover.testing.postgres import LocalPostgres, PostgresMissing
from failover.testing.world import EmulatedWorld

FAILOVER = [sys.executable, "-m", "failover.cli.main"]
PASSWORD_VARIABLE = "FAILOVER_TEST_STATE_PASSWORD"


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    try:
        server = LocalPostgres().start()
    except PostgresMissing as exc:
        pytest.fail(f"{exc}; ./scripts/install-test-deps installs it", pytrace=False)
    yield server
    server.stop()


@pytest.fixture
def database(postgres: LocalPostgres, request: pytest.FixtureRequest) -> str:
    """A new, empty database for this test; its name."""
    name = "state_" + "".join(ch if ch.isalnum() else "_" for ch in request.node.name.lower())[:50]
    postgres.recreate(name)
    return name


def state_dsn(postgres: LocalPostgres, database: str) -> str:
    """The DSN as a config writes it: the password from the environment."""
    return f"postgresql://{postgres.user}:${{env:{PASSWORD_VARIABLE}}}@127.0.0.1:{postgres.port}/{database}"


def write_config(directory: Path, state: str, **extra: Any) -> Path:
    config = {"service": "social-app", "state": state,
              "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}},
              "targets": {"fallback": {}}, **extra}
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def cli(config: Path, *args: str, postgres: LocalPostgres | None = None, env: dict[str, str] | None = None):
    environment = {**os.environ, **(env or {})}
    if postgres is not None:
        environment[PASSWORD_VARIABLE] = postgres.password
    return subprocess.run([*FAILOVER, *args, "--config", str(config)], cwd=config.parent, env=environment,
                          capture_output=True, text=True, timeout=300)


# -- the store -------------------------------------------------------------------------------------


def test_migrations_bring_a_new_database_to_the_current_schema(postgres: LocalPostgres, database: str) -> None:
    with StateStore(postgres.dsn(database)) as store:
        assert store.schema_version == len(MIGRATIONS)
    with StateStore(postgres.dsn(database)) as store:  # reopening migrates nothing
        assert store.schema_version == len(MIGRATIONS)
    tables = postgres.sql(database, "SELECT string_agg(tablename, ',' ORDER BY tablename) FROM pg_tables "
                                    "WHERE schemaname = 'public'").split(",")
    assert set(tables) >= {"snapshots", "runs", "steps", "events", "locks", "replications", "drills", "dumps"}
    postgres.sql(database, "UPDATE failover_schema SET version = 99")
    with pytest.raises(FailoverError, match="schema version 99, newer than this failover"):
        StateStore(postgres.dsn(database))


def fill(store: StateStore) -> dict[str, Any]:
    """The same records written through the store's API; what reading them back gives."""
    def replication(ident: str, bucket: str, listed_at: str, copied: int) -> ReplicationRecord:
        return ReplicationRecord(ident, "svc", "t", bucket, f"r-{bucket}", listed_at, listed_at, 10, 4_000_000_000,
                                 copied, copied * 10, 0, 0)

    same_second = "2026-01-01T00:00:00Z"
    for record in (replication("rep-2", "b", same_second, 1), replication("rep-1", "b", same_second, 2),
                   replication("rep-3", "a", "2026-01-02T00:00:00Z", 3)):
        store.save_replication(record)  # two passes listed at the same second: insertion order decides
    store.save_replica_objects("svc", "t", "r-b", [ReplicaObject("k%1?", "e1", 1, "m1", None, "2026-01-01T00:00:00Z"),
                                                   ReplicaObject("k2", "e2", 2, "m2", "h2", "2026-01-01T00:00:00Z")])
    store.save_replica_objects("svc", "t", "r-b", [ReplicaObject("k%1?", "e3", 3, "m3", "h3", "2026-01-03T00:00:00Z")])
    store.forget_replica_objects("svc", "t", "r-b", ["k2"])
    paged_keys = ["b", "a/é", "a/z", "A", "a", "ü", "a b", "a%", "Z"]  # read back in code point order, 2 at a time
    store.save_replica_objects("svc", "t", "r-p", [ReplicaObject(k, "e", 1, "m", None, "2026-01-01T00:00:00Z")
                                                   for k in paged_keys])
    for ident, started in (("d1", "2026-01-01T00:00:00Z"), ("d2", "2026-01-02T00:00:00Z")):
        store.save_dump(DumpRecord(ident, "svc", "t", "db", "postgres", "c", f"db/{ident}", started, started, 5, "m"))
    store.mark_dumps_pruned(["d1"], "2026-01-03T00:00:00Z")
    store.save_drill(DrillRecord("drill-1", "svc", "t", "standard", "drill", None, "running", "2026-01-01T00:00:00Z"))
    store.save_drill(DrillRecord("drill-1", "svc", "t", "standard", "drill", "run-1", "succeeded",
                                 "2026-01-01T00:00:00Z", "2026-01-01T00:10:00Z", 61.5, 3.25, True))
    journal = Journal(store)
    journal.create_run(RunRecord(id="run-1", service="svc", playbook="smoke", definition={"steps": []}, target="t",
                                 snapshot_id=None, dry_run=True, parallelism=2, status="running",
                                 started_at="2026-01-01T00:00:00Z", ended_at=None, error=None),
                       [("a", "pause"), ("b", "pause")])
    journal.record_resource("run-1", "a", {"kind": "node", "id": "n-1", "name": "x"})
    journal.record_resource("run-1", "a", {"kind": "node", "id": "n-1", "name": "y"})  # ON CONFLICT: replaced
    journal.note("run-1", "retry", {"why": "50% of 503s?"}, step_id="a")
    document = journal.document("run-1")
    return {
        "replications": [r.to_dict() for r in store.replications("svc")],
        "last": store.last_replication("svc", "t", "b").to_dict(),
        "objects": {k: v.__dict__ for k, v in store.replica_objects("svc", "t", "r-b").items()},
        "paged": [o.key for o in store.iter_replica_objects("svc", "t", "r-p", page=2)],
        "dumps": [d.to_dict() for d in store.dumps("svc", include_pruned=True)],
        "dumps_kept": [d.id for d in store.dumps("svc")],
        "drills": [d.to_dict() for d in store.drills("svc")],
        "run": untimed(document),
        "resolved": journal.resolve_run("svc", "run"),
    }


def untimed(value: Any) -> Any:
    """``value`` with the times the journal takes from the clock masked."""
    if isinstance(value, dict):
        return {k: untimed(v) for k, v in value.items()}
    if isinstance(value, list):
        return [untimed(v) for v in value]
    if isinstance(value, str) and re.match(r"^\d{4}-\d\d-\d\dT", value):
        return "<time>"
    return value


def test_the_store_reads_back_as_on_sqlite(postgres: LocalPostgres, database: str, tmp_path: Path) -> None:
    with StateStore(tmp_path / "sqlite") as sqlite_store:
        expected = fill(sqlite_store)
    with StateStore(postgres.dsn(database)) as pg_store:
        found = fill(pg_store)
    assert found == expected
    assert [r["id"] for r in found["replications"]] == ["rep-2", "rep-1", "rep-3"]
    assert found["last"]["id"] == "rep-1" and found["last"]["bytes"] == 4_000_000_000  # 64-bit
    assert found["objects"]["k%1?"]["source_etag"] == "e3" and "k2" not in found["objects"]
    assert found["paged"] == sorted(found["paged"]) and len(found["paged"]) == 9  # as Python and S3 order keys
    assert found["drills"][0]["clean"] is True and found["drills"][0]["rto_s"] == 61.5


# -- the CLI on a PostgreSQL state --------------------------------------------------------------------


HOLDER = """
import sys
from failover.engine.lock import ServiceLock
from failover.state import StateStore
store = StateStore(sys.argv[1])
ServiceLock(store, "social-app").acquire("run-holder")
print("held", flush=True)
sys.stdin.read()
"""


def test_two_processes_contend_for_the_lock(moto_account, postgres: LocalPostgres, database: str,
                                           tmp_path: Path) -> None:
    config = write_config(tmp_path, state_dsn(postgres, database))
    taken = cli(config, "inventory", postgres=postgres)
    assert taken.returncode == 0, taken.stderr

    holder = subprocess.Popen([sys.executable, "-c", HOLDER, postgres.dsn(database)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n", holder.stderr.read()
        refused = cli(config, "run", "smoke", "--target", "fallback", "--yes", postgres=postgres)
        assert refused.returncode == 3, refused.stderr
        assert "locked by run run-holder" in refused.stderr and f"pid {holder.pid}" in refused.stderr
        assert postgres.password not in refused.stderr
    finally:
        holder.send_signal(signal.SIGKILL)  # its session ends with it, and so does the advisory lock
        holder.wait(30)

    ran = cli(config, "run", "smoke", "--target", "fallback", "--yes", "--json", postgres=postgres)
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout)["status"] == "succeeded"
    runs = cli(config, "runs", "--json", postgres=postgres)
    assert [run["status"] for run in json.loads(runs.stdout)["runs"]] == ["succeeded"]


def test_export_and_import_move_a_state_between_backends(moto_account, postgres: LocalPostgres, database: str,
                                                        tmp_path: Path) -> None:
    on_pg = write_config(tmp_path, state_dsn(postgres, database))
    assert cli(on_pg, "inventory", postgres=postgres).returncode == 0
    assert cli(on_pg, "run", "smoke", "--target", "fallback", "--yes", postgres=postgres).returncode == 0
    exported = tmp_path / "state.json"
    done = cli(on_pg, "state", "export", str(exported), "--json", postgres=postgres)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"]["runs"] == 1
    assert exported.stat().st_mode & 0o777 == 0o600

    sqlite_dir = tmp_path / "machine-b"
    sqlite_dir.mkdir()
    on_sqlite = write_config(sqlite_dir, ".failover")
    done = cli(on_sqlite, "state", "import", str(exported))
    assert done.returncode == 0, done.stderr
    for command in (["runs", "--json"], ["snapshots", "--json"], ["status", "latest", "--json"]):
        from_pg = cli(on_pg, *command, postgres=postgres)
        assert json.loads(cli(on_sqlite, *command).stdout) == json.loads(from_pg.stdout)

    again = cli(on_sqlite, "state", "import", str(exported))
    assert again.returncode == 2 and "not empty" in again.stderr

    back = tmp_path / "back.json"
    assert cli(on_sqlite, "state", "export", str(back)).returncode == 0
    postgres.recreate(database)
    assert cli(on_pg, "state", "import", str(back), postgres=postgres).returncode == 0
    assert json.loads(cli(on_pg, "runs", "--json", postgres=postgres).stdout) == json.loads(
        cli(on_sqlite, "runs", "--json").stdout)
    # the events' sequence goes on after the imported ones: a new run's events land after them
    assert cli(on_pg, "run", "smoke", "--target", "fallback", "--yes", postgres=postgres).returncode == 0


def test_a_bad_export_changes_nothing(postgres: LocalPostgres, database: str, tmp_path: Path) -> None:
    config = write_config(tmp_path, state_dsn(postgres, database))
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"format": "failover-state", "schema_version": len(MIGRATIONS), "tables": {
        "snapshots": [{"id": "s", "service": "social-app", "taken_at": "t", "counts": "{}", "manifest": "{}"}],
        "runs": [{"id": "r", "no_such_column": 1}]}}))
    done = cli(config, "state", "import", str(bad), postgres=postgres)
    assert done.returncode == 2, done.stderr
    assert "bad.json: the state refused the file's rows" in done.stderr
    assert postgres.sql(database, "SELECT count(*) FROM snapshots") == "0"  # one transaction: nothing kept
    bad.write_text("{not json")
    assert cli(config, "state", "import", str(bad), postgres=postgres).returncode == 2


def test_state_dsn_input_errors_and_unreachable_server(postgres: LocalPostgres, database: str, tmp_path: Path) -> None:
    literal = write_config(tmp_path, f"postgresql://postgres:hunter2@127.0.0.1:{postgres.port}/{database}")
    done = cli(literal, "runs")
    assert done.returncode == 2 and "state: write the DSN's password as ${env:NAME}" in done.stderr
    assert "hunter2" not in done.stderr

    config = write_config(tmp_path, state_dsn(postgres, database))
    env = {k: v for k, v in os.environ.items() if k != PASSWORD_VARIABLE}
    unset = subprocess.run([*FAILOVER, "runs", "--config", str(config)], env=env, capture_output=True, text=True)
    assert unset.returncode == 2 and f"environment variable {PASSWORD_VARIABLE} is not set" in unset.stderr

    wrong = cli(config, "runs", env={PASSWORD_VARIABLE: "wrong-Pass'word"})
    assert wrong.returncode == 4, wrong.stderr
    assert "wrong-Pass" not in wrong.stderr and "password authentication failed" in wrong.stderr


# -- the e2e story on PostgreSQL --------------------------------------------------------------------


@pytest.mark.slow
def test_the_story_on_a_postgresql_state(postgres: LocalPostgres, database: str) -> None:
    with started_world(storage="local") as world:
        on_pg(world, state_dsn(postgres, database))
        env = {PASSWORD_VARIABLE: postgres.password}
        assert run(world, env, "inventory").code == 0
        replicated = run(world, env, "replicate", "--target", world.target, "--json")
        assert replicated.code == 0, replicated.stderr
        world.source.stop()  # the account is gone
        drilled = run(world, env, "drill", "standard", "--target", world.target, "--json", *world.run_vars)
        assert drilled.code == 0, drilled.stderr
        assert drilled.json()["clean"] is True
        checked = run(world, env, "check", "standard", "--target", world.target, "--json")
        assert checked.code == 0, checked.stdout + checked.stderr
        ran = run(world, env, "run", "standard", "--target", world.target, "--yes", "--json", *world.run_vars)
        assert ran.code == 0, ran.stderr
        assert ran.json()["status"] == "succeeded"
        assert world.target_instances()
        rolled = run(world, env, "rollback", ran.json()["run_id"], "--json")
        assert rolled.code == 0, rolled.stderr
        assert not (world.state_dir / "state.db").exists()  # everything went to PostgreSQL
    assert postgres.sql(database, "SELECT count(*) FROM drills") == "1"
    assert int(postgres.sql(database, "SELECT count(*) FROM replications")) >= 1


def on_pg(world: EmulatedWorld, dsn: str) -> None:
    """The world's config on the PostgreSQL state; the SQLite state the world seeded (its
    stand-in dump's record) is dropped, so nothing after this can be read from it."""
    for leftover in world.state_dir.glob("state.db*"):
        leftover.unlink()
    config = yaml.safe_load(world.config_path.read_text())
    config["state"] = dsn
    world.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


def run(world: EmulatedWorld, env: dict[str, str], *args: str):
    return world.failover(*args, env=env)
