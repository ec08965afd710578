"""The operations layer of one app: API keys, rate limits, traces, and the gate that applies them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar.middleware import DefineMiddleware

from kernai.auth.keys import KeyStore, PermissionMode
from kernai.auth.principal import KeyKind
from kernai.http.authenticate import Authenticator
from kernai.http.browser_guard import BrowserGuard
from kernai.http.gate import Gate, GateServices
from kernai.http.observe import Recorder
from kernai.limits import RateLimiter
from kernai.manager import ModelManager
from kernai.observability.traces import TraceRing
from kernai.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Operations:
    state: dict[str, Any]
    """``key_store``, ``traces`` and ``authenticator``, which the auth, observability and UI routes read."""
    middleware: list[DefineMiddleware]


def operations(settings: Settings, manager: ModelManager) -> Operations:
    keys = KeyStore(manager.db, settings)
    if keys.required[KeyKind.MANAGEMENT] and not keys.has_management_key():
        _, secret = keys.create("bootstrap", KeyKind.MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)
        log.warning(
            "management auth is on and no management key exists: created one, shown only now: %s", secret
        )
    traces = TraceRing(settings.trace_size)
    limiter = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)
    services = GateServices(
        settings,
        BrowserGuard(settings),
        Authenticator(settings, keys, limiter, manager.metrics),
        Recorder(manager.metrics, traces),
    )
    return Operations(
        state={"key_store": keys, "traces": traces, "authenticator": services.authenticator},
        middleware=[DefineMiddleware(Gate, services=services)],
    )
