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

import msgspec
from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException
from litestar.types import ExceptionHandlersMap
from litestar.utils.scope.state import ScopeState

from kernai.errors import KernaiError, Unauthorized

log = logging.getLogger(__name__)

ErrorShape = Callable[[int, str, str, str | None, str | None], dict[str, Any]]

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}
_ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    415: "invalid_request_error",
    429: "rate_limit_error",
    503: "overloaded_error",
}


def openai_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def anthropic_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"type": "error", "error": {"type": _ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}


def llamactl_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": message}


def detail_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"detail": message}


LOCALLAB_PATHS = frozenset(
    {
        "/generate",
        "/generate/batch",
        "/chat",
        "/models/load",
        "/models/unload",
        "/models/current",
        "/system/info",
        "/health",
    }
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


def _body_error(request: Request[Any, Any, Any]) -> str | None:
    """msgspec's full message for a body that failed validation, with its ``$.path``.

    Litestar keeps only the part before `` - at `$.field` ``; decoding the cached body again
    against the handler's ``data`` type recovers the field for OpenAI's ``param``.
    """
    try:
        body = ScopeState.from_scope(request.scope).body
        field = request.route_handler.parsed_fn_signature.parameters.get("data")
    except (AttributeError, KeyError):
        return None
    if not isinstance(body, bytes) or field is None:
        return None
    try:
        msgspec.json.decode(body, type=field.annotation)
    except (msgspec.ValidationError, msgspec.DecodeError) as exc:
        return str(exc)
    except Exception:  # an annotation msgspec cannot decode into: keep Litestar's message
        return None
    return None


def _param_of(message: str) -> str | None:
    path = re.search(r"`\$\.?([^`]*)`", message)
    prefix = path.group(1) if path else ""
    missing = re.search(r"missing required field `([^`]+)`", message)
    if missing:
        return f"{prefix}.{missing.group(1)}" if prefix else missing.group(1)
    return prefix or None


def _validation_message(request: Request[Any, Any, Any], exc: ValidationException) -> tuple[str, str | None]:
    full = _body_error(request)
    if full is not None:
        return f"Invalid request: {full.split(' - at ')[0]}", _param_of(full)
    details = exc.extra if isinstance(exc.extra, list) else []
    parts = [str(item.get("message", "")) for item in details if isinstance(item, dict)]
    message = "; ".join(p for p in parts if p) or str(exc.detail)
    return f"Invalid request: {message}", None


def handle_kernai_error(request: Request[Any, Any, Any], exc: KernaiError) -> Response[Any]:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(
        request,
        exc.status_code,
        exc.message,
        type_=exc.error_type,
        param=exc.param,
        code=exc.code,
        headers=headers or None,
    )


def handle_http_exception(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    if isinstance(exc, ValidationException):
        message, param = _validation_message(request, exc)
        return error_response(request, 400, message, param=param)
    headers = dict(exc.headers or {})
    return error_response(request, exc.status_code, str(exc.detail), headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, 500, f"Internal server error: {type(exc).__name__}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    KernaiError: handle_kernai_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
