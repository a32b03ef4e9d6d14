"""`failover validate`, `failover playbooks`, `failover actions` on the good path."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from failover.cli.main import run
from failover.yamlio import load_file

GOOD = Path(__file__).parent / "good"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copytree(GOOD, tmp_path / "good")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    monkeypatch.setenv("FAILOVER_TEST_HOOK_TOKEN", "hook-secret")
    monkeypatch.setenv("FAILOVER_TEST_HOOK_URL", "https://hooks.example.com/url-secret")
    monkeypatch.setenv("FAILOVER_TEST_DO_TOKEN", "do-secret")
    return tmp_path


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = run(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_validate_without_a_config(workdir: Path, capsys) -> None:
    code, out, err = cli(capsys, "validate", "good/web.yaml")
    assert (code, out) == (0, "")
    assert "good/web.yaml: playbook web-notify is valid (4 steps)" in err


def test_validate_json_with_config_and_target(workdir: Path, capsys) -> None:
    code, out, err = cli(
        capsys, "validate", "good/web.yaml", "--config", "good/failover.yaml", "--target", "fallback", "--var", "delay=3", "--json"
    )
    assert code == 0, err
    verdict = json.loads(out)
    assert verdict == {
        "valid": True,
        "playbook": "web-notify",
        "source": "good/web.yaml",
        "config": "good/failover.yaml",
        "target": "fallback",
        "vars": {"delay": "3", "channel": "ops", "enabled": True},
        "steps": [
            {"id": "announce", "action": "notify", "needs": []},
            {"id": "settle", "action": "pause", "needs": ["announce"]},
            {"id": "report", "action": "notify", "needs": ["settle"]},
            {"id": "skipped", "action": "pause", "needs": []},
        ],
    }
    for secret in ("hook-secret", "url-secret", "do-secret"):
        assert secret not in out + err


def test_validate_finds_the_default_config(workdir: Path, capsys) -> None:
    (workdir / "failover.yaml").write_text("service: Not_Valid\n")
    code, _, err = cli(capsys, "validate", "good/web.yaml")
    assert code == 2
    assert "failover.yaml:1: service: String should match pattern" in err


def test_validate_config_named_by_env_must_exist(workdir: Path, capsys, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAILOVER_CONFIG", str(workdir / "elsewhere.yaml"))
    code, _, err = cli(capsys, "validate", "good/web.yaml")
    assert code == 2
    assert f"{workdir / 'elsewhere.yaml'}: config file not found" in err


def test_validate_a_builtin(workdir: Path, capsys) -> None:
    code, _, err = cli(capsys, "validate", "smoke")
    assert code == 0
    assert "builtin:smoke: playbook smoke is valid" in err


def test_playbooks_lists_the_builtins(workdir: Path, capsys) -> None:
    code, out, err = cli(capsys, "playbooks", "--json")
    assert code == 0
    listed = {p["name"]: p["description"] for p in json.loads(out)["playbooks"]}
    assert listed["smoke"].startswith("Two short pauses")
    code, out, err = cli(capsys, "playbooks")
    assert (code, out) == (0, "")
    assert "smoke" in err


def test_actions_human_listing(workdir: Path, capsys) -> None:
    code, out, err = cli(capsys, "actions")
    assert (code, out) == (0, "")
    for text in ("pause", "notify", "seconds", "url", "required"):
        assert text in err


def test_actions_json(workdir: Path, capsys) -> None:
    code, out, _ = cli(capsys, "actions", "--json")
    assert code == 0
    document = json.loads(out)
    actions = {a["name"]: a for a in document["actions"]}
    assert {"pause", "notify"} <= set(actions)
    assert actions["pause"]["mutates"] is False
    assert actions["pause"]["parameters"]["required"] == ["seconds"]
    assert actions["pause"]["example"] == {"seconds": 30}
    assert actions["notify"]["parameters"]["additionalProperties"] is False
    assert document["playbook_schema"]["title"] == "failover playbook"


def test_playbook_schema_accepts_good_and_rejects_bad(workdir: Path, capsys) -> None:
    jsonschema = pytest.importorskip("jsonschema")
    code, out, _ = cli(capsys, "actions", "--json")
    assert code == 0
    schema = json.loads(out)["playbook_schema"]
    validator = jsonschema.Draft202012Validator(schema)
    validator.check_schema(schema)
    good = load_file(workdir / "good" / "web.yaml").data
    assert list(validator.iter_errors(good)) == []
    typo = {**good, "steps": [{**good["steps"][1], "neeeds": ["announce"]}]}
    assert list(validator.iter_errors(typo))
    unknown_param = {**good, "steps": [{"id": "a", "action": "pause", "with": {"secs": 1}}]}
    assert list(validator.iter_errors(unknown_param))

