"""LocalAI's gallery API: install and remove models (``/models/*``) and backends (``/backends/*``) as jobs;
management routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from litestar import Controller, Litestar, Request, delete, get, post
from litestar.datastructures import State
from litestar.di import Provide

from kernai import backend_envs
from kernai.backends import Backend
from kernai.gallery.jobs import Job, JobState
from kernai.gallery.service import GalleryService
from kernai.gallery.wire import (
    ApplyBackendRequest,
    ApplyModelRequest,
    AvailableBackend,
    AvailableModel,
    GalleryInfo,
    GalleryRef,
    InstalledBackend,
    JobRef,
    JobStatus,
    UpgradeInfo,
)
from kernai.http.routes import RouteClass, route_opt
from kernai.plugins import PluginInfo, reload_registry
from kernai.settings import GallerySource


class ServerHost:
    """The running server as the gallery sees it: new models and plugins are picked up at once."""

    def __init__(self, state: State) -> None:
        self.state = state

    def backends(self) -> dict[str, Backend]:
        return self.state.registry.backend_map()

    def plugins(self) -> list[PluginInfo]:
        return self.state.registry.plugins()

    async def stop_model(self, name: str) -> None:
        if name in self.state.manager.models:
            await self.state.manager.unload(name)

    async def models_changed(self) -> None:
        self.state.manager.reload()

    def busy_models(self, backends: set[str]) -> dict[str, str]:
        busy = {}
        for model in self.state.manager.models.values():
            if model.config.backend not in backends:
                continue
            if model.config.pinned:
                busy[model.name] = "pinned"
            elif model.starting or not model.idle:
                busy[model.name] = "busy"
        return busy

    async def backends_changed(self, changed: set[str]) -> None:
        manager = self.state.manager
        old = [model for model in manager.models.values() if model.config.backend in changed]
        registry = reload_registry(environments=backend_envs.root(self.state.settings.data_path))
        self.state.registry = registry
        manager.registry = registry
        manager.reload()  # new models on the new environments; the old ones are dropped
        why = "its backend was installed, upgraded or removed"
        await asyncio.gather(*(manager.supervisor.stop(model, why) for model in old))


@asynccontextmanager
async def lifespan(app: Litestar) -> AsyncIterator[None]:
    """Running downloads end ``interrupted`` when the server stops (before the workers stop)."""
    try:
        yield
    finally:
        if "gallery" in app.state:
            await app.state.gallery.shutdown()


def provide_gallery(state: State) -> GalleryService:
    """The app's gallery service, created on first use (which also closes records of interrupted jobs)
    and shut down with the server, before the models stop."""
    if "gallery" not in state:
        state.gallery = GalleryService(state.settings, ServerHost(state))
    return state.gallery


def _human(size: int) -> str:
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


def job_status(job: Job) -> JobStatus:
    return JobStatus(
        uuid=job.uuid,
        kind=job.kind,
        op=job.op,
        state=job.state.value,
        gallery_element_name=job.element,
        deletion=job.op == "delete",
        processed=job.finished,
        message=job.message,
        error=job.error,
        progress=job.progress,
        file_name=job.file_name,
        file_size=_human(job.file_size_bytes),
        downloaded_size=_human(job.downloaded_bytes),
        file_size_bytes=job.file_size_bytes,
        downloaded_bytes=job.downloaded_bytes,
        cancellable=job.cancellable and not job.finished,
        cancelled=job.cancelled or job.state is JobState.CANCELLED,
        created_at=job.created_at,
        updated_at=job.updated_at,
    )


def _job_ref(request: Request[Any, Any, Any], job: Job, prefix: str) -> JobRef:
    return JobRef(uuid=job.uuid, status=f"{str(request.base_url).rstrip('/')}{prefix}/jobs/{job.uuid}")


def _galleries(sources: list[GallerySource], errors: dict[str, str]) -> list[GalleryInfo]:
    return [GalleryInfo(name=g.name, url=g.url, error=errors.get(g.name)) for g in sources]


async def _upgrades(gallery: GalleryService) -> dict[str, UpgradeInfo]:
    return {
        u.name: UpgradeInfo(
            name=u.name,
            distribution=u.distribution,
            installed_version=u.installed_version,
            available_version=u.available_version,
            gallery=u.gallery,
        )
        for u in await gallery.upgrades()
    }


class GalleryController(Controller):
    tags = ["gallery"]
    opt = route_opt(RouteClass.MANAGEMENT)
    dependencies = {"gallery": Provide(provide_gallery, sync_to_thread=False)}

    # --- models -----------------------------------------------------------------------------------

    @get("/models/available", summary="Models the configured galleries offer")
    async def available_models(self, gallery: GalleryService) -> list[AvailableModel]:
        found, _ = await gallery.available_models()
        urls = {g.name: g.url for g in gallery.settings.galleries}
        return [
            AvailableModel(
                id=m.id,
                name=m.entry.name,
                gallery=GalleryRef(name=m.gallery, url=urls[m.gallery]),
                installed=m.installed,
                description=m.entry.description,
                license=m.entry.license,
                tags=m.entry.tags,
                urls=m.entry.urls,
                icon=m.entry.icon,
                size=m.entry.size,
                backend=m.entry.backend,
                files=m.entry.files,
                overrides=m.entry.overrides,
            )
            for m in found
        ]

    @get("/models/galleries", summary="The configured model galleries")
    async def model_galleries(self, gallery: GalleryService) -> list[GalleryInfo]:
        _, errors = await gallery.available_models()
        return _galleries(gallery.settings.galleries, errors)

    @post(
        "/models/apply", summary="Install a model from a gallery (id) or a definition (url)", status_code=200
    )
    async def apply_model(
        self, request: Request[Any, Any, Any], data: ApplyModelRequest, gallery: GalleryService
    ) -> JobRef:
        job = await gallery.apply_model(id=data.id, url=data.url, name=data.name, overrides=data.overrides)
        return _job_ref(request, job, "/models")

    @post("/models/delete/{name:str}", summary="Remove an installed model and its files", status_code=200)
    async def delete_model(
        self, request: Request[Any, Any, Any], name: str, gallery: GalleryService
    ) -> JobRef:
        return _job_ref(request, await gallery.delete_model(name), "/models")

    @get("/models/jobs", summary="Every model job, by uuid")
    async def model_jobs(self, gallery: GalleryService) -> dict[str, JobStatus]:
        return {job.uuid: job_status(job) for job in gallery.jobs("model")}

    @get("/models/jobs/{uuid:str}", summary="One model job's progress")
    async def model_job(self, uuid: str, gallery: GalleryService) -> JobStatus:
        return job_status(gallery.job(uuid))

    @post("/models/jobs/{uuid:str}/cancel", summary="Cancel a model job", status_code=200)
    async def cancel_model_job(self, uuid: str, gallery: GalleryService) -> JobStatus:
        return job_status(gallery.cancel(uuid))

    @delete("/models/jobs/{uuid:str}", summary="Cancel a model job", status_code=200)
    async def delete_model_job(self, uuid: str, gallery: GalleryService) -> JobStatus:
        return job_status(gallery.cancel(uuid))

    # --- backends ---------------------------------------------------------------------------------

    @get("/backends", summary="Installed backends")
    async def installed_backends(self, state: State) -> list[InstalledBackend]:
        registry = state.registry
        versions = {(info.name, info.environment): info for info in registry.plugins()}
        return [
            InstalledBackend(
                name=name,
                plugin=entry.plugin,
                distribution=versions[entry.plugin, entry.environment].distribution,
                version=versions[entry.plugin, entry.environment].version,
                capabilities=[c.value for c in entry.backend.capabilities],
                description=entry.backend.description,
                environment=entry.environment,
            )
            for name, entry in sorted(registry.backends.items())
        ]

    @get("/backends/available", summary="Backends the configured galleries offer")
    async def available_backends(self, gallery: GalleryService) -> list[AvailableBackend]:
        found, _ = await gallery.available_backends()
        urls = {g.name: g.url for g in gallery.settings.backend_galleries}
        return [
            AvailableBackend(
                id=b.id,
                name=b.entry.name,
                gallery=GalleryRef(name=b.gallery, url=urls[b.gallery]),
                installed=b.installed,
                distribution=b.entry.distribution,
                installed_version=b.installed_version,
                version=b.entry.version,
                description=b.entry.description,
                capabilities=b.entry.capabilities,
                license=b.entry.license,
                urls=b.entry.urls,
                tags=b.entry.tags,
                variants=b.entry.variants,
            )
            for b in found
        ]

    @get("/backends/galleries", summary="The configured backend galleries")
    async def backend_galleries(self, gallery: GalleryService) -> list[GalleryInfo]:
        _, errors = await gallery.available_backends()
        return _galleries(gallery.settings.backend_galleries, errors)

    @post(
        "/backends/apply",
        summary="Install a backend plugin into an environment of its own",
        description="409 while another job changes the backend, for a backend the server's own environment "
        "provides, and (unless `force`) while a model on an installed one is pinned or busy.",
        status_code=200,
    )
    async def apply_backend(
        self, request: Request[Any, Any, Any], data: ApplyBackendRequest, gallery: GalleryService
    ) -> JobRef:
        job = await gallery.apply_backend(data.id, data.variant, force=data.force)
        return _job_ref(request, job, "/backends")

    @post(
        "/backends/delete/{name:str}",
        summary="Remove a backend's environment",
        description="Its workers stop first. 409 for a backend the server's own environment provides, while "
        "another job changes it, and (unless `force`) while a model on it is pinned or busy.",
        status_code=200,
    )
    async def delete_backend(
        self, request: Request[Any, Any, Any], name: str, gallery: GalleryService, force: bool = False
    ) -> JobRef:
        return _job_ref(request, await gallery.delete_backend(name, force=force), "/backends")

    @get("/backends/jobs", summary="Every backend job, by uuid")
    async def backend_jobs(self, gallery: GalleryService) -> dict[str, JobStatus]:
        return {job.uuid: job_status(job) for job in gallery.jobs("backend")}

    @get("/backends/jobs/{uuid:str}", summary="One backend job's progress")
    async def backend_job(self, uuid: str, gallery: GalleryService) -> JobStatus:
        return job_status(gallery.job(uuid))

    @get("/backends/upgrades", summary="Installed backends with a newer version in a gallery")
    async def upgrades(self, gallery: GalleryService) -> dict[str, UpgradeInfo]:
        return await _upgrades(gallery)

    @post("/backends/upgrades/check", summary="Read the galleries again and list upgrades", status_code=200)
    async def check_upgrades(self, gallery: GalleryService) -> dict[str, UpgradeInfo]:
        return await _upgrades(gallery)

    @post(
        "/backends/upgrade/{name:str}",
        summary="Upgrade an installed backend into a new environment",
        description="The old environment serves until the new one is ready. 409 as for delete.",
        status_code=200,
    )
    async def upgrade_backend(
        self, request: Request[Any, Any, Any], name: str, gallery: GalleryService, force: bool = False
    ) -> JobRef:
        return _job_ref(request, await gallery.upgrade_backend(name, force=force), "/backends")
