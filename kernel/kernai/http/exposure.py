"""Who else can reach the server: ``kernai serve`` refuses an address beyond loopback while management routes
need no key, unless ``insecure_allow_open_management`` accepts the risk; the log names the open routes."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Mapping

from litestar import Router

from kernai.auth.keys import KeyStore
from kernai.auth.principal import KeyKind
from kernai.http.routes import RouteClass, route_class
from kernai.settings import Settings
from kernai.store import open_database

SHOWN_PREFIXES = 12
"""How many path prefixes the warning names for each class of route."""


def is_loopback(host: str) -> bool:
    """Whether the address ``host`` (a name or an IP address) is this machine's loopback alone."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def required_auth(settings: Settings) -> dict[KeyKind, bool]:
    """Whether each kind of route needs a key: the settings, overridden by the switches in the database."""
    db = open_database(settings.data_path)
    try:
        return KeyStore(db, settings).required
    finally:
        db.close()


def bind_refusal(settings: Settings, required: Mapping[KeyKind, bool]) -> str | None:
    """Why the server may not listen on ``settings.host``, or ``None`` when it may."""
    if is_loopback(settings.host) or required[KeyKind.MANAGEMENT] or settings.insecure_allow_open_management:
        return None
    return (
        f"refusing to listen on {settings.host} with management auth off: anyone who can reach that address"
        " could install models and backends, set up workers and read request traces. Turn management auth"
        " on (require_management_auth: true in the config, or KERNAI_REQUIRE_MANAGEMENT_AUTH=true): the"
        " server then creates a management key at start and prints it once, or takes yours from"
        " management_keys. Or accept the risk with --insecure-allow-open-management"
        " (KERNAI_INSECURE_ALLOW_OPEN_MANAGEMENT=true)."
    )


def route_prefixes(app: Router) -> dict[KeyKind, list[str]]:
    """The paths of the app's routes of each class that takes a key, by their first segment (``/api/*``
    for ``/api/v1/instances``, ``/metrics`` for itself), the prefix with the most routes first."""
    counts: dict[KeyKind, Counter[str]] = {kind: Counter() for kind in KeyKind}
    for path, handlers in app.route_handler_method_map.items():
        first, _, rest = path.lstrip("/").partition("/")
        prefix = f"/{first}/*" if rest else f"/{first}"
        for handler in handlers.values():
            if (kind := route_class(handler)) is not RouteClass.PUBLIC:
                counts[KeyKind(kind.value)][prefix] += 1
    return {kind: [prefix for prefix, _ in found.most_common()] for kind, found in counts.items()}


def open_routes_warning(
    settings: Settings, required: Mapping[KeyKind, bool], prefixes: Mapping[KeyKind, list[str]]
) -> str | None:
    """A warning naming the routes open to anyone who reaches ``settings.host`` beyond loopback, if any."""
    opened = [
        f"{kind.value} routes ({_listed(prefixes.get(kind, []))})"
        for kind in (KeyKind.MANAGEMENT, KeyKind.INFERENCE)
        if not required[kind]
    ]
    if is_loopback(settings.host) or not opened:
        return None
    return f"listening on {settings.host} with no API key needed for: {'; '.join(opened)}"


def _listed(prefixes: list[str]) -> str:
    shown = ", ".join(prefixes[:SHOWN_PREFIXES])
    return shown + (", ..." if len(prefixes) > SHOWN_PREFIXES else "")
