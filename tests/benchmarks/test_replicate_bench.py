"""Smoke test of benchmarks/replicate.py at a tiny scale: it seeds the source, runs failover's
replication (twice) and rclone into Azurite and a second moto_server, and reports copy
counts that match what it seeded. No timing assertions."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "replicate.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_replicate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_benchmark_copies_what_it_seeded(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()

    # 6 MB objects are past one Azure block and one S3 part: streamed in one request as read.
    result = bench.main(["--small", "6", "--small-kb", "1", "--large", "1", "--large-kb", "6000", "--workers", "4", "--json"])

    cases = {(case["target"], case["dataset"]): case for case in result["cases"]}
    assert set(cases) == {(target, label) for target in ("azure", "s3") for label in ("6 x 1 KB", "1 x 6 MB")}
    for case in cases.values():
        assert case["failover"]["copied"] == case["failover"]["stored"] == case["objects"]
        assert case["failover_rerun"]["copied"] == 0
        assert case["failover"]["setup_s"] > 0 and case["failover_rerun"]["setup_s"] > 0  # the client, made apart
        assert case["rclone"]["stored"] == case["objects"]
        assert case["counts_match"] is True
    assert cases[("s3", "1 x 6 MB")]["bytes"] == 6_000_000
    assert result["counts_match"] is True
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))


@pytest.mark.slow
def test_tiny_scale_benchmark_measures_each_count(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()

    result = bench.main(["--scale", "10,20", "--object-bytes", "10", "--workers", "4", "--json"])

    assert [row["objects"] for row in result["rows"]] == [10, 20]
    for row in result["rows"]:
        assert row["counts_match"] is True and row["failover"]["copied"] == row["objects"]
        assert row["failover"]["cpu_s"] > 0 and row["rclone"]["cpu_s"] > 0 and row["failover"]["peak_rss_mb"] > 0
    assert "rss_growth_kb_per_object" in result and result["counts_match"] is True
    assert json.loads(capsys.readouterr().out)["rows"][1]["objects"] == 20
