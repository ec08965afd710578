"""The Litestar application: controllers, dependencies, error handlers, OpenAPI at ``/docs``."""

from __future__ import annotations

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.datastructures import State
from litestar.di import Provide
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import SwaggerRenderPlugin
from litestar.static_files import create_static_files_router
from swagger_ui_bundle import swagger_ui_path

from kernai import __version__
from kernai.http.controllers.anthropic import AnthropicController
from kernai.http.controllers.audio import AudioController
from kernai.http.controllers.auth import AuthController, AuthSettingsController
from kernai.http.controllers.detection import DetectionController
from kernai.http.controllers.gallery import GalleryController
from kernai.http.controllers.instances import InstancesController
from kernai.http.controllers.lifecycle import LifecycleController
from kernai.http.controllers.locallab import LocalLabController
from kernai.http.controllers.locallab_models import LocalLabModelsController
from kernai.http.controllers.models import ModelsController
from kernai.http.controllers.observability import ObservabilityController
from kernai.http.controllers.openai import OpenAIController
from kernai.http.controllers.rerank import RerankController
from kernai.http.controllers.responses import ResponsesController
from kernai.http.controllers.system import SystemController
from kernai.http.controllers.vad import VADController
from kernai.http.deps import provide_manager, provide_registry, provide_settings
from kernai.http.errors import EXCEPTION_HANDLERS
from kernai.http.operations import operations
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry
from kernai.plugins import registry as default_registry
from kernai.settings import Settings

CONTROLLERS = [
    # health, models, system
    SystemController,
    ModelsController,
    LifecycleController,
    ObservabilityController,
    # inference surfaces
    OpenAIController,
    AudioController,
    VADController,
    RerankController,
    DetectionController,
    AnthropicController,
    ResponsesController,
    LocalLabController,
    LocalLabModelsController,
    # management
    InstancesController,
    AuthController,
    AuthSettingsController,
    GalleryController,
]
DOCS_ASSETS = "/docs/assets"
"""Swagger UI's files, served from the ``swagger-ui-bundle-v2`` package: the docs page works offline."""


def create_app(settings: Settings, registry: PluginRegistry | None = None) -> Litestar:
    """Build the app for ``settings``; models start on first use and stop with the app."""
    registry = registry or default_registry()
    manager = ModelManager.open(settings, registry)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    ops = operations(settings, manager)

    async def startup() -> None:
        await manager.start()

    async def shutdown(app: Litestar) -> None:
        try:
            if "gallery" in app.state:  # its running downloads end 'interrupted' before the workers stop
                await app.state.gallery.shutdown()
        finally:
            await manager.shutdown()

    cors = (
        CORSConfig(
            allow_origins=settings.cors_origins,
            allow_headers=settings.cors_headers,
            # Litestar types these as the Method literals; the setting holds the names as given, which it
            # uses as plain strings
            allow_methods=settings.cors_methods,  # type: ignore[arg-type]
            allow_credentials=settings.cors_allow_credentials,
        )
        if settings.cors_origins
        else None
    )
    return Litestar(
        route_handlers=[
            *CONTROLLERS,
            create_static_files_router(DOCS_ASSETS, directories=[swagger_ui_path], include_in_schema=False),
        ],
        state=State({"manager": manager, "settings": settings, "registry": registry, **ops.state}),
        dependencies={
            "manager": Provide(provide_manager, sync_to_thread=False),
            "settings": Provide(provide_settings, sync_to_thread=False),
            "registry": Provide(provide_registry, sync_to_thread=False),
            **ops.dependencies,
        },
        middleware=ops.middleware,
        request_max_body_size=None,  # the gate enforces the per-route limits of the settings
        exception_handlers=EXCEPTION_HANDLERS,
        on_startup=[startup],
        on_shutdown=[shutdown],
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="kernai",
            version=__version__,
            description="Local AI inference server: OpenAI, Anthropic, Open Responses, LocalAI and llamactl "
            "APIs.",
            path="/docs",
            render_plugins=[
                SwaggerRenderPlugin(
                    path="/",
                    js_url=f"{DOCS_ASSETS}/swagger-ui-bundle.js",
                    css_url=f"{DOCS_ASSETS}/swagger-ui.css",
                    standalone_preset_js_url=f"{DOCS_ASSETS}/swagger-ui-standalone-preset.js",
                )
            ],
        ),
        debug=False,
    )
