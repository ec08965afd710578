"""The web UI's session: an API key kept in an HttpOnly, SameSite=Strict cookie, and its CSRF token.

The UI's login form sets the cookie (:mod:`kernai.ui`); the gate then takes it as the request's key
(:func:`kernai.http.authenticate.presented_key`) only where a web page of another origin cannot use it:

- a GET or HEAD (which change nothing; another page cannot read the answer);
- a state-changing request (POST, PUT, PATCH, DELETE) that carries the session's CSRF token in the
  ``X-CSRF-Token`` header: the UI's pages hold it, another origin cannot read it, and a cross-origin page
  cannot set that header without a CORS preflight the server does not grant;
- a WebSocket upgrade whose ``Origin`` is the server's own (browsers cannot set headers there).

SameSite=Strict already keeps the cookie off requests from other sites; these checks also cover pages of
the same site on another port (``localhost:3000``). A key in a header always counts, as before.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from http.cookies import CookieError, SimpleCookie

from litestar.enums import ScopeType
from litestar.types import Scope

from kernai.http.browser_guard import header, same_origin

SESSION_COOKIE = "kernai_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD"})


def csrf_token(key: str) -> str:
    """The CSRF token of a session holding ``key``: derived from it, and revealing nothing of it."""
    return hmac.new(key.encode(), b"kernai-ui-csrf", hashlib.sha256).hexdigest()


def cookie_value(key: str) -> str:
    """The session cookie's value for ``key``: the key in base64url, so that any key a config may hold
    (spaces, quotes, non-ASCII) is a valid cookie value."""
    return base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")  # "=" would make browsers quote it


def cookie_key(scope: Scope) -> str | None:
    """The API key in the request's session cookie, if any (whether it may count or not)."""
    raw = header(scope, b"cookie")
    if not raw:
        return None
    cookies = SimpleCookie()
    try:
        cookies.load(raw)
    except CookieError:
        return None
    morsel = cookies.get(SESSION_COOKIE)
    if morsel is None or not morsel.value:
        return None
    try:
        return base64.urlsafe_b64decode(morsel.value + "=" * (-len(morsel.value) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None


def session_key(scope: Scope) -> str | None:
    """The session cookie's key where it may count for this request (see the module's rules)."""
    key = cookie_key(scope)
    if key is None:
        return None
    if scope["type"] == ScopeType.WEBSOCKET:
        origin = header(scope, b"origin")
        return key if origin is not None and same_origin(origin, header(scope, b"host")) else None
    if scope.get("method") in SAFE_METHODS:
        return key
    token = header(scope, CSRF_HEADER.encode())
    return key if token is not None and hmac.compare_digest(token, csrf_token(key)) else None
