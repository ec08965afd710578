"""Error bodies in the shape each route's clients expect, and the app's exception handlers.

A route names its shape in its ``opt`` (:func:`kernai.http.routes.route_opt`): a function of the
status, message, OpenAI error type, ``param`` and ``code`` that returns the body. OpenAI's
(``{"error": {"message", "type", "param", "code"}}``) is the default; a request that matches no route
gets the shape of the routes nearest to its path where they agree (``/api/v1/...``: llamactl's), else
OpenAI's. llamactl's (``{"error": "..."}``) is the core's API key routes' shape; each surface brings
its own.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any

import msgspec
from litestar import Litestar, Request, Response
from litestar.exceptions import HTTPException, MethodNotAllowedException, ValidationException
from litestar.handlers import BaseRouteHandler
from litestar.routes import HTTPRoute
from litestar.types import ExceptionHandlersMap, Method
from litestar.utils.scope.state import ScopeState

from kernai.errors import KernaiError, Unauthorized

log = logging.getLogger(__name__)

ErrorShape = Callable[[int, str, str, str | None, str | None], dict[str, Any]]
"""``shape(status, message, type, param, code)``: the error body of a route's API."""
ERROR_SHAPE = "kernai_error_shape"
"""``opt`` key of a route's :data:`ErrorShape`."""
METHODS: frozenset[Method] = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE"})

_OPENAI_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "invalid_request_error",
    409: "conflict_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
}


def openai_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def llamactl_shape(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> dict[str, Any]:
    return {"error": message}


def _handler_of(request: Request[Any, Any, Any], exc: Exception) -> BaseRouteHandler | None:
    """The handler the request matched; for a method its path does not take (405), one of the path's."""
    handler: BaseRouteHandler | None = request.scope.get("route_handler")
    if handler is not None or not isinstance(exc, MethodNotAllowedException):
        return handler
    allowed = [m.strip() for m in (exc.headers or {}).get("allow", "").split(",")]
    method = next((m for m in allowed if m in METHODS), None)
    return request.app.asgi_router.handle_routing(request.scope["path"], method)[1] if method else None


def shape_of(handler: BaseRouteHandler | None) -> ErrorShape:
    """The error shape ``handler`` declares; OpenAI's when it declares none or there is none."""
    shape: ErrorShape = handler.opt.get(ERROR_SHAPE, openai_shape) if handler is not None else openai_shape
    return shape


def _nearest_shape(app: Litestar, path: str) -> ErrorShape:
    """For a path no route serves (404): the shape of the routes that share the longest leading path
    segments with it, when they all agree (``/api/v1/nothing``: llamactl's; ``/v1/messages/x``:
    Anthropic's), else OpenAI's (``/v1/nothing``)."""
    wanted = [part for part in path.split("/") if part]
    best, shapes = 0, set()
    for route in app.routes:
        common = 0
        for have, want in zip(route.path.split("/")[1:], wanted, strict=False):
            if have != want or have.startswith("{"):
                break
            common += 1
        handlers = route.route_handlers if isinstance(route, HTTPRoute) else [route.route_handler]
        found = {shape_of(handler) for handler in handlers}
        if common > best:
            best, shapes = common, found
        elif common == best:
            shapes |= found
    return shapes.pop() if best and len(shapes) == 1 else openai_shape


def error_response(
    request: Request[Any, Any, Any],
    exc: Exception,
    status: int,
    message: str,
    *,
    type_: str | None = None,
    param: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    type_ = type_ or _OPENAI_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    handler = _handler_of(request, exc)
    shape = shape_of(handler) if handler is not None else _nearest_shape(request.app, request.scope["path"])
    body = shape(status, message, type_, param, code)
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
    """The message and the field of a request that failed validation; the message names the field too,
    for the surfaces whose error body has no ``param`` (llamactl, LocalLab, Anthropic)."""
    full = _body_error(request)
    if full is not None:
        message, param = full.split(" - at ")[0], _param_of(full)
    else:
        details = (
            [item for item in exc.extra if isinstance(item, dict)] if isinstance(exc.extra, list) else []
        )
        parts = [str(item.get("message", "")) for item in details]
        message = "; ".join(p for p in parts if p) or str(exc.detail)
        keys = [str(item["key"]) for item in details if item.get("key")]  # a path or query parameter's name
        param = keys[0] if keys else None
    if param is not None and f"`{param.rsplit('.', 1)[-1]}`" not in message:
        message = f"{param}: {message}"
    return f"Invalid request: {message}", param


def handle_kernai_error(request: Request[Any, Any, Any], exc: KernaiError) -> Response[Any]:
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after is not None else {}
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(
        request,
        exc,
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
        return error_response(request, exc, 400, message, param=param)
    headers = dict(exc.headers or {})
    return error_response(request, exc, exc.status_code, str(exc.detail), headers=headers or None)


def handle_unexpected(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(request, exc, 500, f"Internal server error: {type(exc).__name__}")


EXCEPTION_HANDLERS: ExceptionHandlersMap = {
    KernaiError: handle_kernai_error,
    HTTPException: handle_http_exception,
    Exception: handle_unexpected,
}
