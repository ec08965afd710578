"""Who else can reach the server: ``kernai serve`` refuses an address beyond loopback while management routes
need no key, unless ``insecure_allow_open_management`` accepts the risk; the log names the open routes."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping

from kernai.auth.keys import KeyStore
from kernai.auth.principal import KeyKind
from kernai.http.gate import MANAGEMENT_PREFIXES
from kernai.settings import Settings
from kernai.store import open_database

OPEN_ROUTES = {
    KeyKind.MANAGEMENT: f"management routes ({', '.join(prefix + '*' for prefix in MANAGEMENT_PREFIXES)})",
    KeyKind.INFERENCE: "inference routes (/v1/*, /tts, /vad, /generate, ...)",
}


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


def open_routes_warning(settings: Settings, required: Mapping[KeyKind, bool]) -> str | None:
    """A warning naming the routes open to anyone who reaches ``settings.host`` beyond loopback, if any."""
    opened = [OPEN_ROUTES[kind] for kind in (KeyKind.MANAGEMENT, KeyKind.INFERENCE) if not required[kind]]
    if is_loopback(settings.host) or not opened:
        return None
    return f"listening on {settings.host} with no API key needed for: {'; '.join(opened)}"
