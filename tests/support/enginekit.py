"""Helpers for engine tests: a minimal config, playbooks of ``record`` steps, the record
file, and the real ``failover`` command in a subprocess."""

from __future__ import annotations

import os
import subprocess
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from clikit import FAILOVER

SUPPORT = Path(__file__).resolve().parent

CONFIG = {
    "service": "svc",
    "state": ".failover",
    "source": {"regions": ["us-east-1"], "select": {"tags": {"service": "svc"}}},
    "targets": {"t": {}},
}


def write_config(directory: Path) -> Path:
    path = directory / "failover.yaml"
    path.write_text(yaml.safe_dump(CONFIG))
    return path


def record_step(step_id: str, needs: list[str] | tuple[str, ...] = (), **params: Any) -> dict[str, Any]:
    """A ``record`` step; extra keys of the step itself (timeout, retries, when) go in ``params`` too."""
    step_keys = {k: params.pop(k) for k in ("timeout", "retries", "when") if k in params}
    return {"id": step_id, "action": "record", "with": {"name": step_id, **params}, "needs": list(needs), **step_keys}


def playbook_data(*steps: dict[str, Any], name: str = "test", vars: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"name": name, "vars": vars or {}, "steps": list(steps)}


def write_playbook(directory: Path, *steps: dict[str, Any], name: str = "test") -> Path:
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(playbook_data(*steps, name=name), sort_keys=False))
    return path


class Records:
    """The lines the ``record`` action wrote: ``apply RUN/STEP``, ``undo RUN/STEP``, ``plan RUN/STEP``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def lines(self) -> list[str]:
        return self.path.read_text().splitlines() if self.path.exists() else []

    def count(self, verb: str, run_id: str | None = None) -> Counter[str]:
        """step id -> how many ``verb`` lines (of ``run_id``)."""
        counts: Counter[str] = Counter()
        for line in self.lines():
            line_verb, _, marker = line.partition(" ")
            run, _, step = marker.partition("/")
            if line_verb == verb and (run_id is None or run == run_id):
                counts[step] += 1
        return counts


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str


def cli_env(directory: Path, records: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": os.pathsep.join(filter(None, [str(SUPPORT), env.get("PYTHONPATH")])),
        "FAILOVER_ACTION_MODULES": "recording_action",
        "FAILOVER_RECORD_FILE": str(records),
        "FAILOVER_CONFIG": str(directory / "failover.yaml"),
        "COLUMNS": "200",
    })
    env.pop("FAILOVER_DEBUG", None)
    return env


def failover(*args: str, env: dict[str, str], timeout: float = 60) -> Result:
    done = subprocess.run([*FAILOVER, *args], env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, check=False)
    return Result(done.returncode, done.stdout, done.stderr)


def start(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([*FAILOVER, *args], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def wait_for_run_id(process: subprocess.Popen) -> str | None:
    """Reads stderr until the run, its resume or its rollback announces itself (``Run run-... (8 steps)``);
    None if the command ended without (a resume of a run that had succeeded)."""
    for line in process.stderr:
        words = line.split()
        announced = len(words) == 4 and words[0] in ("Run", "Resume", "Rollback") and words[3] == "steps)"
        if announced and words[1].startswith("run-"):
            return words[1]
    return None
