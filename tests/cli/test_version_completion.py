"""``failover --version`` and shell completion, through the real executable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import boto3
import libcloud
import pytest
import yaml
from clikit import FAILOVER


def failover(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*FAILOVER, *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=120)


def complete(words: str, cwd: Path, shell: str = "bash") -> list[str]:
    """What the shell would be offered for the last word of ``words`` (bash's or zsh's protocol)."""
    if shell == "bash":
        env = {"_FAILOVER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split(" ")) - 1)}
    else:
        env = {"_FAILOVER_COMPLETE": "complete_zsh", "_TYPER_COMPLETE_ARGS": words}
    done = failover(cwd=cwd, env=env)
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    source = {"regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}}
    config = {"service": "social-app", "source": source,
              "targets": {"fallback": {}, "far-away": {}, "other": {}}}
    (tmp_path / "failover.yaml").write_text(yaml.safe_dump(config))
    (tmp_path / "mine.yaml").write_text("name: mine\nsteps: [{id: p, action: pause, with: {seconds: 0}}]\n")
    return tmp_path


def test_version_prints_the_package_version() -> None:
    done = failover("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"failover {metadata.version('failover')}\n"


def test_version_json_names_the_libraries_and_python() -> None:
    done = failover("--version", "--json")
    assert done.returncode == 0, done.stderr
    document = json.loads(done.stdout)
    assert document["failover"] == metadata.version("failover")
    assert document["boto3"] == boto3.__version__
    assert document["libcloud"] == libcloud.__version__
    assert document["python"] == ".".join(str(part) for part in sys.version_info[:3])


def test_json_before_a_command_without_version_is_an_input_error() -> None:
    done = failover("--json", "playbooks")
    assert done.returncode == 2
    assert done.stdout == ""
    assert "--json" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.parametrize("shell, marker", [("bash", "complete -o default -F _failover_completion failover"),
                                           ("zsh", "#compdef failover")])
def test_completion_scripts_are_generated(shell: str, marker: str) -> None:
    done = failover("--show-completion", shell, env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    assert done.returncode == 0, done.stderr
    assert marker in done.stdout
    assert "_FAILOVER_COMPLETE" in done.stdout


def test_bash_script_is_valid_bash(tmp_path: Path) -> None:
    done = failover("--show-completion", "bash", env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1"})
    script = tmp_path / "failover.bash"
    script.write_text(done.stdout)
    checked = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


def test_install_completion_writes_into_home_only(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    done = failover("--install-completion", "bash",
                    env={"_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION": "1", "HOME": str(home)})
    assert done.returncode == 0, done.stderr
    assert "_FAILOVER_COMPLETE" in (home / ".bash_completions" / "failover.sh").read_text()
    assert "failover.sh" in (home / ".bashrc").read_text()


def test_commands_and_options_complete(project: Path) -> None:
    assert complete("failover rep", project) == ["replicate"]
    assert "--version" in complete("failover --v", project)


def test_target_profiles_complete_from_the_config(project: Path) -> None:
    assert complete("failover check standard --target f", project) == ["fallback", "far-away"]
    assert complete("failover replicate --target o", project, shell="zsh") == ['_arguments \'*: :(("other"))\'']


def test_target_profiles_complete_from_the_config_option(project: Path, tmp_path_factory) -> None:
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    assert complete(f"failover plan standard --config {project / 'failover.yaml'} --target ", elsewhere) == [
        "fallback", "far-away", "other"]
    assert complete("failover plan standard --target ", elsewhere) == []  # no config: nothing, and no error


def test_playbooks_complete_built_ins_and_yaml_files(project: Path) -> None:
    assert complete("failover run s", project) == ["smoke", "standard"]
    assert complete("failover drill m", project) == ["mine.yaml"]
    assert complete("failover validate ", project) == ["smoke", "standard", "failover.yaml", "mine.yaml"]


def test_run_ids_complete_from_the_state(project: Path, account) -> None:
    assert complete("failover status ", project) == []
    assert not (project / ".failover").exists()  # completing never creates the state
    assert failover("inventory", cwd=project).returncode == 0
    ran = failover("run", "smoke", "--target", "fallback", "--yes", "--json", cwd=project)
    assert ran.returncode == 0, ran.stderr
    run_id = json.loads(ran.stdout)["run_id"]
    assert complete("failover status ", project) == ["latest", run_id]
    assert complete(f"failover rollback {run_id[:8]}", project) == [run_id]
    assert complete("failover resume zzz", project) == []
