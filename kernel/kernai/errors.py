"""Exceptions that carry an HTTP meaning.

Backends raise :class:`InvalidRequest` for a client's mistake (the HTTP layer answers 400 with the
message) and :class:`NotSupported` for a capability or option they lack. Anything else a backend
raises is reported as a backend error (500) without taking the server down.
"""

from __future__ import annotations


class KernaiError(Exception):
    """Base of the errors the HTTP layer maps to a status code."""

    status_code = 500
    error_type = "server_error"
    retry_after: int | None = None
    """Seconds after which a retry may succeed; sent as ``Retry-After``."""

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        self.code = code


class InvalidRequest(KernaiError):
    """The request is malformed or out of range: 400."""

    status_code = 400
    error_type = "invalid_request_error"


class NotSupported(InvalidRequest):
    """The model's backend cannot do what was asked: 400."""

    def __init__(self, message: str, *, param: str | None = None) -> None:
        super().__init__(message, param=param, code="not_supported")


class ModelNotFound(KernaiError):
    """No model of that name is configured: 404."""

    status_code = 404
    error_type = "invalid_request_error"

    def __init__(self, name: str) -> None:
        super().__init__(f"The model '{name}' does not exist", param="model", code="model_not_found")


class ModelUnavailable(KernaiError):
    """The model exists but cannot serve now (crashed, failed to load, overloaded): 503."""

    status_code = 503
    error_type = "server_error"
    code: str

    def __init__(
        self, message: str, *, retry_after: int | None = None, code: str = "model_unavailable"
    ) -> None:
        super().__init__(message, code=code)
        self.retry_after = retry_after


class BackendError(KernaiError):
    """The backend raised while serving a request: 500."""

    status_code = 500
    error_type = "server_error"


class Unauthorized(KernaiError):
    """No API key, or one that is unknown or expired: 401."""

    status_code = 401
    error_type = "authentication_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="invalid_api_key")


class Forbidden(KernaiError):
    """A valid API key without permission for this route or model, or a web page of another origin: 403."""

    status_code = 403
    error_type = "permission_error"

    def __init__(self, message: str, *, code: str = "insufficient_permissions") -> None:
        super().__init__(message, code=code)


class Conflict(KernaiError):
    """The request conflicts with the current state (a name taken, the running cap reached): 409."""

    status_code = 409
    error_type = "conflict_error"


class RateLimited(KernaiError):
    """Too many requests from one key or address: 429."""

    status_code = 429
    error_type = "rate_limit_error"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, code="rate_limit_exceeded")
        self.retry_after = retry_after


class UnsupportedMediaType(KernaiError):
    """The body's ``Content-Type`` is not one the route reads: 415."""

    status_code = 415
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="unsupported_media_type")


class PayloadTooLarge(KernaiError):
    """The request body is over the route's limit: 413."""

    status_code = 413
    error_type = "invalid_request_error"

    def __init__(self, message: str) -> None:
        super().__init__(message, code="payload_too_large")
