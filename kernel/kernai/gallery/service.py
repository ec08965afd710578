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
import importlib.metadata
import logging
import shutil
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol

from msgspec import Struct
from packaging.utils import canonicalize_name

from kernai import backend_envs
from kernai.backend_envs.declarations import UnreadableEnvironment, declarations
from kernai.backends import Backend
from kernai.errors import InvalidRequest, KernaiError
from kernai.gallery import backends as pip_backends
from kernai.gallery import catalog
from kernai.gallery import models as model_files
from kernai.gallery.jobs import Job, JobState, JobStore, Reporter, interrupt, new_job
from kernai.gallery.schema import BackendEntry, BackendVariant, ModelEntry
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

    def busy_models(self, backends: set[str]) -> dict[str, str]:
        """The models on these backends that an upgrade or removal must not stop: name -> why (pinned,
        busy)."""

    async def stop_model(self, name: str) -> None:
        """Stop the model's worker, if it runs: it is about to be removed."""

    async def models_changed(self) -> None:
        """The models directory changed: pick up new, changed and removed configs."""

    async def backends_changed(self, changed: set[str]) -> None:
        """Backend environments were installed, replaced or removed: read the plugins again; the workers
        of the ``changed`` backends have stopped when this returns."""


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
        versions = {
            canonicalize_name(info.distribution): info.version
            for info in self.host.plugins()
            if info.distribution
        }
        found = [
            AvailableBackend(
                f.id,
                f.gallery.name,
                canonicalize_name(f.entry.distribution) in versions,
                versions.get(canonicalize_name(f.entry.distribution)),
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

    @property
    def backends_root(self) -> Path:
        return backend_envs.root(self.settings.data_path)

    async def apply_backend(
        self, id: str, variant: str | None = None, listener: Listener | None = None, force: bool = False
    ) -> Job:
        """Start installing a backend entry (the detected hardware variant unless ``variant``) into an
        environment of its own; an installed one is replaced once the new environment is ready."""
        found = catalog.find(await catalog.list_backends(self.settings.backend_galleries), id, "backend")
        entry: BackendEntry = found.entry
        try:
            variant_name, chosen = pip_backends.choose_variant(entry, variant)
        except ValueError as exc:
            raise InvalidRequest(str(exc), param="variant") from None
        return self._install(found, variant_name, chosen, "install", force, listener)

    async def upgrade_backend(self, name: str, listener: Listener | None = None, force: bool = False) -> Job:
        """Install the gallery's version of an installed backend into a new environment and switch to it."""
        self._refuse_server_provided(name)
        if name not in backend_envs.installed(self.backends_root):
            raise NotFound(f"no installed backend '{name}'", param="name", code="not_found")
        found = catalog.find(await catalog.list_backends(self.settings.backend_galleries), name, "backend")
        variant_name, chosen = pip_backends.choose_variant(found.entry)
        return self._install(found, variant_name, chosen, "upgrade", force, listener)

    def _install(
        self,
        found: catalog.Found,
        variant_name: str,
        chosen: BackendVariant,
        op: Literal["install", "upgrade"],
        force: bool,
        listener: Listener | None,
    ) -> Job:
        entry: BackendEntry = found.entry
        name = entry.name
        requirement = catalog.pip_target(found, chosen.pip or entry.pip)
        self._refuse_server_provided(name, entry.distribution)
        lock = self._lock(name)
        try:
            current = backend_envs.installed(self.backends_root).get(name)
            serving = self._declared(current) | {name} if current else set()
            self._refuse_in_use(name, serving, force)
        except BaseException:
            lock.release()
            raise
        job = new_job("backend", op, name, found.id, cancellable=False)
        root = self.backends_root

        async def work(reporter: Reporter) -> None:
            await asyncio.to_thread(pip_backends.remove_stale_builds, root, name, current)
            with self._scratch(job) as context:
                environment, plugins = await pip_backends.build_environment(
                    root, name, requirement, chosen, context.workdir, reporter.message
                )
            declared = {backend.name for plugin in plugins for backend in plugin.backends}
            problem = next((f"plugin {p.name}: {p.error}" for p in plugins if p.error), None)
            if problem is None and name not in declared:
                problem = f"'{entry.distribution}' installed, but no plugin registers backend '{name}'"
            if problem is not None:
                await asyncio.to_thread(pip_backends.remove_environment, environment)
                raise InvalidRequest(problem)
            previous = backend_envs.activate(root, name, environment)
            await self.host.backends_changed(declared | serving)
            if previous is not None:
                await asyncio.to_thread(pip_backends.remove_environment, previous)
            done = "upgraded" if op == "upgrade" else "installed"
            if name not in self.host.backends():
                environment_note = (
                    f"{environment}; not loaded here: KERNAI_LOAD_PLUGINS leaves its plugin out, or another "
                    "plugin provides it (see kernai plugins)"
                )
            else:
                environment_note = str(environment)
            reporter.message(f"{done} backend '{name}' ({variant_name}) in {environment_note}")

        return self._start(job, work, listener, lock)

    async def delete_backend(self, name: str, listener: Listener | None = None, force: bool = False) -> Job:
        """Remove backend ``name``'s environment (its workers stop first)."""
        self._refuse_server_provided(name)
        current = backend_envs.installed(self.backends_root).get(name)
        if current is None:
            raise NotFound(f"no installed backend '{name}'", param="name", code="not_found")
        lock = self._lock(name)
        try:
            serving = self._declared(current) | {name}
            self._refuse_in_use(name, serving, force)
        except BaseException:
            lock.release()
            raise
        job = new_job("backend", "delete", name, str(current), cancellable=False)
        root = self.backends_root

        async def work(reporter: Reporter) -> None:
            previous = backend_envs.deactivate(root, name)
            await self.host.backends_changed(serving)
            if previous is not None:
                await asyncio.to_thread(pip_backends.remove_environment, previous)
            await asyncio.to_thread(pip_backends.remove_stale_builds, root, name, None)
            reporter.message(f"removed backend '{name}' ({previous})")

        return self._start(job, work, listener, lock)

    async def upgrades(self) -> list[pip_backends.Upgrade]:
        """Installed backends (in environments of their own) for which a gallery offers a newer version."""
        available, _ = await self.available_backends()
        own = {
            canonicalize_name(info.distribution)
            for info in self.host.plugins()
            if info.environment is not None and info.distribution
        }
        return [
            pip_backends.Upgrade(
                a.entry.name,
                a.entry.distribution,
                a.installed_version or "",
                a.entry.version or "",
                a.gallery,
            )
            for a in available
            if canonicalize_name(a.entry.distribution) in own
            and pip_backends.newer(a.entry.version, a.installed_version)
        ]

    def _refuse_server_provided(self, name: str, distribution: str | None = None) -> None:
        """409 for a backend the server's own environment provides: the gallery never changes it."""
        plugin = next(
            (p for p in self.host.plugins() if p.environment is None and name in p.backends),
            None,
        )
        dist_name = plugin.distribution if plugin else distribution
        try:
            dist = importlib.metadata.distribution(dist_name) if dist_name else None
        except importlib.metadata.PackageNotFoundError:
            dist = None
        if plugin is None and dist is None:
            return
        what = f"'{dist.name}' {dist.version}" if dist else f"plugin '{name}'"
        raise Conflict(
            f"backend '{name}' is provided by the server's own environment ({what} in {sys.prefix}), "
            "a development or pip install next to kernai: the gallery never replaces or removes it. "
            f"Change it with pip in that environment, or uninstall it there to manage '{name}' here",
            param="name",
            code="server_environment",
        )

    def _refuse_in_use(self, name: str, backends: set[str], force: bool) -> None:
        if force or not backends:
            return
        busy = self.host.busy_models(backends)
        if busy:
            using = ", ".join(f"'{model}' ({why})" for model, why in sorted(busy.items()))
            raise Conflict(
                f"backend '{name}' is in use by {using}: unpin or stop them first, or force",
                param="force",
                code="backend_in_use",
            )

    def _lock(self, name: str) -> pip_backends.BackendLock:
        """This backend's lock, or 409 naming the job that holds it (in this process or another)."""
        self._refuse_busy("backend", name)
        lock = pip_backends.BackendLock(self.backends_root, name)
        if not lock.acquire():
            holder = next(
                (j.uuid for j in self.store.list("backend") if j.element == name and not j.finished),
                "in another process",
            )
            raise Conflict(f"backend '{name}' already has a job running ({holder})", code="job_running")
        return lock

    @staticmethod
    def _declared(environment: Path) -> set[str]:
        """The backends an environment's plugins declare (none when it cannot say)."""
        try:
            plugins = declarations(environment)
        except UnreadableEnvironment:
            return set()
        return {backend.name for plugin in plugins for backend in plugin.backends}

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

    def _start(
        self,
        job: Job,
        work: Callable[[Reporter], Awaitable[None]],
        listener: Listener | None,
        lock: pip_backends.BackendLock | None = None,
    ) -> Job:
        """Run ``work`` as ``job``; ``lock`` (held) is released when it ends."""
        self.running[job.uuid] = job
        self.store.save(job)
        task = asyncio.get_running_loop().create_task(self._run(job, work, listener))
        task.add_done_callback(lambda _: self._settle(job, listener, lock))
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

    def _settle(self, job: Job, listener: Listener | None, lock: pip_backends.BackendLock | None) -> None:
        """Record how the job ended (also for a job cancelled before it started)."""
        if lock is not None:
            lock.release()
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
