"""Smoke test of benchmarks/evacuate.py at a tiny scale: one pass per scale in a process of its
own over a growing bucket, and one pass through a bandwidth-capped source, each copying what was
seeded. No timing or memory assertions: the figures are the benchmark's business."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "evacuate.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_evacuate", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_benchmark_copies_what_it_seeded(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()

    result = bench.main(["--scales", "10,25", "--eta-objects", "20", "--eta-kb", "20", "--eta-cap-kbps", "100",
                         "--workers", "4", "--only", "rss,eta", "--json"])

    assert [(row["scale"], row["objects"], row["copied"], row["unchanged"]) for row in result["rss"]] == \
        [(10, 10, 10, 0), (25, 25, 15, 10)]
    assert all(row["complete"] and row["peak_rss_mb"] >= row["base_rss_mb"] > 0 for row in result["rss"])
    assert result["eta"]["copied"] == 20 and result["eta"]["complete"] is True
    assert result["eta"]["error"] >= 0 and 0 < result["eta"]["at_s"] <= result["eta"]["copy_s"]
    assert result["copied_all"] is True and result["workers"] is None  # the Dask case: tests/benchmarks/test_fanout_bench.py
    assert '"rss"' in capsys.readouterr().out  # the document on stdout
