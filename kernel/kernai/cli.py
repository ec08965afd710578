"""The ``kernai`` command line."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import TYPE_CHECKING

import click
from rich.console import Console
from rich.table import Column, Table

from kernai import __version__

if TYPE_CHECKING:
    from kernai.doctor import Finding
    from kernai.plugins import PluginRegistry

console = Console()


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="kernai")
def main() -> None:
    """kernai: a local AI inference server on a plugin microkernel."""


@main.command()
@click.option("--host", help="Address to bind (default 127.0.0.1; env KERNAI_HOST).")
@click.option("--port", type=int, help="Port (default 8080; env KERNAI_PORT).")
@click.option(
    "--models-dir", type=click.Path(file_okay=False, path_type=Path), help="Model configs and files."
)
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), help="Database, jobs, uploads.")
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Server settings YAML (env KERNAI_CONFIG).",
)
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]), help="Log level.")
@click.option(
    "--allowed-host",
    "allowed_hosts",
    multiple=True,
    help="A host name requests may be addressed to, e.g. a reverse proxy's (repeatable; replaces the "
    "allowed_hosts setting; env KERNAI_ALLOWED_HOSTS).",
)
@click.option(
    "--insecure-allow-open-management",
    is_flag=True,
    default=None,
    help="Listen beyond loopback although management routes need no key (anyone who reaches the "
    "address can install models and backends).",
)
def serve(
    host: str | None,
    port: int | None,
    models_dir: Path | None,
    data_dir: Path | None,
    config_file: Path | None,
    log_level: str | None,
    allowed_hosts: tuple[str, ...],
    insecure_allow_open_management: bool | None,
) -> None:
    """Start the HTTP server."""
    from granian import Granian
    from granian.constants import Interfaces
    from granian.log import LogLevels

    from kernai.http.exposure import bind_refusal, required_auth
    from kernai.settings import Settings

    try:
        settings = Settings.load(
            config_file,
            host=host,
            port=port,
            log_level=log_level,
            models_dir=str(models_dir) if models_dir else None,
            data_dir=str(data_dir) if data_dir else None,
            allowed_hosts=list(allowed_hosts) or None,
            insecure_allow_open_management=insecure_allow_open_management,
        )
    except (ValueError, OSError) as exc:
        raise click.ClickException(str(exc)) from None
    settings.models_path.mkdir(parents=True, exist_ok=True)
    settings.data_path.mkdir(parents=True, exist_ok=True)
    if (refusal := bind_refusal(settings, required_auth(settings))) is not None:
        raise click.ClickException(refusal)
    _ensure_port_free(settings.host, settings.port)
    os.environ.update(settings.to_env())
    console.print(
        f"kernai {__version__} on http://{settings.host}:{settings.port}  models: {settings.models_path}"
    )
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
            raise click.ClickException(
                f"cannot listen on {host}:{port}: {exc.strerror} (is another server running there?)"
            ) from None


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option(
    "--all", "show_all", is_flag=True, help="Also list the kernel's own plugins (API surfaces, gallery)."
)
def plugins(as_json: bool, show_all: bool) -> None:
    """List installed plugins, their versions, backends and hooks."""
    import msgspec

    from kernai.plugins import registry

    loaded = registry(_backend_environments())
    if as_json:
        click.echo(
            msgspec.json.format(
                msgspec.json.encode(
                    {
                        "plugins": loaded.plugins(defaults=show_all),
                        "errors": loaded.load_errors,
                        "problems": loaded.problems,
                    }
                ),
                indent=2,
            )
        )
        return
    # folded, never cut with an ellipsis: a narrow terminal still shows every name whole
    table = Table(
        *(
            Column(header, overflow="fold")
            for header in ("plugin", "distribution", "version", "backends", "hooks")
        ),
        show_lines=True,
    )
    for info in loaded.plugins(defaults=show_all):
        table.add_row(
            info.name,
            info.distribution or "-",
            info.version or "-",
            "\n".join(info.backends),
            "\n".join(info.hooks),
        )
    console.print(table)
    for info in loaded.plugins(defaults=show_all):
        if info.environment:  # the others live in kernai's own environment
            console.print(f"{info.name} lives in its own environment: {info.environment}", soft_wrap=True)
    _print_problems(loaded)


@main.command()
@click.argument("names", nargs=-1)
@click.option(
    "--config",
    "config_file",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Server settings YAML, for the galleries to compare with (env KERNAI_CONFIG).",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def doctor(names: tuple[str, ...], config_file: Path | None, as_json: bool) -> None:
    """Check each installed backend (or those NAMED): load its smallest model in a worker, run one request.

    Exits 1 when a backend crashed or failed.
    """
    import asyncio
    import logging

    import msgspec

    from kernai.doctor import check_backend
    from kernai.plugins import registry

    logging.getLogger("kernai").setLevel(logging.CRITICAL)  # the table says it all
    loaded = registry(_backend_environments())
    unknown = [name for name in names if name not in loaded.backends]
    if unknown:
        raise click.UsageError(
            f"no installed backend named {', '.join(unknown)} "
            f"(installed: {', '.join(sorted(loaded.backends)) or 'none'})"
        )

    async def run() -> list[Finding]:
        found = []
        for name, entry in sorted(loaded.backends.items()):
            if names and name not in names:
                continue
            if not as_json:
                console.print(f"checking {name} ...")
            found.append(await check_backend(entry, loaded))
        return found

    findings = asyncio.run(run())
    if not names:
        findings += _missing_backends(loaded, config_file)
    if as_json:
        report = {"backends": findings, "plugin_problems": loaded.problems}
        click.echo(msgspec.json.format(msgspec.json.encode(report), indent=2))
    else:
        colours = {
            "ok": "green",
            "crashed": "red",
            "failed": "red",
            "untested": "yellow",
            "missing": "yellow",
        }
        table = Table("backend", "result", Column("detail", overflow="fold"), "seconds", show_lines=True)
        for finding in findings:
            outcome = finding.outcome + (f" ({finding.signal})" if finding.signal else "")
            table.add_row(
                finding.backend,
                f"[{colours[finding.outcome]}]{outcome}[/]",
                finding.detail,
                f"{finding.seconds:.2f}" if finding.seconds is not None else "-",
            )
        console.print(table)
        _print_problems(loaded)
    if any(finding.outcome in ("crashed", "failed") for finding in findings):
        raise SystemExit(1)


def _print_problems(loaded: PluginRegistry) -> None:
    """One line per plugin problem: red for a plugin left out, yellow for one that loaded anyway."""
    for problem in loaded.problems:
        console.print(
            problem.line(), style="yellow" if problem.loaded else "red", markup=False, soft_wrap=True
        )


def _missing_backends(loaded: PluginRegistry, config_file: Path | None) -> list[Finding]:
    """The backends that plugins offer (the gallery's galleries) and none provides here; none when the
    settings cannot be read."""
    from kernai.doctor import missing
    from kernai.settings import Settings

    try:
        settings = Settings.load(config_file)
    except (ValueError, OSError):
        return []
    offered = loaded.contributions("offered_backends", settings=settings)
    return missing(set(loaded.backends), [name for _, names in offered for name in names])


def _backend_environments() -> Path | None:
    """The backend environments of the data directory the settings name (none when they cannot be read)."""
    from kernai.backend_envs import root
    from kernai.settings import Settings

    try:
        return root(Settings.load().data_path)
    except (ValueError, OSError):
        return None


def _register_commands() -> None:
    """Let every plugin add its commands (the gallery: ``kernai models`` and ``kernai backends``)."""
    from kernai.plugins import registry

    registry().contributions("register_commands", cli=main)


_register_commands()
