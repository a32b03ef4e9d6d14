"""Inputs that are not what they claim (issue 10): a config that is a device, a playbook
that is a FIFO, drivers that resolve to nothing, a config without targets. Each is refused
with exit 2 and one line per problem naming the file, before anything is read or changed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

SOURCE = {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}}
BAD_DRIVERS = {"fallback": {"compute": {"driver": "digitalocaen", "location": "fra1"},
                            "storage": {"driver": "nosuch_pkg.drivers:Nope"},
                            "dns": {"driver": "powerdns"}}}


def one_line_errors(stderr: str) -> list[str]:
    assert "Traceback" not in stderr, stderr
    return [line for line in stderr.splitlines() if line.startswith("failover: error: ")]


def test_a_device_as_config_is_refused_at_once(failover) -> None:
    result = failover("validate", "smoke", "--config", "/dev/zero", timeout=60)

    assert result.code == 2, result.stderr
    assert one_line_errors(result.stderr) == ["failover: error: /dev/zero: the config file is not a regular file"]


def test_a_fifo_as_playbook_or_manifest_is_refused_instead_of_waited_on(failover, write_config, tmp_path: Path) -> None:
    config = write_config(source=SOURCE, targets={"fallback": {}})
    os.mkfifo(tmp_path / "book.yaml")
    os.mkfifo(tmp_path / "m.json")

    book = failover("validate", "./book.yaml", "--config", str(config), timeout=60)  # a hang fails by the timeout
    assert book.code == 2, book.stderr
    assert one_line_errors(book.stderr) == ["failover: error: book.yaml: the playbook is not a regular file"]

    manifest = failover("diff", "m.json", "m.json", "--config", str(config), timeout=60)
    assert manifest.code == 2, manifest.stderr
    assert "m.json: the manifest is not a regular file" in manifest.stderr


def test_validate_resolves_every_driver_of_every_profile(failover, write_config) -> None:
    config = write_config(source=SOURCE, targets=BAD_DRIVERS)
    lines = Path(config).read_text().splitlines()
    line_of = {word: next(i for i, text in enumerate(lines, 1) if word in text)
               for word in ("digitalocaen", "nosuch_pkg")}

    result = failover("validate", "smoke", "--config", str(config), timeout=60)

    assert result.code == 2, result.stderr
    assert one_line_errors(result.stderr) == [
        f"failover: error: {config}:{line_of['digitalocaen']}: targets.fallback.compute.driver: 'digitalocaen' "
        "is neither a libcloud provider name nor package.module:DriverClass "
        "(libcloud has no compute driver of that name)",
        f"failover: error: {config}:{line_of['nosuch_pkg']}: targets.fallback.storage.driver: "
        "'nosuch_pkg.drivers:Nope' is neither a libcloud provider name nor package.module:DriverClass "
        "(cannot import it: No module named 'nosuch_pkg')",
    ]


def test_a_config_without_targets_fails_what_needs_one(failover, write_config) -> None:
    config = write_config(source=SOURCE)

    validated = failover("validate", "smoke", "--config", str(config), timeout=60)
    assert validated.code == 2, validated.stderr
    assert one_line_errors(validated.stderr) == [
        f"failover: error: {config}: targets: no target profile: add the provider to fail over to"
    ]
    planned = failover("plan", "smoke", "--target", "fallback", "--config", str(config), timeout=60)
    assert planned.code == 2 and "no such target profile (known: none)" in planned.stderr


def test_plan_check_and_drill_refuse_unresolvable_drivers_before_any_call(account, failover, write_config) -> None:
    config = write_config(source=SOURCE)
    assert failover("inventory", "--config", str(config)).code == 0  # a snapshot to plan from
    Path(config).write_text(yaml.safe_dump({**yaml.safe_load(Path(config).read_text()), "targets": BAD_DRIVERS}))

    for command in ("plan", "check", "drill", "run"):
        args = (command, "smoke", "--target", "fallback", "--config", str(config))
        result = failover(*args, "--yes", timeout=60) if command == "run" else failover(*args, timeout=60)
        assert result.code == 2, (command, result.stderr)
        errors = one_line_errors(result.stderr)
        assert any("targets.fallback.compute.driver: 'digitalocaen' is neither" in line for line in errors), command
    runs = failover("runs", "--config", str(config), "--json")
    assert runs.code == 0 and json.loads(runs.stdout)["runs"] == []  # nothing ran
