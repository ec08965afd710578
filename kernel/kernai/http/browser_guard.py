"""What keeps web pages in the user's browser from driving the server: Host, Origin and Content-Type checks.

- **Host.** A page that rebinds its own DNS name to 127.0.0.1 reaches the server under that name; only
  requests addressed to localhost, 127.0.0.1, [::1], the bound address (any port) or a name in
  ``allowed_hosts`` are served (400 otherwise). Bound to every address (``0.0.0.0``, ``::``), the
  machine's host name and any IP address are allowed too: an IP address cannot be rebound.
- **Origin.** A state-changing request (POST, PUT, PATCH, DELETE, a WebSocket upgrade) that carries an
  ``Origin`` must come from the server's own origin (its host and port those of the ``Host`` header)
  or one of ``cors_origins`` (403 otherwise). API clients send no ``Origin``.
- **Content-Type.** A route that reads JSON takes ``application/json`` or a ``+json`` type, or a body
  without a type (415 otherwise): browsers send ``text/plain`` and form types cross-site without a
  CORS preflight. A route's body types are its ``data`` parameter's (Litestar's ``Body(media_type=)``),
  or, for a handler that reads its body itself, the ``opt`` key :data:`BODY_MEDIA_TYPES`.

Litestar's ``AllowedHostsConfig`` is not used: it matches the Host header with its port, and its 400
is a fixed body in no surface's error shape that names no setting.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from litestar.enums import RequestEncodingType, ScopeType
from litestar.handlers import BaseRouteHandler
from litestar.types import Scope

from kernai.errors import Forbidden, InvalidRequest, UnsupportedMediaType
from kernai.settings import Settings

JSON = RequestEncodingType.JSON.value
MULTIPART = RequestEncodingType.MULTI_PART.value
BODY_MEDIA_TYPES = "body_media_types"
"""``opt`` key of a handler that reads its body itself: the media types it accepts."""
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
UNSPECIFIED = frozenset({"0.0.0.0", "[::]"})
STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}


def header(scope: Scope, name: bytes) -> str | None:
    """The value of the request's header ``name`` (lower case), stripped; ``None`` when it has none."""
    value = next((v for k, v in scope.get("headers") or () if k == name), None)
    return value.decode("latin-1").strip() if value is not None else None


def host_name(value: str) -> str:
    """A Host header or ``allowed_hosts`` entry without its port or final dot, in lower case, an IPv6
    address in brackets: ``Example.LAN.:8080`` is ``example.lan``, ``::1`` and ``[::1]:80`` are ``[::1]``."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] or value
    if value.count(":") > 1:
        return f"[{value}]"
    return value.partition(":")[0].rstrip(".")


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.strip("[]"))
    except ValueError:
        return False
    return True


def media_type(scope: Scope) -> str | None:
    """The request's ``Content-Type`` without its parameters, in lower case; ``None`` when it has none."""
    value = header(scope, b"content-type")
    return (value.partition(";")[0].strip().lower() or None) if value is not None else None


def accepted_media_types(handler: BaseRouteHandler) -> frozenset[str] | None:
    """The media types ``handler`` reads its body as; ``None`` when it reads no body."""
    if (declared := handler.opt.get(BODY_MEDIA_TYPES)) is not None:
        return frozenset(declared)
    data = handler.parsed_fn_signature.parameters.get("data")
    if data is None:
        return None
    return frozenset({RequestEncodingType(getattr(data.kwarg_definition, "media_type", None) or JSON).value})


def check_content_type(scope: Scope) -> None:
    """Refuse a body whose type the scope's route handler does not read (415); a body without a type is
    read as the handler's own (JSON, for most)."""
    accepted = accepted_media_types(scope["route_handler"])
    media = media_type(scope)
    if accepted is None or media is None or media in accepted:
        return
    if JSON in accepted and media.endswith("+json"):
        return
    hint = " (curl: --json, or -H 'Content-Type: application/json')" if JSON in accepted else ""
    raise UnsupportedMediaType(
        f"Content-Type '{media}' is not accepted here: send {' or '.join(sorted(accepted))}{hint}"
    )


def same_origin(origin: str, host: str | None) -> bool:
    """Whether ``origin`` has the host and port of the ``host`` header (the server's own origin; the scheme
    is not compared: behind a TLS proxy the page is https while kernai sees http)."""
    if host is None:
        return False
    try:
        parsed = urlsplit(origin)
        default = DEFAULT_PORTS[parsed.scheme]
        own = urlsplit(f"//{host}")
        return (
            parsed.hostname is not None
            and parsed.hostname == own.hostname
            and (parsed.port or default) == (own.port or default)
        )
    except (KeyError, ValueError):  # another scheme ("null" has none), a bad port
        return False


class BrowserGuard:
    """The Host and Origin checks for one app's settings."""

    def __init__(self, settings: Settings) -> None:
        entries = {host_name(entry) for entry in settings.allowed_hosts}
        bound = host_name(settings.host)
        self.any_host = "*" in entries
        self.any_ip = bound in UNSPECIFIED
        self.names = LOOPBACK_NAMES | {bound} | {e for e in entries if not e.startswith("*.")}
        if self.any_ip:
            self.names |= {socket.gethostname().lower()}
        self.suffixes = tuple(e[1:] for e in entries if e.startswith("*."))
        self.any_origin = "*" in settings.cors_origins
        self.origins = frozenset(origin.rstrip("/").lower() for origin in settings.cors_origins)

    def host_allowed(self, host: str) -> bool:
        name = host_name(host)
        return (
            self.any_host
            or name in self.names
            or name.endswith(self.suffixes)
            or (self.any_ip and _is_ip(name))
        )

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        """Whether ``origin`` is one of ``cors_origins``, or has the host and port of the ``host`` header
        (the scheme is not compared: behind a TLS proxy the page is https while kernai sees http)."""
        if self.any_origin or origin.rstrip("/").lower() in self.origins:
            return True
        return same_origin(origin, host)

    def check(self, scope: Scope) -> None:
        """Refuse a request to a name not allowed (400) or a state-changing one from another origin (403)."""
        host = header(scope, b"host")
        if host is not None and not self.host_allowed(host):
            raise InvalidRequest(
                f"Host '{host}' is not allowed: this server answers requests addressed to localhost,"
                " 127.0.0.1, [::1] or the address it listens on; to reach it by another name, add it to the"
                " 'allowed_hosts' setting (KERNAI_ALLOWED_HOSTS, kernai serve --allowed-host)",
                code="host_not_allowed",
            )
        origin = header(scope, b"origin")
        changing = scope["type"] == ScopeType.WEBSOCKET or scope.get("method") in STATE_CHANGING
        if origin is not None and changing and not self.origin_allowed(origin, host):
            raise Forbidden(
                f"Origin '{origin}' is not allowed: a web page may change state here only from this server's"
                " own origin or one listed in the 'cors_origins' setting",
                code="origin_not_allowed",
            )
