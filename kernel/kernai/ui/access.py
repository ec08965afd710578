"""Who may open which page of the UI, and where a login may send the browser back to."""

from __future__ import annotations

from enum import Enum
from urllib.parse import urlsplit

from kernai.auth.principal import KeyKind, Principal
from kernai.pages import PageSection

UI_PREFIX = "/ui/"


class Access(Enum):
    OPEN = "open"
    """The visitor may see the page."""
    LOGIN = "login"
    """A key is needed and the session holds none: the login form."""
    FORBIDDEN = "forbidden"
    """The session's key is of the wrong kind: an inference key on a management page."""


def page_access(section: PageSection, required: dict[KeyKind, bool], principal: Principal | None) -> Access:
    """Playgrounds call inference routes and need any key when inference auth is on; management pages call
    management routes and need a management key when management auth is on."""
    kind = KeyKind.MANAGEMENT if section is PageSection.MANAGE else KeyKind.INFERENCE
    if not required[kind]:
        return Access.OPEN
    if principal is None:
        return Access.LOGIN
    if kind is KeyKind.MANAGEMENT and principal.kind is not KeyKind.MANAGEMENT:
        return Access.FORBIDDEN
    return Access.OPEN


def safe_next(target: str | None) -> str:
    """Where to go after a login: ``target`` when it is a page of the UI on this server, else the UI's start
    (never another site: ``//evil.example/ui/`` and ``https://...`` are refused)."""
    if not target:
        return UI_PREFIX
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(UI_PREFIX) or "\\" in target:
        return UI_PREFIX
    return target
