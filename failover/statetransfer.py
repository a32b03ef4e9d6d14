"""``failover state export FILE`` / ``import FILE``: a whole state as one JSON document, to move
it between backends (SQLite, PostgreSQL) and machines.

Every table but ``locks`` (a lock belongs to a live process on one machine), rows in their
insertion order, so ordering ties keep resolving the same way. An import goes into an empty
store only, in one transaction: a bad file changes nothing. The state holds no secrets
(``${env:NAME}`` references stay references), but the file is written 0600 like the store.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from failover.errors import InputError, Problem
from failover.manifest import now_iso
from failover.state import MIGRATIONS, StateStore

FORMAT = "failover-state"
# In dependency order (foreign keys): a table is loaded after those it refers to.
TABLES = ("snapshots", "runs", "steps", "created_resources", "events", "replica_objects", "replications",
          "zone_mirrors", "dumps", "drills")
COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


def export_state(store: StateStore) -> dict[str, Any]:
    tables = {table: [dict(row) for row in store.query(f"SELECT * FROM {table} ORDER BY rowid")] for table in TABLES}
    return {"format": FORMAT, "schema_version": store.schema_version, "exported_at": now_iso(), "tables": tables}


def write_export(document: dict[str, Any], path: Path) -> None:
    """Replace ``path`` atomically with the document, 0600."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            json.dump(document, out, ensure_ascii=False, separators=(",", ":"))
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def read_export(path: Path) -> dict[str, Any]:
    def bad(message: str) -> InputError:
        return InputError([Problem(file=str(path), message=message)])

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise bad("no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad(f"not a state export: {exc}") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise bad(f"not a state export (no \"format\": \"{FORMAT}\")")
    version = document.get("schema_version")
    if not isinstance(version, int) or not 1 <= version <= len(MIGRATIONS):
        raise bad(f"schema_version {version!r}: this failover reads 1 to {len(MIGRATIONS)}")
    tables = document.get("tables")
    if not isinstance(tables, dict) or set(tables) - set(TABLES):
        unknown = sorted(set(tables) - set(TABLES)) if isinstance(tables, dict) else "tables"
        raise bad(f"unknown tables: {unknown}")
    for table, rows in tables.items():
        if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
            raise bad(f"tables.{table}: expected a list of rows (objects)")
        for row in rows:
            for column, value in row.items():
                if not COLUMN.match(column):
                    raise bad(f"tables.{table}: {column!r} is not a column name")
                if not (value is None or isinstance(value, (str, int, float))):
                    raise bad(f"tables.{table}.{column}: a {type(value).__name__} is not a column value")
    return document


def import_state(store: StateStore, document: dict[str, Any], *, file: str) -> dict[str, int]:
    """Load the document into ``store``, which must be empty; the rows loaded per table."""
    occupied = [table for table in TABLES if store.query(f"SELECT 1 FROM {table} LIMIT 1")]
    if occupied:
        raise InputError([Problem(file=file, message=f"the target state is not empty ({', '.join(occupied)}): "
                                                     "import into a new state only")])
    counts: dict[str, int] = {}
    try:
        with store.transaction() as db:
            for table in TABLES:
                rows = document["tables"].get(table, [])
                for columns, group in _by_columns(rows).items():
                    values = [tuple(row[column] for column in columns) for row in group]
                    db.executemany(f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
                                   f"({', '.join('?' for _ in columns)})", values)
                counts[table] = len(rows)
            if store.backend is not None and counts.get("events"):
                db.execute("SELECT setval(pg_get_serial_sequence('events', 'seq'), (SELECT max(seq) FROM events))")
    except Exception as exc:  # noqa: BLE001 - any database refusal: the file is bad, nothing was kept
        if not _database_error(exc):
            raise
        message = " ".join(str(exc).split())
        raise InputError([Problem(file=file, message=f"the state refused the file's rows: {message}")]) from None
    return counts


def _by_columns(rows: list[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return groups


def _database_error(exc: Exception) -> bool:
    if isinstance(exc, sqlite3.Error):
        return True
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency
        return False
    return isinstance(exc, psycopg.Error)
