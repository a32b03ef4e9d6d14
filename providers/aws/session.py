"""boto3 access for the inventory: cached clients, per-request retries, error translation.

Every request (single call or one page of a listing) is retried on throttling, 5xx and
dropped connections with exponential backoff and full jitter (tenacity), bounded.
botocore's own retries are off so the two never multiply. An unreachable endpoint or
refused credentials is not retried: it becomes ``ProviderUnreachable`` or
``CredentialsRefused`` (exit 4) at once.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import botocore.session
from botocore.config import Config as BotoConfig
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
    ResponseStreamingError,
)
from botocore.paginate import Paginator
from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from failover.errors import CredentialsRefused, FailoverError, OperationFailed, ProviderUnreachable

THROTTLING = {
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException", "TooManyRequestsException",
    "ProvisionedThroughputExceededException", "RequestLimitExceeded", "BandwidthLimitExceeded", "RequestThrottled",
    "SlowDown", "PriorRequestNotComplete", "EC2ThrottledException", "InternalError", "InternalFailure",
    "ServiceUnavailable", "Unavailable",
}
CREDENTIALS = {
    "InvalidClientTokenId", "AuthFailure", "InvalidAccessKeyId", "SignatureDoesNotMatch", "UnrecognizedClientException",
    "ExpiredToken", "ExpiredTokenException", "InvalidToken", "IncompleteSignature", "MissingAuthenticationToken",
    "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "InvalidSignatureException",
}
DROPPED = (ConnectionClosedError, ReadTimeoutError, ResponseStreamingError)

MAX_ATTEMPTS = 6


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, DROPPED):
        return True
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return code in THROTTLING or status == 429 or status >= 500
    return False


def translate(exc: BaseException, what: str) -> FailoverError:
    """A botocore error as the user should read it; ``what`` says which call failed."""
    if isinstance(exc, FailoverError):
        return exc
    if isinstance(exc, (EndpointConnectionError, ConnectTimeoutError)):
        return ProviderUnreachable(f"cannot reach AWS ({what}): {exc}")
    if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
        return CredentialsRefused(f"no usable AWS credentials ({what}): {exc}")
    if isinstance(exc, ProfileNotFound):
        return CredentialsRefused(f"AWS profile not found ({what}): {exc}")
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "Unknown"), error.get("Message", "")
        if code in CREDENTIALS or exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (401, 403):
            return CredentialsRefused(f"AWS refused the credentials ({what}): {code}: {message}".rstrip(": "))
        if is_transient(exc):
            return OperationFailed(f"AWS kept failing after {MAX_ATTEMPTS} attempts ({what}): {code}: {message}")
        return OperationFailed(f"AWS error ({what}): {code}: {message}")
    if isinstance(exc, DROPPED):
        return ProviderUnreachable(f"AWS connection kept dropping ({what}): {exc}")
    if isinstance(exc, BotoCoreError):
        return OperationFailed(f"AWS client error ({what}): {exc}")
    return OperationFailed(f"{what}: {exc}")


class AwsSession:
    """Clients made once per (service, region) and shared by the worker threads."""

    def __init__(
        self,
        *,
        endpoint_url: str | None = None,
        profile: str | None = None,
        pool_size: int = 32,
        max_attempts: int = MAX_ATTEMPTS,
        max_backoff: float = 8.0,
    ) -> None:
        try:
            self._botocore = botocore.session.Session(profile=profile)
            self._boto3 = boto3.session.Session(botocore_session=self._botocore)
        except ProfileNotFound as exc:
            raise translate(exc, "session") from None
        self.endpoint_url = endpoint_url
        self._config = BotoConfig(
            retries={"total_max_attempts": 1},
            max_pool_connections=pool_size,
            connect_timeout=5,
            read_timeout=60,
            user_agent_extra="failover",
        )
        self._clients: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(max_attempts),
            wait=wait_random_exponential(multiplier=0.2, max=max_backoff),
            reraise=True,
        )
        self.retries = 0  # requests retried, for progress and benchmarks
        self._retry_lock = threading.Lock()

    def client(self, service: str, region: str) -> Any:
        key = (service, region)
        with self._lock:  # creating clients is not thread-safe in boto3
            if key not in self._clients:
                kwargs: dict[str, Any] = {"region_name": region, "config": self._config}
                if self.endpoint_url:
                    kwargs["endpoint_url"] = self.endpoint_url
                try:
                    self._clients[key] = self._boto3.client(service, **kwargs)
                except BotoCoreError as exc:
                    raise translate(exc, f"{service} in {region}") from None
            return self._clients[key]

    def _retried(self, method: Callable[..., Any], what: str) -> Callable[..., Any]:
        @functools.wraps(method)
        def call(**kwargs: Any) -> Any:
            attempt = 0
            try:
                for attempt_state in self._retrying.copy():
                    with attempt_state:
                        attempt += 1
                        if attempt > 1:
                            with self._retry_lock:
                                self.retries += 1
                        return method(**kwargs)
            except Exception as exc:  # noqa: BLE001 - translated at the boundary
                raise translate(exc, what) from exc

        return call

    def call(
        self, service: str, region: str, operation: str, *, absent: tuple[str, ...] = (), **kwargs: Any
    ) -> dict[str, Any] | None:
        """One request, retried when transient; ``None`` when AWS answers one of the ``absent`` codes
        (``NoSuchTagSet`` and the like: the thing asked about simply is not there)."""
        client = self.client(service, region)
        try:
            return self._retried(getattr(client, operation), f"{service}.{operation} in {region}")(**kwargs)
        except FailoverError as exc:
            if absent and self.error_code(exc) in absent:
                return None
            raise

    def pages(self, service: str, region: str, operation: str, **kwargs: Any) -> Iterator[dict[str, Any]]:
        """Every page of a listing; each page's request retried on its own."""
        client = self.client(service, region)
        api_name = client.meta.method_to_api_mapping[operation]
        config = self._botocore.get_paginator_model(client.meta.service_model.service_name).get_paginator(api_name)
        method = self._retried(getattr(client, operation), f"{service}.{operation} in {region}")
        paginator = Paginator(method, config, client.meta.service_model.operation_model(api_name))
        return iter(paginator.paginate(**kwargs))

    def error_code(self, exc: BaseException) -> str | None:
        """The AWS error code behind a translated error, if any."""
        cause = exc.__cause__
        if isinstance(cause, ClientError):
            return cause.response.get("Error", {}).get("Code")
        return None
