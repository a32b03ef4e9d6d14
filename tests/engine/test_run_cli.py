"""The real ``failover`` command: plan, run, resume, rollback, runs and status, as a user
and a script see them (exit codes, stdout JSON, stderr), with the ``record`` action."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest
from enginekit import Records, cli_env, failover, record_step, start, wait_for_run_id, write_config, write_playbook

DIAMOND = (record_step("a"), record_step("b", ["a"]), record_step("c", ["a"]), record_step("d", ["b", "c"]))


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    write_config(tmp_path)
    return cli_env(tmp_path, tmp_path / "records.log")


@pytest.fixture
def records(tmp_path: Path) -> Records:
    return Records(tmp_path / "records.log")


def test_run_prints_the_run_document_and_status_prints_the_same(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, *DIAMOND)
    result = failover("run", str(playbook), "--target", "t", "--yes", "--json", env=env)

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "succeeded" and f"Run {document['run_id']}" in result.stderr
    assert [s["id"] for s in document["steps"]] == ["a", "b", "c", "d"]
    for step in document["steps"]:
        assert {"id", "action", "status", "attempts", "started_at", "ended_at", "outputs", "error"} <= set(step)
    assert records.count("apply", document["run_id"]) == {"a": 1, "b": 1, "c": 1, "d": 1}

    status = failover("status", document["run_id"], "--json", env=env)
    assert status.code == 0 and json.loads(status.stdout) == document
    listed = json.loads(failover("runs", "--json", env=env).stdout)
    assert [(r["run_id"], r["status"], r["steps_done"]) for r in listed["runs"]] == [(document["run_id"], "succeeded", 4)]


def test_plan_shows_what_would_be_created_and_changes_nothing(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, *DIAMOND)
    result = failover("plan", str(playbook), "--target", "t", "--json", env=env)

    assert result.code == 0, result.stderr
    plan = json.loads(result.stdout)
    assert [(s["id"], s["status"], s["changes"][0]["operation"]) for s in plan["steps"]] == [
        ("a", "planned", "create"), ("b", "planned", "create"), ("c", "planned", "create"), ("d", "planned", "create")]
    assert records.count("apply") == {}
    assert json.loads(failover("runs", "--json", env=env).stdout)["runs"] == []
    human = failover("plan", str(playbook), "--target", "t", env=env)
    assert human.code == 0 and "create" in human.stderr and human.stdout == ""


def test_without_a_terminal_run_asks_for_yes(tmp_path: Path, env, records: Records) -> None:
    result = failover("run", str(write_playbook(tmp_path, *DIAMOND)), "--target", "t", env=env)
    assert result.code == 2 and "--yes" in result.stderr
    assert records.lines() == []


def test_invalid_input_is_exit_2(tmp_path: Path, env) -> None:
    playbook = write_playbook(tmp_path, *DIAMOND)
    assert failover("run", str(playbook), "--target", "nope", "--yes", env=env).code == 2
    assert failover("run", str(playbook), "--target", "t", "--yes", "--snapshot", "snap-nope", env=env).code == 2
    assert failover("status", "run-nope", env=env).code == 2
    assert failover("run", str(playbook), "--target", "t", "--yes", "--parallelism", "0", env=env).code == 2


def test_a_dry_run_calls_no_apply(tmp_path: Path, env, records: Records) -> None:
    result = failover("run", str(write_playbook(tmp_path, *DIAMOND)), "--target", "t", "--dry-run", "--json", env=env)

    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True and document["status"] == "succeeded"
    assert records.count("apply") == {} and records.count("undo") == {}
    assert records.count("plan", document["run_id"]) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_a_failed_run_exits_1_and_rollback_undoes_what_it_applied(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("a", sleep=0.1), record_step("b", ["a"], fail=True), record_step("c", ["b"]),
                              record_step("x"))
    result = failover("run", str(playbook), "--target", "t", "--yes", "--json", env=env)

    assert result.code == 1
    document = json.loads(result.stdout)
    run_id = document["run_id"]
    assert document["status"] == "failed" and "step b failed: b failed as asked" in result.stderr
    assert {s["id"]: s["status"] for s in document["steps"]} == {"a": "succeeded", "b": "failed", "c": "pending", "x": "succeeded"}

    rolled = failover("rollback", run_id, "--json", env=env)
    assert rolled.code == 0, rolled.stderr
    assert json.loads(rolled.stdout)["status"] == "rolled_back"
    assert records.count("undo", run_id) == records.count("apply", run_id) == {"a": 1, "b": 1, "x": 1}
    assert failover("rollback", run_id, env=env).code == 0  # idempotent
    assert records.count("undo", run_id) == {"a": 1, "b": 1, "x": 1}


def test_rollback_after_success_leaves_nothing_behind(tmp_path: Path, env, records: Records) -> None:
    result = failover("run", str(write_playbook(tmp_path, *DIAMOND)), "--target", "t", "--yes", "--json", env=env)
    run_id = json.loads(result.stdout)["run_id"]
    assert failover("rollback", "latest", env=env).code == 0
    assert records.count("undo", run_id) == records.count("apply", run_id) == {"a": 1, "b": 1, "c": 1, "d": 1}


def test_rollback_on_failure(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("a"), record_step("b", ["a"], fail=True))
    result = failover("run", str(playbook), "--target", "t", "--yes", "--rollback-on-failure", "--json", env=env)

    assert result.code == 1
    document = json.loads(result.stdout)
    assert document["status"] == "rolled_back" and document["error"].startswith("step b failed")
    assert records.count("undo", document["run_id"]) == {"a": 1, "b": 1}


def test_two_concurrent_runs_one_exits_3_naming_the_holder(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("slow", sleep=30))
    first = start("run", str(playbook), "--target", "t", "--yes", env=env)
    try:
        run_id = wait_for_run_id(first)
        second = failover("run", str(playbook), "--target", "t", "--yes", env=env)
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=30)

    assert second.code == 3
    assert f"locked by run {run_id}" in second.stderr and f"pid {first.pid}" in second.stderr and "since" in second.stderr
    assert first.returncode == 130
    assert records.count("apply") == {}


def test_the_stale_lock_of_a_killed_run_is_taken_over_with_a_warning(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("slow", sleep=30))
    killed = start("run", str(playbook), "--target", "t", "--yes", env=env)
    run_id = wait_for_run_id(killed)
    killed.kill()
    killed.wait()

    quick = write_playbook(tmp_path, record_step("quick"), name="quick")
    result = failover("run", str(quick), "--target", "t", "--yes", env=env)

    assert result.code == 0, result.stderr
    assert "warning" in result.stderr and f"lock of svc left by run {run_id}" in result.stderr
    assert f"pid {killed.pid}" in result.stderr


def test_ctrl_c_exits_130_with_a_resumable_journal(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("a", sleep=2), record_step("b", ["a"]))
    process = start("run", str(playbook), "--target", "t", "--yes", "--json", env=env)
    run_id = wait_for_run_id(process)
    time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=30)

    assert process.returncode == 130, stderr
    assert f"failover resume {run_id}" in stderr
    document = json.loads(stdout)
    assert document["status"] == "interrupted"
    assert {s["id"]: s["status"] for s in document["steps"]} == {"a": "interrupted", "b": "pending"}

    resumed = failover("resume", run_id, "--json", env=env)
    assert resumed.code == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "succeeded"
    assert records.count("apply", run_id) == {"a": 1, "b": 1}


def test_a_dry_run_whose_checks_fail_exits_1(tmp_path: Path, env, records: Records) -> None:
    playbook = write_playbook(tmp_path, record_step("a", fail_plan=True), record_step("b", fail_plan=True),
                              record_step("c", ["a"]), record_step("d"))
    result = failover("run", str(playbook), "--target", "t", "--dry-run", "--json", env=env)

    assert result.code == 1, result.stderr
    document = json.loads(result.stdout)
    assert document["status"] == "failed"
    assert document["error"] in ("step a failed: a cannot be done", "step b failed: b cannot be done")
    # every check is made, but a step after a failed one is not
    assert {s["id"]: s["status"] for s in document["steps"]} == {"a": "failed", "b": "failed", "c": "pending", "d": "succeeded"}
    assert records.count("apply") == {}
    assert failover("rollback", document["run_id"], env=env).code == 2  # a dry run created nothing
