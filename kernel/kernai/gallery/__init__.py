"""The gallery: install models and backend plugins from indexes, with jobs, progress and verified downloads.

- :mod:`kernai.gallery.schema`: the format of ``index.yaml`` (models) and ``backends.yaml`` (plugins).
- :mod:`kernai.gallery.catalog`: reading the configured galleries and resolving ``gallery@name``.
- :mod:`kernai.gallery.sources`: fetching ``http(s)://``, ``file://``, ``huggingface://`` and ``pypi:``.
- :mod:`kernai.gallery.models` / :mod:`kernai.gallery.backends`: installing and removing them.
- :mod:`kernai.gallery.jobs`: job records in SQLite; :mod:`kernai.gallery.service`: running jobs.
- :mod:`kernai.gallery.routes` / :mod:`kernai.gallery.wire`: LocalAI's gallery API (``/models/*``,
  ``/backends/*``); :mod:`kernai.gallery.cli`: ``kernai models ...`` and ``kernai backends ...``.

A default plugin: it registers those routes, their lifespan (running downloads end ``interrupted``
when the server stops) and those commands through the hooks, and tells ``kernai doctor`` which
backends its galleries offer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from kernai import hookimpl
from kernai.settings import Settings

if TYPE_CHECKING:
    import click
    from litestar import Litestar
    from litestar.types import ControllerRouterHandler


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.gallery.routes import GalleryController

    return [GalleryController]


@hookimpl
def register_lifespan() -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    from kernai.gallery.routes import lifespan

    return lifespan


@hookimpl
def register_commands(cli: click.Group) -> None:
    from kernai.gallery.cli import backends, models

    cli.add_command(models)
    cli.add_command(backends)


@hookimpl
def offered_backends(settings: Settings) -> list[str] | None:
    from kernai.gallery.catalog import list_backends

    try:
        listing = asyncio.run(list_backends(settings.backend_galleries))
    except (ValueError, OSError):
        return None
    return [found.entry.name for found in listing.found]
