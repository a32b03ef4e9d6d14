"""Name -> class registries for actions and checks (kebab-case names, CamelCase classes).

Built-ins live one module each in a package; the package is imported on first use, so
adding an action is one new module and one decorator. Third-party ones are imported on
first use too, from two places named after the package (for ``failover.actions``):

- the entry-point group ``failover.actions`` of installed distributions;
- the comma-separated modules of ``$FAILOVER_ACTION_MODULES`` (how tests register an
  action in a subprocess).

Importing such a module registers its classes through the same decorator.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from collections.abc import Callable, Iterator
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from failover.errors import InputError, Problem

T = TypeVar("T", bound=type)


class Registry(Generic[T]):
    def __init__(self, what: str, package: str) -> None:
        self.what = what
        self.package = package
        self.entry_point_group = package  # "failover.actions"
        self.modules_env = f"FAILOVER_{what.upper()}_MODULES"  # "FAILOVER_ACTION_MODULES"
        self._items: dict[str, T] = {}
        self._loaded = False
        self._lock = threading.RLock()  # steps run in threads: import the plugins once

    def register(self, name: str) -> Callable[[T], T]:
        def decorate(cls: T) -> T:
            if name in self._items and self._items[name] is not cls:
                raise ValueError(f"{self.what} {name!r} registered twice")
            cls.name = name  # type: ignore[attr-defined]
            self._items[name] = cls
            return cls

        return decorate

    def _load(self) -> None:
        with self._lock:
            if self._loaded:
                return
            package = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_") and info.name != "base":
                    importlib.import_module(f"{self.package}.{info.name}")
            self._load_entry_points()
            self._load_env_modules()
            self._loaded = True

    def _load_entry_points(self) -> None:
        for entry in entry_points(group=self.entry_point_group):
            try:
                entry.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's input to fix
                where = f"entry point {entry.name} = {entry.value} (group {self.entry_point_group})"
                raise InputError([Problem(file=where, message=f"cannot load: {type(exc).__name__}: {exc}")]) from exc

    def _load_env_modules(self) -> None:
        for name in filter(None, (part.strip() for part in os.environ.get(self.modules_env, "").split(","))):
            try:
                importlib.import_module(name)
            except Exception as exc:  # noqa: BLE001 - a broken module is the user's input to fix
                where = f"${self.modules_env}"
                raise InputError([Problem(file=where, field=name, message=f"cannot import: {type(exc).__name__}: {exc}")]) from exc

    def get(self, name: str) -> T | None:
        self._load()
        return self._items.get(name)

    def names(self) -> list[str]:
        self._load()
        return sorted(self._items)

    def __iter__(self) -> Iterator[tuple[str, T]]:
        self._load()
        return iter(sorted(self._items.items()))
