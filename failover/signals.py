"""One signal handler for the process: SIGINT and SIGTERM go to whoever handles them now.

Handlers nest: the CLI turns a Ctrl-C into ``Interrupted`` (exit 130); a run asks its
scheduler to stop at the first signal and gives up at the second; a drill goes on tearing
down. Each pushes its callback with :func:`handling` for as long as it runs, and the
innermost one gets the signal. Python delivers signals to the main thread only, so off it
:func:`handling` changes nothing.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from failover.errors import Interrupted

Callback = Callable[[int], None]
_callbacks: list[Callback] = []


def _dispatch(signum: int, frame: Any) -> None:
    # Runs between two bytecodes of the main thread: callbacks do only signal-safe work or raise.
    if not _callbacks:
        raise Interrupted("interrupted")
    _callbacks[-1](signum)


def raise_interrupted(signum: int) -> None:
    raise Interrupted("interrupted")


@contextmanager
def handling(callback: Callback = raise_interrupted,
             signals: tuple[signal.Signals, ...] = (signal.SIGINT, signal.SIGTERM)) -> Iterator[None]:
    """``callback(signum)`` gets ``signals`` while the block runs (in the main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _dispatch) for sig in signals}
    _callbacks.append(callback)
    try:
        yield
    finally:
        _callbacks.pop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
