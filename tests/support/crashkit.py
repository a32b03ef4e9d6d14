"""What the crash tests share (tests/engine/test_crash.py, test_crash_rollback.py): a playbook of
``record`` steps that runs about RUN_TIME seconds, and the real ``failover`` killed with SIGKILL
some time after it announced its run. Two files, so that pytest-xdist runs them side by side."""

from __future__ import annotations

import time

from enginekit import record_step, start, wait_for_run_id

RUN_TIME = 0.3  # seconds from the run's first line to its end, about (measured: 0.27)
STEPS = (
    record_step("s1", sleep=0.05),
    record_step("s2", sleep=0.08),
    record_step("s3", ["s1"], sleep=0.05, transient_failures=1),
    record_step("s4", ["s1", "s2"], sleep=0.06),
    record_step("s5", ["s2"], sleep=0.04),
    record_step("s6", ["s3", "s4"], sleep=0.05),
    record_step("s7", ["s5"], sleep=0.07),
    record_step("s8", ["s6", "s7"], sleep=0.03),
)


def kill_after(seconds: float, args: list[str], env: dict[str, str]) -> str | None:
    """Starts ``failover ARGS``, kills it with SIGKILL ``seconds`` after it announced its run; the run id
    (None when it had nothing to do)."""
    process = start(*args, env=env)
    run_id = wait_for_run_id(process)
    time.sleep(seconds)
    process.kill()
    process.communicate(timeout=30)
    return run_id
