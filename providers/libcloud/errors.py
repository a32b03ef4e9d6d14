"""libcloud and requests errors -> failover's hierarchy, with secrets kept out of messages.

- refused credentials (InvalidCredsError, HTTP 401/403) -> CredentialsRefused
- no answer (connection refused, unknown host, timeout, TLS failure) -> ProviderUnreachable
- worth retrying (RateLimitReachedError, 429, 5xx, a reset connection) -> TransientError
- anything else -> OperationFailed
"""

from __future__ import annotations

import re
import socket
import ssl
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import requests
from libcloud.common.exceptions import BaseHTTPError, RateLimitReachedError
from libcloud.common.types import InvalidCredsError, LibcloudError, ProviderError, ServiceUnavailableError

from failover.errors import CredentialsRefused, FailoverError, OperationFailed, ProviderUnreachable, TransientError

# Some drivers only put the status in the message: "status_code=503", "Unexpected status code: 400",
# "(HTTP Code: 409)", "(code: 404)".
_STATUS_IN_MESSAGE = re.compile(r"(?:status[_ ]code[=:] ?|HTTP Code: |\(code: )(\d{3})\b", re.IGNORECASE)
_MAX_DETAIL = 300
_RESETS = (ConnectionResetError, ConnectionAbortedError, BrokenPipeError)
# The peer closed the connection midway, as urllib3 and http.client name it.
_RESET_NAMES = frozenset({"RemoteDisconnected", "ProtocolError", "ChunkedEncodingError", "IncompleteRead"})
_NO_ANSWER = (
    ConnectionRefusedError, socket.gaierror, TimeoutError, ssl.SSLError,
    requests.exceptions.ConnectionError, requests.exceptions.Timeout,
)
REDACTED = "***"


@contextmanager
def translated(where: str, action: str, secrets: Callable[[], Iterable[str]]) -> Iterator[None]:
    """Raise whatever fails inside as a :class:`FailoverError` naming ``where`` and ``action``."""
    try:
        yield
    except FailoverError:
        raise
    except Exception as exc:  # noqa: BLE001 - every provider failure must become a FailoverError
        # "from None": the original may quote a URL or a body that carries a secret.
        raise translate(exc, where=where, action=action, secrets=secrets()) from None


def translate(exc: BaseException, *, where: str, action: str, secrets: Iterable[str] = ()) -> FailoverError:
    kind, retry_after = classify(exc)
    message = f"{action}: {_summary(exc, kind)}"
    message = redact(message, secrets)
    if kind is TransientError:
        return TransientError(message, where=where, retry_after=retry_after)
    return kind(message, where=where)


def classify(exc: BaseException) -> tuple[type[FailoverError], float | None]:
    """The failover error class for ``exc`` and, for throttling, the seconds to wait."""
    if isinstance(exc, InvalidCredsError):
        return CredentialsRefused, None
    if isinstance(exc, RateLimitReachedError):
        return TransientError, exc.retry_after or None
    if isinstance(exc, ServiceUnavailableError):
        return TransientError, None
    status = http_status(exc)
    if status is not None:
        return _by_status(status), _retry_after(exc)
    if isinstance(exc, OSError):  # requests' exceptions are OSErrors too
        return _by_network_failure(exc), None
    return OperationFailed, None


def http_status(exc: BaseException) -> int | None:
    if isinstance(exc, BaseHTTPError):
        return int(exc.code)
    if isinstance(exc, ProviderError) and exc.http_code:
        return int(exc.http_code)
    if isinstance(exc, LibcloudError):
        match = _STATUS_IN_MESSAGE.search(str(exc.value))
        return int(match.group(1)) if match else None
    return None


def _by_status(status: int) -> type[FailoverError]:
    if status in (401, 403):
        return CredentialsRefused
    if status == 429 or status >= 500:
        return TransientError
    return OperationFailed


def _retry_after(exc: BaseException) -> float | None:
    headers = getattr(exc, "headers", None) or {}
    value = next((v for k, v in dict(headers).items() if k.lower() == "retry-after"), None)
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _by_network_failure(exc: BaseException) -> type[FailoverError]:
    causes = list(causes_of(exc))
    if any(isinstance(c, _RESETS) or type(c).__name__ in _RESET_NAMES for c in causes):
        return TransientError
    if any(isinstance(c, _NO_ANSWER) for c in causes):
        return ProviderUnreachable
    # Other OSErrors (a local-disk driver's PermissionError) are the operation's own failure.
    return OperationFailed


def causes_of(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and everything it wraps: causes, contexts, urllib3's ``reason``, exception args."""
    seen: set[int] = set()
    pending = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        wrapped = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(item for item in wrapped if isinstance(item, BaseException))


_NETWORK_WORDS = (
    (ConnectionRefusedError, "connection refused"),
    (socket.gaierror, "host name not resolved"),
    (TimeoutError, "timed out"),
    (ConnectionResetError, "connection reset"),
    (ssl.SSLError, "TLS failure"),
)


def _summary(exc: BaseException, kind: type[FailoverError]) -> str:
    lead = {
        CredentialsRefused: "credentials refused",
        ProviderUnreachable: "provider unreachable",
        TransientError: "temporary failure",
    }.get(kind, "failed")
    if isinstance(exc, OSError) and kind is not OperationFailed:
        causes = list(causes_of(exc))
        words = next((w for cls, w in _NETWORK_WORDS if any(isinstance(c, cls) for c in causes)), None)
        if isinstance(exc, requests.exceptions.Timeout):
            words = "timed out"
        return f"{lead} ({words or type(exc).__name__})"
    detail = _detail(exc)
    return f"{lead} ({detail})" if detail else lead


def _detail(exc: BaseException) -> str:
    text = str(getattr(exc, "value", None) or exc).strip().strip("'\"")
    text = " ".join(text.split())
    if len(text) > _MAX_DETAIL:
        text = text[:_MAX_DETAIL] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def redact(text: str, secrets: Iterable[str]) -> str:
    # Longest first, so a secret containing another is replaced whole.
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text
