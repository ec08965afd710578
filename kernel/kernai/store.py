"""The SQLite database in the data dir: instances and API keys, which must survive restarts."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

DATABASE_NAME = "kernai.db"
SQLITE_INTEGERS = range(-(2**63), 2**63)
"""The integers SQLite stores; a row id outside them (``OverflowError`` in sqlite3) names no row."""

SCHEMA = """
CREATE TABLE IF NOT EXISTS instances (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    config TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    kind TEXT NOT NULL,
    permission_mode TEXT NOT NULL,
    expires_at INTEGER,
    enabled INTEGER NOT NULL DEFAULT 1,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE TABLE IF NOT EXISTS auth_settings (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_key_instances (
    key_id INTEGER NOT NULL REFERENCES api_keys(id) ON DELETE CASCADE,
    instance TEXT NOT NULL,
    PRIMARY KEY (key_id, instance)
);
"""


def open_database(data_dir: Path) -> sqlite3.Connection:
    """Open (and create if needed) ``kernai.db`` in ``data_dir``; rows come back as ``sqlite3.Row``."""
    data_dir.mkdir(parents=True, exist_ok=True)
    connection = sqlite3.connect(data_dir / DATABASE_NAME, isolation_level=None, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    connection.execute("PRAGMA foreign_keys=ON")
    connection.executescript(SCHEMA)
    return connection


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[None]:
    """All statements inside commit together or not at all."""
    db.execute("BEGIN")
    try:
        yield
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
