"""End-to-end tests: the real ``failover`` executable, in subprocesses, against real
emulators (moto_server, Azurite, PowerDNS), on an :class:`EmulatedWorld`."""

from __future__ import annotations

import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent)
if HERE not in sys.path:
    sys.path.insert(0, HERE)  # for e2ekit
