"""Take a snapshot: run the source adapter, store the manifest, write it out on request."""

from __future__ import annotations

from pathlib import Path

from failover.adapters import source_inventory
from failover.config import Config
from failover.files import write_atomic
from failover.manifest import Manifest
from failover.ports import Progress, no_progress
from failover.state import SnapshotInfo, StateStore


def take_snapshot(config: Config, store: StateStore, progress: Progress = no_progress) -> tuple[SnapshotInfo, Manifest]:
    """Inventory the source and store the snapshot. Nothing is stored unless all of it was read."""
    manifest = source_inventory(config).inventory(progress)
    return store.save_snapshot(manifest), manifest


def write_manifest(manifest: Manifest, path: Path, fmt: str | None = None) -> None:
    fmt = fmt or ("yaml" if path.suffix in (".yaml", ".yml") else "json")
    text = manifest.to_yaml() if fmt == "yaml" else manifest.to_json()
    write_atomic(path, text, what="manifest")  # owner-only: it holds the nodes' decoded user data
