"""Files failover writes, with someone else's hands on the directories (issue 10): the
manifest, the JUnit report and the drill reports are owner-only and written through a
temporary file of their own, never through a link planted beside them; the state
directory is owner-only. The real CLI against a moto_server account."""

from __future__ import annotations

import stat
import subprocess
from pathlib import Path

from clikit import FAILOVER, Result

REGIONS = {"provider": "aws", "regions": ["us-east-1"], "select": {"tags": {"service": "social-app"}}}


def run_with_umask(umask: int, *args: str, cwd: Path) -> Result:
    proc = subprocess.run([*FAILOVER, *args], cwd=cwd, capture_output=True, text=True, timeout=120, umask=umask)
    return Result(proc.returncode, proc.stdout, proc.stderr)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


def test_the_manifest_is_owner_only_and_a_planted_link_is_never_followed(account, write_config, tmp_path: Path) -> None:
    config = write_config(source=REGIONS)
    victim, other_victim = tmp_path / "victim.txt", tmp_path / "other-victim.txt"
    victim.write_text("keep me\n")
    other_victim.write_text("keep me too\n")
    (tmp_path / ".m.json.tmp").symlink_to(victim)  # where failover used to write first
    (tmp_path / "m.json").symlink_to(other_victim)  # and the destination itself

    result = run_with_umask(0o022, "inventory", "-c", str(config), "--output", "m.json", cwd=tmp_path)

    assert result.code == 0, result.stderr
    assert victim.read_text() == "keep me\n" and other_victim.read_text() == "keep me too\n"
    manifest = tmp_path / "m.json"
    assert not manifest.is_symlink() and manifest.read_text().startswith("{")
    assert mode(manifest) == 0o600  # it holds the nodes' decoded user data
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".m.json.") and p.name != ".m.json.tmp"]


def test_a_wider_state_directory_is_tightened_and_a_reports_link_refused(account, write_config, tmp_path: Path) -> None:
    config = write_config(source=REGIONS)
    state = tmp_path / ".failover"
    state.mkdir(mode=0o755)
    state.chmod(0o755)

    assert run_with_umask(0o022, "snapshots", "-c", str(config), cwd=tmp_path).code == 0
    assert mode(state) == 0o700

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (state / "reports").symlink_to(elsewhere)
    refused = run_with_umask(0o022, "snapshots", "-c", str(config), cwd=tmp_path)
    assert refused.code == 2, refused.stderr
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert f"{state / 'reports'}: the reports directory is a symbolic link" in refused.stderr
    assert list(elsewhere.iterdir()) == []


def test_the_junit_report_is_owner_only_under_any_umask(account, write_config, tmp_path: Path) -> None:
    config = write_config(source=REGIONS, targets={"fallback": {}})
    for umask in (0o022, 0o077):
        report = tmp_path / f"junit-{umask:o}.xml"
        result = run_with_umask(umask, "check", "smoke", "--target", "fallback", "--junit-xml", str(report),
                                "-c", str(config), cwd=tmp_path)
        assert result.code == 1, result.stderr  # not ready: no snapshot, no capability
        assert report.read_text().startswith("<?xml")
        assert mode(report) == 0o600, umask
