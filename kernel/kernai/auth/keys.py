"""API keys in SQLite and in the config.

A key is a random token (``sk-inference-…`` or ``sk-management-…``, 192 bits from :mod:`secrets`) shown
once at creation. Only its SHA-256 digest is stored, as GitHub and Stripe do for high-entropy tokens: a
slow password hash (argon2, bcrypt) adds nothing when the secret cannot be guessed, and a digest lets the
database be searched by an index. Keys from the config are compared digest to digest with
:func:`hmac.compare_digest`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import sqlite3
import time
from enum import StrEnum

from msgspec import Struct

from kernai.auth.principal import KeyKind, Principal
from kernai.errors import Conflict, InvalidRequest, Unauthorized
from kernai.settings import Settings
from kernai.store import SQLITE_INTEGERS, transaction

LAST_USED_RESOLUTION = 1.0
"""Seconds between writes of a key's ``last_used_at``."""


class PermissionMode(StrEnum):
    ALLOW_ALL = "allow_all"
    PER_INSTANCE = "per_instance"


class ApiKey(Struct):
    """A stored key as the API shows it (never the secret or its hash)."""

    id: int
    name: str
    kind: str
    key_prefix: str
    permission_mode: str
    expires_at: int | None
    enabled: bool
    created_at: int
    updated_at: int
    last_used_at: int | None
    instances: list[str]


def digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_secret(kind: KeyKind) -> str:
    return f"sk-{kind.value}-{secrets.token_hex(24)}"


class KeyStore:
    """The ``api_keys`` table plus the keys listed in the config."""

    def __init__(self, db: sqlite3.Connection, settings: Settings) -> None:
        self.db = db
        self._config = [(digest(k), KeyKind.MANAGEMENT) for k in settings.management_keys]
        self._config += [(digest(k), KeyKind.INFERENCE) for k in settings.inference_keys]
        self.required = {
            KeyKind.MANAGEMENT: settings.require_management_auth,
            KeyKind.INFERENCE: settings.require_inference_auth,
        }
        """Whether each kind of route needs a key: the config's values, overridden by the database's."""
        for row in db.execute("SELECT name, value FROM auth_settings"):
            self.required[KeyKind(row["name"])] = bool(row["value"])

    def require(self, kind: KeyKind, required: bool) -> None:
        """Switch auth for ``kind`` routes on or off, and keep the switch in the database."""
        if kind is KeyKind.MANAGEMENT and required and not self.has_management_key():
            raise Conflict("Create a management key before requiring management auth")
        self.db.execute(
            "INSERT INTO auth_settings (name, value) VALUES (?, ?) "
            "ON CONFLICT(name) DO UPDATE SET value = excluded.value",
            (kind.value, int(required)),
        )
        self.required[kind] = required

    def create(
        self, name: str, kind: KeyKind, mode: PermissionMode, instances: list[str], expires_at: int | None
    ) -> tuple[ApiKey, str]:
        """Store a new key; return it and its secret (the only time the secret is seen)."""
        now = int(time.time())
        if expires_at is not None and expires_at <= now:
            raise InvalidRequest("expires_at must be in the future", param="expires_at")
        if mode is PermissionMode.PER_INSTANCE and not instances:
            raise InvalidRequest("per_instance keys need at least one instance", param="instance_ids")
        secret = new_secret(kind)
        with transaction(self.db):
            cursor = self.db.execute(
                "INSERT INTO api_keys (name, key_hash, key_prefix, kind, permission_mode, expires_at, "
                "enabled, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (
                    name,
                    digest(secret),
                    secret[: len(f"sk-{kind.value}-") + 4],
                    kind.value,
                    mode.value,
                    expires_at,
                    now,
                    now,
                ),
            )
            key_id = int(cursor.lastrowid or 0)
            if mode is PermissionMode.PER_INSTANCE:
                self.db.executemany(
                    "INSERT OR IGNORE INTO api_key_instances (key_id, instance) VALUES (?, ?)",
                    [(key_id, instance) for instance in instances],
                )
        key = self.get(key_id)
        assert key is not None
        return key, secret

    def _key(self, row: sqlite3.Row) -> ApiKey:
        instances = [
            r["instance"]
            for r in self.db.execute(
                "SELECT instance FROM api_key_instances WHERE key_id = ? ORDER BY instance", (row["id"],)
            )
        ]
        return ApiKey(
            row["id"],
            row["name"],
            row["kind"],
            row["key_prefix"],
            row["permission_mode"],
            row["expires_at"],
            bool(row["enabled"]),
            row["created_at"],
            row["updated_at"],
            row["last_used_at"],
            instances,
        )

    def list(self) -> list[ApiKey]:
        return [self._key(row) for row in self.db.execute("SELECT * FROM api_keys ORDER BY id")]

    def get(self, key_id: int) -> ApiKey | None:
        if key_id not in SQLITE_INTEGERS:
            return None
        row = self.db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone()
        return self._key(row) if row else None

    def delete(self, key_id: int) -> bool:
        if key_id not in SQLITE_INTEGERS:
            return False
        return self.db.execute("DELETE FROM api_keys WHERE id = ?", (key_id,)).rowcount > 0

    def has_management_key(self) -> bool:
        return (
            any(kind is KeyKind.MANAGEMENT for _, kind in self._config)
            or self.db.execute(
                "SELECT 1 FROM api_keys WHERE kind = ? AND enabled = 1", (KeyKind.MANAGEMENT.value,)
            ).fetchone()
            is not None
        )

    def authenticate(self, secret: str) -> Principal:
        """The principal a presented key stands for; :class:`Unauthorized` when it is unknown or expired."""
        hashed = digest(secret)
        for known, kind in self._config:
            if hmac.compare_digest(hashed, known):
                return Principal(kind)
        row = self.db.execute("SELECT * FROM api_keys WHERE key_hash = ?", (hashed,)).fetchone()
        if row is None or not hmac.compare_digest(hashed, row["key_hash"]) or not row["enabled"]:
            raise Unauthorized("Invalid API key")
        now = time.time()
        if row["expires_at"] is not None and row["expires_at"] <= now:
            raise Unauthorized("API key expired")
        if row["last_used_at"] is None or now - row["last_used_at"] >= LAST_USED_RESOLUTION:
            self.db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (int(now), row["id"]))
        key = self._key(row)
        instances = frozenset(key.instances) if key.permission_mode == PermissionMode.PER_INSTANCE else None
        return Principal(KeyKind(key.kind), key.id, key.name, instances)
