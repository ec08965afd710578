"""The gate's key and rate checks: who the caller is, and whether they may come in now.

A management route takes a management key when ``require_management_auth`` is on; an inference route
takes either kind when ``require_inference_auth`` is on. Keys come as ``Authorization: Bearer KEY`` or
``x-api-key: KEY`` (WebSockets may also pass ``?api_key=KEY``, as browsers cannot set headers there), or
in the web UI's session cookie, under the rules of :mod:`kernai.http.session`.

Rate limits take a token from the bucket of the request's valid key, else of its client address. A
request refused with 401 also takes one from its address's failed-authentication bucket; while that is
empty, the address gets 429 before its key is checked, so keys cannot be guessed at full speed.
"""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar
from urllib.parse import parse_qs

from litestar.enums import ScopeType
from litestar.types import Scope

from kernai.auth.keys import KeyStore, digest
from kernai.auth.principal import KeyKind, Principal
from kernai.errors import Forbidden, RateLimited, Unauthorized
from kernai.http.routes import RouteClass
from kernai.http.session import session_key
from kernai.limits import RateLimiter
from kernai.observability.metrics import Metrics
from kernai.settings import Settings

T = TypeVar("T")


def presented_key(scope: Scope) -> str | None:
    """The API key the request carries, if any."""
    headers = dict(scope.get("headers") or [])
    authorization = headers.get(b"authorization", b"").decode(errors="replace").strip()
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    if key := headers.get(b"x-api-key", b"").decode(errors="replace").strip():
        return key
    if scope["type"] == ScopeType.WEBSOCKET:
        values = parse_qs(scope.get("query_string", b"").decode(errors="replace")).get("api_key")
        if values:
            return values[0]
    return session_key(scope)


@lru_cache(maxsize=4096)
def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class Authenticator:
    """API keys and rate limits for one app."""

    def __init__(self, settings: Settings, keys: KeyStore, limiter: RateLimiter, metrics: Metrics) -> None:
        self.settings = settings
        self.keys = keys
        self.limiter = limiter
        self.metrics = metrics

    def admit(self, scope: Scope, kind: RouteClass) -> Principal | None:
        """The caller's principal (``None`` when the route's class needs no key), counted against its
        rate limit; 401, 403 or 429 when it may not come in."""
        principal, key = self.authenticate_limited(scope, kind)
        self.rate_limit(scope, key if principal is not None else None)
        return principal

    def authenticate(self, scope: Scope, kind: RouteClass) -> tuple[Principal | None, str | None]:
        """The principal of the request's key and the key; ``(None, key)`` when ``kind`` needs none."""
        required = self.keys.required[KeyKind(kind.value)]
        key = presented_key(scope)
        if not required:
            return None, key
        if key is None:
            raise Unauthorized("Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'")
        principal = self.keys.authenticate(key)
        if kind is RouteClass.MANAGEMENT and principal.kind is not KeyKind.MANAGEMENT:
            raise Forbidden("This route needs a management key")
        return principal, key

    def authenticate_limited(self, scope: Scope, kind: RouteClass) -> tuple[Principal | None, str | None]:
        """:meth:`authenticate`, refused with 429 while the address's failed-authentication bucket is
        empty; a 401 takes a token from it."""
        if not self.keys.required[KeyKind(kind.value)]:
            return self.authenticate(scope, kind)
        return self._counting_failures(scope, lambda: self.authenticate(scope, kind))

    def check_login(self, scope: Scope, key: str) -> Principal:
        """The principal of ``key``, typed into the web UI's login form: a wrong key is a 401 that counts
        against the address's failed-authentication bucket, as a wrong key in a header does."""
        return self._counting_failures(scope, lambda: self.keys.authenticate(key))

    def _counting_failures(self, scope: Scope, check: Callable[[], T]) -> T:
        """``check()``, refused with 429 while the address's failed-authentication bucket is empty; a 401
        takes a token from it."""
        limited, host = self._limited_host(scope)
        if not limited:
            return check()
        bucket = f"failed:{host}"
        self._refuse(self.limiter.wait(bucket), "failed_auth", "failed authentications")
        try:
            return check()
        except Unauthorized:
            self.limiter.acquire(bucket)
            raise

    def rate_limit(self, scope: Scope, key: str | None) -> None:
        """Count the request against its key's bucket (a key that was checked) or its address's."""
        limited, host = self._limited_host(scope)
        if limited:
            wait = self.limiter.acquire(f"key:{digest(key)}" if key else f"ip:{host}")
            self._refuse(wait, "rate_limit", "requests")

    def _limited_host(self, scope: Scope) -> tuple[bool, str | None]:
        """Whether requests from the scope's client are rate limited, and its address."""
        host = (scope.get("client") or (None, None))[0]
        settings = self.settings
        return settings.rate_limit and (settings.rate_limit_localhost or not _is_loopback(host)), host

    def _refuse(self, wait: float, reason: str, what: str) -> None:
        if wait > 0:
            self.metrics.rejected.labels(reason).inc()
            raise RateLimited(
                f"Rate limit of {self.settings.rate_limit_per_minute} {what} a minute exceeded",
                retry_after=max(1, math.ceil(wait)),
            )
