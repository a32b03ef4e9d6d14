"""Smoke test of benchmarks/fanout.py at a tiny scale: a Dask LocalCluster of 2 worker processes
copy what it seeded through the bandwidth-capped proxy into Azurite. No timing assertions."""

from __future__ import annotations

import pytest

from benchmarks import fanout


@pytest.mark.slow
def test_tiny_benchmark_copies_what_it_seeded(capsys: pytest.CaptureFixture[str]) -> None:
    report = fanout.main(["--objects", "4", "--size-kib", "32", "--cap-kib", "4096", "--workers", "2", "--json"])
    assert report["all_copied"] is True
    assert [case["workers"] for case in report["cases"]] == [2]
    assert all(case["copied"] == case["objects"] == 4 and case["bytes"] == 4 * 32 * 1024 for case in report["cases"])
    assert report["cases"][0]["ratio"] == 1.0
    assert '"cases"' in capsys.readouterr().out
