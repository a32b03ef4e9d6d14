from __future__ import annotations

from pathlib import Path

import pytest

import providers.aws.inventory as aws_inventory


@pytest.fixture
def inventory(take_inventory, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest):
    """The real inventory with only the collector that this test module (test_<label>.py) is about."""
    label = Path(request.module.__file__).stem.removeprefix("test_")
    only = [c for c in aws_inventory.COLLECTORS if c[0] == label]
    assert only, f"no collector named {label}"
    monkeypatch.setattr(aws_inventory, "COLLECTORS", only)
    return take_inventory
