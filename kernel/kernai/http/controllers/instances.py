"""llamactl's management API: ``/api/v1/instances``, version, config, nodes; errors are
``{"error": "..."}``."""

from __future__ import annotations

from typing import Any, cast

import msgspec
from litestar import Controller, Request, Response, delete, get, post, put, route
from litestar.exceptions import NotFoundException
from litestar.types import ASGIApp, HTTPReceiveMessage, Receive, ReceiveMessage, Scope, Send
from litestar.utils import normalize_path
from litestar.utils.scope.state import ScopeState

from kernai import __version__
from kernai.auth.principal import Caller
from kernai.config import InvalidConfig, ModelConfig, parse_model_config
from kernai.errors import Conflict, InvalidRequest
from kernai.http.browser_guard import check_content_type
from kernai.http.controllers.models import ModelList, created_at, model_card
from kernai.http.errors import llamactl_shape
from kernai.http.gate import Gate
from kernai.http.routes import PROXIED_PATH, RouteClass, route_opt
from kernai.http.schemas.llamactl import Instance, InstanceOptions, NodeInfo, VersionInfo
from kernai.http.scope import set_caller
from kernai.instances import instance_source, is_instance
from kernai.manager import ManagedModel, ModelManager
from kernai.settings import Settings

NODE = "main"
SECONDS_PER_MINUTE = 60.0
LIFECYCLE_KEYS = (
    "auto_restart",
    "max_restarts",
    "restart_delay",
    "on_demand_start",
    "environment",
    "description",
    "pinned",
    "disabled",
    "parallel",
)
UNFORWARDED_HEADERS = (b"content-length", b"transfer-encoding")
MODEL_LISTS = ("/v1/models", "/models")
"""Paths that list models; through the proxy they list the instance alone, as its own server would."""


def config_data(options: InstanceOptions) -> dict[str, Any]:
    """A kernai model config mapping (without ``name``) from llamactl options."""
    data: dict[str, Any] = {"backend": options.backend_type}
    backend_options = dict(options.backend_options)
    if isinstance(model := backend_options.pop("model", None), str):
        backend_options["parameters"] = {**backend_options.get("parameters", {}), "model": model}
    data.update(backend_options)
    for key in LIFECYCLE_KEYS:
        if (value := getattr(options, key)) is not None:
            data[key] = value
    if options.idle_timeout is not None:
        data["idle_timeout"] = options.idle_timeout * SECONDS_PER_MINUTE
    return data


def instance_options(config: ModelConfig) -> InstanceOptions:
    backend_options: dict[str, Any] = {}
    if parameters := msgspec.to_builtins(config.parameters):
        backend_options["parameters"] = parameters
    for key in ("context_size", "threads", "gpu_layers"):
        if (value := getattr(config, key)) is not None:
            backend_options[key] = value
    if config.embeddings:
        backend_options["embeddings"] = True
    backend_options.update(config.options)
    return InstanceOptions(
        backend_type=config.backend,
        backend_options=backend_options,
        auto_restart=config.auto_restart,
        max_restarts=config.max_restarts,
        restart_delay=config.restart_delay,
        on_demand_start=config.on_demand_start,
        idle_timeout=None if config.idle_timeout is None else config.idle_timeout / SECONDS_PER_MINUTE,
        environment=config.environment,
        nodes=[NODE],
        description=config.description or None,
        pinned=config.pinned,
        disabled=config.disabled,
        parallel=config.parallel,
    )


def describe(model: ManagedModel, manager: ModelManager) -> Instance:
    row = manager.instances.row(model.name) if is_instance(model.config) else None
    worker = model.worker
    return Instance(
        name=model.name,
        status=model.status,
        created=created_at(model, manager),
        options=instance_options(model.config),
        id=row["id"] if row else None,
        source="instance" if row else model.config.source,
        pid=worker.pid if worker is not None and model.running else None,
        restarts=model.restarts,
        active_requests=model.admission.running,
        queued_requests=model.admission.waiting,
        error=model.last_error,
        log_tail=model.log_tail() if model.status == "failed" else None,
    )


def _validated(name: str, options: InstanceOptions, manager: ModelManager) -> dict[str, Any]:
    data = config_data(options)
    try:
        parse_model_config(
            {**data, "name": name},
            file=instance_source(name),
            models_dir=manager.settings.models_path,
            backends=manager.registry.backend_map(),
        )
    except InvalidConfig as exc:
        raise InvalidRequest(str(exc.error), param=exc.error.field) from None
    return data


def _stored_instance(manager: ModelManager, name: str) -> ManagedModel | None:
    """The model of an instance made through this API; ``None`` while its stored options make no valid
    config (a removed backend or model file), so that it can still be replaced or deleted."""
    if manager.instances.row(name) is not None:
        return manager.models.get(name)
    model = manager.get(name)
    raise Conflict(f"Instance '{name}' is defined by {model.config.source}; edit that file instead")


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


class InstancesController(Controller):
    path = "/api/v1"
    tags = ["llamactl"]
    opt = route_opt(RouteClass.MANAGEMENT, errors=llamactl_shape)

    @get("/instances", summary="List instances")
    async def list_instances(self, manager: ModelManager) -> list[Instance]:
        return [describe(model, manager) for model in manager.models.values()]

    @get("/instances/{name:str}", summary="Get an instance")
    async def get_instance(self, name: str, manager: ModelManager) -> Instance:
        return describe(manager.get(name), manager)

    @post("/instances/{name:str}", summary="Create an instance (kept in the database)", status_code=201)
    async def create_instance(self, name: str, data: InstanceOptions, manager: ModelManager) -> Instance:
        if name in manager.models or manager.instances.row(name) is not None:
            raise Conflict(f"Instance '{name}' already exists")
        manager.instances.put(name, _validated(name, data, manager))
        manager.reload()
        return describe(manager.get(name), manager)

    @put("/instances/{name:str}", summary="Replace an instance's options (restarts it if running)")
    async def update_instance(self, name: str, data: InstanceOptions, manager: ModelManager) -> Instance:
        current = _stored_instance(manager, name)
        was_running = current is not None and current.running
        manager.instances.put(name, _validated(name, data, manager))
        manager.reload()
        model = manager.get(name)
        if was_running and not model.running and not model.config.disabled:
            await manager.start_model(name)
        return describe(model, manager)

    @delete("/instances/{name:str}", summary="Delete an instance (stops it first)", status_code=204)
    async def delete_instance(self, name: str, manager: ModelManager) -> None:
        if _stored_instance(manager, name) is not None:
            await manager.unload(name)
        manager.instances.delete(name)
        manager.reload()

    @post("/instances/{name:str}/start", summary="Start an instance", status_code=200)
    async def start_instance(self, name: str, manager: ModelManager) -> Instance:
        return describe(await manager.start_model(name), manager)

    @post("/instances/{name:str}/stop", summary="Stop an instance", status_code=200)
    async def stop_instance(self, name: str, manager: ModelManager) -> Instance:
        await manager.unload(name)
        return describe(manager.get(name), manager)

    @post("/instances/{name:str}/restart", summary="Restart an instance", status_code=200)
    async def restart_instance(self, name: str, manager: ModelManager) -> Instance:
        return describe(await manager.restart_model(name), manager)

    @get("/instances/{name:str}/logs", summary="The last lines of an instance's log", media_type="text/plain")
    async def instance_logs(self, name: str, manager: ModelManager, lines: int = 100) -> str:
        model = manager.get(name)
        tail = list(model.logs) if lines < 0 else model.log_tail(lines)
        return "\n".join(tail) + ("\n" if tail else "")

    @route(
        "/instances/{name:str}/proxy/{path:path}",
        http_method=["GET", "POST"],
        status_code=200,
        opt={PROXIED_PATH: "path"},
        summary="The instance's own server: kernai's routes, served in-process, with the model set",
    )
    async def proxy(
        self, name: str, path: str, request: Request[Any, Any, Any], manager: ModelManager, caller: Caller
    ) -> ASGIApp:
        """Runs the route past the gate, which let this request in already (so it is counted and traced
        once). A key this route did not need (management auth off) is checked as the instance's own
        server would: as an inference request for this instance."""
        gate, scope = _inner_route(request, "/" + path.strip("/"), caller)
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
        if scope["path"] in MODEL_LISTS:
            return Response(ModelList([model_card(model, manager)])).to_asgi_response(
                app=None, request=request
            )
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

    @get("/version", summary="Server version")
    async def version(self) -> VersionInfo:
        return VersionInfo(__version__, "unknown", "unknown")

    @get("/config", summary="Server settings, secrets redacted")
    async def config(self, settings: Settings) -> dict[str, Any]:
        return settings.redacted()

    @get("/nodes", summary="Nodes (kernai runs on one)")
    async def nodes(self) -> dict[str, NodeInfo]:
        return {NODE: NodeInfo("")}

    @get("/nodes/{name:str}", summary="One node")
    async def node(self, name: str) -> NodeInfo:
        if name != NODE:
            raise NotFoundException(f"Node '{name}' not found")
        return NodeInfo("")
