"""Engine tests: the ``record`` test action registered in-process, a config and state
store in ``tmp_path``, and an engine with short backoffs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import recording_action  # registers the "record" action
from enginekit import Records, write_config

from failover.config import Config, load_config
from failover.engine import Backoff, Engine
from failover.state import StateStore

FAST = Backoff(initial=0.001, maximum=0.01, jitter=0.001)


@pytest.fixture
def records(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Records:
    path = tmp_path / "records.log"
    monkeypatch.setenv(recording_action.RECORD_FILE, str(path))
    return Records(path)


@pytest.fixture
def config(tmp_path: Path) -> Config:
    return load_config(write_config(tmp_path))


@pytest.fixture
def store(config: Config) -> Iterator[StateStore]:
    with StateStore(config.state_dir) as store:
        yield store


@pytest.fixture
def engine(store: StateStore, config: Config, records: Records) -> Engine:
    return Engine(store, config, backoff=FAST)
