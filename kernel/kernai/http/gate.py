"""The ASGI middleware every routed request passes, in steps: browser checks
(:mod:`kernai.http.browser_guard`), authentication and rate limits (:mod:`kernai.http.authenticate`),
the body's size and type, then metrics and a trace (:mod:`kernai.http.observe`).

Each step reads the policy of the route the request matched from its handler's ``opt``
(:mod:`kernai.http.routes`): its class (public, inference, management), whether it is traced, and its
error format, in which a refusal is answered. The caller (its key's principal, the models it uses) goes
on the request's scope (:mod:`kernai.http.scope`) for the handler to hand to the model manager.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from litestar import Request
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Receive, Scope, Send, WebSocketScope

from kernai.auth.principal import Caller
from kernai.errors import KernaiError, PayloadTooLarge
from kernai.http.authenticate import Authenticator
from kernai.http.browser_guard import BrowserGuard, check_content_type
from kernai.http.errors import handle_kernai_error
from kernai.http.observe import Exchange, Recorder, drain
from kernai.http.routes import RouteClass, is_traced, limited_path, route_class
from kernai.http.scope import set_caller
from kernai.settings import Settings


@dataclass
class GateServices:
    """What the gate needs, built once per app."""

    settings: Settings
    guard: BrowserGuard
    authenticator: Authenticator
    recorder: Recorder
    extra_headers: list[tuple[bytes, bytes]] = field(init=False)
    """``response_headers`` of the settings, encoded once."""

    def __post_init__(self) -> None:
        self.extra_headers = [
            (k.lower().encode(), v.encode()) for k, v in self.settings.response_headers.items()
        ]

    def body_limit(self, path: str) -> int:
        """The body size limit of ``path``: its longest prefix's in ``body_size_limits``, else
        ``max_body_size``."""
        limits = self.settings.body_size_limits
        prefix = max((p for p in limits if path.startswith(p)), key=len, default=None)
        return limits[prefix] if prefix is not None else self.settings.max_body_size


class Gate:
    """Raw ASGI middleware (Litestar runs it after routing, so the matched handler is in the scope)."""

    def __init__(self, app: ASGIApp, services: GateServices) -> None:
        self.app = app
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP:
            await self._http(scope, receive, send)
        elif scope["type"] == ScopeType.WEBSOCKET:
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _websocket(self, scope: WebSocketScope, receive: Receive, send: Send) -> None:
        kind = route_class(scope["route_handler"])
        caller = Caller()
        try:
            self.services.guard.check(scope)
        except KernaiError:
            await send({"type": "websocket.close", "code": 1008, "reason": "forbidden"})
            return
        try:
            if kind is not RouteClass.PUBLIC:
                caller.principal, _ = self.services.authenticator.authenticate_limited(scope, kind)
        except KernaiError:
            await send({"type": "websocket.close", "code": 1008, "reason": "unauthorized"})
            return
        set_caller(scope, caller)
        await self.app(scope, receive, send)

    async def _http(self, scope: HTTPScope, receive: Receive, send: Send) -> None:
        services = self.services
        kind = route_class(scope["route_handler"])
        exchange = Exchange(
            receive,
            send,
            path=scope["path"],
            limit=services.body_limit(limited_path(scope)),
            keep=services.settings.trace_body_limit,
            headers=services.extra_headers,
        )
        caller = Caller()
        set_caller(scope, caller)
        begun = time.perf_counter()
        try:
            try:
                services.guard.check(scope)
                if kind is not RouteClass.PUBLIC:
                    caller.principal = services.authenticator.admit(scope, kind)
                await self._check_body(scope, receive, exchange.limit)
                await self.app(scope, exchange.receive, exchange.send)
            except KernaiError as exc:
                if exchange.started:
                    raise
                await self._refuse(scope, receive, exchange, exc)
        finally:
            traced = is_traced(scope["route_handler"], kind)
            services.recorder.record(scope, exchange, caller, time.perf_counter() - begun, traced)

    @staticmethod
    async def _check_body(scope: HTTPScope, receive: Receive, limit: int) -> None:
        """413 for a declared length over ``limit`` (the body is drained); 415 for a type the route does not
        read. A body that runs over ``limit`` without declaring it is stopped by :class:`Exchange`."""
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await drain(receive)
            raise PayloadTooLarge(
                f"Request body of {int(length)} bytes is over the limit of {limit} bytes for {scope['path']}"
            )
        check_content_type(scope)

    @staticmethod
    async def _refuse(scope: HTTPScope, receive: Receive, exchange: Exchange, exc: KernaiError) -> None:
        """Answer ``exc`` in the error format of the request's route."""
        request = Request[Any, Any, Any](scope)
        response = handle_kernai_error(request, exc).to_asgi_response(app=None, request=request)
        await response(scope, receive, exchange.send)
