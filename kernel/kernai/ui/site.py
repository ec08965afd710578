"""The UI's pages, gathered from every plugin's :func:`kernai.hookspecs.register_ui_pages`, and the Jinja
environment that renders them in the layout."""

from __future__ import annotations

import hashlib
import logging
import re
from functools import cache
from pathlib import Path
from typing import Any
from weakref import WeakKeyDictionary

from jinja2 import (
    ChoiceLoader,
    Environment,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
    select_autoescape,
)

from kernai import __version__
from kernai.pages import PageSection, UiPage
from kernai.plugins import PluginRegistry

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
STATIC_URL = "/ui/static"
PAGE_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
SECTIONS = {PageSection.PLAYGROUND: "Playgrounds", PageSection.MANAGE: "Manage"}


@cache
def asset(path: str) -> str:
    """The URL of a file in ``static/``, with a digest of its content: browsers cache it until it changes."""
    digest = hashlib.sha256((STATIC / path).read_bytes()).hexdigest()[:10]
    return f"{STATIC_URL}/{path}?v={digest}"


class Site:
    """The pages of one set of plugins, and their templates."""

    def __init__(self, pages: list[tuple[str, UiPage]]) -> None:
        self.pages: dict[str, UiPage] = {}
        for plugin, page in pages:
            if not PAGE_NAME.match(page.name) or page.name in self.pages or page.name == "login":
                log.warning("plugin %s: UI page '%s' left out (a bad or taken name)", plugin, page.name)
                continue
            self.pages[page.name] = page
        order = list(SECTIONS)
        self.ordered = sorted(self.pages.values(), key=lambda p: (order.index(p.section), p.order, p.title))
        folders = {name: FileSystemLoader(Path(page.template).parent) for name, page in self.pages.items()}
        self.env = Environment(
            loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PrefixLoader(folders)]),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
        )
        self.env.globals.update(asset=asset, version=__version__, sections=SECTIONS)

    def template_of(self, page: UiPage) -> str:
        return f"{page.name}/{Path(page.template).name}"

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(**context)


_sites: WeakKeyDictionary[PluginRegistry, dict[tuple[str, ...], Site]] = WeakKeyDictionary()


def site_of(registry: PluginRegistry, disabled: list[str]) -> Site:
    """The site of ``registry`` (which the gallery replaces after installing a backend), built once."""
    built = _sites.setdefault(registry, {})
    key = tuple(disabled)
    if key not in built:
        found = registry.contributions("register_ui_pages", skip=disabled)
        built[key] = Site([(plugin, page) for plugin, pages in found for page in pages])
    return built[key]
