"""``plan`` says what the source could not tell (a libcloud driver without user data or a firewall
API): the snapshot's ``source.unknown``, in the JSON and on stderr; and nothing when it is empty."""

from __future__ import annotations

import json
from pathlib import Path

from enginekit import cli_env, failover, record_step, write_config, write_playbook

from failover.config import load_config
from failover.manifest import Manifest, SourceInfo, now_iso
from failover.state import StateStore

UNKNOWN = {"node.user_data": "vultr: libcloud's Vultr driver does not read an instance's user data",
           "node.firewalls": "vultr: libcloud's Vultr driver does not read firewall groups"}


def _snapshot(tmp_path: Path, unknown: dict[str, str]) -> None:
    config = load_config(write_config(tmp_path))
    source = SourceInfo(provider="libcloud", account="compute: vultr", regions=["fra"], unknown=unknown)
    with StateStore(config.state_dir) as store:
        store.save_snapshot(Manifest(service=config.service, taken_at=now_iso(), source=source))


def test_plan_names_what_the_source_could_not_tell(tmp_path: Path) -> None:
    _snapshot(tmp_path, UNKNOWN)
    env = cli_env(tmp_path, tmp_path / "records.log")
    playbook = write_playbook(tmp_path, record_step("a"))

    document = json.loads(failover("plan", str(playbook), "--target", "t", "--json", env=env).stdout)
    assert document["unknown"] == UNKNOWN
    human = failover("plan", str(playbook), "--target", "t", env={**env, "COLUMNS": "300"})
    assert human.code == 0, human.stderr
    assert "not known from the source" in human.stderr
    assert f"node.firewalls: {UNKNOWN['node.firewalls']}" in human.stderr


def test_an_aws_snapshot_has_nothing_unknown_and_writes_no_key(tmp_path: Path) -> None:
    _snapshot(tmp_path, {})
    env = cli_env(tmp_path, tmp_path / "records.log")
    playbook = write_playbook(tmp_path, record_step("a"))

    document = json.loads(failover("plan", str(playbook), "--target", "t", "--json", env=env).stdout)
    assert "unknown" not in document
    assert "unknown" not in Manifest(service="s", taken_at=now_iso(),
                                     source=SourceInfo(provider="aws", account="1", regions=[])).to_dict()["source"]
