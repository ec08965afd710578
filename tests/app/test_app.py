"""The Litestar app in this process (Litestar's test client), for what needs no worker process: health,
the OpenAPI document, the model list with broken configs, each surface's error shape, API keys and rate
limits. Nothing here loads a model; the routes that do are tested against real servers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import kernai
from kernai.http.app import create_app
from kernai.plugins import PluginRegistry
from kernai.settings import Settings

MODELS = {
    "echo.yaml": "name: echo\nbackend: reference\n",
    "typo.yaml": "name: typo\nbackend: reference\ncontext_sise: 10\n",
    "ghost.yaml": "name: ghost\nbackend: no-such-backend\n",
    "no-weights.yaml": "name: no-weights\nbackend: reference\nparameters:\n  model: missing.gguf\n",
    "file-stem.yaml": "name: declared-name\nbackend: reference\nthreads: many\n",
}
CHAT = {"max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]}


def app_client(root: Path, **settings: Any) -> TestClient[Any]:
    """A client of an app over ``root/models`` (``MODELS``) with the reference backend only."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name, text in MODELS.items():
        (root / "models" / name).write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNAI_LOAD_PLUGINS", "reference")
        registry = PluginRegistry()
    app = create_app(
        Settings(models_dir=str(root / "models"), data_dir=str(root / "data"), **settings), registry
    )
    # the test client's address is not loopback; the host a local client uses passes the browser guard
    return TestClient(app, base_url="http://127.0.0.1:8080")


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    """One app for the module's read-only checks, rate limits off."""
    with app_client(tmp_path_factory.mktemp("app"), rate_limit=False) as running:
        yield running


def test_health_ready_and_version(client: TestClient[Any]) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    assert client.get("/version").json() == {"name": "kernai", "version": kernai.__version__}


def test_the_openapi_document_covers_every_surface(client: TestClient[Any]) -> None:
    spec = client.get("/docs/openapi.json").json()
    assert spec["info"] == {
        "title": "kernai",
        "version": kernai.__version__,
        "description": spec["info"]["description"],
    }
    for path in (
        "/v1/chat/completions",
        "/v1/completions",
        "/v1/embeddings",
        "/v1/audio/transcriptions",
        "/v1/messages",
        "/v1/responses",
        "/generate",
        "/api/v1/instances",
        "/api/v1/auth/keys",
        "/models/apply",
        "/backends",
        "/backend/monitor",
    ):
        assert path in spec["paths"], path
    chat = spec["paths"]["/v1/chat/completions"]["post"]
    assert chat["requestBody"]["content"]["application/json"]["schema"]["$ref"].startswith("#/components/")


def test_the_docs_page_and_its_assets_are_served_locally(client: TestClient[Any]) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and "swagger" in page.text.lower()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css))"', page.text)
    assert len(assets) == 3 and all(asset.startswith("/docs/assets/") for asset in assets), assets
    assert all(len(client.get(asset).content) > 1000 for asset in assets)


def test_the_model_list_reports_each_broken_config_under_its_declared_name(client: TestClient[Any]) -> None:
    body = client.get("/v1/models").json()
    models = {model["id"]: model for model in body["data"]}
    assert body["object"] == "list" and sorted(models) == [
        "declared-name",
        "echo",
        "ghost",
        "no-weights",
        "typo",
    ]
    assert models["echo"]["owned_by"] == "reference" and models["echo"]["status"]["state"] == "uninitialized"
    for name, where in (
        ("typo", "typo.yaml: context_sise: unknown key for backend 'reference'"),
        ("ghost", "ghost.yaml: backend: unknown backend 'no-such-backend'"),
        ("no-weights", "no-weights.yaml: parameters.model: file not found"),
        ("declared-name", "file-stem.yaml: threads: Expected `int | null`, got `str`"),
    ):
        status = models[name]["status"]
        assert status["state"] == "error" and where in status["error"], (name, status)


def test_a_broken_config_answers_503_without_starting_a_worker(client: TestClient[Any]) -> None:
    response = client.post("/v1/chat/completions", json={"model": "typo", **CHAT})
    assert response.status_code == 503
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("server_error", "model_config_invalid")
    assert error["message"].endswith("typo.yaml: context_sise: unknown key for backend 'reference'")
    assert client.get("/system").json()["loaded_models"] == []


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    [
        (
            "POST",
            "/v1/chat/completions",
            {"model": "nope", **CHAT},
            {
                "error": {
                    "message": "The model 'nope' does not exist",
                    "type": "invalid_request_error",
                    "param": "model",
                    "code": "model_not_found",
                }
            },
        ),
        (
            "POST",
            "/v1/messages",
            {"model": "nope", **CHAT},
            {
                "type": "error",
                "error": {"type": "not_found_error", "message": "The model 'nope' does not exist"},
            },
        ),
        (
            "POST",
            "/generate",
            {"model_id": "nope", "prompt": "hi"},
            {"detail": "The model 'nope' does not exist"},
        ),
        ("GET", "/api/v1/instances/nope", None, {"error": "The model 'nope' does not exist"}),
    ],
)
def test_an_unknown_model_is_a_404_in_each_surface_shape(
    client: TestClient[Any], method: str, path: str, body: dict[str, Any] | None, expected: dict[str, Any]
) -> None:
    response = client.request(method, path, json=body)
    assert (response.status_code, response.json()) == (404, expected)


def test_an_unknown_route_is_a_404_in_openai_shape(client: TestClient[Any]) -> None:
    response = client.get("/v1/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "invalid_request_error"


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "echo", "messages": "hello"}, "messages"),
        ({"model": "echo"}, "messages"),
        (
            {"model": "echo", "messages": [{"role": "user", "content": "x"}], "temperature": "hot"},
            "temperature",
        ),
    ],
)
def test_a_malformed_body_is_a_400_naming_the_field(
    client: TestClient[Any], body: dict[str, Any], param: str
) -> None:
    response = client.post("/v1/chat/completions", json=body)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == param and error["message"].startswith("Invalid request: ")


def test_api_keys_switch_management_auth_on_and_guard_the_routes(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit=False) as client:
        assert client.get("/api/v1/auth/settings").json() == {
            "require_management_auth": False,
            "require_inference_auth": False,
        }
        refused = client.put("/api/v1/auth/settings", json={"require_management_auth": True})
        assert refused.status_code == 409 and "Create a management key" in refused.json()["error"]
        created = client.post("/api/v1/auth/keys", json={"name": "admin", "kind": "management"})
        assert created.status_code == 201
        admin = {"Authorization": f"Bearer {created.json()['key']}"}
        inference = client.post("/api/v1/auth/keys", json={"name": "app", "instance_names": ["echo"]}).json()
        switched = client.put("/api/v1/auth/settings", json={"require_management_auth": True})
        assert switched.json()["require_management_auth"] is True

        missing = client.get("/api/v1/auth/keys")
        assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
        assert missing.json() == {
            "error": "Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'"
        }
        wrong = client.get("/api/v1/auth/keys", headers={"x-api-key": inference["key"]})
        assert wrong.status_code == 403
        listed = client.get("/api/v1/auth/keys", headers=admin).json()
        assert [key["name"] for key in listed] == ["admin", "app"]
        assert all("key" not in key for key in listed) and created.json()["key"] not in str(listed)
        assert client.get("/v1/models").status_code == 200  # inference routes stay open
        assert client.delete(f"/api/v1/auth/keys/{inference['id']}", headers=admin).status_code == 204
        assert client.get(f"/api/v1/auth/keys/{inference['id']}", headers=admin).status_code == 404


def test_key_creation_refuses_unknown_models_and_empty_names(client: TestClient[Any]) -> None:
    unknown = client.post("/api/v1/auth/keys", json={"name": "k", "instance_names": ["ghost-of-nothing"]})
    assert unknown.status_code == 400 and "ghost-of-nothing" in unknown.json()["error"]
    assert client.post("/api/v1/auth/keys", json={"name": " "}).status_code == 400


def integer_parameters(spec: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """``(method, path, where, name)`` of every integer path and query parameter in the document."""
    return [
        (method, path, parameter["in"], parameter["name"])
        for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        for parameter in operation.get("parameters", [])
        if parameter.get("schema", {}).get("type") == "integer"
    ]


def test_an_integer_past_64_bits_is_a_404_in_a_path_and_a_400_in_a_query(client: TestClient[Any]) -> None:
    found = integer_parameters(client.get("/docs/openapi.json").json())
    assert ("get", "/api/v1/auth/keys/{key_id}/permissions", "path", "key_id") in found
    assert ("get", "/api/v1/instances/{name}/logs", "query", "lines") in found
    for huge in (131863223820707332096, -(2**63) - 1, 2**63):
        for method, path, where, name in found:
            url = path.replace(f"{{{name}}}", str(huge)) if where == "path" else path
            url = re.sub(r"{\w+}", "echo", url)
            response = client.request(method.upper(), url, params={name: huge} if where == "query" else None)
            assert response.status_code == (404 if where == "path" else 400), (method, url, response.text)
            assert "error" in response.json(), (method, url, response.text)  # the surface's error body
            if where == "query" and isinstance(response.json()["error"], dict):  # OpenAI's shape
                assert response.json()["error"]["param"] == name
    assert client.get("/api/v1/auth/keys/-1").status_code == 404
    assert client.get("/api/v1/instances/echo/logs", params={"lines": 2**63 - 1}).status_code == 200


def test_a_client_over_its_rate_is_told_when_to_come_back(tmp_path: Path) -> None:
    with app_client(tmp_path, rate_limit_per_minute=6, rate_limit_burst=2) as client:
        assert [client.get("/v1/models").status_code for _ in range(2)] == [200, 200]
        refused = client.get("/v1/models")
        assert refused.status_code == 429 and refused.headers["retry-after"] == "10"
        assert refused.json()["error"]["code"] == "rate_limit_exceeded"
        assert client.get("/healthz").status_code == 200  # health checks are never limited
