"""Server settings: defaults, then a YAML file, then ``KERNAI_*`` environment variables, then CLI flags."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import msgspec
import yaml
from msgspec import Struct, field

ENV_PREFIX = "KERNAI_"
CONFIG_ENV = "KERNAI_CONFIG"
LogLevel = Literal["debug", "info", "warning", "error"]


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "kernai"


BUNDLED_GALLERY = Path(__file__).resolve().parents[2] / "gallery"
"""The gallery folder of a source checkout (``index.yaml``, ``backends.yaml``)."""


class GallerySource(Struct, frozen=True):
    """A gallery: a name (the ``name`` in ``name@entry``) and the URL or path of its YAML index."""

    name: str
    url: str
    trusted: bool = False
    """Whether its model entries may set ``environment`` for their workers."""


class Settings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything the server reads at start-up. Each field is also ``KERNAI_<FIELD>`` in the environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    models_dir: str = field(default_factory=lambda: str(_data_home() / "models"))
    data_dir: str = field(default_factory=lambda: str(_data_home() / "data"))
    log_level: LogLevel = "info"
    # HTTP
    disabled_plugins: list[str] = field(default_factory=list)
    """Plugins whose routes the server leaves out, e.g. ``["anthropic", "gallery"]``: the kernel's own API
    surfaces and gallery (``kernai plugins --all`` lists them), or an entry-point plugin's routes (which
    entry-point plugins load at all is ``KERNAI_LOAD_PLUGINS``'s)."""
    ui_at_root: bool = True
    """Whether ``/`` leads to the web UI (``/ui/``); off, ``/`` is a 404 and the UI stays at ``/ui/``."""
    allowed_hosts: list[str] = field(default_factory=list)
    """Host names requests may be addressed to besides localhost, 127.0.0.1, [::1] and ``host``
    (``*.lan``: any name under lan; ``*``: any name, no DNS-rebinding protection)."""
    insecure_allow_open_management: bool = False
    """Let ``kernai serve`` bind beyond loopback with ``require_management_auth`` off."""
    cors_origins: list[str] = field(default_factory=list)
    cors_headers: list[str] = field(default_factory=lambda: ["*"])
    response_headers: dict[str, str] = field(default_factory=dict)
    cors_methods: list[str] = field(default_factory=lambda: ["*"])
    cors_allow_credentials: bool = False
    max_body_size: int = 10_000_000
    """Largest request body in bytes (413 above it), unless ``body_size_limits`` names the route."""
    body_size_limits: dict[str, int] = field(default_factory=lambda: {"/v1/audio/": 100_000_000})
    """Per-route body limits in bytes: the longest path prefix that matches wins."""
    # model manager
    load_timeout: float = 300.0
    """Seconds a model may take to load before it is reported as failed."""
    # images given by URL (detection)
    image_fetch_timeout: float = 10.0
    """Seconds to fetch an image given by URL, connection, headers and body together."""
    image_max_bytes: int = 20_000_000
    """Largest image fetched by URL, in bytes."""
    # gallery
    galleries: list[GallerySource] = field(
        default_factory=lambda: [GallerySource("kernai", str(BUNDLED_GALLERY / "index.yaml"))]
    )
    """Model galleries, searched in order for a bare entry name."""
    backend_galleries: list[GallerySource] = field(
        default_factory=lambda: [GallerySource("kernai", str(BUNDLED_GALLERY / "backends.yaml"))]
    )
    """Backend (plugin) galleries."""
    max_running_models: int = 0
    """How many models may run at once (0: no cap). LocalAI's ``max_active_backends``."""
    lru_eviction: bool = True
    """At the cap, stop the least recently used idle model to make room; off: answer 409."""
    busy_timeout: float = 30.0
    """Seconds a request waits for a running model to become idle when every one at the cap is busy."""
    force_eviction: bool = False
    """After ``busy_timeout``, stop the least recently used busy model instead of answering 503."""
    idle_timeout: float = 0.0
    """Seconds without requests after which a model is unloaded (0: never); a model's own value wins."""
    idle_check_interval: float = 1.0
    queue_size: int = 64
    """Requests that may wait for one model beyond those it runs in parallel; more get 503."""
    # API keys (llamactl)
    require_management_auth: bool = False
    require_inference_auth: bool = False
    management_keys: list[str] = field(default_factory=list)
    inference_keys: list[str] = field(default_factory=list)
    # rate limiting (LocalLab)
    rate_limit: bool = True
    rate_limit_per_minute: int = 60
    rate_limit_burst: int = 10
    rate_limit_localhost: bool = False
    """Whether clients on the loopback address are rate limited too."""
    # observability
    trace_size: int = 200
    """Recent requests kept for ``/api/traces`` (and backend calls for ``/api/backend-traces``)."""
    trace_body_limit: int = 2048
    """Characters of each request and response body kept in a trace."""

    SECRET_FIELDS = ("management_keys", "inference_keys")

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir).expanduser().resolve()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Build settings from the layers, the later ones winning. ``None`` overrides are ignored.

        A bad value is a :class:`ValueError` naming the setting and where it came from: the file,
        the ``KERNAI_*`` variable or the command-line option.
        """
        data: dict[str, Any] = {}
        origins: dict[str, str] = {}
        config_file = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
        if config_file is not None:
            try:
                loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            except yaml.YAMLError as exc:
                raise ValueError(f"{config_file}: not valid YAML: {exc}") from None
            if not isinstance(loaded, dict):
                raise ValueError(f"{config_file}: expected a mapping of settings")
            data.update(loaded)
            origins.update(dict.fromkeys(map(str, loaded), str(config_file)))
        for name in cls.__struct_fields__:
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                data[name] = _parse_env(raw)
                origins[name] = ENV_PREFIX + name.upper()
        for name, value in overrides.items():
            if value is not None:
                data[name] = value
                origins[name] = "--" + name.replace("_", "-")
        try:
            return msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(_located(cls, str(exc), origins)) from None

    def redacted(self) -> dict[str, Any]:
        """The settings with every secret replaced, for ``/api/v1/config``."""
        data = msgspec.structs.asdict(self)
        for name in self.SECRET_FIELDS:
            data[name] = ["***"] * len(data[name])
        return data

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, to hand to the server process."""
        return {
            ENV_PREFIX + name.upper(): msgspec.json.encode(value).decode()
            for name, value in msgspec.structs.asdict(self).items()
        }


def _located(cls: type[Settings], message: str, origins: dict[str, str]) -> str:
    """msgspec's ``Invalid enum value 'loud' - at `$.log_level``` as
    ``kernai.yaml: log_level: Invalid enum value 'loud' (one of: debug, info, warning, error)``."""
    text, _, at = message.partition(" - at ")
    unknown = re.search(r"unknown field `([^`]+)`", text)
    path = at.strip("`").removeprefix("$.") if at else (unknown.group(1) if unknown else "")
    name = re.split(r"[.\[]", path)[0]
    kind = next((f.type for f in msgspec.structs.fields(cls) if f.name == name), None)
    if get_origin(kind) is Literal:
        text += f" (one of: {', '.join(map(str, get_args(kind)))})"
    return f"{origins[name]}: {path}: {text}" if name in origins else f"invalid settings: {text}"


def _parse_env(raw: str) -> Any:
    """Env values may be JSON (lists, dicts, numbers); anything else is a plain string."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw
