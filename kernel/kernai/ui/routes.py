"""The UI's routes: its pages (``/ui/<name>``), the login form, its static files, and ``/``.

The pages are public routes: they hold no data (their scripts fetch it from the APIs, which check the
key), and the page handler itself sends a visitor without the key a page needs to the login form. The
login takes a key typed into a form, checks it (a wrong one counts against the address's failed
authentications), and keeps it in the session cookie of :mod:`kernai.http.session`.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import CacheControlHeader, Cookie
from litestar.enums import MediaType
from litestar.exceptions import NotFoundException
from litestar.response import Redirect
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler
from msgspec import Struct

from kernai.auth.keys import KeyStore
from kernai.auth.principal import Principal
from kernai.errors import RateLimited, Unauthorized
from kernai.http.authenticate import Authenticator
from kernai.http.routes import RouteClass, route_opt
from kernai.http.session import SESSION_COOKIE, cookie_key, cookie_value, csrf_token
from kernai.pages import UiPage
from kernai.plugins import PluginRegistry
from kernai.settings import Settings
from kernai.ui.access import UI_PREFIX, Access, page_access, safe_next
from kernai.ui.site import STATIC, STATIC_URL, Site, site_of

SESSION_DAYS = 30
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data: blob:; media-src 'self' blob: data:; connect-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Every page: not cached (it holds the CSRF token), scripts and styles from this server, never framed."""


class LoginForm(Struct, kw_only=True):
    key: str = ""
    next: str = ""


class FormError(Exception):
    """A login form that is not one ``key`` and one ``next`` as text."""


async def read_login_form(request: Request[Any, Any, Any]) -> LoginForm:
    """The login form's fields; each may be sent at most once, as text (an unknown field is ignored)."""
    form = await request.form()
    fields: dict[str, str] = {}
    for name in LoginForm.__struct_fields__:
        values = form.getall(name, [])
        if len(values) > 1:
            raise FormError(f"The form sent '{name}' {len(values)} times; send it once.")
        if values and not isinstance(values[0], str):
            raise FormError(f"The form's '{name}' must be text, not a file.")
        if values:
            fields[name] = values[0]
    return LoginForm(**fields)


class Visitor:
    """The session of one page request: the key's principal (``None`` without a valid one)."""

    def __init__(self, request: Request[Any, Any, Any]) -> None:
        self.keys: KeyStore = request.app.state.key_store
        self.key = cookie_key(request.scope)
        self.principal: Principal | None = None
        if self.key is not None:
            try:
                self.principal = self.keys.authenticate(self.key)
            except Unauthorized:  # revoked or expired since the login
                self.key = None

    def access(self, page: UiPage) -> Access:
        return page_access(page.section, self.keys.required, self.principal)

    def context(self, site: Site, page: UiPage | None) -> dict[str, Any]:
        return {
            "page": page,
            "pages": [p for p in site.ordered if self.access(p) is not Access.FORBIDDEN],
            "csrf_token": csrf_token(self.key) if self.key is not None else "",
            "signed_in": self.principal.kind.value if self.principal is not None else None,
            "auth_required": any(self.keys.required.values()),
        }


def _html(body: str, status: int = 200) -> Response[str]:
    return Response(body, status_code=status, media_type=MediaType.HTML, headers=PAGE_HEADERS)


def _site(registry: PluginRegistry, settings: Settings) -> Site:
    return site_of(registry, settings.disabled_plugins)


def _login_page(
    site: Site, visitor: Visitor, next_url: str, error: str = "", status: int = 200
) -> Response[str]:
    context = visitor.context(site, None)
    return _html(site.render("login.html", **context, next_url=next_url, error=error), status)


class UiController(Controller):
    path = "/ui"
    opt = route_opt(RouteClass.PUBLIC)
    include_in_schema = False

    @get("/")
    async def start(
        self, request: Request[Any, Any, Any], registry: PluginRegistry, settings: Settings
    ) -> Redirect:
        """The first page the visitor may open (the login form when a key is needed for every page)."""
        site, visitor = _site(registry, settings), Visitor(request)
        first = next((p for p in site.ordered if visitor.access(p) is Access.OPEN), None)
        return Redirect(f"{UI_PREFIX}{first.name}" if first else f"{UI_PREFIX}login", status_code=303)

    @get("/login")
    async def login_form(
        self, request: Request[Any, Any, Any], registry: PluginRegistry, settings: Settings, next: str = ""
    ) -> Response[str]:
        return _login_page(_site(registry, settings), Visitor(request), safe_next(next))

    @post("/login", status_code=303)
    async def login(
        self, request: Request[Any, Any, Any], registry: PluginRegistry, settings: Settings
    ) -> Response[Any]:
        """Check the key (a wrong one is a 401 page and counts as a failed authentication) and keep it in the
        session cookie: HttpOnly, SameSite=Strict, for 30 days. A form that repeats a field is a 400 page."""
        site, visitor = _site(registry, settings), Visitor(request)
        try:
            data = await read_login_form(request)
        except FormError as exc:
            return _login_page(site, visitor, safe_next(""), str(exc), 400)
        target = safe_next(data.next)
        authenticator: Authenticator = request.app.state.authenticator
        key = data.key.strip()
        try:
            authenticator.check_login(request.scope, key)
        except Unauthorized:
            return _login_page(site, visitor, target, "That key is not valid.", 401)
        except RateLimited as exc:
            return _login_page(site, visitor, target, str(exc), 429)
        cookie = Cookie(
            key=SESSION_COOKIE,
            value=cookie_value(key),
            max_age=SESSION_DAYS * 86400,
            path="/",
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
        )
        return Redirect(target, status_code=303, cookies=[cookie])

    @post("/logout", status_code=303)
    async def logout(self) -> Redirect:
        """Forget the session's key."""
        cookie = Cookie(key=SESSION_COOKIE, value="", max_age=0, path="/", httponly=True, samesite="strict")
        return Redirect(f"{UI_PREFIX}login", status_code=303, cookies=[cookie])

    @get("/{name:str}")
    async def page(
        self, name: str, request: Request[Any, Any, Any], registry: PluginRegistry, settings: Settings
    ) -> Response[Any]:
        site, visitor = _site(registry, settings), Visitor(request)
        page = site.pages.get(name)
        if page is None:
            body = site.render(
                "message.html",
                **visitor.context(site, None),
                title="Not found",
                message=f"There is no page '{name}' here.",
            )
            return _html(body, 404)
        access = visitor.access(page)
        if access is Access.LOGIN:
            return Redirect(f"{UI_PREFIX}login?next={UI_PREFIX}{page.name}", status_code=303)
        if access is Access.FORBIDDEN:
            body = site.render(
                "message.html",
                **visitor.context(site, page),
                title=page.title,
                message="This page needs a management key: sign in with one.",
            )
            return _html(body, 403)
        return _html(site.render(site.template_of(page), **visitor.context(site, page)))


class RootController(Controller):
    opt = route_opt(RouteClass.PUBLIC)
    include_in_schema = False

    @get("/")
    async def root(self, settings: Settings) -> Redirect:
        """``/`` leads to the UI unless ``ui_at_root`` is off."""
        if not settings.ui_at_root:
            raise NotFoundException()
        return Redirect(UI_PREFIX, status_code=307)


def ui_routes() -> list[ControllerRouterHandler]:
    static = create_static_files_router(
        STATIC_URL,
        directories=[STATIC],
        include_in_schema=False,
        opt=route_opt(RouteClass.PUBLIC),
        cache_control=CacheControlHeader(max_age=86400),
    )
    return [UiController, RootController, static]
