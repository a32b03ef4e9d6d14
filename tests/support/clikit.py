"""The real ``failover`` command as the CLI tests run it, what a run of it gives back, and a
world's snapshot made to look older."""

from __future__ import annotations

import json
import sqlite3
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

FAILOVER = [sys.executable, "-m", "failover.cli.main"]


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


@contextmanager
def snapshot_taken(world: Any, when: str) -> Iterator[None]:
    """The latest snapshot rewritten as taken at ``when``; put back afterwards."""
    database = sqlite3.connect(world.state_dir / "state.db")
    try:
        snapshot_id, taken_at, manifest = database.execute(
            "SELECT id, taken_at, manifest FROM snapshots ORDER BY taken_at DESC LIMIT 1").fetchone()
        older = json.dumps({**json.loads(manifest), "taken_at": when})
        with database:
            database.execute("UPDATE snapshots SET taken_at = ?, manifest = ? WHERE id = ?", (when, older, snapshot_id))
        yield
    finally:
        with database:
            database.execute("UPDATE snapshots SET taken_at = ?, manifest = ? WHERE id = ?",
                             (taken_at, manifest, snapshot_id))
        database.close()
