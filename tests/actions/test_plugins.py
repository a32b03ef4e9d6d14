"""Third-party actions: from ``$FAILOVER_ACTION_MODULES`` and from the entry-point group
``failover.actions``, each checked through the real ``failover`` executable in a
subprocess (the registry loads once per process)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PLUGIN = '''
"""A test action that records its calls."""
from failover.actions.base import ACTIONS, Action, Change, Params


class RecordParams(Params):
    label: str


@ACTIONS.register("record")
class Record(Action):
    """Record a call."""

    summary = "Record a call (tests)."
    Params = RecordParams
    example = {"label": "x"}
    mutates = False

    def plan(self, ctx, params):
        return [Change("none", "record", params.label)]

    def apply(self, ctx, params):
        return {"label": params.label}

    def undo(self, ctx, params):
        return None
'''


def failover(*argv: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    executable = shutil.which("failover") or str(Path(sys.executable).parent / "failover")
    clean = {k: v for k, v in os.environ.items() if k not in ("FAILOVER_ACTION_MODULES", "FAILOVER_CONFIG")}
    return subprocess.run([executable, *argv], capture_output=True, text=True, timeout=60, cwd=cwd, env={**clean, **env}, check=False)


@pytest.fixture
def plugin_dir(tmp_path: Path) -> Path:
    (tmp_path / "recording_action.py").write_text(PLUGIN)
    (tmp_path / "uses-record.yaml").write_text(
        "name: uses record\nsteps:\n  - {id: a, action: record, with: {label: hi}}\n  - {id: b, action: record, with: {lable: hi}}\n"
    )
    return tmp_path


def action_names(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert result.returncode == 0, result.stderr
    return [a["name"] for a in json.loads(result.stdout)["actions"]]


def test_modules_named_in_the_environment(plugin_dir: Path) -> None:
    env = {"PYTHONPATH": str(plugin_dir), "FAILOVER_ACTION_MODULES": " recording_action , "}
    assert "record" in action_names(failover("actions", "--json", env=env, cwd=plugin_dir))

    result = failover("validate", "uses-record.yaml", env=env, cwd=plugin_dir)
    assert result.returncode == 2
    assert "uses-record.yaml:4: steps[1].with.lable: unknown parameter (did you mean 'label'?)" in result.stderr


def test_without_the_variable_the_action_is_unknown(plugin_dir: Path) -> None:
    result = failover("validate", "uses-record.yaml", env={"PYTHONPATH": str(plugin_dir)}, cwd=plugin_dir)
    assert result.returncode == 2
    assert "steps[0].action: unknown action 'record'" in result.stderr


def test_a_module_that_cannot_be_imported_is_bad_input(plugin_dir: Path) -> None:
    result = failover("actions", env={"FAILOVER_ACTION_MODULES": "no_such_module_here"}, cwd=plugin_dir)
    assert result.returncode == 2
    assert "$FAILOVER_ACTION_MODULES: no_such_module_here: cannot import: ModuleNotFoundError" in result.stderr
    assert "Traceback" not in result.stderr


def test_entry_points_of_installed_distributions(plugin_dir: Path) -> None:
    dist_info = plugin_dir / "failover_record_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: failover-record-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text(textwrap.dedent("""
        [failover.actions]
        record = recording_action
    """))
    assert "record" in action_names(failover("actions", "--json", env={"PYTHONPATH": str(plugin_dir)}, cwd=plugin_dir))
