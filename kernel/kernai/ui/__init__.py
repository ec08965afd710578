"""The web UI, a default plugin: playgrounds (chat, audio, detection) and management pages (models, gallery,
instances, API keys, traces) at ``/ui/``, and ``/`` leading there (the ``ui_at_root`` setting).

The pages are Jinja templates rendered by the server (:mod:`.site`, :mod:`.routes`) with small scripts
of their own that call the server's JSON APIs from the browser; every script, style and font is in
``static/``. The UI's pages are declared through :func:`kernai.hookspecs.register_ui_pages`, the hook a
capability plugin uses to add its own playground. Its login keeps the API key in the session cookie
of :mod:`kernai.http.session`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from kernai import hookimpl
from kernai.pages import PageSection, UiPage

if TYPE_CHECKING:
    from litestar.types import ControllerRouterHandler

TEMPLATES = Path(__file__).parent / "templates"


@hookimpl
def register_routes() -> Sequence[ControllerRouterHandler]:
    from kernai.ui.routes import ui_routes

    return ui_routes()


def _page(name: str, title: str, section: PageSection, order: int, *capabilities: str) -> UiPage:
    return UiPage(
        name=name,
        title=title,
        template=str(TEMPLATES / f"{name}.html"),
        section=section,
        order=order,
        capabilities=list(capabilities),
    )


@hookimpl
def register_ui_pages() -> Sequence[UiPage]:
    play, manage = PageSection.PLAYGROUND, PageSection.MANAGE
    return [
        _page("chat", "Chat", play, 10, "chat"),
        _page("audio", "Audio", play, 20, "speech", "transcription", "vad"),
        _page("detection", "Detection", play, 30, "detection"),
        _page("models", "Models", manage, 40),
        _page("gallery", "Gallery", manage, 50),
        _page("instances", "Instances", manage, 60),
        _page("keys", "API keys", manage, 70),
        _page("traces", "Traces", manage, 80),
    ]
