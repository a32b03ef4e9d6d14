"""One run per service: the lock names its holder, and a dead holder's lock is taken
over with a warning, never silently."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest
from enginekit import playbook_data, record_step

from failover.engine import Engine, Observer, RunStatus
from failover.engine.lock import ServiceLock, process_start_time
from failover.errors import ExitCode, LockHeld
from failover.playbook import Playbook
from failover.state import StateStore


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def plant_lock(store: StateStore, *, run_id: str = "run-old", host: str | None = None, pid: int, started: str | None = None) -> None:
    with store.transaction() as db:
        db.execute(
            "INSERT OR REPLACE INTO locks (service, run_id, host, pid, process_started, since) VALUES ('svc', ?, ?, ?, ?, ?)",
            (run_id, host or socket.gethostname(), pid, started, "2026-01-01T00:00:00.000Z"),
        )


def test_a_second_holder_is_refused_with_the_holders_details(store: StateStore) -> None:
    lock = ServiceLock(store, "svc")
    assert lock.acquire("run-1") is None

    with pytest.raises(LockHeld) as refused:
        ServiceLock(store, "svc").acquire("run-2")

    assert refused.value.exit_code == ExitCode.LOCKED
    message = str(refused.value)
    assert "run-1" in message and socket.gethostname() in message and f"pid {os.getpid()}" in message and "since 20" in message
    lock.release("run-1")
    assert lock.acquire("run-2") is None


def test_release_leaves_another_runs_lock_alone(store: StateStore) -> None:
    lock = ServiceLock(store, "svc")
    lock.acquire("run-1")
    lock.release("run-other")
    assert lock.holder().run_id == "run-1"


def test_the_lock_of_a_dead_process_on_this_host_is_taken_over(store: StateStore) -> None:
    plant_lock(store, pid=dead_pid())
    previous = ServiceLock(store, "svc").acquire("run-new")
    assert previous is not None and previous.run_id == "run-old"
    assert ServiceLock(store, "svc").holder().run_id == "run-new"


def test_a_reused_pid_is_not_mistaken_for_the_holder(store: StateStore) -> None:
    plant_lock(store, pid=os.getpid(), started="1")  # this pid, but not the process that locked
    assert ServiceLock(store, "svc").acquire("run-new").run_id == "run-old"


def test_a_live_holder_keeps_its_lock(store: StateStore) -> None:
    with subprocess.Popen(["sleep", "30"]) as process:
        try:
            plant_lock(store, pid=process.pid, started=process_start_time(process.pid))
            with pytest.raises(LockHeld, match=f"pid {process.pid}"):
                ServiceLock(store, "svc").acquire("run-new")
        finally:
            process.kill()


def test_a_holder_on_another_host_is_always_respected(store: StateStore) -> None:
    plant_lock(store, host="elsewhere.example", pid=dead_pid())
    with pytest.raises(LockHeld, match="host elsewhere.example"):
        ServiceLock(store, "svc").acquire("run-new")


class Warnings(Observer):
    def __init__(self) -> None:
        self.messages: list[str] = []

    def warning(self, message: str) -> None:
        self.messages.append(message)


def test_a_run_taking_over_a_stale_lock_warns_and_journals_it(store: StateStore, config, records) -> None:
    plant_lock(store, pid=dead_pid())
    observer = Warnings()
    run = Engine(store, config, observer=observer).start(Playbook.model_validate(playbook_data(record_step("a"))), target="t")

    assert run.status is RunStatus.SUCCEEDED
    assert len(observer.messages) == 1 and "run-old" in observer.messages[0] and "gone" in observer.messages[0]
    taken = [e for e in Engine(store, config).journal.events(run.id) if e["event"] == "lock-taken-over"]
    assert taken[0]["detail"]["run_id"] == "run-old"
    assert ServiceLock(store, "svc").holder() is None
