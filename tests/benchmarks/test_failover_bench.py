"""Smoke test of benchmarks/failover.py at a tiny scale: it seeds the service, fails it over
and finds on the target what it seeded. Counts only, no timing assertions."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "failover.py"


def load_script():
    spec = importlib.util.spec_from_file_location("bench_failover", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
@pytest.mark.parametrize("storage, dns", [("local", "file"), ("auto", "auto")])
def test_tiny_benchmark_fails_over_what_it_seeded(
    storage: str, dns: str, aws_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    bench = load_script()

    result = bench.main(["--nodes", "3", "--objects", "12", "--records", "8", "--object-size", "100",
                         "--storage", storage, "--dns", dns, "--json"])

    assert result["run"]["status"] == "succeeded"
    assert result["counts"] == result["expected"] == {
        "nodes": 3, "database_nodes": 1, "objects_on_target": 12, "dns_record_sets_on_target": 8,
        "dns_sets_cut_over": 4,  # the apex and one record per node
    }
    assert result["ok"] is True
    assert [step["id"] for step in result["timeline"]] == ["data", "nodes", "firewall", "databases", "dns-copy",
                                                           "front-door", "healthy", "cutover"]
    assert result["run"]["critical_path"][-1] == "cutover"
    if storage == "local":
        assert result["emulators"]["storage"] == "local" and result["emulators"]["dns"].startswith("file")
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(result))


def test_scale_needs_a_record_per_node_and_the_apex() -> None:
    bench = load_script()
    with pytest.raises(ValueError):
        bench.Scale(nodes=5, objects=10, records=5)
