"""The ASGI middleware every routed request passes: browser checks (:mod:`kernai.http.browser_guard`),
API keys, rate limits, body limits, body types, metrics, traces.

Routes fall in three classes (:func:`route_class`): public (health, version, docs), management
(``/api/*``, ``/models/*``, ``/backends*``, ``/backend/*``, ``/system*``, ``/metrics``, ``/ws/*``) and
inference (everything else). A management route takes a management key when
``require_management_auth`` is on; an inference route takes either kind when ``require_inference_auth``
is on. Keys come as ``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (WebSockets may also pass
``?api_key=KEY``, as browsers cannot set headers there).

Rate limits take a token from the bucket of the request's valid key, else of its client address. A
request refused with 401 also takes one from its address's failed-authentication bucket; while that
is empty, the address gets 429 before its key is checked, so keys cannot be guessed at full speed.
"""

from __future__ import annotations

import ipaddress
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qs

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import (
    ASGIApp,
    HTTPScope,
    Message,
    Receive,
    ReceiveMessage,
    Scope,
    Send,
    WebSocketScope,
)

from kernai.auth.keys import KeyStore, digest
from kernai.auth.principal import KeyKind, Principal, RequestContext, current_request
from kernai.errors import Forbidden, KernaiError, PayloadTooLarge, RateLimited, Unauthorized
from kernai.http.browser_guard import BrowserGuard, check_content_type
from kernai.http.errors import handle_kernai_error
from kernai.limits import RateLimiter
from kernai.observability.metrics import Metrics
from kernai.observability.traces import TraceRing
from kernai.settings import Settings

PUBLIC = ("/healthz", "/readyz", "/health", "/version", "/v1/version", "/favicon.ico")
MANAGEMENT_PREFIXES = (
    "/api/",
    "/models/",
    "/backends",
    "/backend/",
    "/v1/backend/",
    "/system",
    "/v1/system",
    "/metrics",
    "/ws/",
)
PROXY_PATH = re.compile(r"^/api/v1/instances/[^/]+/proxy(/.*)$")
DRAIN_LIMIT = 1 << 20
UNTRACED_PREFIXES = (
    "/api/v1/auth",
    "/api/traces",
    "/api/backend-traces",
    "/api/backend-logs",
    "/metrics",
    "/ws/",
)


@lru_cache(maxsize=4096)
def route_class(path: str) -> str:
    """``public``, ``management`` or ``inference``."""
    if path in PUBLIC or path == "/docs" or path.startswith("/docs/"):
        return "public"
    if path.startswith(
        MANAGEMENT_PREFIXES
    ):  # "/models/" is the gallery's; "/models" lists models, like /v1/models
        return "management"
    return "inference"


def _presented_key(scope: Scope) -> str | None:
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode(errors="replace").strip()
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    if key := headers.get(b"x-api-key", b"").decode(errors="replace").strip():
        return key
    if scope["type"] == ScopeType.WEBSOCKET:
        values = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("api_key")
        return values[0] if values else None
    return None


@lru_cache(maxsize=4096)
def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _drain(receive: Receive, last: ReceiveMessage | None = None) -> None:
    """Read (and drop) up to ``DRAIN_LIMIT`` more bytes of a refused body, so that the client, still
    sending, reads the error instead of a reset connection."""
    drained = 0
    while (last is None or last.get("more_body", False)) and drained < DRAIN_LIMIT:
        last = await receive()
        if last["type"] != "http.request":
            return
        drained += len(last.get("body", b""))


def _excerpt(kept: bytearray, total: int) -> str:
    text = kept.decode(errors="replace")
    return text if total <= len(kept) else f"{text}... [truncated, {total} bytes in all]"


@dataclass
class GateServices:
    """What the gate needs, built once per app."""

    settings: Settings
    keys: KeyStore
    metrics: Metrics
    traces: TraceRing
    limiter: RateLimiter
    guard: BrowserGuard


class Gate:
    """Raw ASGI middleware (Litestar runs it after routing, so ``path_template`` is known)."""

    def __init__(self, app: ASGIApp, services: GateServices) -> None:
        self.app = app
        self.services = services

    def authenticate(self, scope: Scope, kind: str) -> tuple[Principal | None, str | None]:
        required = self.services.keys.required[KeyKind(kind)]
        key = _presented_key(scope)
        if not required:
            return None, key
        if key is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'")
        principal = self.services.keys.authenticate(key)
        if kind == "management" and principal.kind is not KeyKind.MANAGEMENT:
            raise Forbidden("This route needs a management key")
        return principal, key

    def _limited_host(self, scope: Scope) -> tuple[bool, str | None]:
        """Whether requests from the scope's client are rate limited, and its address."""
        settings = self.services.settings
        host = (scope.get("client") or (None, None))[0]
        return settings.rate_limit and (settings.rate_limit_localhost or not _is_loopback(host)), host

    def rate_limit(self, scope: Scope, key: str | None) -> None:
        """Count the request against its key's bucket (a key that was checked) or its address's."""
        limited, host = self._limited_host(scope)
        if limited:
            wait = self.services.limiter.acquire(f"key:{digest(key)}" if key else f"ip:{host}")
            self._refuse(wait, "rate_limit", f"{self.services.settings.rate_limit_per_minute} requests")

    def authenticate_limited(self, scope: Scope, kind: str) -> tuple[Principal | None, str | None]:
        """:meth:`authenticate`, refused with 429 while the address's failed-authentication bucket is
        empty; a 401 takes a token from it."""
        limited, host = self._limited_host(scope)
        if not limited or not self.services.keys.required[KeyKind(kind)]:
            return self.authenticate(scope, kind)
        bucket = f"failed:{host}"
        limit = f"{self.services.settings.rate_limit_per_minute} failed authentications"
        self._refuse(self.services.limiter.wait(bucket), "failed_auth", limit)
        try:
            return self.authenticate(scope, kind)
        except Unauthorized:
            self.services.limiter.acquire(bucket)
            raise

    def _refuse(self, wait: float, reason: str, limit: str) -> None:
        if wait > 0:
            self.services.metrics.rejected.labels(reason).inc()
            raise RateLimited(f"Rate limit of {limit} a minute exceeded", retry_after=max(1, math.ceil(wait)))

    def body_limit(self, path: str) -> int:
        """The body size limit of ``path``; a request through an instance's proxy has its inner route's."""
        if (proxied := PROXY_PATH.match(path)) is not None:
            path = proxied.group(1)
        limits = self.services.settings.body_size_limits
        prefix = max((p for p in limits if path.startswith(p)), key=len, default=None)
        return limits[prefix] if prefix is not None else self.services.settings.max_body_size

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.WEBSOCKET:
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _websocket(self, scope: WebSocketScope, receive: Receive, send: Send) -> None:
        try:
            self.services.guard.check(scope)
        except KernaiError:
            await send({"type": "websocket.close", "code": 1008, "reason": "forbidden"})
            return
        try:
            principal, _ = self.authenticate_limited(scope, route_class(scope["path"]))
        except KernaiError:
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
            return
        token = current_request.set(RequestContext(principal))
        try:
            await self.app(scope, receive, send)
        finally:
            current_request.reset(token)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        services = self.services
        path: str = scope["path"]
        kind = route_class(path)
        begun = time.perf_counter()
        context = RequestContext()
        token = current_request.set(context)
        status = 500
        started = False
        limit = self.body_limit(path)
        keep = services.settings.trace_body_limit
        request_body, response_body = bytearray(), bytearray()
        sizes = [0, 0]
        extra_headers = [
            (k.lower().encode(), v.encode()) for k, v in services.settings.response_headers.items()
        ]

        async def counted_receive() -> ReceiveMessage:
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                sizes[0] += len(chunk)
                if sizes[0] > limit:
                    await _drain(receive, message)
                    raise PayloadTooLarge(f"Request body over the limit of {limit} bytes for {path}")
                if len(request_body) < keep:
                    request_body.extend(chunk[: keep - len(request_body)])
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status, started = message["status"], True
                present = {name.lower() for name, _ in message.get("headers", [])}
                added = [(k, v) for k, v in extra_headers if k not in present]
                if added:
                    message = {**message, "headers": [*message.get("headers", []), *added]}
            elif message["type"] == "http.response.body":
                body = message.get("body", b"")
                sizes[1] += len(body)
                if len(response_body) < keep:
                    response_body.extend(body[: keep - len(response_body)])
            await send(message)

        try:
            try:
                services.guard.check(scope)
                if kind != "public":
                    context.principal, key = self.authenticate_limited(scope, kind)
                    self.rate_limit(scope, key if context.principal is not None else None)
                length = dict(scope.get("headers") or []).get(b"content-length")
                if length is not None and length.isdigit() and int(length) > limit:
                    await _drain(receive)
                    raise PayloadTooLarge(
                        f"Request body of {int(length)} bytes is over the limit of {limit} bytes for {path}"
                    )
                check_content_type(scope)
                await self.app(scope, counted_receive, observed_send)
            except KernaiError as exc:
                if started:
                    raise
                request = Request[Any, Any, Any](scope)
                response = handle_kernai_error(request, exc).to_asgi_response(app=None, request=request)
                await response(scope, receive, observed_send)
        finally:
            current_request.reset(token)
            self._observe(
                scope,
                kind,
                status,
                begun,
                context,
                _excerpt(request_body, sizes[0]),
                _excerpt(response_body, sizes[1]),
            )

    def _observe(
        self,
        scope: HTTPScope,
        kind: str,
        status: int,
        begun: float,
        context: RequestContext,
        request_body: str,
        response_body: str,
    ) -> None:
        seconds = time.perf_counter() - begun
        route = scope.get("path_template") or scope["path"]
        model = ",".join(context.models)
        method = scope["method"]
        metrics = self.services.metrics
        metrics.requests.labels(method, route, str(status), model).inc()
        metrics.latency.labels(method, route, model).observe(seconds)
        path = scope["path"]
        if kind == "public" or path.startswith(UNTRACED_PREFIXES):
            return
        self.services.traces.add(
            {
                "time": time.time(),
                "method": method,
                "path": path,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "model": model or None,
                "client": (scope.get("client") or (None,))[0],
                "key_id": context.principal.key_id if context.principal else None,
                "request": request_body,
                "response": response_body,
            }
        )
