"""API keys: management and inference kinds, 401 and 403, per-instance keys, expiry, hashing, redaction."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from kernai.testing import KernaiServer

from .conftest import CONFIG_INFERENCE_KEY, MANAGEMENT_KEY, chat

ADMIN = {"Authorization": f"Bearer {MANAGEMENT_KEY}"}


@pytest.fixture()
def http(secured: KernaiServer) -> Iterator[httpx.Client]:
    with secured.client() as client:
        yield client


def new_key(http: httpx.Client, **fields: object) -> dict:  # type: ignore[type-arg]
    response = http.post("/api/v1/auth/keys", headers=ADMIN, json={"name": "test", **fields})
    assert response.status_code == 201, response.text
    return response.json()


def test_no_key_or_a_wrong_key_is_401(http: httpx.Client) -> None:
    missing = chat(http, "open")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert missing.json()["error"]["type"] == "authentication_error"
    assert http.get("/api/v1/instances").status_code == 401
    assert http.get("/api/v1/instances").json() == {"error": missing.json()["error"]["message"]}
    assert chat(http, "open", authorization="Bearer sk-inference-wrong").status_code == 401
    assert http.get("/healthz").status_code == 200  # public


def test_an_inference_key_works_for_inference_and_is_403_on_management_routes(http: httpx.Client) -> None:
    assert chat(http, "open", authorization=f"Bearer {CONFIG_INFERENCE_KEY}").status_code == 200
    assert chat(http, "open", **{"x-api-key": CONFIG_INFERENCE_KEY}).status_code == 200
    for method, path in [
        ("GET", "/api/v1/instances"),
        ("GET", "/metrics"),
        ("POST", "/backend/shutdown"),
        ("PUT", "/api/models/open/disable"),
        ("GET", "/api/v1/auth/keys"),
        ("GET", "/models/available"),
        ("GET", "/backends"),
        ("GET", "/system"),
    ]:
        response = http.request(method, path, headers={"x-api-key": CONFIG_INFERENCE_KEY})
        assert response.status_code == 403, (path, response.text)
    for path in ("/v1/models", "/models"):  # the model list is inference, with or without /v1
        assert http.get(path, headers={"x-api-key": CONFIG_INFERENCE_KEY}).status_code == 200, path
    assert chat(http, "open", **ADMIN).status_code == 200  # management keys may infer too


def test_created_keys_are_shown_once_stored_hashed_and_track_last_use(
    http: httpx.Client, secured: KernaiServer
) -> None:
    created = new_key(http, name="ci")
    secret = created["key"]
    assert secret.startswith("sk-inference-") and created["last_used_at"] is None
    assert chat(http, "other", authorization=f"Bearer {secret}").status_code == 200
    shown = http.get(f"/api/v1/auth/keys/{created['id']}", headers=ADMIN).json()
    assert "key" not in shown and shown["last_used_at"] >= created["created_at"]
    listed = http.get("/api/v1/auth/keys", headers=ADMIN).text
    assert secret not in listed
    with sqlite3.connect(secured.data_dir / "kernai.db") as db:
        stored = [row[0] for row in db.execute("SELECT key_hash FROM api_keys")]
    assert secret not in stored and all(len(h) == 64 for h in stored)
    assert http.delete(f"/api/v1/auth/keys/{created['id']}", headers=ADMIN).status_code == 204
    assert chat(http, "other", authorization=f"Bearer {secret}").status_code == 401
    assert http.get(f"/api/v1/auth/keys/{created['id']}", headers=ADMIN).status_code == 404


def test_a_per_instance_key_is_refused_for_another_model(http: httpx.Client) -> None:
    key = new_key(http, permission_mode="per_instance", instance_names=["open"])
    headers = {"x-api-key": key["key"]}
    assert chat(http, "open", **headers).status_code == 200
    refused = chat(http, "other", **headers)
    assert refused.status_code == 403 and "other" in refused.json()["error"]["message"]
    permissions = http.get(f"/api/v1/auth/keys/{key['id']}/permissions", headers=ADMIN).json()
    assert permissions == [{"instance_id": None, "instance_name": "open", "can_infer": True}]
    bad = http.post("/api/v1/auth/keys", headers=ADMIN, json={"name": "x", "permission_mode": "per_instance"})
    assert bad.status_code == 400
    unknown = http.post("/api/v1/auth/keys", headers=ADMIN, json={"name": "x", "instance_ids": [999]})
    assert unknown.status_code == 400


def test_an_expired_key_is_401(http: httpx.Client) -> None:
    assert chat(http, "open", **ADMIN).status_code == 200  # loaded, so the next request is quick
    key = new_key(http, expires_at=int(time.time()) + 3)
    assert chat(http, "open", authorization=f"Bearer {key['key']}").status_code == 200
    time.sleep(max(0.0, key["expires_at"] - time.time()) + 0.2)
    expired = chat(http, "open", authorization=f"Bearer {key['key']}")
    assert expired.status_code == 401 and "expired" in expired.json()["error"]["message"]
    past = http.post("/api/v1/auth/keys", headers=ADMIN, json={"name": "x", "expires_at": 1})
    assert past.status_code == 400


def test_management_keys_can_be_created_and_secrets_never_leak(http: httpx.Client) -> None:
    admin = new_key(http, kind="management")
    assert admin["key"].startswith("sk-management-")
    assert http.get("/api/v1/instances", headers={"x-api-key": admin["key"]}).status_code == 200
    config = http.get("/api/v1/config", headers=ADMIN)
    assert config.json()["management_keys"] == ["***"] and MANAGEMENT_KEY not in config.text
    assert CONFIG_INFERENCE_KEY not in config.text
    traces = http.get("/api/traces", headers=ADMIN).text
    for secret in (MANAGEMENT_KEY, CONFIG_INFERENCE_KEY, admin["key"]):
        assert secret not in traces


def test_the_log_websocket_needs_a_management_key(secured: KernaiServer) -> None:
    url = secured.url.replace("http://", "ws://") + "/ws/backend-logs/open"
    with pytest.raises(InvalidStatus), connect(url, open_timeout=10):
        pass
    with connect(f"{url}?api_key={MANAGEMENT_KEY}", open_timeout=10) as socket:
        socket.ping().wait(5)


def test_llamactl_routes_take_their_class_of_key(http: httpx.Client) -> None:
    """llama-server's routes of an instance are inference routes (a per-instance key is checked against
    the instance, before its backend is); parse-command and the backend's facts are management routes."""
    missing = http.post("/llama-cpp/open/completion", json={"prompt": "x"})
    assert missing.status_code == 401
    assert missing.json() == {
        "error": {"code": 401, "message": missing.json()["error"]["message"], "type": "authentication_error"}
    }
    key = new_key(http, permission_mode="per_instance", instance_names=["open"])
    headers = {"x-api-key": key["key"]}
    refused = http.get("/llama-cpp/other/props", headers=headers)
    assert refused.status_code == 403 and "other" in refused.json()["error"]["message"]
    assert http.get("/llama-cpp/open/props", headers=headers).status_code == 400  # a reference model
    command = {"command": "llama-server -m m.gguf"}
    assert (
        http.post("/api/v1/backends/llama-cpp/parse-command", json=command, headers=headers).status_code
        == 403
    )
    assert (
        http.post("/api/v1/backends/llama-cpp/parse-command", json=command, headers=ADMIN).status_code == 200
    )
    assert http.patch("/api/models/config-json/open", json={}, headers=headers).status_code == 403
    assert http.get("/tokenMetrics", headers=headers).status_code == 403
