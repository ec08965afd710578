"""Running gallery jobs: the one object the HTTP API and the CLI both use.

A :class:`Host` tells the service what is installed and is told when that changes: the server's
host reloads the model manager and the plugin registry, so new models and backends are usable at
once; the CLI's host works on the directories alone.

A job cancelled by its user ends ``cancelled`` and leaves nothing behind; one cancelled otherwise
(:meth:`GalleryService.shutdown`, or the CLI's Ctrl-C) ends ``interrupted`` and keeps its partial
downloads, so that applying it again resumes them.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from msgspec import Struct

from kernai.backends import Backend
from kernai.errors import InvalidRequest, KernaiError
from kernai.gallery import backends as pip_backends
from kernai.gallery import catalog
from kernai.gallery import models as model_files
from kernai.gallery.jobs import Job, JobState, JobStore, Reporter, interrupt, new_job
from kernai.gallery.schema import BackendEntry, ModelEntry
from kernai.gallery.sources import FetchContext, FetchError
from kernai.plugins import PluginInfo
from kernai.settings import Settings

log = logging.getLogger(__name__)

Listener = Callable[[Job], None]


class Conflict(KernaiError):
    status_code = 409
    error_type = "conflict_error"


class NotFound(KernaiError):
    status_code = 404
    error_type = "invalid_request_error"


class Host(Protocol):
    """What the service needs from whoever runs it."""

    def backends(self) -> Mapping[str, Backend]: ...

    def plugins(self) -> list[PluginInfo]: ...

    async def stop_model(self, name: str) -> None:
        """Stop the model's worker, if it runs: it is about to be removed."""

    async def models_changed(self) -> None:
        """The models directory changed: pick up new, changed and removed configs."""

    async def backends_changed(self, replaced: PluginInfo | None = None) -> None:
        """Plugins were installed or removed: load them again. ``replaced`` was upgraded or removed:
        its loaded code is dropped and its running models stop."""


class AvailableModel(Struct):
    id: str
    gallery: str
    installed: bool
    entry: ModelEntry


class AvailableBackend(Struct):
    id: str
    gallery: str
    installed: bool
    installed_version: str | None
    entry: BackendEntry


class GalleryService:
    """Starts jobs as asyncio tasks, records them in the job store, and cancels them on request."""

    def __init__(self, settings: Settings, host: Host, store: JobStore | None = None) -> None:
        self.settings = settings
        self.host = host
        self.store = store or JobStore(settings.data_path / "gallery.db")
        self.store.mark_interrupted()
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.running: dict[str, Job] = {}
        self._pip_lock = asyncio.Lock()

    @property
    def models_dir(self) -> Path:
        return self.settings.models_path

    # --- listings ---------------------------------------------------------------------------------

    async def available_models(self) -> tuple[list[AvailableModel], dict[str, str]]:
        listing = await catalog.list_models(self.settings.galleries)
        installed = model_files.installed(self.models_dir)
        sources = {record.source for record in installed.values()}
        found = [
            AvailableModel(f.id, f.gallery.name, f.id in sources or f.entry.name in installed, f.entry)
            for f in listing.found
        ]
        return found, listing.errors

    async def available_backends(self) -> tuple[list[AvailableBackend], dict[str, str]]:
        listing = await catalog.list_backends(self.settings.backend_galleries)
        versions = {info.distribution: info.version for info in self.host.plugins() if info.distribution}
        found = [
            AvailableBackend(
                f.id,
                f.gallery.name,
                f.entry.distribution in versions,
                versions.get(f.entry.distribution),
                f.entry,
            )
            for f in listing.found
        ]
        return found, listing.errors

    def job(self, uuid: str) -> Job:
        job = self.running.get(uuid) or self.store.get(uuid)
        if job is None:
            raise NotFound(f"no job '{uuid}'", param="uuid", code="not_found")
        return job

    def jobs(self, kind: Literal["model", "backend"]) -> list[Job]:
        return [self.running.get(job.uuid, job) for job in self.store.list(kind)]

    # --- models -----------------------------------------------------------------------------------

    async def apply_model(
        self,
        *,
        id: str | None = None,
        url: str | None = None,
        name: str | None = None,
        overrides: Mapping[str, Any] | None = None,
        listener: Listener | None = None,
    ) -> Job:
        """Start installing a gallery entry (``id``) or a model definition at ``url``."""
        if bool(id) == bool(url):
            raise InvalidRequest("give exactly one of 'id' and 'url'", param="id")
        if id:
            found = catalog.find(await catalog.list_models(self.settings.galleries), id, "model")
            entry, source = found.entry, found.id
            origin, trusted = f"gallery '{found.gallery.name}'", found.gallery.trusted
        else:
            assert url is not None
            entry, source = await catalog.model_from_url(url), url
            origin, trusted = url, False
        name = name or entry.name
        model_files.check_name(name)
        model_files.check_filenames(entry, self.models_dir)
        config = model_files.build_config(entry, name, overrides or {})
        model_files.check_backend(config, self.host.backends())
        model_files.check_entry_environment(entry, config, origin, trusted)
        self._refuse_busy("model", name)
        job = new_job("model", "install", name, source)

        async def work(reporter: Reporter) -> None:
            with self._scratch(job) as context:
                await model_files.install_model(
                    entry,
                    name=name,
                    source=source,
                    overrides=overrides or {},
                    models_dir=self.models_dir,
                    backends=self.host.backends(),
                    context=context,
                    reporter=reporter,
                )
            await self.host.models_changed()
            reporter.message(f"installed model '{name}'")

        return self._start(job, work, listener)

    async def delete_model(self, name: str) -> Job:
        """Remove an installed model: its worker stops, its config and gallery files go."""
        if model_files.find_config_file(self.models_dir, name) is None:
            raise NotFound(f"The model '{name}' does not exist", param="name", code="model_not_found")
        self._refuse_busy("model", name)
        job = new_job("model", "delete", name, cancellable=False)

        async def work(reporter: Reporter) -> None:
            await self.host.stop_model(name)
            removed = model_files.delete_model(self.models_dir, name)
            await self.host.models_changed()
            reporter.message(f"removed {', '.join(removed)}")

        return self._start(job, work, None)

    # --- backends ---------------------------------------------------------------------------------

    async def apply_backend(
        self, id: str, variant: str | None = None, listener: Listener | None = None
    ) -> Job:
        """Start pip-installing a backend entry (the detected hardware variant unless ``variant``)."""
        found = catalog.find(await catalog.list_backends(self.settings.backend_galleries), id, "backend")
        entry: BackendEntry = found.entry
        try:
            variant_name, chosen = pip_backends.choose_variant(entry, variant)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="variant") from None
        requirement = catalog.pip_target(found, chosen.pip or entry.pip)
        self._refuse_busy("backend", entry.name)
        job = new_job("backend", "install", entry.name, found.id, cancellable=False)

        async def work(reporter: Reporter) -> None:
            async with self._pip_lock:
                reporter.message(f"pip install {requirement} (variant {variant_name})")
                await pip_backends.install(requirement, chosen, reporter.message)
            await self.host.backends_changed()
            if entry.name not in self.host.backends():
                raise InvalidRequest(
                    f"'{entry.distribution}' installed, but no plugin registers backend '{entry.name}'"
                )
            reporter.message(f"installed backend '{entry.name}' ({variant_name})")

        return self._start(job, work, listener)

    async def delete_backend(self, name: str, listener: Listener | None = None) -> Job:
        """pip-uninstall the distribution that provides backend ``name``."""
        plugin = pip_backends.plugin_of(self.host.plugins(), name)
        if plugin is None:
            raise NotFound(f"no installed backend '{name}'", param="name", code="not_found")
        if plugin.distribution is None or plugin.distribution == "kernai":
            raise InvalidRequest(f"backend '{name}' is not provided by a separate distribution", param="name")
        distribution = plugin.distribution
        self._refuse_busy("backend", name)
        job = new_job("backend", "delete", name, distribution, cancellable=False)

        async def work(reporter: Reporter) -> None:
            async with self._pip_lock:
                await pip_backends.uninstall(distribution, reporter.message)
            await self.host.backends_changed(replaced=plugin)
            if name in self.host.backends():
                raise InvalidRequest(
                    f"pip did not remove '{distribution}' (pip said: {reporter.job.message})"
                )
            reporter.message(f"removed backend '{name}' ({distribution})")

        return self._start(job, work, listener)

    async def upgrades(self) -> list[pip_backends.Upgrade]:
        """Installed backends for which a gallery offers a newer version."""
        available, _ = await self.available_backends()
        return [
            pip_backends.Upgrade(
                a.entry.name,
                a.entry.distribution,
                a.installed_version or "",
                a.entry.version or "",
                a.gallery,
            )
            for a in available
            if a.installed and pip_backends.newer(a.entry.version, a.installed_version)
        ]

    async def upgrade_backend(self, name: str, listener: Listener | None = None) -> Job:
        """pip-install the gallery's newer version of an installed backend."""
        plugin = pip_backends.plugin_of(self.host.plugins(), name)
        if plugin is None:
            raise NotFound(f"no installed backend '{name}'", param="name", code="not_found")
        found = catalog.find(await catalog.list_backends(self.settings.backend_galleries), name, "backend")
        entry: BackendEntry = found.entry
        _, chosen = pip_backends.choose_variant(entry)
        requirement = catalog.pip_target(found, chosen.pip or entry.pip)
        self._refuse_busy("backend", name)
        job = new_job("backend", "upgrade", name, found.id, cancellable=False)

        async def work(reporter: Reporter) -> None:
            async with self._pip_lock:
                await pip_backends.install(requirement, chosen, reporter.message, upgrade=True)
            await self.host.backends_changed(replaced=plugin)
            reporter.message(f"upgraded backend '{name}'")

        return self._start(job, work, listener)

    # --- running jobs -----------------------------------------------------------------------------

    async def shutdown(self) -> None:
        """The server is stopping: cancellable jobs (downloads) end ``interrupted``. Others (pip runs,
        deletes) are not stopped half way; the next start closes their records if they never finished."""
        tasks = [self.tasks[u] for u, job in self.running.items() if job.cancellable and u in self.tasks]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def cancel(self, uuid: str) -> Job:
        job = self.job(uuid)
        task = self.tasks.get(uuid)
        if job.finished or task is None:
            raise Conflict(f"job '{uuid}' has already {job.state.value}", code="job_finished")
        if not job.cancellable:
            raise Conflict(f"job '{uuid}' cannot be cancelled", code="not_cancellable")
        job.cancelled = True
        task.cancel()
        return job

    async def wait(self, job: Job) -> Job:
        """Wait for a job of this process to finish and return its final record."""
        task = self.tasks.get(job.uuid)
        if task is not None:
            await asyncio.shield(task)
        return self.job(job.uuid)

    def _refuse_busy(self, kind: str, element: str) -> None:
        for job in self.running.values():
            if job.kind == kind and job.element == element:
                raise Conflict(
                    f"{kind} '{element}' already has a job running ({job.uuid})", code="job_running"
                )

    def _start(self, job: Job, work: Callable[[Reporter], Awaitable[None]], listener: Listener | None) -> Job:
        self.running[job.uuid] = job
        self.store.save(job)
        task = asyncio.get_running_loop().create_task(self._run(job, work, listener))
        task.add_done_callback(lambda _: self._settle(job, listener))
        self.tasks[job.uuid] = task
        return job

    async def _run(
        self, job: Job, work: Callable[[Reporter], Awaitable[None]], listener: Listener | None
    ) -> None:
        reporter = Reporter(job, self.store, listener)
        job.state = JobState.RUNNING
        try:
            await work(reporter)
            job.state, job.progress = JobState.DONE, 100.0
        except asyncio.CancelledError:
            self._cancelled(job)
        except (KernaiError, FetchError, pip_backends.PipFailed, OSError, ValueError, LookupError) as exc:
            job.state = JobState.FAILED
            job.error = job.message = getattr(exc, "message", None) or str(exc)
        except Exception as exc:  # a bug must fail the job, not vanish with the task
            log.exception("gallery job %s failed", job.uuid)
            job.state = JobState.FAILED
            job.error = job.message = f"{type(exc).__name__}: {exc}"

    def _settle(self, job: Job, listener: Listener | None) -> None:
        """Record how the job ended (also for a job cancelled before it started)."""
        if not job.finished:
            self._cancelled(job)
        job.cancellable = False
        self.store.save(job)
        self.running.pop(job.uuid, None)
        self.tasks.pop(job.uuid, None)
        if listener is not None:
            listener(job)

    @staticmethod
    def _cancelled(job: Job) -> None:
        if job.cancelled:  # set by cancel(): the user's
            job.state, job.message = JobState.CANCELLED, "cancelled"
        else:
            interrupt(job, "stopped (server shutdown or Ctrl-C) before it finished; apply it again to resume")

    def _scratch(self, job: Job) -> _Scratch:
        return _Scratch(self.settings.data_path / "gallery-tmp" / job.uuid)


class _Scratch:
    """A job's scratch folder (for wheels pip downloads), removed when the job ends."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __enter__(self) -> FetchContext:
        self.path.mkdir(parents=True, exist_ok=True)
        return FetchContext(self.path)

    def __exit__(self, *exc: object) -> None:
        shutil.rmtree(self.path, ignore_errors=True)
