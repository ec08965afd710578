"""Error bodies in the shape each API surface's clients expect, and the app's exception handlers.

OpenAI (the default): ``{"error": {"message", "type", "param", "code"}}``; Anthropic
(``/v1/messages``): ``{"type": "error", "error": {"type", "message"}}``; llamactl (``/api/v1``):
``{"error": "..."}``; LocalLab (``/generate``, ``/chat``, ...): ``{"detail": "..."}``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from kernai.errors import KernaiError, ModelUnavailable

log = logging.getLogger(__name__)

ErrorShape = Callable[[int, str, str, str | None, str | None], dict[str, Any]]

_OPENAI_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                 404: "invalid_request_error", 409: "conflict_error", 413: "invalid_request_error",
                 429: "rate_limit_error"}
_ANTHROPIC_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                    404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                    503: "overloaded_error"}


def openai_shape(status: int, message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def anthropic_shape(status: int, message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}


def llamactl_shape(status: int, message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"error": message}


def detail_shape(status: int, message: str, type_: str, param: str | None, code: str | None) -> dict[str, Any]:
    return {"detail": message}


LOCALLAB_PATHS = frozenset(
    {"/generate", "/generate/batch", "/chat", "/models/load", "/models/unload", "/models/current",
     "/system/info", "/health"}
)


def shape_for(path: str) -> ErrorShape:
    """The error shape of the surface that serves ``path``."""
    if path == "/v1/messages" or path.startswith("/v1/messages/"):
        return anthropic_shape
    if path.startswith("/api/v1/"):
        return llamactl_shape
    if path in LOCALLAB_PATHS:
        return detail_shape
    return openai_shape


def error_response(
    request: Request[Any, Any, Any],
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    type_ = type_ or _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    body = shape_for(request.url.path)(status, message, type_, param, code)
    return Response(content=body, status_code=status, headers=headers)


def _validation_message(exc: ValidationException) -> tuple[str, str | None]:
    details = exc.extra if isinstance(exc.extra, list) else []
    parts, param = [], None
    for item in details:
        if isinstance(item, dict):
            text = str(item.get("message", ""))
            parts.append(text)
            if param is None and (match := re.search(r"`\$\.([^`]+)`", text)):
                param = match.group(1)
    message = "; ".join(p for p in parts if p) or str(exc.detail)
    return f"Invalid request: {message}", param


def handle_kernai_error(request: Request[Any, Any, Any], exc: KernaiError) -> Response[Any]:
    headers = None
    if isinstance(exc, ModelUnavailable) and exc.retry_after is not None:
        headers = {"Retry-After": str(exc.retry_after)}
    return error_response(request, exc.status_code, exc.message, type_=exc.error_type, param=exc.param,
                          code=exc.code, headers=headers)


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        message, param = _validation_message(exc)
        return error_response(request, 400, message, param=param)
    headers = dict(exc.headers or {})
    return error_response(request, exc.status_code, str(exc.detail), headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, f"Internal server error: {type(exc).__name__}")


EXCEPTION_HANDLERS: dict[type[Exception], Any] = {
    KernaiError: handle_kernai_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
