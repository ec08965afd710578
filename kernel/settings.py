"""Server settings: defaults, then a YAML file, then ``KERNAI_*`` environment variables, then CLI flags."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import msgspec
import yaml
from msgspec import Struct, field

ENV_PREFIX = "KERNAI_"
CONFIG_ENV = "KERNAI_CONFIG"


def _data_home() -> Path:
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "kernai"


class Settings(Struct, kw_only=True, forbid_unknown_fields=True):
    """Everything the server reads at start-up. Each field is also ``KERNAI_<FIELD>`` in the environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    models_dir: str = field(default_factory=lambda: str(_data_home() / "models"))
    data_dir: str = field(default_factory=lambda: str(_data_home() / "data"))
    log_level: str = "info"
    # HTTP
    cors_origins: list[str] = field(default_factory=list)
    cors_headers: list[str] = field(default_factory=lambda: ["*"])
    response_headers: dict[str, str] = field(default_factory=dict)
    # model manager
    load_timeout: float = 300.0
    """Seconds a model may take to load before it is reported as failed."""

    @property
    def models_path(self) -> Path:
        return Path(self.models_dir).expanduser().resolve()

    @property
    def data_path(self) -> Path:
        return Path(self.data_dir).expanduser().resolve()

    @classmethod
    def load(cls, config_file: Path | None = None, **overrides: Any) -> Settings:
        """Build settings from the layers, the later ones winning. ``None`` overrides are ignored."""
        data: dict[str, Any] = {}
        config_file = config_file or (Path(os.environ[CONFIG_ENV]) if os.environ.get(CONFIG_ENV) else None)
        if config_file is not None:
            loaded = yaml.safe_load(config_file.read_text(encoding="utf-8")) or {}
            if not isinstance(loaded, dict):
                raise ValueError(f"{config_file}: expected a mapping of settings")
            data.update(loaded)
        for name in cls.__struct_fields__:
            raw = os.environ.get(ENV_PREFIX + name.upper())
            if raw is not None:
                data[name] = _parse_env(raw)
        data.update({key: value for key, value in overrides.items() if value is not None})
        try:
            return msgspec.convert(data, cls, strict=False)
        except msgspec.ValidationError as exc:
            raise ValueError(f"invalid settings: {exc}") from None

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, to hand to the server process."""
        return {
            ENV_PREFIX + name.upper(): msgspec.json.encode(value).decode()
            for name, value in msgspec.structs.asdict(self).items()
        }


def _parse_env(raw: str) -> Any:
    """Env values may be JSON (lists, dicts, numbers); anything else is a plain string."""
    try:
        return msgspec.json.decode(raw)
    except msgspec.DecodeError:
        return raw
