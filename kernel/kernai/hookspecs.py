"""The plugin contract: every hook a backend plugin can implement, in one place.

A plugin is a module (or object) registered under the ``kernai`` entry-point group, e.g.::

    [project.entry-points.kernai]
    my_backend = "my_backend_package.plugin"

It implements ``register_backends`` to declare its backends, and the four lifecycle hooks that run
inside the model's worker process; :func:`kernai.model.model_hooks` makes those four from a
:class:`kernai.model.Model` subclass, which is all most plugins need.

"Not my backend" is the kernel's job, not the plugin's: a model's worker loads only the plugin that
registered the model's backend (:func:`kernai.plugins.load_plugin`), so a lifecycle hook is never
called for another plugin's backend. A plugin with one backend ignores the ``backend`` argument; one
with several tells its own apart by it. The lifecycle hooks are ``firstresult``; ``predict``
returns ``None`` for a request its backend does not serve (the client gets a 400 ``not_supported``).

The lifecycle, for one model, in its own worker process::

    model = load(backend, config)            # once, when the model is first needed
    predict(backend, model, request) ...     # per request; may run in several threads at once
    status(backend, model)                   # on demand, for /backend/monitor
    shutdown(backend, model)                 # once, before the worker exits

Engines are imported inside ``load`` (not at module import), so that the server process, which
imports every plugin to read its declarations, never loads an engine.

Five more hooks run in the server process and let a plugin add to the server itself: HTTP routes
(``register_routes``), state those routes keep alive while the server runs (``register_lifespan``),
``kernai`` subcommands (``register_commands``), backends it can install (``offered_backends``) and pages
of the web UI (``register_ui_pages``: a page is a template the UI renders in its layout, with a nav
entry; its scripts are the plugin's own routes). The kernel's API surfaces, its gallery and its web UI
are plugins of this kind (:data:`kernai.plugins.DEFAULT_PLUGINS`); ``docs/writing-a-surface.md`` shows
one, ``docs/ui.md`` a UI page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pluggy

from kernai.backends import Backend
from kernai.capabilities import Chunk, Request, Result
from kernai.config import ModelConfig
from kernai.pages import UiPage

if TYPE_CHECKING:  # the worker imports this module: it must not pay for Litestar or click
    import click
    from litestar import Litestar
    from litestar.types import ControllerRouterHandler

    from kernai.settings import Settings

hookspec = pluggy.HookspecMarker("kernai")
hookimpl = pluggy.HookimplMarker("kernai")
"""Marker for a plugin's hook implementations (exported as ``kernai.hookimpl``)."""


@hookspec
def register_backends(register: Callable[[Backend], None]) -> None:
    """Declare backends: call ``register(Backend(...))`` once per backend this plugin provides.

    Runs in the server process; must not import an engine.
    """


@hookspec(firstresult=True)
def load(backend: str, config: ModelConfig) -> Any:
    """Load the model that ``config`` describes and return a handle to it.

    ``config.model_path`` is the absolute path of ``parameters.model`` (``None`` if unset) and
    ``config.options`` holds the backend's options with defaults filled in. Raise
    :class:`kernai.errors.InvalidRequest` for a config the backend cannot use.
    """


@hookspec(firstresult=True)
def predict(backend: str, model: Any, request: Request) -> Result | Iterator[Chunk] | None:
    """Serve one typed request with the handle that ``load`` returned.

    Return the matching result struct, or, when ``request.stream`` is true, an iterator of chunk
    structs. The kernel closes the iterator early when the client goes away, so a generator's
    ``finally`` is the place to stop work. Raise :class:`kernai.errors.InvalidRequest` for a bad
    request (HTTP 400) and :class:`kernai.errors.NotSupported` for an unsupported one.
    """


@hookspec(firstresult=True)
def status(backend: str, model: Any) -> dict[str, Any] | None:
    """Extra, JSON-serialisable facts about the loaded model for the monitor (may be empty)."""


@hookspec(firstresult=True)
def shutdown(backend: str, model: Any) -> bool | None:
    """Release the model's resources; return ``True``. The worker exits afterwards."""


@hookspec
def register_routes() -> Sequence[ControllerRouterHandler] | None:
    """Return Litestar route handlers, controllers or routers to mount on the server's app.

    Each carries its policy in its ``opt`` (:func:`kernai.http.routes.route_opt`, set once on a router or
    controller): its route class (public, inference or management: which API key it takes) and its error
    format; a route without a class is a management route. Handlers receive ``manager``, ``settings`` and
    ``registry`` as dependencies, and the request's caller as ``kernai.http.scope.caller_of(scope)``.
    Called once, when the app is built; import the handlers inside the hook, so that ``kernai`` commands
    do not pay for them.
    """


@hookspec
def register_lifespan() -> Callable[[Litestar], AbstractAsyncContextManager[None]] | None:
    """Return an async context manager factory (a Litestar lifespan) that the app enters when it starts
    and leaves when it stops, before the model workers stop: for what this plugin's routes keep running."""


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add subcommands to the ``kernai`` command line: ``cli.add_command(group)`` or ``@cli.command()``."""


@hookspec
def offered_backends(settings: Settings) -> list[str] | None:
    """Return the names of the backends this plugin can install (the gallery: those its galleries list), for
    ``kernai doctor`` to report the ones no installed plugin provides."""


@hookspec
def register_ui_pages() -> Sequence[UiPage] | None:
    """Return the pages this plugin adds to the web UI (``/ui/<name>``), each a template rendered in the
    UI's layout and an entry in its navigation: a capability plugin's playground, for instance."""
