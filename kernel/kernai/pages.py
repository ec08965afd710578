"""What a plugin declares about a page it adds to the web UI (:func:`kernai.hookspecs.register_ui_pages`)."""

from __future__ import annotations

from enum import StrEnum

from msgspec import Struct, field


class PageSection(StrEnum):
    """Where a page sits in the UI's navigation, and which API key a visitor needs to see it when keys are
    required."""

    PLAYGROUND = "playground"
    """Try a capability (chat, audio, detection, ...): any key."""
    MANAGE = "manage"
    """Models, gallery, instances, keys, traces: a management key."""


class UiPage(Struct, frozen=True, kw_only=True):
    """A page of the web UI, served at ``/ui/<name>``.

    ``template`` is the path of a Jinja template that extends ``"layout.html"`` and fills its ``main``
    block (and ``scripts``, for ``<script src>`` tags: the UI's pages run no inline script). The UI renders
    it with ``page``, ``pages`` and ``csrf_token`` in its context. Scripts and other files the page needs
    are the plugin's own routes (:func:`kernai.hookspecs.register_routes`).
    """

    name: str
    """The page's URL segment, ``/ui/<name>``: letters, digits and dashes."""
    title: str
    """Its label in the navigation."""
    template: str
    section: PageSection = PageSection.PLAYGROUND
    order: int = 100
    """Position in its section, lowest first (the UI's own pages use 10 to 80)."""
    capabilities: list[str] = field(default_factory=list)
    """Capabilities the page uses (``chat``, ``speech``, ...), shown beside its title."""
