"""Model configs created through the API (llamactl's instances), kept in SQLite, and edits to any config.

A model comes either from a YAML file in the models dir or from a row of the ``instances`` table;
both are validated by :func:`kernai.config.parse_model_config`, so they accept the same keys.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from kernai.backends import Backend
from kernai.config import (
    ConfigError,
    InvalidConfig,
    ModelConfig,
    dump_model_config,
    parse_model_config,
    write_atomically,
)

SOURCE_PREFIX = "instance:"


def instance_source(name: str) -> str:
    return SOURCE_PREFIX + name


def is_instance(config: ModelConfig) -> bool:
    return (config.source or "").startswith(SOURCE_PREFIX)


def file_time(path: str | None) -> int:
    """A config file's modification time (Unix seconds); 0 when there is no such file."""
    try:
        return int(os.stat(path).st_mtime) if path else 0
    except OSError:
        return 0


def created_at(config: ModelConfig, store: InstanceStore) -> int:
    """When a model was made: an instance's creation (in the database), else its config file's time."""
    row = store.row(config.name) if is_instance(config) else None
    return int(row["created_at"]) if row else file_time(config.source)


class InstanceStore:
    """CRUD over the ``instances`` table; each row holds a model config mapping as JSON."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def ids(self) -> dict[str, int]:
        return {row["name"]: row["id"] for row in self.db.execute("SELECT id, name FROM instances")}

    def row(self, name: str) -> sqlite3.Row | None:
        return self.db.execute("SELECT * FROM instances WHERE name = ?", (name,)).fetchone()

    def data(self, name: str) -> dict[str, Any] | None:
        row = self.row(name)
        return msgspec.json.decode(row["config"]) if row else None

    def put(self, name: str, data: Mapping[str, Any]) -> None:
        now = int(time.time())
        self.db.execute(
            "INSERT INTO instances (name, config, created_at, updated_at) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(name) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
            (name, msgspec.json.encode(dict(data)).decode(), now, now),
        )

    def delete(self, name: str) -> bool:
        return self.db.execute("DELETE FROM instances WHERE name = ?", (name,)).rowcount > 0

    def configs(
        self, models_dir: Path, backends: Mapping[str, Backend]
    ) -> tuple[list[ModelConfig], list[ConfigError]]:
        configs, errors = [], []
        for row in self.db.execute("SELECT name, config FROM instances ORDER BY id"):
            source = instance_source(row["name"])
            try:
                data = {**msgspec.json.decode(row["config"]), "name": row["name"]}
                config = parse_model_config(data, file=source, models_dir=models_dir, backends=backends)
            except InvalidConfig as exc:
                errors.append(exc.error)
                continue
            configs.append(msgspec.structs.replace(config, source=source))
        return configs, errors


def update_config_source(config: ModelConfig, store: InstanceStore, changes: Mapping[str, Any]) -> None:
    """Write ``changes`` (top-level keys) into the YAML file or database row the config came from."""
    if is_instance(config):
        data = store.data(config.name) or {}
        data.update(changes)
        store.put(config.name, data)
        return
    assert config.source is not None
    path = Path(config.source)
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    data.update(changes)
    write_atomically(path, dump_model_config(data))
