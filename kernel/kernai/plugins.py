"""Finding plugins, the backends they declare and what else they add to the server.

The kernel's own plugins (:data:`DEFAULT_PLUGINS`: the API surfaces and the gallery) load first, as
datasette's do; the ``disabled_plugins`` setting leaves their routes out. Then the entry points in the
``kernai`` group: ``KERNAI_LOAD_PLUGINS`` (a comma-separated list of entry-point or distribution names;
empty for none) limits which of those load, like simonw/llm's ``LLM_LOAD_PLUGINS``.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from collections.abc import Collection
from functools import cache
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any

import pluggy
from msgspec import Struct

from kernai import hookspecs
from kernai.backend_envs import installed, interpreter
from kernai.backend_envs.declarations import UnreadableEnvironment, declarations
from kernai.backend_envs.kernai_link import ensure_link_folder
from kernai.backends import Backend
from kernai.discovery import PluginProblem, describe, load_plugins, upgrade_or_remove

ENTRY_POINT_GROUP = "kernai"
LOAD_PLUGINS_ENV = "KERNAI_LOAD_PLUGINS"
DEFAULT_PLUGINS = {
    "openai": "kernai.surfaces.openai",
    "localai": "kernai.surfaces.localai",
    "anthropic": "kernai.surfaces.anthropic",
    "responses": "kernai.surfaces.responses",
    "locallab": "kernai.surfaces.locallab",
    "llamactl": "kernai.surfaces.llamactl",
    "gallery": "kernai.gallery",
    "ui": "kernai.ui",
}
"""The kernel's own plugins, by name: the modules that register each API surface, the gallery and the web
UI."""

log = logging.getLogger(__name__)


class PluginInfo(Struct, frozen=True):
    """An installed plugin, for ``kernai plugins`` and ``/system``."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    backends: list[str]
    environment: str | None = None
    """The backend environment the plugin lives in (:mod:`kernai.backend_envs`); ``None``: the server's."""


class RegisteredBackend(Struct, frozen=True):
    """A backend and the plugin (entry-point name) that provides it."""

    backend: Backend
    plugin: str
    environment: str | None = None
    """The backend environment whose interpreter runs its workers; ``None``: the server's own."""

    @property
    def python(self) -> str:
        """The interpreter a worker of this backend runs with."""
        return str(interpreter(Path(self.environment))) if self.environment else sys.executable


def _wanted(name: str, distribution: str | None) -> bool:
    """Whether ``KERNAI_LOAD_PLUGINS`` lets the plugin ``name`` (of ``distribution``) load."""
    wanted = os.environ.get(LOAD_PLUGINS_ENV)
    if wanted is None:
        return True
    names = {name.strip() for name in wanted.split(",") if name.strip()}
    return name in names or distribution in names


def _allowed(entry_point: EntryPoint) -> bool:
    return _wanted(entry_point.name, entry_point.dist.name if entry_point.dist else None)


def _entry_points() -> list[EntryPoint]:
    return sorted(
        (ep for ep in entry_points(group=ENTRY_POINT_GROUP) if _allowed(ep)), key=lambda ep: ep.name
    )


def new_plugin_manager() -> pluggy.PluginManager:
    manager = pluggy.PluginManager("kernai")
    manager.add_hookspecs(hookspecs)
    return manager


def register_checked(manager: pluggy.PluginManager, plugin: object, name: str) -> None:
    """Register ``plugin``, or raise :class:`pluggy.PluginValidationError` and leave it unregistered
    when it implements a hook that no spec names (a misspelled ``predikt``) or takes an argument its
    spec lacks: a typo is an error, not a hook that silently never runs."""
    manager.register(plugin, name=name)  # checks each implementation against its spec
    try:
        manager.check_pending()  # implementations without a spec
    except pluggy.PluginValidationError:
        manager.unregister(name=name)
        raise


class PluginRegistry:
    """The loaded plugins, the backends they registered and the problems met loading them."""

    def __init__(self, environments: Path | None = None) -> None:
        self.manager = new_plugin_manager()
        for name, module in DEFAULT_PLUGINS.items():
            register_checked(self.manager, importlib.import_module(module), name)
        loaded = load_plugins(
            _entry_points(), lambda module, name: register_checked(self.manager, module, name)
        )
        self._entry_points = loaded.entry_points
        self.problems = loaded.problems
        """Plugins left out or loaded with trouble, each with its fix (``kernai plugins``, ``/system``)."""
        self.backends = self._collect_backends()
        self.environment_plugins: list[PluginInfo] = []
        """Plugins of the backend environments in ``environments``, declared but never imported here."""
        if environments is not None:
            self._add_environments(environments)

    def _add_environments(self, folder: Path) -> None:
        environments = installed(folder)
        if environments:
            try:
                ensure_link_folder(folder)  # kernai as the server runs it now, in every environment
            except OSError as exc:
                log.error("cannot refresh the kernai links of the environments in %s: %s", folder, exc)
        for name, environment in environments.items():
            try:
                plugins = declarations(environment)
            except UnreadableEnvironment as exc:
                self._environment_problem(name, str(environment), f"its environment cannot be read: {exc}")
                continue
            for plugin in plugins:
                if not _wanted(plugin.name, plugin.distribution):
                    continue
                if plugin.error is not None:
                    where = f"{plugin.distribution} {plugin.version} ({environment})"
                    self._environment_problem(name, where, f"it fails to load there: {plugin.error}")
                    continue
                provided = []
                for backend in plugin.backends:
                    if backend.name in self.backends:
                        log.warning(
                            "backend %s of environment %s is ignored: plugin %s provides it already",
                            backend.name,
                            environment,
                            self.backends[backend.name].plugin,
                        )
                        continue
                    self.backends[backend.name] = RegisteredBackend(backend, plugin.name, str(environment))
                    provided.append(backend.name)
                self.environment_plugins.append(
                    PluginInfo(
                        name=plugin.name,
                        module=plugin.module,
                        distribution=plugin.distribution,
                        version=plugin.version,
                        hooks=plugin.hooks,
                        backends=sorted(provided),
                        environment=str(environment),
                    )
                )

    @property
    def load_errors(self) -> dict[str, str]:
        """Each plugin that has problems, and their lines."""
        errors: dict[str, list[str]] = {}
        for problem in self.problems:
            errors.setdefault(problem.plugin, []).append(problem.line())
        return {name: " | ".join(lines) for name, lines in errors.items()}

    def _collect_backends(self) -> dict[str, RegisteredBackend]:
        found: dict[str, RegisteredBackend] = {}
        for impl in self.manager.hook.register_backends.get_hookimpls():
            owner = impl.plugin_name

            def register(backend: Backend, owner: str = owner) -> None:
                if backend.name in found:
                    log.warning(
                        "backend %s from %s shadows %s", backend.name, owner, found[backend.name].plugin
                    )
                found[backend.name] = RegisteredBackend(backend, owner)

            try:
                impl.function(register=register)
            except Exception as exc:  # a broken plugin must not stop the server
                log.debug("plugin %s failed to register its backends", owner, exc_info=True)
                self.problems.append(self._registration_problem(owner, exc))
        return found

    def _registration_problem(self, plugin: str, exc: Exception) -> PluginProblem:
        entry_point = self._entry_points.get(plugin)
        project = entry_point.dist.name if entry_point and entry_point.dist else plugin
        return PluginProblem(
            plugin,
            [describe(entry_point)] if entry_point else [],
            f"its register_backends raised {type(exc).__name__}: {exc}; it serves no backend",
            upgrade_or_remove(project),
            True,
        )

    def _environment_problem(self, name: str, where: str, problem: str) -> None:
        fix = f"reinstall it (kernai backends install {name}) or remove it (kernai backends remove {name})"
        self.problems.append(PluginProblem(name, [where], problem, fix, False))
        log.error(self.problems[-1].line())

    def backend_map(self) -> dict[str, Backend]:
        return {name: entry.backend for name, entry in self.backends.items()}

    def contributions(self, hook: str, *, skip: Collection[str] = (), **kwargs: Any) -> list[tuple[str, Any]]:
        """Call ``hook`` on each plugin, in the order they were registered, but those named in ``skip``:
        ``(plugin name, result)`` for each result that is not ``None``. A plugin that raises is logged
        and left out: a broken plugin must not stop the server."""
        results = []
        for impl in getattr(self.manager.hook, hook).get_hookimpls():
            if impl.plugin_name in skip:
                continue
            try:
                result = impl.function(**{name: kwargs[name] for name in impl.argnames})
            except Exception:
                log.exception("plugin %s failed in %s", impl.plugin_name, hook)
                continue
            if result is not None:
                results.append((impl.plugin_name, result))
        return results

    def plugins(self, *, defaults: bool = False) -> list[PluginInfo]:
        """The loaded plugins; the kernel's own (:data:`DEFAULT_PLUGINS`) too with ``defaults``."""
        infos = []
        for name, plugin in sorted(self.manager.list_name_plugin()):
            if name in DEFAULT_PLUGINS and not defaults:
                continue
            entry_point = self._entry_points.get(name)
            dist = entry_point.dist if entry_point else None
            hooks = sorted(caller.name for caller in self.manager.get_hookcallers(plugin) or [])
            infos.append(
                PluginInfo(
                    name=name,
                    module=getattr(plugin, "__name__", type(plugin).__name__),
                    distribution=dist.name if dist else None,
                    version=dist.version if dist else None,
                    hooks=hooks,
                    backends=sorted(
                        b
                        for b, entry in self.backends.items()
                        if entry.plugin == name and not entry.environment
                    ),
                )
            )
        return infos + self.environment_plugins


@cache
def registry(environments: Path | None = None) -> PluginRegistry:
    """The process-wide registry (with the backend environments in ``environments``), loaded on first use."""
    return PluginRegistry(environments)


def reload_registry(environments: Path | None = None) -> PluginRegistry:
    """Load the plugins again (after a backend was installed, upgraded or removed) and cache the result."""
    importlib.invalidate_caches()
    registry.cache_clear()
    return registry(environments)


def load_plugin(name: str) -> pluggy.PluginManager:
    """A plugin manager holding only the named plugin: what a worker process uses, so a model's
    lifecycle hooks reach only the plugin that registered its backend (no plugin checks ``backend``
    for "not mine"). Where several distributions provide it, the one the server loads is chosen."""
    manager = new_plugin_manager()
    matches = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
    if not matches:
        raise LookupError(f"no plugin named '{name}' in entry-point group '{ENTRY_POINT_GROUP}'")
    errors: list[Exception] = []

    def register(module: ModuleType, plugin: str) -> None:
        try:
            register_checked(manager, module, plugin)
        except Exception as exc:
            errors.append(exc)
            raise

    loaded = load_plugins(matches, register)
    if name not in loaded.entry_points:
        if errors:
            raise errors[0]
        raise ImportError(" | ".join(problem.line() for problem in loaded.problems))
    return manager
