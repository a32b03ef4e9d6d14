"""503s injected into the requests of one libcloud driver, as the fault proxy
(``failover.testing.proxy``) answers them, but aimed at chosen requests: before a request is
sent (not executed), or after its answer came back (executed, the answer lost).

Import with ``tests/support`` on ``sys.path``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from libcloud.common.exceptions import BaseHTTPError


class Faults:
    """Faults in ``driver.connection.request``; a request is named by ``name_of(action, params,
    method)`` (by default EC2's ``Action`` parameter)."""

    def __init__(
        self, driver: Any, monkeypatch: pytest.MonkeyPatch,
        name_of: Callable[[str, dict[str, Any], str], str | None] | None = None,
    ) -> None:
        self.pending: list[list[Any]] = []  # [name, executed, requests of that name to let through first]
        self.injected: list[str] = []
        connection = driver.connection
        send = connection.request
        name_of = name_of or (lambda action, params, method: (params or {}).get("Action"))

        def request(action: str, params: dict[str, Any] | None = None, *args: Any, **kwargs: Any) -> Any:
            name = name_of(action, params or {}, kwargs.get("method", args[2] if len(args) > 2 else "GET"))
            fault = next((item for item in self.pending if item[0] == name), None)
            if fault is not None and fault[2] > 0:
                fault[2] -= 1
            elif fault is not None:
                self.pending.remove(fault)
                self.injected.append(name)
                if fault[1]:
                    send(action, params, *args, **kwargs)
                raise BaseHTTPError(503, "ServiceUnavailable: injected", {})
            return send(action, params, *args, **kwargs)

        monkeypatch.setattr(connection, "request", request)

    def fail(self, name: str, *, executed: bool = False, after: int = 0) -> None:
        """The next request of that name (after letting ``after`` through) is answered 503."""
        self.pending.append([name, executed, after])
