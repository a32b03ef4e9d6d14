"""Running ``failover inventory`` and ``failover replicate`` as the replicate CLI tests do."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def snapshot(failover, config: Path) -> None:
    taken = failover("inventory", "-c", str(config))
    assert taken.code == 0, taken.stderr


def replicate(failover, config: Path, *args: str, env: dict[str, str] | None = None):
    return failover("replicate", "--target", "fallback", "-c", str(config), *args, env=env)


def replicated(failover, config: Path, *args: str) -> dict[str, Any]:
    """Run ``replicate --json``, expecting success; its document."""
    result = replicate(failover, config, "--json", *args)
    assert result.code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["ok"] is True
    return document
