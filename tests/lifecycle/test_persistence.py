"""Instances and API keys live in SQLite in the data dir and come back after a restart."""

from __future__ import annotations

from pathlib import Path

import pytest

from .conftest import MANAGEMENT_KEY, chat, make_server

pytestmark = pytest.mark.slow  # starts its server twice

ADMIN = {"x-api-key": MANAGEMENT_KEY}


def test_instances_keys_and_auth_switches_survive_a_server_restart(tmp_path: Path) -> None:
    settings = {
        "require_management_auth": True,
        "require_inference_auth": True,
        "management_keys": [MANAGEMENT_KEY],
    }
    with make_server(tmp_path, {}, settings) as server, server.client() as client:
        created = client.post(
            "/api/v1/instances/kept",
            headers=ADMIN,
            json={"backend_type": "reference", "on_demand_start": False, "idle_timeout": 1.5},
        )
        assert created.status_code == 201, created.text
        key = client.post(
            "/api/v1/auth/keys",
            headers=ADMIN,
            json={
                "name": "kept-key",
                "permission_mode": "per_instance",
                "instance_ids": [created.json()["id"]],
            },
        ).json()
        switched = client.put("/api/v1/auth/settings", headers=ADMIN, json={"require_inference_auth": False})
        assert switched.json() == {"require_management_auth": True, "require_inference_auth": False}
        assert client.get("/v1/models").status_code == 200  # no key needed now
    with make_server(tmp_path, {}, settings) as server, server.client() as client:
        again = client.get("/api/v1/instances/kept", headers=ADMIN)
        assert again.status_code == 200
        options = again.json()["options"]
        assert options["on_demand_start"] is False and options["idle_timeout"] == 1.5
        assert again.json()["id"] == created.json()["id"]
        assert client.post("/api/v1/instances/kept/start", headers=ADMIN).json()["status"] == "running"
        assert chat(client, "kept", authorization=f"Bearer {key['key']}").status_code == 200
        assert client.get("/api/v1/auth/keys", headers=ADMIN).json()[0]["instance_names"] == ["kept"]
        assert client.get("/v1/models").status_code == 200  # the database's switch beats the config's
        assert client.put("/api/v1/auth/settings", json={"require_inference_auth": True}).status_code == 401
        client.put("/api/v1/auth/settings", headers=ADMIN, json={"require_inference_auth": True})
        assert client.get("/v1/models").status_code == 401
