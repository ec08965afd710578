"""Each route's policy as the app built from the plugins declares it (its class, error format, whether it
is traced), the caller handed from the gate to the model manager, and the ``disabled_plugins`` setting.
In-process (Litestar's test client); nothing here starts a worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from kernai.http.app import create_app
from kernai.http.errors import llamactl_shape, openai_shape, shape_of
from kernai.http.routes import ROUTE_CLASS, RouteClass, is_traced, route_class
from kernai.plugins import PluginRegistry
from kernai.settings import Settings
from kernai.surfaces.anthropic.errors import anthropic_shape
from kernai.surfaces.llamactl.native_schemas import llama_server_shape
from kernai.surfaces.locallab.errors import detail_shape

PUBLIC, INFERENCE, MANAGEMENT = RouteClass.PUBLIC, RouteClass.INFERENCE, RouteClass.MANAGEMENT
MODELS = {"echo.yaml": "name: echo\nbackend: reference\n", "other.yaml": "name: other\nbackend: reference\n"}
CHAT = {"messages": [{"role": "user", "content": "hello"}]}
POLICIES = [
    # method, path, class, error shape, traced
    ("GET", "/healthz", PUBLIC, openai_shape, False),
    ("GET", "/version", PUBLIC, openai_shape, False),
    ("GET", "/docs/openapi.json", PUBLIC, openai_shape, False),
    ("GET", "/health", PUBLIC, detail_shape, False),
    ("POST", "/v1/chat/completions", INFERENCE, openai_shape, True),
    ("POST", "/chat/completions", INFERENCE, openai_shape, True),
    ("POST", "/v1/embeddings", INFERENCE, openai_shape, True),
    ("GET", "/v1/models", INFERENCE, openai_shape, True),
    ("GET", "/models", INFERENCE, openai_shape, True),
    ("POST", "/v1/audio/transcriptions", INFERENCE, openai_shape, True),
    ("POST", "/v1/messages", INFERENCE, anthropic_shape, True),
    ("POST", "/v1/responses", INFERENCE, openai_shape, True),
    ("POST", "/generate", INFERENCE, detail_shape, True),
    ("POST", "/chat", INFERENCE, detail_shape, True),
    ("POST", "/models/load", MANAGEMENT, detail_shape, True),
    ("GET", "/system/info", MANAGEMENT, detail_shape, True),
    ("POST", "/v1/tokenize", INFERENCE, openai_shape, True),
    ("POST", "/tts", INFERENCE, openai_shape, True),
    ("POST", "/vad", INFERENCE, openai_shape, True),
    ("POST", "/v1/rerank", INFERENCE, openai_shape, True),
    ("POST", "/v1/detection", INFERENCE, openai_shape, True),
    ("GET", "/system", MANAGEMENT, openai_shape, True),
    ("GET", "/v1/backend/monitor", MANAGEMENT, openai_shape, True),
    ("PUT", "/api/models/echo/disable", MANAGEMENT, openai_shape, True),
    ("PATCH", "/api/models/config-json/echo", MANAGEMENT, openai_shape, True),
    ("GET", "/api/models/config-metadata", MANAGEMENT, openai_shape, True),
    ("GET", "/tokenMetrics", MANAGEMENT, openai_shape, True),
    ("GET", "/api/instructions/localai", MANAGEMENT, openai_shape, True),
    ("GET", "/api/v1/instances", MANAGEMENT, llamactl_shape, True),
    ("POST", "/api/v1/instances/echo/proxy/v1/chat/completions", MANAGEMENT, llamactl_shape, True),
    ("GET", "/api/v1/auth/keys", MANAGEMENT, llamactl_shape, False),
    ("POST", "/api/v1/backends/llama-cpp/parse-command", MANAGEMENT, llamactl_shape, True),
    ("GET", "/api/v1/instances/echo/proxy", MANAGEMENT, llamactl_shape, True),
    ("POST", "/llama-cpp/echo/completion", INFERENCE, llama_server_shape, True),
    ("GET", "/llama-cpp/echo/props", INFERENCE, llama_server_shape, True),
    ("GET", "/llama-cpp/echo/", INFERENCE, llama_server_shape, True),
    ("GET", "/metrics", MANAGEMENT, openai_shape, False),
    ("GET", "/api/traces", MANAGEMENT, openai_shape, False),
    (None, "/ws/backend-logs/echo", MANAGEMENT, openai_shape, False),  # a WebSocket
    ("GET", "/models/available", MANAGEMENT, openai_shape, True),
    ("POST", "/backends/apply", MANAGEMENT, openai_shape, True),
]


def build(root: Path, **settings: Any) -> Litestar:
    """The app over ``root/models`` (``MODELS``), with the reference backend only."""
    (root / "models").mkdir(parents=True, exist_ok=True)
    for name, text in MODELS.items():
        (root / "models" / name).write_text(text)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNAI_LOAD_PLUGINS", "reference")
        registry = PluginRegistry()
    return create_app(
        Settings(models_dir=str(root / "models"), data_dir=str(root / "data"), **settings), registry
    )


def client_of(app: Litestar) -> TestClient[Any]:
    return TestClient(app, base_url="http://127.0.0.1:8080")


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    return build(tmp_path_factory.mktemp("policy"), rate_limit=False)


@pytest.mark.parametrize(
    ("method", "path", "kind", "shape", "traced"), POLICIES, ids=[f"{p[0] or 'WS'} {p[1]}" for p in POLICIES]
)
def test_each_route_declares_its_class_error_shape_and_tracing(
    app: Litestar, method: Any, path: str, kind: RouteClass, shape: Any, traced: bool
) -> None:
    handler = app.asgi_router.handle_routing(path, method)[1]
    assert (route_class(handler), shape_of(handler), is_traced(handler, kind)) == (kind, shape, traced)


def test_every_route_of_the_app_names_its_class_rather_than_taking_the_default(app: Litestar) -> None:
    undeclared = [
        f"{method} {path}"
        for path, handlers in app.route_handler_method_map.items()
        for method, handler in handlers.items()
        if ROUTE_CLASS not in handler.opt
    ]
    assert not undeclared


def test_refusals_and_routing_errors_answer_in_the_shape_of_the_route(tmp_path: Path) -> None:
    app = build(tmp_path, require_management_auth=True, management_keys=["sk-admin"], rate_limit=False)
    with client_of(app) as client:
        assert client.get("/api/v1/instances").json() == {
            "error": "Missing API key: send 'Authorization: Bearer KEY' or 'x-api-key: KEY'"
        }
        assert client.get("/metrics").json()["error"]["type"] == "authentication_error"
        assert client.get("/system/info").json()["detail"].startswith("Missing API key")
        assert client.get("/healthz").status_code == 200  # public
        # a method the path does not take: that path's shape
        assert client.get("/v1/messages").json() == {
            "type": "error",
            "error": {"type": "api_error", "message": "Method Not Allowed"},
        }
        assert client.get("/generate").json() == {"detail": "Method Not Allowed"}
        # a path no route has: the shape of the routes nearest to it where they agree, else OpenAI's
        assert client.get("/api/v1/no-such-route").json() == {"error": "Not Found"}
        assert client.get("/v1/messages/x").json()["error"] == {
            "type": "not_found_error",
            "message": "Not Found",
        }
        for path in ("/v1/no-such-route", "/api/no-such-route", "/nothing"):
            unknown = client.get(path)
            assert unknown.status_code == 404 and unknown.json()["error"]["message"] == "Not Found", path


def test_the_caller_reaches_the_manager_and_names_the_model_in_the_trace(tmp_path: Path) -> None:
    app = build(tmp_path, require_inference_auth=True, rate_limit=False)
    with client_of(app) as client:
        key = client.post(
            "/api/v1/auth/keys",
            json={"name": "echo-only", "permission_mode": "per_instance", "instance_names": ["echo"]},
        ).json()["key"]
        auth = {"Authorization": f"Bearer {key}"}
        assert client.post("/v1/chat/completions", json={**CHAT, "model": "other"}).status_code == 401
        refused = client.post("/v1/chat/completions", json={**CHAT, "model": "other"}, headers=auth)
        assert refused.status_code == 403 and "'other'" in refused.json()["error"]["message"]
        trace = client.get("/api/traces").json()[-1]
        assert (trace["path"], trace["status"], trace["model"]) == ("/v1/chat/completions", 403, "other")
        assert trace["key_id"] is not None


def test_a_model_list_through_an_instance_proxy_lists_that_instance_alone(app: Litestar) -> None:
    with client_of(app) as client:
        assert {card["id"] for card in client.get("/v1/models").json()["data"]} == {"echo", "other"}
        for path in ("v1/models", "models"):
            proxied = client.get(f"/api/v1/instances/other/proxy/{path}").json()
            assert [card["id"] for card in proxied["data"]] == ["other"], path


def test_a_disabled_plugin_serves_nothing_and_leaves_the_openapi_document(tmp_path: Path) -> None:
    app = build(tmp_path, disabled_plugins=["anthropic", "gallery"], rate_limit=False)
    with client_of(app) as client:
        paths = client.get("/docs/openapi.json").json()["paths"]
        assert "/v1/messages" not in paths and "/models/available" not in paths
        assert "/v1/chat/completions" in paths and "/api/v1/instances" in paths
        gone = client.post("/v1/messages", json={"model": "echo", "max_tokens": 5, **CHAT})
        assert gone.status_code == 404 and gone.json()["error"]["message"] == "Not Found"
        assert client.get("/models/available").status_code == 404
        assert client.get("/v1/models").status_code == 200


@pytest.fixture()
def _unknown_plugin_logged(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level("WARNING", logger="kernai.http.app"):
        yield caplog


def test_disabling_a_plugin_that_is_not_loaded_is_logged(
    tmp_path: Path, _unknown_plugin_logged: pytest.LogCaptureFixture
) -> None:
    build(tmp_path, disabled_plugins=["no-such-plugin"])
    assert "disabled_plugins names no loaded plugin: no-such-plugin" in _unknown_plugin_logged.text
