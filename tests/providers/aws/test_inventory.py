"""The orchestrator: a failing collector stops the whole inventory, promptly and cleanly."""

from __future__ import annotations

import sys
import threading
import time
import types

import pytest

import providers.aws.inventory as aws_inventory
from failover.errors import ProviderUnreachable
from providers.aws.inventory import AwsInventory, Found
from providers.aws.session import AwsSession


def fake_module(monkeypatch: pytest.MonkeyPatch, name: str, collect) -> str:
    module = types.ModuleType(name)
    module.collect = collect
    monkeypatch.setitem(sys.modules, name, module)
    return name


def test_a_failing_collector_stops_queued_fan_out_work(monkeypatch: pytest.MonkeyPatch, aws_env: None) -> None:
    done: list[int] = []

    def slow(ctx, region):
        ctx.map(lambda i: (time.sleep(0.01), done.append(i)), range(500))
        return Found()

    def failing(ctx, region):
        time.sleep(0.05)
        raise ProviderUnreachable("cannot reach AWS (test)")

    monkeypatch.setattr(aws_inventory, "COLLECTORS", [
        ("slow", fake_module(monkeypatch, "fake_slow", slow), True),
        ("failing", fake_module(monkeypatch, "fake_failing", failing), False),
    ])
    monkeypatch.setattr(AwsSession, "call", lambda self, *a, **k: {"Account": "1"})
    inventory = AwsInventory(service="svc", regions=["us-east-1"], selector={"a": "b"}, session=AwsSession(), workers=2)

    outcome: dict[str, BaseException] = {}

    def run() -> None:
        try:
            inventory.inventory()
        except BaseException as exc:  # noqa: BLE001 - recorded for the assertion
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)  # a hang is the bug; 60 s is far beyond the few ms this needs
    assert not thread.is_alive(), "the inventory hung after a collector failed"
    assert isinstance(outcome.get("error"), ProviderUnreachable)
    assert len(done) < 500, "queued work was drained, not run"
