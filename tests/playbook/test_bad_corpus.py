"""The corpus of bad playbooks and configs in ``bad/``, each run through the real CLI.

Each file says what a user must see, in its header comments:

    # args: extra arguments of `failover validate` ({dir} is the corpus directory)
    # expect: a line fragment of stderr ({file} is the playbook's path), one or more

Every case must exit 2, name the file and line or field, show no traceback, and create
nothing (no state directory, no file at all).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from failover.cli.main import run

CORPUS = Path(__file__).parent / "bad"
CASES = sorted(p.name for p in CORPUS.glob("*.yaml"))


def header(path: Path) -> tuple[list[str], list[str]]:
    args: list[str] = []
    expects: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# args:"):
            args += shlex.split(line.removeprefix("# args:"))
        elif line.startswith("# expect:"):
            expects.append(line.removeprefix("# expect:").strip())
    return args, expects


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the corpus as the current directory, with a controlled environment."""
    shutil.copytree(CORPUS, tmp_path / "bad")
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FAILOVER_CONFIG", raising=False)
    monkeypatch.delenv("FAILOVER_DEBUG", raising=False)
    monkeypatch.setenv("FAILOVER_TEST_DO_TOKEN", "do-secret-value")
    for name in list(os.environ):
        if name.startswith("FAILOVER_TEST_MISSING"):
            monkeypatch.delenv(name)
    return tmp_path


def tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def argv_for(name: str) -> tuple[list[str], list[str]]:
    args, expects = header(CORPUS / name)
    playbook = f"bad/{name}"
    args = [a.replace("{dir}", "bad") for a in args]
    expects = [e.replace("{file}", playbook).replace("{dir}", "bad") for e in expects]
    return ["validate", playbook, *args], expects


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    for name in CASES:
        assert header(CORPUS / name)[1], f"{name} says nothing about what to expect"


@pytest.mark.parametrize("name", CASES)
def test_bad_input_exits_2_naming_file_and_line(name: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expects = argv_for(name)
    before = tree(workdir)

    code = run(argv)

    out, err = capsys.readouterr()
    assert code == 2, err
    for expected in expects:
        assert expected in err, f"expected {expected!r} in:\n{err}"
    assert "Traceback" not in out + err
    assert out == ""  # errors are for people: stderr
    assert all(line.startswith("failover: error: ") for line in err.splitlines())
    assert tree(workdir) == before, "validate created something"
    assert not list(workdir.rglob(".failover"))


@pytest.mark.parametrize("name", CASES)
def test_json_verdict_lists_the_same_problems(name: str, workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, expects = argv_for(name)
    code = run([*argv, "--json"])
    out, _ = capsys.readouterr()
    assert code == 2
    verdict = json.loads(out)  # exactly one JSON document on stdout
    assert verdict["valid"] is False
    texts = "\n".join(p["text"] for p in verdict["problems"])
    for expected in expects:
        assert expected in texts


SUBPROCESS_CASES = ["cycle.yaml", "alias-bomb.yaml", "missing-secret.yaml", "target-missing-secret.yaml"]


@pytest.mark.parametrize("name", SUBPROCESS_CASES)
def test_real_executable(name: str, workdir: Path) -> None:
    executable = shutil.which("failover") or str(Path(sys.executable).parent / "failover")
    argv, expects = argv_for(name)
    before = tree(workdir)

    result = subprocess.run([executable, *argv], capture_output=True, text=True, timeout=60, cwd=workdir, check=False)

    assert result.returncode == 2, result.stderr
    for expected in expects:
        assert expected in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert result.stdout == ""
    assert tree(workdir) == before


def test_debug_shows_the_traceback(workdir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    argv, _ = argv_for("cycle.yaml")
    assert run([*argv, "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
