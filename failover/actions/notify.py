"""``notify``: POST a JSON summary of the run to a webhook (chat, paging, a status page).

Webhook URLs and headers usually carry secrets (a token in the path, an Authorization
header), so they may hold ``${env:NAME}`` references, which are resolved right before the
request and never reported: plans, outputs and errors name the URL's host only.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, field_validator

from failover import __version__
from failover.actions._http import check_header_names
from failover.actions.base import ACTIONS, Action, ActionContext, Change, Params
from failover.errors import OperationFailed, TransientError
from failover.templates import resolve_env

MAX_RESPONSE = 64 * 1024


class NotifyParams(Params):
    url: str = Field(description="Webhook URL, http:// or https://; may hold ${env:NAME} secrets.")
    message: str = Field("", description="Text of the notification.")
    headers: dict[str, str] = Field(
        default_factory=dict, description="Extra HTTP headers; values may hold ${env:NAME} secrets."
    )
    timeout: float = Field(10, gt=0, le=300, description="Seconds to wait for the webhook's answer.")

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if value.startswith("${env:"):
            return value  # the whole URL is a secret: checked when resolved, at call time
        # The message never repeats the value: it may be a resolved secret.
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("headers")
    @classmethod
    def _header_names(cls, value: dict[str, str]) -> dict[str, str]:
        return check_header_names(value)


@ACTIONS.register("notify")
class Notify(Action):
    """POST ``{service, run_id, step, message, target, dry_run, drill, sent_at}`` as JSON to a webhook
    (``drill``: the drill's prefix, null in a real run: a drill's message must not page as the real thing)."""

    summary = "POST a JSON summary of the run to a webhook (url and headers may hold ${env:} secrets)."
    Params = NotifyParams
    example = {
        "url": "https://hooks.example.com/services/${env:HOOK_TOKEN}",
        "message": "Failing over to the fallback provider.",
        "headers": {"Authorization": "Bearer ${env:HOOK_BEARER}"},
        "timeout": 10,
    }
    mutates = True  # it has a side effect outside: a dry run must not send it

    def plan(self, ctx: ActionContext, params: NotifyParams) -> list[Change]:
        host = _host(urlsplit(resolve_env(params.url)))
        drill = f", marked as drill {ctx.drill_prefix}" if ctx.drill_prefix else ""
        return [Change("create", "notification", host, f"POST a JSON summary of the run to {host}{drill}")]

    def apply(self, ctx: ActionContext, params: NotifyParams) -> dict[str, Any]:
        url, headers = _request_target(params)
        host = _host(urlsplit(url))
        body = json.dumps(_summary(ctx, params), ensure_ascii=False).encode("utf-8")
        ctx.info(f"POST to {host}")
        status = _post(url, headers, body, params.timeout, host)
        return {"host": host, "status": status}

    def undo(self, ctx: ActionContext, params: NotifyParams) -> None:
        """A sent notification cannot be unsent; nothing was created."""


def _summary(ctx: ActionContext, params: NotifyParams) -> dict[str, Any]:
    return {
        "service": ctx.service,
        "run_id": ctx.run_id,
        "step": ctx.step_id,
        "message": params.message,
        "target": ctx.target_name,
        "dry_run": ctx.dry_run,
        "drill": ctx.drill_prefix,
        "sent_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }


def _request_target(params: NotifyParams) -> tuple[str, dict[str, str]]:
    """The URL and headers with their secrets, for this one request."""
    parts = urlsplit(resolve_env(params.url))
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OperationFailed("notify: url: must be an http:// or https:// URL")
    headers = {"Content-Type": "application/json", "User-Agent": f"failover/{__version__}"}
    if parts.username is not None:
        # urllib does not send credentials written in the URL: move them to a header.
        credentials = f"{parts.username}:{parts.password or ''}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        parts = parts._replace(netloc=_host(parts))
    for name, value in resolve_env(params.headers).items():
        if any(c in value for c in "\r\n\0"):
            raise OperationFailed(f"notify: headers.{name}: the value contains a line break or NUL")
        headers[name] = value
    return urlunsplit(parts), headers


def _host(parts: Any) -> str:
    """host[:port], without the credentials, path or query that may be secret."""
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    try:
        port = parts.port
    except ValueError:
        port = None
    return f"{host}:{port}" if port else host


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would turn the POST into a GET, or send the secret headers to another host."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _post(url: str, headers: dict[str, str], body: bytes, timeout: float, host: str) -> int:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            response.read(MAX_RESPONSE)
            return response.status
    except urllib.error.HTTPError as exc:
        status, reason, retry_after = exc.code, exc.reason, exc.headers.get("Retry-After")
        exc.close()
        if status == 429 or status >= 500:
            raise TransientError(
                f"notify: webhook at {host} answered HTTP {status} {reason}", retry_after=_retry_after(retry_after)
            ) from None
        raise OperationFailed(f"notify: webhook at {host} refused the notification: HTTP {status} {reason}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, (ConnectionError, TimeoutError, http.client.HTTPException)):
            raise TransientError(f"notify: webhook at {host}: {_describe(reason)}") from None
        raise OperationFailed(f"notify: cannot reach webhook at {host}: {_describe(reason)}") from None


def _describe(reason: Any) -> str:
    """An error's kind and OS message, never its arguments (which may hold the URL)."""
    if isinstance(reason, OSError) and reason.strerror:
        return f"{type(reason).__name__}: {reason.strerror}"
    return type(reason).__name__ if not isinstance(reason, str) else reason


def _retry_after(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
