"""``kernai models ...`` and ``kernai backends ...``: the gallery from the command line.

The commands work on the models and data directories directly (no server needed), through the same
service as the HTTP API; a running server picks new models up on ``POST /models/apply`` or a restart.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from functools import partial, wraps
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

console = Console()
err_console = Console(stderr=True)

_URL_PREFIXES = ("https://", "http://", "file://", "huggingface://")


def _settings_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--models-dir``, ``--data-dir`` and ``--config``, as ``kernai serve`` takes them."""
    for option in reversed(
        [
            click.option(
                "--models-dir",
                type=click.Path(file_okay=False, path_type=Path),
                help="Model configs and files.",
            ),
            click.option(
                "--data-dir",
                type=click.Path(file_okay=False, path_type=Path),
                help="Database, jobs, uploads.",
            ),
            click.option(
                "--config",
                "config_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="Server settings YAML (env KERNAI_CONFIG).",
            ),
        ]
    ):
        command = option(command)
    return command


_force_option = click.option(
    "--force", is_flag=True, help="Go ahead even while a model on the backend is pinned (its workers stop)."
)


def _async(command: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(command(*args, **kwargs))

    return run


class LocalHost:
    """This process as the gallery's host: the plugins of its environment and of the backend environments
    in the data directory, no server to tell (a running server sees the changes when it restarts)."""

    def __init__(self, settings: Any) -> None:
        from kernai.backend_envs import root
        from kernai.plugins import registry

        self.settings = settings
        self.environments = root(settings.data_path)
        self.registry = registry(self.environments)

    def backends(self) -> Any:
        return self.registry.backend_map()

    def plugins(self) -> Any:
        return self.registry.plugins()

    def busy_models(self, backends: set[str]) -> dict[str, str]:
        """Pinned models only: without a server, no model is busy."""
        from kernai.config import load_model_configs

        configs, _ = load_model_configs(self.settings.models_path, self.backends())
        return {c.name: "pinned" for c in configs.values() if c.backend in backends and c.pinned}

    async def stop_model(self, name: str) -> None:
        return None

    async def models_changed(self) -> None:
        return None

    async def backends_changed(self, changed: set[str]) -> None:
        from kernai.plugins import reload_registry

        self.registry = reload_registry(environments=self.environments)


def _service(models_dir: Path | None, data_dir: Path | None, config_file: Path | None) -> Any:
    from kernai.gallery.service import GalleryService
    from kernai.settings import Settings

    try:
        settings = Settings.load(
            config_file,
            models_dir=str(models_dir) if models_dir else None,
            data_dir=str(data_dir) if data_dir else None,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    settings.models_path.mkdir(parents=True, exist_ok=True)
    return GalleryService(settings, LocalHost(settings))


async def _run_job(
    service: Any, start: Callable[[Callable[[Any], None]], Coroutine[Any, Any, Any]], downloads: bool
) -> None:
    """Start a job (``start(listener)``), show its progress, and fail the command if the job fails."""
    from kernai.errors import KernaiError

    columns: list[Any] = [SpinnerColumn(), TextColumn("{task.description}")]
    if downloads:
        columns += [BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console) as progress:
        tasks: dict[str, TaskID] = {}

        def show(job: Any) -> None:
            if downloads and job.file_name:
                if job.file_name not in tasks:
                    tasks[job.file_name] = progress.add_task(job.file_name, total=None)
                progress.update(
                    tasks[job.file_name], completed=job.downloaded_bytes, total=job.file_size_bytes or None
                )
            elif not downloads:
                if "pip" not in tasks:
                    tasks["pip"] = progress.add_task(job.element, total=None)
                progress.update(tasks["pip"], description=f"{job.element}: {job.message[:100]}")

        try:
            job = await start(show)
        except KernaiError as exc:
            raise click.ClickException(exc.message) from None
        final = await service.wait(job)
    if final.state.value != "done":
        raise click.ClickException(f"{final.element}: {final.state.value}: {final.error or final.message}")
    console.print(f"[green]{final.message}[/green]")


def _print_json(data: Any) -> None:
    import msgspec

    click.echo(json.dumps(msgspec.to_builtins(data), indent=2))


# --- kernai models ---------------------------------------------------------------------------------


@click.group()
def models() -> None:
    """Install, list and remove models from the galleries."""


@models.command("available")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_async
async def models_available(
    models_dir: Path | None, data_dir: Path | None, config_file: Path | None, as_json: bool
) -> None:
    """List the models the configured galleries offer."""
    found, errors = await _service(models_dir, data_dir, config_file).available_models()
    if as_json:
        _print_json({"models": found, "errors": errors})
        return
    table = Table("id", "backend", "size", "installed")
    table.add_column("description", overflow="ellipsis", no_wrap=True, max_width=60)
    for model in found:
        table.add_row(
            model.id,
            model.entry.backend or "-",
            model.entry.size or "-",
            "yes" if model.installed else "",
            model.entry.description,
        )
    console.print(table)
    for name, error in errors.items():
        err_console.print(f"[red]gallery {name}: {error}[/red]")


@models.command("install")
@_settings_options
@click.argument("ids", nargs=-1, required=True)
@click.option("--name", help="Install under this name (one model only).")
@click.option("--skip-installed", is_flag=True, help="Skip models the gallery already installed here.")
@_async
async def models_install(
    models_dir: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
    ids: tuple[str, ...],
    name: str | None,
    skip_installed: bool,
) -> None:
    """Install models: gallery ids (``gallery@name`` or ``name``) or URLs of model definitions."""
    from kernai.gallery.models import installed

    if name and len(ids) > 1:
        raise click.UsageError("--name takes one model at a time")
    service = _service(models_dir, data_dir, config_file)
    for model_id in ids:
        is_url = model_id.startswith(_URL_PREFIXES)
        if skip_installed:
            records = installed(service.models_dir)
            wanted = name or model_id.rpartition("@")[2]
            if any(r.name == wanted or r.source == model_id for r in records.values()):
                console.print(f"{model_id}: already installed")
                continue

        def start(listener: Any, model_id: str = model_id, is_url: bool = is_url) -> Any:
            return service.apply_model(
                id=None if is_url else model_id,
                url=model_id if is_url else None,
                name=name,
                listener=listener,
            )

        await _run_job(service, start, downloads=True)


@models.command("list")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def models_list(
    models_dir: Path | None, data_dir: Path | None, config_file: Path | None, as_json: bool
) -> None:
    """List the models configured in the models directory (and configs with errors)."""
    from kernai.config import load_model_configs
    from kernai.gallery.models import installed

    service = _service(models_dir, data_dir, config_file)
    configs, errors = load_model_configs(service.models_dir, service.host.backends())
    records = installed(service.models_dir)
    rows = [
        {
            "name": c.name,
            "backend": c.backend,
            "model": c.parameters.model,
            "source": records[c.name].source if c.name in records else None,
        }
        for c in configs.values()
    ]
    if as_json:
        _print_json({"models": rows, "errors": [str(e) for e in errors]})
        return
    table = Table("name", "backend", "model file", "installed from")
    for row in rows:
        table.add_row(row["name"], row["backend"], row["model"] or "-", row["source"] or "-")
    console.print(table)
    for error in errors:
        err_console.print(f"[red]{error}[/red]")


@models.command("remove")
@_settings_options
@click.argument("names", nargs=-1, required=True)
@_async
async def models_remove(
    models_dir: Path | None, data_dir: Path | None, config_file: Path | None, names: tuple[str, ...]
) -> None:
    """Remove models: their configs and the files the gallery installed for them."""
    service = _service(models_dir, data_dir, config_file)
    for name in names:

        def start(listener: Callable[[Any], None], name: str = name) -> Coroutine[Any, Any, Any]:
            return service.delete_model(name)  # removing a model reports no progress

        await _run_job(service, start, downloads=False)


# --- kernai backends -------------------------------------------------------------------------------


@click.group()
def backends() -> None:
    """Install, list, upgrade and remove backend plugins from the galleries."""


@backends.command("available")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@_async
async def backends_available(
    models_dir: Path | None, data_dir: Path | None, config_file: Path | None, as_json: bool
) -> None:
    """List the backends the configured galleries offer."""
    found, errors = await _service(models_dir, data_dir, config_file).available_backends()
    if as_json:
        _print_json({"backends": found, "errors": errors})
        return
    table = Table("id", "distribution", "version", "installed", "capabilities", "variants")
    for backend in found:
        table.add_row(
            backend.id,
            backend.entry.distribution,
            backend.entry.version or "-",
            backend.installed_version or "",
            ", ".join(backend.entry.capabilities),
            ", ".join(backend.entry.variants) or "-",
        )
    console.print(table)
    for name, error in errors.items():
        err_console.print(f"[red]gallery {name}: {error}[/red]")


@backends.command("install")
@_settings_options
@click.argument("ids", nargs=-1, required=True)
@click.option("--variant", help="Force a hardware variant (cpu, cuda, rocm, metal); detected by default.")
@_force_option
@_async
async def backends_install(
    models_dir: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
    ids: tuple[str, ...],
    variant: str | None,
    force: bool,
) -> None:
    """Install backend plugins, each into an environment of its own in the data directory."""
    service = _service(models_dir, data_dir, config_file)
    for backend_id in ids:
        start = partial(service.apply_backend, backend_id, variant, force=force)
        await _run_job(service, start, downloads=False)


@backends.command("list")
@_settings_options
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def backends_list(
    models_dir: Path | None, data_dir: Path | None, config_file: Path | None, as_json: bool
) -> None:
    """List the installed backends, the plugins that provide them and where they live."""
    host = _service(models_dir, data_dir, config_file).host
    plugins = {(info.name, info.environment): info for info in host.plugins()}
    rows = [
        {
            "name": name,
            "plugin": entry.plugin,
            "distribution": plugins[entry.plugin, entry.environment].distribution,
            "version": plugins[entry.plugin, entry.environment].version,
            "capabilities": [c.value for c in entry.backend.capabilities],
            "environment": entry.environment,
        }
        for name, entry in sorted(host.registry.backends.items())
    ]
    if as_json:
        _print_json(rows)
        return
    table = Table("backend", "distribution", "version", "capabilities", "environment")
    for row in rows:
        table.add_row(
            row["name"],
            row["distribution"] or "-",
            row["version"] or "-",
            ", ".join(row["capabilities"]),
            row["environment"] or "(kernai's own)",
        )
    console.print(table)


@backends.command("remove")
@_settings_options
@click.argument("names", nargs=-1, required=True)
@_force_option
@_async
async def backends_remove(
    models_dir: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
    names: tuple[str, ...],
    force: bool,
) -> None:
    """Remove these backends' environments (never a plugin installed next to kernai)."""
    service = _service(models_dir, data_dir, config_file)
    for name in names:
        await _run_job(service, partial(service.delete_backend, name, force=force), downloads=False)


@backends.command("upgrade")
@_settings_options
@click.argument("names", nargs=-1)
@click.option("--check", is_flag=True, help="Only list the backends that have an upgrade.")
@_force_option
@_async
async def backends_upgrade(
    models_dir: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
    names: tuple[str, ...],
    check: bool,
    force: bool,
) -> None:
    """Upgrade backends to the version their gallery offers (all with an upgrade, when none is named)."""
    service = _service(models_dir, data_dir, config_file)
    upgrades = await service.upgrades()
    if check:
        for upgrade in upgrades:
            console.print(f"{upgrade.name}: {upgrade.installed_version} -> {upgrade.available_version}")
        if not upgrades:
            console.print("every backend is up to date")
        return
    for name in names or [upgrade.name for upgrade in upgrades]:
        await _run_job(service, partial(service.upgrade_backend, name, force=force), downloads=False)
    if not names and not upgrades:
        console.print("every backend is up to date")
