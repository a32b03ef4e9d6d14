"""Smoke test of benchmarks/libcloud_source.py at a tiny scale: both sides read every seeded
instance with its user data through the proxy. No timing assertions."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "libcloud_source.py"


def test_tiny_benchmark_reads_what_it_seeded(aws_env: None) -> None:
    spec = importlib.util.spec_from_file_location("bench_libcloud_source", SCRIPT)
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench
    spec.loader.exec_module(bench)

    result = bench.main(["--instances", "6", "--latency-ms", "1", "--json"])

    assert result["counts_match"] is True
    assert result["failover"]["nodes"] == result["reference"]["nodes"] == 6
    assert result["failover"]["requests"] > 0 and result["reference"]["requests"] > 0
