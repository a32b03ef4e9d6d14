"""Smoke test of benchmarks/faults.py with one seed: the run succeeds through the fault proxies
and the census of the target, read from the emulators, finds no duplicate and nothing the
journal does not name. No timing assertions."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "faults.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_faults", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_one_seed_fails_over_through_the_faults_and_counts_the_target(capsys: pytest.CaptureFixture[str]) -> None:
    bench = load_script()

    result = bench.main(["--seeds", "7", "--storage", "local", "--json"])

    (seed,) = result["seeds"]
    assert seed["ok"] and result["ok"], seed
    assert seed["status"] == "succeeded" and seed["code"] == 0
    assert set(seed["503s"]) == {"compute", "dns"} and sum(seed["503s"].values()) > 0  # local disk: no storage proxy
    assert seed["duplicates"] == {"node": [], "firewall": [], "container": [], "zone": []}
    assert seed["unjournaled"] == []
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))


def test_seeds_are_ranges_or_lists() -> None:
    assert load_script().seeds_of("1-3,7,9-10") == [1, 2, 3, 7, 9, 10]
