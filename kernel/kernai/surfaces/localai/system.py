"""LocalAI's system routes: ``/system`` (installed backends, loaded models), ``/backend/monitor`` and
``/backend/shutdown``, each also under ``/v1``."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post
from msgspec import Struct

from kernai import __version__
from kernai.discovery import PluginProblem
from kernai.errors import InvalidRequest
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ModelManager
from kernai.plugins import PluginRegistry


class BackendInfo(Struct):
    name: str
    plugin: str
    capabilities: list[str]
    description: str
    environment: str | None = None
    """The backend environment its workers run in; ``null``: the server's own (a development install)."""


class LoadedModel(Struct):
    id: str
    backend: str
    state: str
    pid: int | None


class SystemInfo(Struct):
    version: str
    backends: list[BackendInfo]
    loaded_models: list[LoadedModel]
    plugin_errors: dict[str, str]
    """Each plugin with a problem, and the problem's line (see ``plugin_problems``)."""
    plugin_problems: list[PluginProblem]
    """Plugins left out at start-up, or loaded with trouble (a duplicate or leftover distribution)."""


class ModelRef(Struct):
    model: str


class Message(Struct):
    message: str


async def model_from(request: Request[Any, Any, Any], model: str | None) -> str:
    """LocalAI sends ``{"model": ...}`` as a body even on GET; a query parameter works too."""
    if model:
        return model
    body = await request.body()
    if body.strip():
        try:
            return msgspec.json.decode(body, type=ModelRef).model
        except msgspec.DecodeError as exc:
            raise InvalidRequest(f"Invalid request: {exc}", param="model") from None
    raise InvalidRequest("Missing 'model': name the model to monitor", param="model")


class SystemController(Controller):
    tags = ["system"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @get(["/system", "/v1/system"], summary="Installed backends and loaded models")
    async def system(self, manager: ModelManager, registry: PluginRegistry) -> SystemInfo:
        backends = [
            BackendInfo(
                name,
                entry.plugin,
                [c.value for c in entry.backend.capabilities],
                entry.backend.description,
                entry.environment,
            )
            for name, entry in sorted(registry.backends.items())
        ]
        loaded = [
            LoadedModel(m.name, m.config.backend, m.state.value, m.worker.pid if m.worker else None)
            for m in manager.models.values()
            if m.running
        ]
        return SystemInfo(__version__, backends, loaded, registry.load_errors, registry.problems)

    @get(["/backend/monitor", "/v1/backend/monitor"], summary="State and memory of a model's worker")
    async def monitor(
        self, request: Request[Any, Any, Any], manager: ModelManager, model: str | None = None
    ) -> dict[str, Any]:
        return await manager.monitor(await model_from(request, model))

    @post(["/backend/shutdown", "/v1/backend/shutdown"], summary="Stop a model's worker", status_code=200)
    async def shutdown(self, data: ModelRef, manager: ModelManager) -> Message:
        stopped = await manager.unload(data.model)
        return Message(
            f"model '{data.model}' stopped" if stopped else f"model '{data.model}' was not running"
        )
