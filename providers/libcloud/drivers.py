"""Finding a libcloud driver named in a target profile, and holding its instances.

A driver is named by its libcloud provider name (``digitalocean``, ``azure_blobs``,
``powerdns``: that capability's ``get_driver`` knows it) or as
``package.module:DriverClass``. Its ``options`` are the constructor's arguments, with
``${env:NAME}`` secrets resolved when the driver is built and nowhere else.
"""

from __future__ import annotations

import functools
import importlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from failover.adapters import load_object
from failover.config import DEFAULT_FILE, ENV_REF, DriverSpec, resolve_secrets
from failover.errors import ConfigError, Problem
from failover.retry import retry_requests
from providers.libcloud.errors import redact, translated

T = TypeVar("T")

# capability -> the libcloud module whose get_driver() knows that capability's provider names
LIBCLOUD_PROVIDERS: dict[str, str] = {
    "compute": "libcloud.compute.providers",
    "storage": "libcloud.storage.providers",
    "dns": "libcloud.dns.providers",
    "loadbalancer": "libcloud.loadbalancer.providers",
}

# Option names whose values are redacted from messages even when written literally.
_SECRET_OPTION_WORDS = ("secret", "token", "password", "key")

Adapter = TypeVar("Adapter")


def driver_class(capability: str, name: str, *, file: str = DEFAULT_FILE, field: str = "") -> type:
    """The driver class a profile names; ConfigError when there is none by that name."""
    try:
        if ":" in name:
            return load_object(name)
        get_driver = importlib.import_module(LIBCLOUD_PROVIDERS[capability]).get_driver
        return get_driver(name)
    except (ImportError, AttributeError) as exc:
        why = f" (cannot import it: {exc})" if ":" in name else f" (libcloud has no {capability} driver of that name)"
        what = f"{name!r} is neither a libcloud provider name nor package.module:DriverClass{why}"
        raise ConfigError([Problem(file=file, field=f"{field}.driver", message=what)]) from None


def is_instance_of(driver: Any, class_path: str) -> bool:
    """``isinstance(driver, <class_path>)`` without importing the class's module: if it
    was never imported, the driver cannot be one (and some need optional packages)."""
    module_name, _, class_name = class_path.partition(":")
    module = sys.modules.get(module_name)
    return module is not None and isinstance(driver, getattr(module, class_name))


class DriverSession:
    """The driver of one profile's capability: built on first use, then reused.

    One instance per thread, because a libcloud connection keeps per-request state
    (the current response, a streamed body) that concurrent steps would trample.
    """

    def __init__(
        self, capability: str, spec: DriverSpec, *, file: str = DEFAULT_FILE, field: str | None = None,
        defaults: Callable[[type], dict[str, Any]] | None = None,
    ) -> None:
        self.capability = capability
        self.spec = spec
        self.defaults = defaults  # driver class -> constructor arguments the profile's options override
        self.file = file
        self.field = field or capability
        self.where = f"{capability} target ({spec.driver})"
        self._local = threading.local()

    @property
    def driver(self) -> Any:
        """This thread's driver instance (built now if it is the first call)."""
        driver = getattr(self._local, "driver", None)
        if driver is None:
            driver = self._local.driver = self._build()
        return driver

    def translating(self, action: str):
        """A context in which provider failures become failover errors about ``action``."""
        return translated(self.where, action, self.secret_values)

    def secret_values(self) -> list[str]:
        """The values to keep out of messages, read from the environment now, never kept."""
        values = []
        for name, value in self.spec.options.items():
            if isinstance(value, str):
                values += [os.environ.get(ref.group(1), "") for ref in ENV_REF.finditer(value)]
                if any(word in name.lower() for word in _SECRET_OPTION_WORDS):
                    values.append(value)
        return values

    def _build(self) -> Any:
        cls = driver_class(self.capability, self.spec.driver, file=self.file, field=self.field)
        options = resolve_secrets(self.spec.options, file=self.file, field=f"{self.field}.options")
        if self.defaults is not None:
            options = {**self.defaults(cls), **options}
        with self.translating(f"connect with {cls.__name__}"):
            try:
                return cls(**options)
            except (TypeError, ValueError) as exc:
                message = redact(f"{cls.__name__} does not accept these options: {exc}", self.secret_values())
                raise ConfigError([Problem(file=self.file, field=f"{self.field}.options", message=message)]) from None


class AdapterCache:
    """One adapter per profile and process, so a run's steps share connections and catalogues.

    Keyed by the spec as written (secrets stay ``${env:...}`` references there).
    """

    def __init__(self) -> None:
        self._adapters: dict[tuple[str, str, str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, capability: str, spec: DriverSpec, file: str, field: str | None, build: Callable[[], Adapter]) -> Adapter:
        key = (capability, spec.model_dump_json(), file, field or "")
        with self._lock:
            if key not in self._adapters:
                self._adapters[key] = build()
            return self._adapters[key]

    def clear(self) -> None:
        with self._lock:
            self._adapters.clear()


ADAPTERS = AdapterCache()


def forget_adapters() -> None:
    """Drop every shared adapter (and its drivers and caches): the next call builds afresh."""
    ADAPTERS.clear()


def retried(method: Callable[..., T]) -> Callable[..., T]:
    """An idempotent adapter method: retried on throttling, 5xx and resets, request by request."""

    @functools.wraps(method)
    def wrapper(*args: Any, **kwargs: Any) -> T:
        return retry_requests(lambda: method(*args, **kwargs))

    return wrapper
