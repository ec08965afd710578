"""Wiring of the operations layer into the app: API keys, the gate middleware, traces, their dependencies."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from litestar.di import Provide
from litestar.middleware import DefineMiddleware

from kernai.auth.keys import KeyStore, PermissionMode
from kernai.auth.principal import KeyKind
from kernai.http.browser_guard import BrowserGuard
from kernai.http.controllers.auth import provide_keys
from kernai.http.controllers.observability import provide_traces
from kernai.http.exposure import open_routes_warning
from kernai.http.gate import Gate, GateServices
from kernai.limits import RateLimiter
from kernai.manager import ModelManager
from kernai.observability.traces import TraceRing
from kernai.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Operations:
    state: dict[str, Any]
    dependencies: dict[str, Provide]
    middleware: list[DefineMiddleware]


def operations(settings: Settings, manager: ModelManager) -> Operations:
    keys = KeyStore(manager.db, settings)
    if keys.required[KeyKind.MANAGEMENT] and not keys.has_management_key():
        _, secret = keys.create("bootstrap", KeyKind.MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)
        log.warning(
            "management auth is on and no management key exists: created one, shown only now: %s", secret
        )
    if (warning := open_routes_warning(settings, keys.required)) is not None:
        log.warning(warning)
    traces = TraceRing(settings.trace_size)
    services = GateServices(
        settings,
        keys,
        manager.metrics,
        traces,
        RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst),
        BrowserGuard(settings),
    )
    return Operations(
        state={"key_store": keys, "traces": traces},
        dependencies={
            "key_store": Provide(provide_keys, sync_to_thread=False),
            "traces": Provide(provide_traces, sync_to_thread=False),
        },
        middleware=[DefineMiddleware(Gate, services=services)],
    )
