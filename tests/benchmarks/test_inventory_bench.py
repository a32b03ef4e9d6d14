"""Smoke test of benchmarks/inventory.py at a tiny scale: it seeds, runs both sides through
the proxy and reports counts that match what it seeded. No timing assertions."""

from __future__ import annotations

import importlib.util
import json
import sys
import threading
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "inventory.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_inventory", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_tiny_benchmark_reports_what_it_seeded(aws_env: None, capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()
    threads_before = set(threading.enumerate())

    result = bench.main(
        ["--instances", "6", "--regions", "2", "--buckets", "2", "--zones", "1", "--records", "4",
         "--latency-ms", "1", "--json"]
    )

    seeded = result["seeded"]
    assert seeded == {
        "node": 6, "volume": 6 + 2 * bench.EXTRA_VOLUMES_PER_REGION, "firewall": 2, "network": 2,
        "address": 2 * bench.ADDRESSES_PER_REGION, "bucket": 2, "dns_zone": 1, "record": 6,
    }
    assert result["failover"]["counts"] == seeded
    assert result["reference"]["counts"] == seeded
    assert result["counts_match"] is True
    assert result["failover"]["requests"] > 0 and result["reference"]["requests"] > 0
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))
    # the proxy and its connection threads are gone (moto_server is a process, stopped too)
    assert not [t for t in set(threading.enumerate()) - threads_before if t.name.startswith(("latency-proxy", "Thread"))]
