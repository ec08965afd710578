"""Health, version, system facts, the model list with config errors, and the OpenAPI docs."""

from __future__ import annotations

import re

import httpx

import kernai
from kernai.testing import KernaiServer


def test_health_ready_and_version(client: httpx.Client) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/version").json() == {"name": "kernai", "version": kernai.__version__}


def test_models_list_reports_each_broken_config_with_file_and_field(client: httpx.Client) -> None:
    body = client.get("/v1/models").json()
    assert body["object"] == "list"
    models = {m["id"]: m for m in body["data"]}
    assert models["echo"]["object"] == "model" and models["echo"]["owned_by"] == "reference"
    assert "chat" in models["echo"]["capabilities"]
    assert models["echo"]["status"]["state"] in {"uninitialized", "ready"}
    typo = models["typo"]["status"]
    assert typo["state"] == "error" and "typo.yaml" in typo["error"] and "context_sise" in typo["error"]
    ghost = models["ghost"]["status"]
    assert (
        ghost["state"] == "error" and "ghost.yaml" in ghost["error"] and "no-such-backend" in ghost["error"]
    )
    missing = models["no-weights"]["status"]
    assert missing["state"] == "error" and "no-weights.yaml" in missing["error"]
    assert "parameters.model" in missing["error"] and "not found" in missing["error"]


def test_broken_configs_are_logged_at_startup_with_file_and_field(server: KernaiServer) -> None:
    log = server.log()
    for file, field in (
        ("typo.yaml", "context_sise"),
        ("ghost.yaml", "no-such-backend"),
        ("no-weights.yaml", "parameters.model"),
    ):
        assert any(file in line and field in line for line in log.splitlines()), (file, log)


def test_a_broken_config_does_not_stop_the_others(client: httpx.Client) -> None:
    for name, file, field in (
        ("typo", "typo.yaml", "context_sise"),
        ("ghost", "ghost.yaml", "backend"),
        ("no-weights", "no-weights.yaml", "parameters.model"),
        ("declared-name", "file-stem.yaml", "threads"),
    ):
        response = client.post(
            "/v1/chat/completions", json={"model": name, "messages": [{"role": "user", "content": "x"}]}
        )
        assert response.status_code == 503, (name, response.text)
        error = response.json()["error"]
        assert error["code"] == "model_config_invalid" and error["type"] == "server_error"
        assert f"{file}: {field}:" in error["message"], error
    nope = client.post(
        "/v1/chat/completions", json={"model": "nope", "messages": [{"role": "user", "content": "x"}]}
    )
    assert nope.status_code == 404 and nope.json()["error"]["code"] == "model_not_found"
    ok = client.post(
        "/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "x"}]}
    )
    assert ok.status_code == 200


def test_a_broken_config_is_listed_under_the_name_it_declares(client: httpx.Client) -> None:
    models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    assert "file-stem" not in models
    status = models["declared-name"]["status"]
    assert status["state"] == "error" and "file-stem.yaml: threads:" in status["error"]


def test_system_lists_backends_and_loaded_models(client: httpx.Client) -> None:
    client.post("/v1/completions", json={"model": "echo", "prompt": "load me"})
    system = client.get("/system").json()
    assert system["version"] == kernai.__version__
    backends = {b["name"]: b for b in system["backends"]}
    assert backends["reference"]["plugin"] == "reference"
    assert "embeddings" in backends["reference"]["capabilities"]
    loaded = {m["id"]: m for m in system["loaded_models"]}
    assert loaded["echo"]["pid"] > 0


def test_monitor_and_shutdown_errors_are_4xx(client: httpx.Client) -> None:
    assert client.get("/backend/monitor").status_code == 400
    assert client.get("/backend/monitor", params={"model": "nope"}).status_code == 404
    assert client.post("/backend/shutdown", json={}).status_code == 400
    assert client.post("/backend/shutdown", json={"model": "nope"}).status_code == 404


def test_openapi_document_and_docs_ui(client: httpx.Client) -> None:
    spec = client.get("/docs/openapi.json").json()
    assert spec["info"]["title"] == "kernai"
    for path in ("/v1/chat/completions", "/v1/models", "/v1/embeddings", "/backend/monitor"):
        assert path in spec["paths"], path
    ui = client.get("/docs")
    assert ui.status_code == 200 and "swagger" in ui.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', ui.text)
    assert len(assets) == 3 and all(a.startswith("/docs/assets/") for a in assets), (
        assets
    )  # nothing from a CDN
    for asset in assets:
        served = client.get(asset)
        assert served.status_code == 200 and len(served.content) > 1000, asset


def test_unknown_route_is_a_404_in_openai_shape(client: httpx.Client) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert "message" in response.json()["error"]
