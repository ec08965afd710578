"""llamactl's instance proxy, ``/api/v1/instances/{name}/proxy/{path}``: the instance's own server, which
kernai serves in-process by running its own route at ``path`` with the model set to the instance.

The request passes the gate once, as the proxy route (counted and traced once, with the proxy route's
class); its body limit is its inner route's (the handler's ``opt`` names the path parameter), and its
body type is checked against the inner route. A model list through the proxy lists the instance alone
(:func:`kernai.http.scope.set_instance`), as its own server would; for a llama-cpp instance, llama-server's
own paths (``completion``, ``tokenize``, ``props`` ...) run its ``/llama-cpp/{name}/`` routes.
"""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Controller, Request, Response, route
from litestar.types import ASGIApp, HTTPReceiveMessage, Receive, ReceiveMessage, Scope, Send
from litestar.utils import normalize_path
from litestar.utils.scope.state import ScopeState

from kernai.auth.principal import Caller
from kernai.http.browser_guard import check_content_type
from kernai.http.gate import Gate
from kernai.http.routes import PROXIED_PATH, RouteClass
from kernai.http.scope import caller_of, set_caller, set_instance
from kernai.manager import ModelManager
from kernai.surfaces.llamactl.commands import LLAMA_CPP
from kernai.surfaces.llamactl.native import NATIVE_PATHS, instance_page

UNFORWARDED_HEADERS = (b"content-length", b"transfer-encoding")


def _inner_route(request: Request[Any, Any, Any], path: str, caller: Caller) -> tuple[Gate, Scope]:
    """The gate in front of the route at ``path``, and a copy of the request's scope routed there, for
    ``caller``."""
    app, handler, path, params, template = request.app.asgi_router.handle_routing(
        path=normalize_path(path), method=request.method
    )
    assert isinstance(app, Gate), "every route is behind the gate"
    scope = cast(
        Scope,
        {
            **request.scope,
            "path": path,
            "raw_path": path.encode(),
            "headers": [(k, v) for k, v in request.scope["headers"] if k not in UNFORWARDED_HEADERS],
            "path_params": params,
            "route_handler": handler,
            "path_template": template,
            "state": {},
        },
    )
    ScopeState.from_scope(scope).exception_handlers = handler.resolve_exception_handlers()
    set_caller(scope, caller)
    return app, scope


def _replaying(app: ASGIApp, scope: Scope, body: bytes) -> ASGIApp:
    """An ASGI app that runs ``app`` over ``scope`` with ``body`` as the request body; the rest of
    the connection (its disconnect, the response) is the proxy request's own."""
    scope = cast(Scope, {**scope, "headers": [*scope["headers"], (b"content-length", b"%d" % len(body))]})

    async def replay(_: Scope, receive: Receive, send: Send) -> None:
        pending: list[HTTPReceiveMessage] = [{"type": "http.request", "body": body, "more_body": False}]

        async def replayed() -> ReceiveMessage:
            return pending.pop() if pending else await receive()

        await app(scope, replayed, send)

    return replay


def _inner_path(manager: ModelManager, name: str, path: str) -> str:
    """The route a proxied path runs: llama-server's own (``/completion``, ``/props`` ...) for a llama-cpp
    instance, else kernai's route at that path."""
    path = "/" + path.strip("/")
    model = manager.models.get(name)
    if model is not None and model.config.backend == LLAMA_CPP and path.strip("/") in NATIVE_PATHS:
        return f"/llama-cpp/{name}{path}"
    return path


class InstanceProxyController(Controller):
    tags = ["llamactl"]

    @route(
        "/instances/{name:str}/proxy",
        http_method=["GET", "POST"],
        status_code=200,
        media_type="text/html",
        summary="The instance's own server's root: a page for the instance (llama-server's web UI)",
    )
    async def proxy_root(self, name: str, manager: ModelManager, scope: Scope) -> str:
        caller = caller_of(scope)
        model = manager.get(name, caller=caller)
        caller.use(name)
        return instance_page(model)

    @route(
        "/instances/{name:str}/proxy/{path:path}",
        http_method=["GET", "POST"],
        status_code=200,
        opt={PROXIED_PATH: "path"},
        summary="The instance's own server: kernai's routes, served in-process, with the model set",
    )
    async def proxy(
        self, name: str, path: str, request: Request[Any, Any, Any], manager: ModelManager
    ) -> ASGIApp:
        """Runs the route past the gate, which let this request in already (so it is counted and traced
        once). A key this route did not need (management auth off) is checked as the instance's own
        server would: as an inference request for this instance."""
        caller = caller_of(request.scope)
        gate, scope = _inner_route(request, _inner_path(manager, name, path), caller)
        set_instance(scope, name)
        if caller.principal is None:  # no key was needed to get here
            authenticator = gate.services.authenticator
            caller.principal, _ = authenticator.authenticate_limited(scope, RouteClass.INFERENCE)
        model = manager.get(name, caller=caller)
        caller.use(name)
        if scope["path"] == "/health":
            reply = Response(
                {"status": "ok" if model.running else model.status}, status_code=200 if model.running else 503
            )
            return reply.to_asgi_response(app=None, request=request)
        check_content_type(scope)
        body = await request.body()
        if body and request.headers.get("content-type", "").startswith("application/json"):
            try:
                payload = msgspec.json.decode(body)
            except msgspec.DecodeError:
                payload = None
            if isinstance(payload, dict):
                body = msgspec.json.encode({**payload, "model": name})
        return _replaying(gate.app, scope, body)
