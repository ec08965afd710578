"""The web UI's session rules, on ASGI scopes: when the session cookie counts as the API key, who may open a
page, where a login may send the browser back to."""

from __future__ import annotations

from typing import Any

import pytest

from kernai.auth.principal import KeyKind, Principal
from kernai.http.authenticate import presented_key
from kernai.http.session import SESSION_COOKIE, cookie_key, cookie_value, csrf_token, session_key
from kernai.pages import PageSection
from kernai.ui.access import Access, page_access, safe_next

KEY = "sk-management-0123"
HOST = "127.0.0.1:8080"


def scope(method: str = "GET", *, kind: str = "http", cookie: str | None = None, **headers: str) -> Any:
    raw = [(b"host", HOST.encode())]
    if cookie is not None:
        raw.append((b"cookie", f"{SESSION_COOKIE}={cookie}".encode()))
    raw += [(name.replace("_", "-").encode(), value.encode()) for name, value in headers.items()]
    return {"type": kind, "method": method, "headers": raw, "query_string": b""}


def test_the_cookie_holds_any_key_and_nothing_else_reads_as_one() -> None:
    for key in (KEY, 'a key; with "quotes", spaces and é'):
        assert cookie_key(scope(cookie=cookie_value(key))) == key
    assert cookie_key(scope()) is None
    assert cookie_key(scope(cookie="%%%not-base64")) is None
    assert cookie_key(scope(cookie="")) is None


def test_the_cookie_counts_on_reads() -> None:
    assert session_key(scope("GET", cookie=cookie_value(KEY))) == KEY
    assert session_key(scope("HEAD", cookie=cookie_value(KEY))) == KEY
    assert presented_key(scope("GET", cookie=cookie_value(KEY))) == KEY


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_a_state_changing_request_needs_the_sessions_csrf_token(method: str) -> None:
    cookie = cookie_value(KEY)
    assert session_key(scope(method, cookie=cookie)) is None
    assert session_key(scope(method, cookie=cookie, x_csrf_token="0" * 64)) is None
    assert session_key(scope(method, cookie=cookie, x_csrf_token=csrf_token("another key"))) is None
    assert session_key(scope(method, cookie=cookie, x_csrf_token=csrf_token(KEY))) == KEY


def test_a_websocket_needs_the_servers_own_origin() -> None:
    cookie = cookie_value(KEY)
    assert session_key(scope(kind="websocket", cookie=cookie, origin=f"http://{HOST}")) == KEY
    assert session_key(scope(kind="websocket", cookie=cookie, origin="http://127.0.0.1:3000")) is None
    assert session_key(scope(kind="websocket", cookie=cookie, origin="null")) is None
    assert session_key(scope(kind="websocket", cookie=cookie)) is None


def test_a_key_in_a_header_wins_over_the_cookie() -> None:
    assert presented_key(scope("POST", cookie=cookie_value(KEY), x_api_key="sk-header")) == "sk-header"


def test_the_csrf_token_reveals_nothing_of_the_key() -> None:
    token = csrf_token(KEY)
    assert KEY not in token and len(token) == 64 and token != csrf_token(KEY + "x")


MANAGEMENT = Principal(KeyKind.MANAGEMENT)
INFERENCE = Principal(KeyKind.INFERENCE)


@pytest.mark.parametrize(
    ("section", "required", "principal", "access"),
    [
        (PageSection.PLAYGROUND, (False, False), None, Access.OPEN),
        (PageSection.MANAGE, (False, False), None, Access.OPEN),
        (PageSection.PLAYGROUND, (True, False), None, Access.OPEN),  # management auth alone
        (PageSection.MANAGE, (True, False), None, Access.LOGIN),
        (PageSection.PLAYGROUND, (True, True), None, Access.LOGIN),
        (PageSection.PLAYGROUND, (True, True), INFERENCE, Access.OPEN),
        (PageSection.MANAGE, (True, True), INFERENCE, Access.FORBIDDEN),
        (PageSection.MANAGE, (True, True), MANAGEMENT, Access.OPEN),
        (PageSection.PLAYGROUND, (True, True), MANAGEMENT, Access.OPEN),
    ],
)
def test_who_may_open_a_page(
    section: PageSection, required: tuple[bool, bool], principal: Principal | None, access: Access
) -> None:
    needed = {KeyKind.MANAGEMENT: required[0], KeyKind.INFERENCE: required[1]}
    assert page_access(section, needed, principal) is access


@pytest.mark.parametrize(
    ("target", "safe"),
    [
        ("/ui/models", "/ui/models"),
        ("/ui/chat?x=1", "/ui/chat?x=1"),
        ("", "/ui/"),
        (None, "/ui/"),
        ("https://evil.example/ui/", "/ui/"),
        ("//evil.example/ui/", "/ui/"),
        ("/\\evil.example/ui/", "/ui/"),
        ("/v1/models", "/ui/"),
        ("javascript:alert(1)", "/ui/"),
    ],
)
def test_a_login_goes_back_only_to_a_page_of_the_ui(target: str | None, safe: str) -> None:
    assert safe_next(target) == safe
