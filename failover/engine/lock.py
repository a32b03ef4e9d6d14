"""One run per service at a time: a row in the state store's ``locks`` table.

Taken and checked in one write transaction, so two processes cannot both win. A lock
whose holder is gone (same host, and its pid no longer exists, or now belongs to another
process) is taken over, and the caller is told so: never silently. A holder on another
host cannot be checked and is always respected. On a PostgreSQL state the lock is also a
session-level advisory lock: a live holder on any host keeps it, a dead one's session
released it, so its row is simply replaced.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from pathlib import Path

from failover.engine.journal import now
from failover.errors import LockHeld
from failover.state import StateStore

# Without /proc (macOS) a pid cannot be told from a later process that reuses it.
_HAVE_PROC = Path("/proc/self/stat").exists()


@dataclass(frozen=True)
class Holder:
    run_id: str
    host: str
    pid: int
    process_started: str | None
    since: str

    def __str__(self) -> str:
        holder = self.run_id if self.run_id.startswith("drill-") else f"run {self.run_id}"  # a drill holds it whole
        return f"{holder} (host {self.host}, pid {self.pid}, since {self.since})"

    def is_alive(self) -> bool:
        if self.host != socket.gethostname():
            return True
        if not _HAVE_PROC:
            return _pid_exists(self.pid)
        started = process_start_time(self.pid)
        return started is not None and self.process_started in (None, started)


class ServiceLock:
    def __init__(self, store: StateStore, service: str) -> None:
        self.store = store
        self.service = service

    def acquire(self, run_id: str) -> Holder | None:
        """Take the lock for ``run_id``; returns the dead holder it replaced, if any.

        Raises LockHeld (exit 3) naming a live holder.
        """
        me = Holder(run_id, socket.gethostname(), os.getpid(), process_start_time(os.getpid()), now())
        advisory = self.store.advisory_locks  # PostgreSQL: the lock is the holder's session
        if advisory and not self.store.try_advisory_lock(self.service):
            raise LockHeld(f"{self.service} is locked by {self.holder() or 'another session'}; wait for it to end")
        try:
            with self.store.transaction() as db:
                row = db.execute("SELECT * FROM locks WHERE service = ?", (self.service,)).fetchone()
                previous = _holder(row) if row else None
                # under an advisory lock, a row left behind is a dead holder's: its session is gone
                if previous is not None and not advisory and previous.is_alive():
                    raise LockHeld(f"{self.service} is locked by {previous}; wait for it to end")
                db.execute(
                    "INSERT OR REPLACE INTO locks (service, run_id, host, pid, process_started, since)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (self.service, me.run_id, me.host, me.pid, me.process_started, me.since),
                )
        except BaseException:
            self.store.advisory_unlock(self.service)
            raise
        return previous

    def release(self, run_id: str) -> None:
        with self.store.transaction() as db:
            db.execute(
                "DELETE FROM locks WHERE service = ? AND run_id = ? AND host = ? AND pid = ?",
                (self.service, run_id, socket.gethostname(), os.getpid()),
            )
        self.store.advisory_unlock(self.service)

    def holder(self) -> Holder | None:
        rows = self.store.query("SELECT * FROM locks WHERE service = ?", (self.service,))
        return _holder(rows[0]) if rows else None


def _holder(row) -> Holder:
    return Holder(row["run_id"], row["host"], row["pid"], row["process_started"], row["since"])


def process_start_time(pid: int) -> str | None:
    """The kernel's start time of ``pid`` (Linux), which tells a reused pid from its first
    owner; None where /proc cannot say, or the process is gone or a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # the command name may hold spaces
    state, start_ticks = fields[0], fields[19]
    return None if state in ("Z", "X") else start_ticks


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
