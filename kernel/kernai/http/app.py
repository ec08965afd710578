"""The Litestar application: the core's routes and every plugin's, behind the gate; OpenAPI at ``/docs``.

The core serves health and version, API keys and observability. Everything else, each API surface and
the gallery included, comes from plugins through :func:`kernai.hookspecs.register_routes`, with what
it keeps running through :func:`kernai.hookspecs.register_lifespan`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from litestar import Litestar, Router
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from swagger_ui_bundle import swagger_ui_path

from kernai import __version__, backend_envs
from kernai.http.controllers.auth import AuthController, AuthSettingsController
from kernai.http.controllers.health import HealthController
from kernai.http.controllers.observability import ObservabilityController
from kernai.http.deps import provide_manager, provide_registry, provide_settings
from kernai.http.errors import EXCEPTION_HANDLERS
from kernai.http.exposure import open_routes_warning, route_prefixes
from kernai.http.operations import operations
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry
from kernai.plugins import registry as default_registry
from kernai.settings import Settings

log = logging.getLogger(__name__)

CORE_ROUTES: list[ControllerRouterHandler] = [
    HealthController,
    AuthController,
    AuthSettingsController,
    ObservabilityController,
]
"""The routes of the core itself: health and version, API keys, metrics, traces and logs."""
DOCS_ASSETS = "/docs/assets"
"""Swagger UI's files, served from the ``swagger-ui-bundle-v2`` package: the docs page works offline."""
Lifespan = Callable[[Litestar], AbstractAsyncContextManager[None]]


def _models(manager: ModelManager) -> Lifespan:
    """The model manager's lifespan: it is entered first, so the workers stop after every plugin's state."""

    @asynccontextmanager
    async def lifespan(_: Litestar) -> AsyncIterator[None]:
        await manager.start()
        try:
            yield
        finally:
            await manager.shutdown()

    return lifespan


def _plugin_parts(
    settings: Settings, registry: PluginRegistry
) -> tuple[list[ControllerRouterHandler], list[Lifespan]]:
    """The routes and lifespans of the plugins the settings do not disable."""
    skip = set(settings.disabled_plugins)
    if unknown := skip - {name for name, _ in registry.manager.list_name_plugin()}:
        log.warning("disabled_plugins names no loaded plugin: %s", ", ".join(sorted(unknown)))
    routes = [route for _, found in registry.contributions("register_routes", skip=skip) for route in found]
    lifespans = [found for _, found in registry.contributions("register_lifespan", skip=skip)]
    return routes, lifespans


def _cors(settings: Settings) -> CORSConfig | None:
    if not settings.cors_origins:
        return None
    return CORSConfig(
        allow_origins=settings.cors_origins,
        allow_headers=settings.cors_headers,
        # Litestar types these as the Method literals; the setting holds the names as given, which it
        # uses as plain strings
        allow_methods=settings.cors_methods,  # type: ignore[arg-type]
        allow_credentials=settings.cors_allow_credentials,
    )


def _openapi() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="kernai",
        version=__version__,
        description="Local AI inference server: OpenAI, Anthropic, Open Responses, LocalAI and llamactl "
        "APIs.",
        openapi_router=Router(
            "/docs", route_handlers=[], opt=route_opt(RouteClass.PUBLIC), include_in_schema=False
        ),
        render_plugins=[
            SwaggerRenderPlugin(
                path="/",
                js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
            )
        ],
    )


def create_app(settings: Settings, registry: PluginRegistry | None = None) -> Litestar:
    """Build the app for ``settings``; models start on first use and stop with the app."""
    registry = registry or default_registry(backend_envs.root(settings.data_path))
    for problem in registry.problems:
        (log.warning if problem.loaded else log.error)(problem.line())
    manager = ModelManager.open(settings, registry)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    ops = operations(settings, manager)
    routes, lifespans = _plugin_parts(settings, registry)
    docs_assets = create_static_files_router(
        DOCS_ASSETS, directories=[swagger_ui_path], include_in_schema=False, opt=route_opt(RouteClass.PUBLIC)
    )
    app = Litestar(
        route_handlers=[*CORE_ROUTES, *routes, docs_assets],
        state=State({"manager": manager, "settings": settings, "registry": registry, **ops.state}),
        dependencies={
            "manager": Provide(provide_manager, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "registry": Provide(provide_registry, sync_to_thread=False),
        },
        middleware=ops.middleware,
        request_max_body_size=None,  # the gate enforces the per-route limits of the settings
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=[_models(manager), *lifespans],
        cors_config=_cors(settings),
        openapi_config=_openapi(),
        debug=False,
    )
    required = ops.state["key_store"].required
    if (warning := open_routes_warning(settings, required, route_prefixes(app))) is not None:
        log.warning(warning)
    return app
