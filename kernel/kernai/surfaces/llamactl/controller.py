"""llamactl's management API under ``/api/v1``: instances, version, config, nodes."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, delete, get, post, put
from litestar.exceptions import NotFoundException

from kernai import __version__
from kernai.config import InvalidConfig, ModelConfig, parse_model_config
from kernai.errors import Conflict, InvalidRequest
from kernai.http.wire import QueryInt64
from kernai.instances import created_at, instance_source, is_instance
from kernai.manager import ManagedModel, ModelManager
from kernai.settings import Settings
from kernai.surfaces.llamactl.commands import LLAMA_CPP
from kernai.surfaces.llamactl.schemas import Instance, InstanceOptions, NodeInfo, VersionInfo

NODE = "main"
SECONDS_PER_MINUTE = 60.0
BACKEND_ALIASES = {"llama_cpp": LLAMA_CPP}
"""llamactl's backend type names that name a kernai backend differently."""
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


def config_data(options: InstanceOptions) -> dict[str, Any]:
    """A kernai model config mapping (without ``name``) from llamactl options."""
    data: dict[str, Any] = {"backend": BACKEND_ALIASES.get(options.backend_type, options.backend_type)}
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
        created=created_at(model.config, manager.instances),
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


class InstancesController(Controller):
    tags = ["llamactl"]

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
    async def instance_logs(self, name: str, manager: ModelManager, lines: QueryInt64 = 100) -> str:
        model = manager.get(name)
        tail = list(model.logs) if lines < 0 else model.log_tail(lines)
        return "\n".join(tail) + ("\n" if tail else "")

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
