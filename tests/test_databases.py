"""Database engines (``failover.databases``): the registry, and a new engine as one module
plus its registration, found through ``$FAILOVER_ENGINE_MODULES`` (in a subprocess, so this
process's registry stays as shipped)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from failover.databases.base import engine_for
from failover.dsn import parse_dsn

ENGINE_MODULE = '''
from failover.databases.base import ENGINES, Engine


@ENGINES.register("cockroach")
class Cockroach(Engine):
    title = "CockroachDB"
    rds_engines = ("cockroachdb",)
    schemes = ("cockroachdb",)
    default_port = 26257
    dump_suffix = ".sql.zst"
    dump_description = "cockroach dump"
    dump_content_type = "application/zstd"
    dump_tool = "cockroach"

    def label(self, database):
        return f"CockroachDB {database.engine_version}"

    def node_install(self, database):
        return [f"install-cockroach {database.engine_version}"]

    def node_restore(self):
        return ['cockroach sql < "$DUMP"']
'''

USE_IT = '''
import json
from datetime import UTC, datetime
from failover.databases.base import engine_for
from failover.databases.node import node_problem, restore_script
from failover.dsn import parse_dsn
from failover.manifest import Database
from failover.naming import dump_key, newest_dump, parse_dump_key

db = Database(id="ledger", name="ledger", region="us-east-1", engine="cockroachdb", engine_version="23.1.4",
              instance_class="db.r6g.large", storage_gib=50, endpoint=None)
key = dump_key("ledger", "cockroachdb", datetime(2024, 1, 15, 10, 30, tzinfo=UTC))
bad = db.model_copy(update={"engine_version": "23.1; reboot"})
print(json.dumps({
    "engine": engine_for("CockroachDB").name, "key": key,
    "newest": newest_dump([key, "ledger/x"], "ledger", "cockroachdb").key,
    "script": restore_script(db, parse_dump_key(key), "replica-failover-dumps", None),
    "refused": node_problem(bad), "dsn": parse_dsn("cockroachdb://app:pw@db/ledger").family,
}))
'''


def test_the_built_in_engines_cover_the_rds_engine_names() -> None:
    assert {name: engine_for(name).name for name in ("postgres", "aurora-postgresql", "Aurora-PostgreSQL")} == {
        "postgres": "postgres", "aurora-postgresql": "postgres", "Aurora-PostgreSQL": "postgres"}
    assert {engine_for(name).name for name in ("mysql", "mariadb", "aurora-mysql", "aurora")} == {"mysql"}
    assert engine_for("sqlserver-ex") is None and engine_for(None) is None
    assert (engine_for("postgres").dump_suffix, engine_for("mariadb").dump_suffix) == (".dump", ".sql.gz")
    assert parse_dsn("mariadb://app@db/shop").family == "mysql"


def test_a_new_engine_is_one_module_and_its_registration(tmp_path: Path) -> None:
    (tmp_path / "cockroach_engine.py").write_text(ENGINE_MODULE)
    env = {**os.environ, "FAILOVER_ENGINE_MODULES": "cockroach_engine",
           "PYTHONPATH": os.pathsep.join(filter(None, (str(tmp_path), os.environ.get("PYTHONPATH"))))}

    ran = subprocess.run([sys.executable, "-c", textwrap.dedent(USE_IT)], env=env, capture_output=True, text=True)

    assert ran.returncode == 0, ran.stderr
    found = json.loads(ran.stdout)
    assert found["engine"] == "cockroach" and found["dsn"] == "cockroach"
    assert found["key"] == found["newest"] == "ledger/20240115T103000Z.sql.zst"
    assert "install-cockroach 23.1.4\n" in found["script"] and 'cockroach sql < "$DUMP"\n' in found["script"]
    assert found["refused"] == "engine version '23.1; reboot' is not digits and dots: refused"
