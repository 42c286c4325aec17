"""Every error the gateway raises, and its one mapping to OpenAI's error JSON.

Nothing outside this module decides a status code. Backend adapters translate their HTTP client's
and litellm's exceptions into this tree; the HTTP layer calls `to_openai_body` and never inspects
provider exceptions itself.

    TurnoutError                    (500, api_error)
    ├── InvalidRequest              (400, invalid_request_error)  bad JSON, wrong types, empty messages
    │   ├── ContextWindowExceeded   (400, code=context_length_exceeded)
    │   ├── SensitiveDataBlocked    (400, code=sensitive_data)    the policy blocks what the request carries
    │   └── UnsupportedContent      (400, code=unsupported_content)  no allowed backend takes it (images, ...)
    ├── AuthenticationFailed        (401, authentication_error)   missing/unknown/revoked/malformed key
    ├── PermissionDenied            (403, permission_error)       key may not use that model
    ├── ModelNotFound               (404, code=model_not_found)
    ├── CollectionNotFound          (404, code=collection_not_found)  retrieval from a collection never ingested
    ├── RequestTimeout              (408, code=request_timeout)   the client sent its body too slowly
    ├── PayloadTooLarge             (413)
    ├── HeadersTooLarge             (431, code=request_header_too_large)
    ├── ClientClosed                (499)                         the client left before its request was read
    ├── RateLimited                 (429, rate_limit_exceeded)    carries retry_after
    ├── UpstreamError               (502, upstream_error)         a backend failed; carries backend, retryable
    │   ├── UpstreamStatus          (the backend's own status; 4xx passed back, 429/5xx retryable)
    │   └── UpstreamTimeout         (504)
    ├── NoBackendAvailable          (503)                         nothing configured/closed/left to try
    ├── KeyStoreUnavailable         (503)                         Postgres is away and the key was never seen
    ├── RetrievalUnavailable        (503)                         the vector store or the embedder failed
    └── PolicyError                 (500 at the edge, a one-line message in the CLI)
"""

from __future__ import annotations

from typing import Any

import orjson


class TurnoutError(Exception):
    status_code = 500
    type = "api_error"
    code: str | None = None

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code

    def headers(self) -> dict[str, str]:
        return {}

    def to_openai(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}

    def to_openai_body(self) -> bytes:
        return orjson.dumps(self.to_openai())


class InvalidRequest(TurnoutError):
    status_code = 400
    type = "invalid_request_error"


class ContextWindowExceeded(InvalidRequest):
    code = "context_length_exceeded"


class SensitiveDataBlocked(InvalidRequest):
    code = "sensitive_data"
    signals: Any = None  # what the detectors found, for the metrics and the ledger (never sent back)


class UnsupportedContent(InvalidRequest):
    """The request needs what no backend it may use has (images for a model without vision)."""

    code = "unsupported_content"


class AuthenticationFailed(TurnoutError):
    status_code = 401
    type = "authentication_error"
    code = "invalid_api_key"


class PermissionDenied(TurnoutError):
    status_code = 403
    type = "permission_error"
    code = "model_not_allowed"


def admin_only(what: str) -> PermissionDenied:
    """The 403 for a caller's key on an admin endpoint, saying which key is the admin's (a new
    user tried the key the first start printed, which is a caller's)."""
    return PermissionDenied(
        f"Only an admin key may {what}: the key set as the gateway's TURNOUT_ADMIN_KEY.", code="admin_only"
    )


class ModelNotFound(TurnoutError):
    status_code = 404
    type = "invalid_request_error"
    code = "model_not_found"


class CollectionNotFound(TurnoutError):
    status_code = 404
    type = "invalid_request_error"
    code = "collection_not_found"


class ResponseNotFound(TurnoutError):
    status_code = 404
    type = "invalid_request_error"
    code = "response_not_found"


class PayloadTooLarge(InvalidRequest):
    status_code = 413
    code = "request_too_large"


class _ClosesConnection(InvalidRequest):
    """Answered on a connection that is then closed: the rest of what the client sends (a
    half-sent body, an endless header) must not be read as a next request."""

    def headers(self) -> dict[str, str]:
        return {"connection": "close"}


class RequestTimeout(_ClosesConnection):
    status_code = 408
    code = "request_timeout"


class HeadersTooLarge(_ClosesConnection):
    status_code = 431
    code = "request_header_too_large"


class ClientClosed(TurnoutError):
    """The client closed the connection before its request was read: nobody to answer."""

    status_code = 499
    type = "invalid_request_error"
    code = "client_closed_request"


class OverLimit(InvalidRequest):
    """A request that alone is over a key's or team's tokens-per-minute limit: no wait admits it,
    so it is a 400 (a 429 had clients retry it for minutes, and a batch line wait until expiry)."""

    code = "tokens_over_limit"


class RateLimited(TurnoutError):
    status_code = 429
    type = "rate_limit_error"
    code = "rate_limit_exceeded"

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.rate_headers: dict[str, str] = {}  # x-ratelimit-*, for answers that carry no others

    def headers(self) -> dict[str, str]:
        retry = {"retry-after": str(max(1, round(self.retry_after)))} if self.retry_after else {}
        return {**self.rate_headers, **retry}


class UpstreamError(TurnoutError):
    """A backend failed. `retryable` says whether another attempt (or backend) may succeed."""

    status_code = 502
    type = "upstream_error"

    def __init__(
        self, message: str, *, backend: str, retryable: bool = True, retry_after: float | None = None
    ):
        super().__init__(message)
        self.backend = backend
        self.retryable = retryable
        self.retry_after = retry_after

    def headers(self) -> dict[str, str]:
        return {"retry-after": str(max(1, round(self.retry_after)))} if self.retry_after else {}


class UpstreamStatus(UpstreamError):
    """The backend answered with an HTTP error. Client errors (400, 404, 422) are the caller's to fix
    and are passed back with the backend's status; auth errors and 429/5xx are the backend's."""

    def __init__(
        self,
        backend: str,
        status: int,
        message: str,
        *,
        retry_after: float | None = None,
        error_type: str | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        caller_fault = status in (400, 404, 413, 422)
        super().__init__(
            f"{backend} returned {status}: {message}",
            backend=backend,
            retryable=status == 429 or status >= 500 or status in (408, 409),
            retry_after=retry_after,
        )
        self.upstream_status = status
        self.caller_fault = caller_fault
        self.upstream_code: str | None = None
        if caller_fault:  # passed back for the caller to fix: with the field and code the backend named
            self.status_code = 400 if status == 413 else status
            self.type = error_type or "invalid_request_error"
            self.param = param
            self.upstream_code = code  # in the body only: `code` labels metrics, from turnout's own set
        elif status == 429:
            self.status_code = 429
            self.type = "rate_limit_error"

    def to_openai(self) -> dict[str, Any]:
        body = super().to_openai()
        if self.upstream_code is not None:
            body["error"]["code"] = self.upstream_code
        return body


class UpstreamTimeout(UpstreamError):
    status_code = 504
    type = "timeout_error"


class NoBackendAvailable(TurnoutError):
    status_code = 503
    type = "service_unavailable"
    code = "no_backend_available"


class KeyStoreUnavailable(TurnoutError):
    status_code = 503
    type = "service_unavailable"
    code = "key_store_unavailable"

    def headers(self) -> dict[str, str]:
        return {"retry-after": "1"}


class RetrievalUnavailable(TurnoutError):
    status_code = 503
    type = "api_error"
    code = "retrieval_unavailable"


class PolicyError(TurnoutError):
    """A policy file is invalid. The message names the file, the line and the key."""

    code = "policy_error"
