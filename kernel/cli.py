"""The ``kernai`` command line."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import click
from rich.console import Console
from rich.table import Column, Table

from kernai import __version__

console = Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kernai")
def main() -> None:
    """kernai: a local AI inference server on a plugin microkernel."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; env KERNAI_HOST).")
@click.option("--port", type=int, help="Port (default 8080; env KERNAI_PORT).")
@click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path), help="Model configs and files.")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Database, jobs, uploads.")
@click.option("--config", "config_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Server settings YAML (env KERNAI_CONFIG).")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
def serve(host: str | None, port: int | None, models_dir: Path | None, data_dir: Path | None,
          config_file: Path | None, log_level: str | None) -> None:
    """Start the HTTP server."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from kernai.settings import Settings

    try:
        settings = Settings.load(
            config_file, host=host, port=port, log_level=log_level,
            models_dir=str(models_dir) if models_dir else None,
            data_dir=str(data_dir) if data_dir else None,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    settings.models_path.mkdir(parents=True, exist_ok=True)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    _ensure_port_free(settings.host, settings.port)
    os.environ.update(settings.to_env())
    console.print(f"kernai {__version__} on http://{settings.host}:{settings.port}  models: {settings.models_path}")
    Granian(
        "kernai.http.asgi:app",
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        workers=1,
        log_level=LogLevels(settings.log_level),
    ).serve()


def _ensure_port_free(host: str, port: int) -> None:
    """Refuse a port another server listens on: granian binds with SO_REUSEPORT, so a second
    server would otherwise start quietly and share the connections."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise click.ClickException(f"cannot listen on {host}:{port}: {exc.strerror}"
                                       " (is another server running there?)") from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def plugins(as_json: bool) -> None:
    """List installed plugins, their versions, backends and hooks."""
    import msgspec

    from kernai.plugins import registry

    loaded = registry()
    if as_json:
        click.echo(msgspec.json.format(msgspec.json.encode(
            {"plugins": loaded.plugins(), "errors": loaded.load_errors}), indent=2))
        return
    # folded, never cut with an ellipsis: a narrow terminal still shows every name whole
    table = Table(*(Column(header, overflow="fold") for header in ("plugin", "distribution", "version",
                                                                    "backends", "hooks")), show_lines=True)
    for info in loaded.plugins():
        table.add_row(info.name, info.distribution or "-", info.version or "-", "\n".join(info.backends),
                      "\n".join(info.hooks))
    console.print(table)
    for name, error in loaded.load_errors.items():
        console.print(f"[red]{name}: failed to load: {error}[/red]")


from kernai.gallery.cli import attach as _attach_gallery  # noqa: E402  (the `models` and `backends` groups)

_attach_gallery(main)
