"""Waiting for nodes to run, against moto_server through libcloud's EC2 driver: a node running
at once costs one reading and no pause; a starting node is read again after 0.5 s, then after
pauses doubling up to the cap; nodes waited for at the same time share their readings (one
listing filtered by their ids). Pauses and requests are counted, never timed."""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

import pytest
from libcloud.compute.types import NodeState

from failover.config import ComputeSpec
from failover.testing.servers import MotoServer
from providers.libcloud import connect_compute
from providers.libcloud.compute import LibcloudCompute

from .conftest import EC2_SHIM

IMAGE = "ami-03cf127a"  # in moto's catalogue


class CountedPauses(threading.Event):
    """A cancel event that records each pause asked of it; ``sleep=False`` returns at once."""

    def __init__(self, sleep: bool = True) -> None:
        super().__init__()
        self.sleep = sleep
        self.pauses: list[float] = []
        self._lock = threading.Lock()

    def wait(self, timeout: float | None = None) -> bool:
        with self._lock:
            self.pauses.append(round(timeout, 3) if timeout is not None else -1)
        return super().wait(timeout) if self.sleep else self.is_set()


@pytest.fixture
def compute(moto: MotoServer) -> LibcloudCompute:
    return connect_compute(ComputeSpec(driver=EC2_SHIM, options={"key": "testing", "secret": "testing", "port": moto.port}))


def starting_for(compute: LibcloudCompute, readings: int, monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """Each node reads as pending in its first ``readings`` listings (moto starts nodes at once);
    returns the ids each listing asked for, as they happen."""
    listings: list[list[str]] = []
    seen: Counter[str] = Counter()
    lock = threading.Lock()
    real = compute._native_nodes

    def listed(node_ids: Any) -> list[Any]:
        nodes = real(node_ids)
        with lock:
            listings.append(sorted(node_ids))
            for node in nodes:
                seen[node.id] += 1
                if seen[node.id] <= readings:
                    node.state = NodeState.PENDING
        return nodes

    monkeypatch.setattr(compute, "_native_nodes", listed)
    return listings


def test_a_node_running_at_once_is_seen_without_a_pause(compute: LibcloudCompute, monkeypatch: pytest.MonkeyPatch,
                                                        unique: str) -> None:
    node = compute.create_node(f"quick-{unique}", "t3.micro", IMAGE)
    listings = starting_for(compute, 0, monkeypatch)
    pauses = CountedPauses()

    running = compute.wait_running(node.id, timeout=600, cancel=pauses)

    assert running.state == "running"
    assert pauses.pauses == []
    assert listings == [[node.id]]


def test_a_starting_node_is_read_again_after_half_a_second_then_doubling_to_the_cap(
    compute: LibcloudCompute, monkeypatch: pytest.MonkeyPatch, unique: str,
) -> None:
    node = compute.create_node(f"slow-{unique}", "t3.micro", IMAGE)
    listings = starting_for(compute, 6, monkeypatch)
    pauses = CountedPauses(sleep=False)

    running = compute.wait_running(node.id, timeout=600, cancel=pauses)

    assert running.state == "running"
    assert pauses.pauses == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    assert len(listings) == 7


def test_nodes_waited_for_together_share_their_readings(
    compute: LibcloudCompute, monkeypatch: pytest.MonkeyPatch, unique: str,
) -> None:
    nodes = [compute.create_node(f"many-{index}-{unique}", "t3.micro", IMAGE) for index in range(6)]
    listings = starting_for(compute, 2, monkeypatch)
    start = threading.Barrier(len(nodes))
    states: dict[str, str] = {}

    def wait(node_id: str) -> None:
        start.wait()
        states[node_id] = compute.wait_running(node_id, timeout=600).state

    threads = [threading.Thread(target=wait, args=(node.id,)) for node in nodes]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert states == {node.id: "running" for node in nodes}
    # Alone, each node would be listed three times (pending, pending, running): 18 requests.
    assert len(listings) <= 9, listings
    assert any(len(ids) == len(nodes) for ids in listings), listings
