"""API keys in SQLite and in the config: creation, authentication, expiry, switches, deletion."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest

from kernai.auth.keys import KeyStore, PermissionMode, digest
from kernai.auth.principal import KeyKind, Principal
from kernai.errors import Conflict, InvalidRequest, Unauthorized
from kernai.settings import Settings
from kernai.store import open_database

MANAGEMENT = KeyKind.MANAGEMENT
INFERENCE = KeyKind.INFERENCE


@pytest.fixture()
def db(tmp_path: Path) -> sqlite3.Connection:
    return open_database(tmp_path)


@pytest.fixture()
def store(db: sqlite3.Connection) -> KeyStore:
    return KeyStore(db, Settings())


def test_a_created_key_is_shown_once_and_only_its_digest_is_stored(
    store: KeyStore, db: sqlite3.Connection
) -> None:
    key, secret = store.create("ci", INFERENCE, PermissionMode.ALLOW_ALL, [], None)
    assert secret.startswith("sk-inference-") and len(secret) == len("sk-inference-") + 48
    assert key.key_prefix == secret[: len("sk-inference-") + 4]
    assert (key.name, key.kind, key.permission_mode, key.enabled, key.instances) == (
        "ci",
        "inference",
        "allow_all",
        True,
        [],
    )
    rows = [tuple(row) for row in db.execute("SELECT * FROM api_keys")]
    assert not any(secret in str(value) for row in rows for value in row)
    assert db.execute("SELECT key_hash FROM api_keys").fetchone()[0] == digest(secret)
    assert store.list() == [key] and store.get(key.id) == key and store.get(key.id + 1) is None


def test_a_key_authenticates_as_its_kind_and_models(store: KeyStore) -> None:
    everything, any_model = store.create("all", INFERENCE, PermissionMode.ALLOW_ALL, [], None)
    some, two_models = store.create("some", INFERENCE, PermissionMode.PER_INSTANCE, ["b", "a", "a"], None)
    assert some.instances == ["a", "b"]
    assert store.authenticate(any_model) == Principal(INFERENCE, everything.id, "all", None)
    principal = store.authenticate(two_models)
    assert principal == Principal(INFERENCE, some.id, "some", frozenset({"a", "b"}))
    assert principal.allows("a") and not principal.allows("c")
    admin = store.authenticate(store.create("admin", MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)[1])
    assert admin.kind is MANAGEMENT and admin.allows("anything")


def test_unknown_disabled_and_expired_keys_are_refused(store: KeyStore, db: sqlite3.Connection) -> None:
    with pytest.raises(Unauthorized, match="Invalid API key"):
        store.authenticate("sk-inference-nope")
    key, secret = store.create("k", INFERENCE, PermissionMode.ALLOW_ALL, [], int(time.time()) + 60)
    assert store.authenticate(secret).key_id == key.id
    db.execute("UPDATE api_keys SET expires_at = ? WHERE id = ?", (int(time.time()) - 1, key.id))
    with pytest.raises(Unauthorized, match="API key expired"):
        store.authenticate(secret)
    db.execute("UPDATE api_keys SET enabled = 0, expires_at = NULL WHERE id = ?", (key.id,))
    with pytest.raises(Unauthorized, match="Invalid API key") as caught:
        store.authenticate(secret)
    assert (caught.value.status_code, caught.value.code) == (401, "invalid_api_key")


def test_authenticating_notes_when_a_key_was_last_used(store: KeyStore) -> None:
    key, secret = store.create("k", INFERENCE, PermissionMode.ALLOW_ALL, [], None)
    assert key.last_used_at is None
    store.authenticate(secret)
    used = store.get(key.id)
    assert used is not None and used.last_used_at is not None and abs(used.last_used_at - time.time()) < 5


@pytest.mark.parametrize(
    ("mode", "instances", "expires_in", "param"),
    [
        (PermissionMode.ALLOW_ALL, [], -10, "expires_at"),
        (PermissionMode.ALLOW_ALL, [], 0, "expires_at"),
        (PermissionMode.PER_INSTANCE, [], None, "instance_ids"),
    ],
)
def test_creation_refuses_a_past_expiry_and_a_per_instance_key_without_instances(
    store: KeyStore, mode: PermissionMode, instances: list[str], expires_in: int | None, param: str
) -> None:
    expires_at = None if expires_in is None else int(time.time()) + expires_in
    with pytest.raises(InvalidRequest) as caught:
        store.create("k", INFERENCE, mode, instances, expires_at)
    assert caught.value.param == param and store.list() == []


def test_keys_from_the_config_authenticate_without_a_row(db: sqlite3.Connection) -> None:
    store = KeyStore(db, Settings(management_keys=["admin-secret"], inference_keys=["app-secret"]))
    assert store.authenticate("admin-secret") == Principal(MANAGEMENT)
    assert store.authenticate("app-secret") == Principal(INFERENCE)
    assert store.has_management_key() and store.list() == []


def test_requiring_management_auth_needs_a_management_key_first(store: KeyStore) -> None:
    with pytest.raises(Conflict, match="Create a management key before requiring management auth"):
        store.require(MANAGEMENT, True)
    store.require(INFERENCE, True)  # an inference switch needs no key
    store.create("admin", MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)
    store.require(MANAGEMENT, True)
    assert store.required == {MANAGEMENT: True, INFERENCE: True}


def test_the_switches_in_the_database_win_over_the_config(db: sqlite3.Connection) -> None:
    settings = Settings(require_inference_auth=True, management_keys=["m"])
    first = KeyStore(db, settings)
    assert first.required == {MANAGEMENT: False, INFERENCE: True}
    first.require(INFERENCE, False)
    first.require(MANAGEMENT, True)
    assert KeyStore(db, settings).required == {MANAGEMENT: True, INFERENCE: False}


def test_a_disabled_management_key_does_not_count(store: KeyStore, db: sqlite3.Connection) -> None:
    key, _ = store.create("admin", MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)
    db.execute("UPDATE api_keys SET enabled = 0 WHERE id = ?", (key.id,))
    assert not store.has_management_key()


def test_deleting_a_key_removes_its_models_too(store: KeyStore, db: sqlite3.Connection) -> None:
    key, secret = store.create("k", INFERENCE, PermissionMode.PER_INSTANCE, ["a"], None)
    assert store.delete(key.id) and not store.delete(key.id)
    assert db.execute("SELECT COUNT(*) FROM api_key_instances").fetchone()[0] == 0
    with pytest.raises(Unauthorized):
        store.authenticate(secret)
