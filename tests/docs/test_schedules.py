"""The scheduling examples in docs/schedules: each file parses (systemd units through
``systemd-analyze verify``, the YAML through PyYAML), and every ``failover`` command line they
run parses against the real Typer app, options and types included (nothing is run)."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml

from failover.cli.main import app

ROOT = Path(__file__).resolve().parents[2]
SCHEDULES = ROOT / "docs" / "schedules"
UNITS = sorted(SCHEDULES.glob("*.service")) + sorted(SCHEDULES.glob("*.timer"))
FAILOVER_BINARY = "/usr/local/bin/failover"


def parse_failover(argv: list[str]) -> tuple[str, dict[str, Any]]:
    """``failover ARGV`` parsed as the CLI would (a usage error raises): the command and its parameters."""
    group = typer.main.get_command(app)
    ctx = group.make_context("failover", list(argv))
    name, command, rest = group.resolve_command(ctx, [*getattr(ctx, "_protected_args", []), *ctx.args])
    return name, command.make_context(name, rest, parent=ctx).params


def shell_commands(script: str) -> list[list[str]]:
    """The simple commands of a shell script (lines, ``&&``, ``;``), each split as the shell would."""
    commands = []
    for line in script.splitlines():
        for part in re.split(r"&&|;|\|\|", line.split(" #")[0]):
            words = shlex.split(part.split(">")[0])
            if words:
                commands.append(words)
    return commands


def failover_lines(commands: list[list[str]]) -> list[list[str]]:
    return [words[1:] for words in commands if words and Path(words[0]).name == "failover"]


def unit_commands(path: Path) -> list[list[str]]:
    lines = path.read_text().splitlines()
    return [shlex.split(line.split("=", 1)[1]) for line in lines if line.startswith("ExecStart=")]


def kubernetes_commands(path: Path) -> list[list[str]]:
    commands = []
    for document in yaml.safe_load_all(path.read_text()):
        assert document["apiVersion"] == "batch/v1" and document["kind"] == "CronJob"
        assert len(document["spec"]["schedule"].split()) == 5
        for container in document["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]:
            argv = [*container.get("command", []), *container.get("args", [])]
            if argv[:2] == ["/bin/sh", "-c"]:
                commands += shell_commands(" ".join(argv[2:]))
            else:
                commands.append(argv)
    return commands


def workflow_commands(path: Path) -> list[list[str]]:
    document = yaml.safe_load(path.read_text())
    assert document[True]["schedule"][0]["cron"].count(" ") == 4  # YAML 1.1 reads the key `on` as true
    steps = [step for job in document["jobs"].values() for step in job["steps"]]
    return [words for step in steps if "run" in step for words in shell_commands(step["run"])]


ALL = {
    "systemd": lambda: [c for unit in UNITS for c in unit_commands(unit)],
    "kubernetes": lambda: kubernetes_commands(SCHEDULES / "kubernetes-cronjob.yaml"),
    "ci": lambda: workflow_commands(SCHEDULES / "ci-workflow.yml"),
}


@pytest.mark.parametrize("example", sorted(ALL))
def test_every_failover_command_line_parses(example: str) -> None:
    lines = failover_lines(ALL[example]())
    parsed = [parse_failover(argv) for argv in lines]
    commands = [name for name, _ in parsed]
    assert "check" in commands and "replicate" in commands, commands
    for name, params in parsed:
        if name in ("check", "replicate"):
            assert params["metrics"] is not None and str(params["metrics"]).endswith(".prom"), (example, name)
            assert params["target"] == "fallback"
        if name == "check":
            assert params["playbook"] == "standard" and params["junit_xml"] is not None


def test_the_parser_refuses_what_the_cli_refuses() -> None:
    with pytest.raises(Exception, match="No such option"):
        parse_failover(["check", "standard", "--target", "fallback", "--metric", "x.prom"])
    with pytest.raises(Exception, match="target"):
        parse_failover(["replicate", "--metrics", "x.prom"])
    with pytest.raises(Exception, match="valid number"):
        parse_failover(["check", "standard", "--target", "t", "--timeout", "soon"])


@pytest.mark.parametrize("unit", UNITS, ids=lambda p: p.name)
def test_systemd_units_verify(unit: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    assert analyze, "systemd-analyze is missing: ./scripts/install-test-deps installs systemd"
    for source in UNITS:  # a timer is verified with its service beside it
        text = source.read_text().replace(FAILOVER_BINARY, shutil.which("true") or "/bin/true")
        (tmp_path / source.name).write_text(text)
    done = subprocess.run([analyze, "verify", "--man=no", str(tmp_path / unit.name)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stdout + done.stderr
    for line in unit.read_text().splitlines():
        if line.startswith("OnCalendar="):
            calendar = subprocess.run([analyze, "calendar", line.split("=", 1)[1]], capture_output=True, text=True)
            assert calendar.returncode == 0, calendar.stderr


def test_the_readme_alert_rules_are_prometheus_rule_groups() -> None:
    readme = (ROOT / "README.md").read_text()
    blocks = [yaml.safe_load(block) for block in re.findall(r"```yaml\n(.*?)```", readme, re.S) if "groups:" in block]
    assert len(blocks) == 1
    rules = blocks[0]["groups"][0]["rules"]
    assert [rule["alert"] for rule in rules] == ["FailoverReplicaOlderThanRPO", "FailoverNotReady"]
    from failover.metrics import SERIES

    used = {name for rule in rules for name in re.findall(r"failover_[a-z_]+", rule["expr"])}
    assert used and used <= set(SERIES), used - set(SERIES)
