"""Readiness check tests: real target peers shared by the package, a kit per test."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # for checkkit

from checkkit import Kit, Peers, start_peers


@pytest.fixture(scope="session")
def peers() -> Iterator[Peers]:
    yield from start_peers()


@pytest.fixture
def kit(tmp_path: Path, peers: Peers, monkeypatch: pytest.MonkeyPatch) -> Iterator[Kit]:
    built = Kit(tmp_path, peers, monkeypatch)
    yield built
    built.close()
