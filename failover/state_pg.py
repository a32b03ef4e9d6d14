"""The state store on PostgreSQL, for a team sharing one state (``state: postgresql://...``).

The same schema and the same ordered migrations as the SQLite store (``failover.state``),
each statement translated here, once: types (64-bit integers, ``C`` collation so text orders
as in SQLite), an ``AUTOINCREMENT`` key as ``BIGSERIAL``, and a ``rowid`` column on every
table (SQLite's implicit insertion order, which queries sort by; never returned in rows).
Queries keep SQLite's ``?`` placeholders and ``INSERT OR REPLACE``; they become ``%s`` and
``ON CONFLICT ... DO UPDATE``. Write transactions are serialized with a transaction-level
advisory lock, as SQLite's ``BEGIN IMMEDIATE`` serializes them. The schema version lives in
the table ``failover_schema``.

The service's lock is a session-level advisory lock on a connection of its own: held while
that session lives, so a holder that dies (``kill -9``, a lost machine) releases it with its
connection, on any host.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from failover.errors import FailoverError, ProviderUnreachable

PRIMARY_KEYS = {"locks": ("service",), "drills": ("id",), "replica_objects": ("service", "target", "container", "key")}
WRITE_LOCK = 0x6661696C6F766572  # "failover": the key serializing write transactions
MIGRATE_LOCK = WRITE_LOCK + 1


def is_dsn(location: object) -> bool:
    return isinstance(location, str) and location.startswith(("postgresql://", "postgres://"))


def masked(dsn: str) -> str:
    """The DSN for messages: its password replaced by ``***``."""
    parts = urlsplit(dsn)
    if parts.password is None:
        return dsn
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc[1]}"))


def lock_key(name: str) -> int:
    """A signed 64-bit advisory lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(f"failover-lock:{name}".encode()).digest()[:8], "big", signed=True)


def translate_ddl(script: str) -> str:
    sql = re.sub(r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "BIGSERIAL PRIMARY KEY", script)
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    sql = re.sub(r"\bREAL\b", "DOUBLE PRECISION", sql)
    sql = re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', sql)
    return re.sub(r"(CREATE TABLE \w+ \()", r"\1\n        rowid BIGSERIAL NOT NULL,", sql)


_REPLACE = re.compile(r"^\s*INSERT OR REPLACE INTO (\w+)\s*\(([^)]*)\)(.*)$", re.S | re.I)


def translate(sql: str) -> str:
    """A query as the SQLite store writes it, for PostgreSQL."""
    match = _REPLACE.match(sql)
    if match:
        table, columns, rest = match.group(1), [c.strip() for c in match.group(2).split(",")], match.group(3)
        keys = PRIMARY_KEYS[table]
        updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in keys)
        sql = (f"INSERT INTO {table} ({', '.join(columns)}){rest}"
               f" ON CONFLICT ({', '.join(keys)}) DO UPDATE SET {updates}")
    return sql.replace("%", "%%").replace("?", "%s")


def _params(params: Sequence[Any] | dict[str, Any]) -> Any:
    if isinstance(params, dict):
        return {k: int(v) if isinstance(v, bool) else v for k, v in params.items()}
    return [int(v) if isinstance(v, bool) else v for v in params]


class Row(tuple):
    """A result row read like ``sqlite3.Row``: by index, by column name, ``dict(row)``."""

    _keys: tuple[str, ...]
    _index: dict[str, int]

    def __new__(cls, values: Sequence[Any], keys: tuple[str, ...], index: dict[str, int]) -> Row:
        row = super().__new__(cls, values)
        row._keys, row._index = keys, index
        return row

    def __getitem__(self, item: Any) -> Any:
        if isinstance(item, str):
            return tuple.__getitem__(self, self._index[item])
        return tuple.__getitem__(self, item)

    def keys(self) -> list[str]:
        return list(self._keys)


def _row_factory(cursor: Any) -> Any:
    names = [column.name for column in cursor.description or []]
    keep = [i for i, name in enumerate(names) if name != "rowid"]
    keys = tuple(names[i] for i in keep)
    index = {key: i for i, key in enumerate(keys)}
    return lambda values: Row([values[i] for i in keep], keys, index)


class Handle:
    """What a transaction yields: ``execute`` and ``executemany`` as the SQLite store calls them."""

    def __init__(self, connection: Any) -> None:
        self.connection = connection

    def execute(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> Any:
        cursor = self.connection.cursor()
        cursor.execute(translate(sql), _params(params))
        return cursor

    def executemany(self, sql: str, rows: Sequence[Sequence[Any]]) -> Any:
        cursor = self.connection.cursor()
        cursor.executemany(translate(sql), [_params(row) for row in rows])
        return cursor


class PostgresBackend:
    advisory_locks = True

    def __init__(self, dsn: str, migrations: list[str]) -> None:
        self.dsn = dsn
        self.where = masked(dsn)
        self._held: dict[str, Any] = {}
        self._held_lock = threading.Lock()
        self.connection = self._connect()
        try:
            self._migrate(migrations)
        except BaseException:
            self.connection.close()
            raise

    def _connect(self) -> Any:
        import psycopg

        try:
            return psycopg.connect(self.dsn, autocommit=True, cursor_factory=psycopg.ClientCursor,
                                   row_factory=_row_factory, connect_timeout=10, application_name="failover")
        except psycopg.OperationalError as exc:
            message = " ".join(str(exc).replace(self.dsn, self.where).split())
            raise ProviderUnreachable(f"cannot open the PostgreSQL state: {message}", where=self.where) from None

    def _migrate(self, migrations: list[str]) -> None:
        handle = Handle(self.connection)
        handle.execute("SELECT pg_advisory_lock(?)", (MIGRATE_LOCK,))
        try:
            handle.execute("CREATE TABLE IF NOT EXISTS failover_schema (version BIGINT NOT NULL)")
            rows = handle.execute("SELECT version FROM failover_schema").fetchall()
            if not rows:
                handle.execute("INSERT INTO failover_schema (version) VALUES (0)")
            version = rows[0][0] if rows else 0
            if version > len(migrations):
                raise FailoverError(f"the state database has schema version {version}, newer than this failover "
                                    f"({len(migrations)}); upgrade failover", where=self.where)
            for index in range(version, len(migrations)):
                with self.connection.transaction():
                    for statement in [s.strip() for s in translate_ddl(migrations[index]).split(";") if s.strip()]:
                        self.connection.execute(statement)
                    handle.execute("UPDATE failover_schema SET version = ?", (index + 1,))
        finally:
            handle.execute("SELECT pg_advisory_unlock(?)", (MIGRATE_LOCK,))

    # -- the store's primitives -------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Handle]:
        handle = Handle(self.connection)
        with self.connection.transaction():
            handle.execute("SELECT pg_advisory_xact_lock(?)", (WRITE_LOCK,))
            yield handle

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[Row]:
        return Handle(self.connection).execute(sql, params).fetchall()

    @property
    def schema_version(self) -> int:
        return self.query("SELECT version FROM failover_schema")[0][0]

    def close(self) -> None:
        with self._held_lock:
            for connection in self._held.values():
                connection.close()
            self._held.clear()
        self.connection.close()

    # -- the service's lock -------------------------------------------------------------------
    def try_advisory_lock(self, name: str) -> bool:
        """Take ``name``'s lock on a session of its own; False when another session holds it."""
        connection = self._connect()
        got = Handle(connection).execute("SELECT pg_try_advisory_lock(?)", (lock_key(name),)).fetchone()[0]
        if not got:
            connection.close()
            return False
        with self._held_lock:
            self._held[name] = connection
        return True

    def advisory_unlock(self, name: str) -> None:
        with self._held_lock:
            connection = self._held.pop(name, None)
        if connection is not None:
            connection.close()  # ending the session releases its advisory locks
