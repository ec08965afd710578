"""LocalLab's model and system routes: ``/models/load|unload|current``, ``/system/info``, ``/health``.

LocalLab serves one model at a time; here several may run, and "current" is the one used last.
Errors are ``{"detail": "..."}`` as LocalLab's clients expect.
"""

from __future__ import annotations

import time

import psutil
from litestar import Controller, get, post

from kernai import __version__
from kernai.errors import InvalidRequest
from kernai.http.routes import RouteClass, route_opt
from kernai.manager import ManagedModel, ModelManager
from kernai.surfaces.locallab.errors import detail_shape
from kernai.surfaces.locallab.schemas import (
    CurrentModel,
    Health,
    LoadRequest,
    ModelAction,
    SystemInfo,
    UnloadRequest,
)

STARTED = time.time()


def _current(manager: ModelManager) -> ManagedModel | None:
    running = [m for m in manager.models.values() if m.running]
    return max(running, key=lambda m: m.last_used, default=None)


class LocalLabHealthController(Controller):
    tags = ["locallab"]
    opt = route_opt(RouteClass.PUBLIC, errors=detail_shape)

    @get("/health", summary="Health (LocalLab)")
    async def health(self, manager: ModelManager) -> Health:
        current = _current(manager)
        return Health("healthy", current.name if current else None, __version__)


class LocalLabModelsController(Controller):
    tags = ["locallab"]
    opt = route_opt(RouteClass.MANAGEMENT, errors=detail_shape)

    @get("/system/info", summary="CPU, memory, loaded models and uptime (LocalLab)")
    async def system_info(self, manager: ModelManager) -> SystemInfo:
        memory = psutil.virtual_memory()
        current = _current(manager)
        requests = sum(
            int(sample.value)
            for family in manager.metrics.requests.collect()
            for sample in family.samples
            if sample.name.endswith("_total")
        )
        return SystemInfo(
            version=__version__,
            cpu_usage=psutil.cpu_percent(interval=None),
            memory_usage=memory.percent,
            memory_total=memory.total,
            memory_available=memory.available,
            active_model=current.name if current else None,
            loaded_models=[m.name for m in manager.models.values() if m.running],
            uptime=round(time.time() - STARTED, 3),
            request_count=requests,
        )

    @post("/models/load", summary="Load a model (LocalLab)", status_code=200)
    async def load(self, data: LoadRequest, manager: ModelManager) -> ModelAction:
        model = await manager.start_model(data.model_id)
        return ModelAction("success", f"Model {model.name} loaded successfully", model.name)

    @post("/models/unload", summary="Unload the current model, or the one named (LocalLab)", status_code=200)
    async def unload(self, manager: ModelManager, data: UnloadRequest | None = None) -> ModelAction:
        name = data.model_id if data and data.model_id else None
        if name is None:
            current = _current(manager)
            if current is None:
                raise InvalidRequest("No model is loaded")
            name = current.name
        await manager.unload(name)
        return ModelAction("success", f"Model {name} unloaded successfully", name)

    @get("/models/current", summary="The model used last (LocalLab)")
    async def current(self, manager: ModelManager) -> CurrentModel:
        current = _current(manager)
        if current is None:
            return CurrentModel(None, False, "No model loaded")
        return CurrentModel(current.name, True, current.status, current.config.backend, current.load_seconds)
