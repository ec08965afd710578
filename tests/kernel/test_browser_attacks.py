"""The attacks a web page in the user's browser can make on a default server, each refused over real HTTP.

DNS rebinding (a foreign ``Host``), cross-site "simple" requests (JSON sent as ``text/plain`` or a form,
a foreign ``Origin`` on any state-changing route, multipart ones included, and on a WebSocket upgrade),
and worker environment variables that load code. The routes come from ``/docs/openapi.json``, so a new
route is covered without touching this file. Every refusal happens before the handler runs, so the
sweeps change nothing on the server.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer

FOREIGN_HOST = "attacker.example"
FOREIGN_ORIGINS = ("http://attacker.example", "null", "http://127.0.0.1:1")
CODE_LOADERS = ("LD_PRELOAD", "PYTHONPATH", "PYTHONSTARTUP")
CHAT = {"model": "echo", "max_tokens": 8, "messages": [{"role": "user", "content": "hello"}]}
AUDIO = {"file": ("a.wav", b"RIFF not really audio", "audio/wav")}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    """Default settings; an ``echo`` model, and one config on disk per variable that loads code."""
    root = tmp_path_factory.mktemp("browser")
    (root / "models").mkdir()
    (root / "models" / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    for variable in CODE_LOADERS:
        (root / "models" / f"env-{variable}.yaml").write_text(
            f"name: env-{variable}\nbackend: reference\nenvironment:\n  {variable}: /tmp/payload\n"
        )
    with KernaiServer(root / "models", root / "data", env={"KERNAI_LOAD_PLUGINS": "reference"}) as running:
        yield running


@pytest.fixture(scope="module")
def http(server: KernaiServer) -> Iterator[httpx.Client]:
    with server.client(timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def spec(http: httpx.Client) -> dict[str, Any]:
    return http.get("/docs/openapi.json").json()


def routes(spec: dict[str, Any], methods: set[str]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path, operation) of each route of the document with one of ``methods``."""
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method in methods:
                path = template.replace("{path}", "v1/chat/completions")
                for parameter in operation.get("parameters", []):
                    if parameter.get("in") == "path":
                        value = "1" if parameter["schema"].get("type") == "integer" else "echo"
                        path = path.replace("{" + parameter["name"] + "}", value)
                yield method.upper(), path, operation


def body_types(operation: dict[str, Any]) -> set[str]:
    return set(operation.get("requestBody", {}).get("content", {}))


def a_body(operation: dict[str, Any]) -> dict[str, Any]:
    """httpx arguments for a body the route reads: a multipart upload or JSON."""
    if "multipart/form-data" in body_types(operation) and "application/json" not in body_types(operation):
        return {"data": {"model": "echo"}, "files": AUDIO}
    return {"json": CHAT}


def handshake(server: KernaiServer, path: str, **headers: str) -> int:
    """The status of a WebSocket upgrade of ``path`` with ``headers`` (``host`` replaces the usual)."""
    lines = [
        f"GET {path} HTTP/1.1",
        f"Host: {headers.pop('host', f'127.0.0.1:{server.port}')}",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        *(f"{name}: {value}" for name, value in headers.items()),
    ]
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return int(connection.recv(4096).split(b" ", 2)[1])


# --- DNS rebinding: the Host header -------------------------------------------------------------------


def test_a_foreign_host_is_refused_on_every_route(http: httpx.Client, spec: dict[str, Any]) -> None:
    methods = {"get", "post", "put", "patch", "delete"}
    checked = [(method, path) for method, path, _ in routes(spec, methods)]
    checked += [("GET", "/docs"), ("GET", "/docs/openapi.json"), ("GET", "/api/traces"), ("GET", "/healthz")]
    assert len(checked) > 80
    problems = []
    for method, path in checked:
        response = http.request(method, path, headers={"host": f"{FOREIGN_HOST}:8080"})
        if response.status_code != 400 or "allowed_hosts" not in response.text:
            problems.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)


def test_the_refusal_is_the_surface_error_naming_the_setting(http: httpx.Client) -> None:
    openai = http.get("/v1/models", headers={"host": FOREIGN_HOST}).json()["error"]
    assert openai["code"] == "host_not_allowed" and "allowed_hosts" in openai["message"]
    assert FOREIGN_HOST in openai["message"]
    llamactl = http.get("/api/v1/instances", headers={"host": FOREIGN_HOST}).json()
    assert "allowed_hosts" in llamactl["error"]


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LocalHost.", "localhost:1", "[::1]:80"])
def test_loopback_names_with_any_port_are_served(http: httpx.Client, server: KernaiServer, host: str) -> None:
    assert http.get("/v1/models", headers={"host": host}).status_code == 200
    assert http.get("/api/traces", headers={"host": host}).status_code == 200


def test_a_websocket_to_a_foreign_host_is_refused(server: KernaiServer) -> None:
    assert handshake(server, "/ws/backend-logs/echo", host=f"{FOREIGN_HOST}:{server.port}") == 403
    assert handshake(server, "/ws/backend-logs/echo", host=f"localhost:{server.port}") == 101


# --- simple requests: the Content-Type ---------------------------------------------------------------


def test_a_body_of_a_type_the_route_does_not_read_is_refused_with_415(
    http: httpx.Client, spec: dict[str, Any]
) -> None:
    """JSON as text/plain or as a form, on every route that takes a body (multipart ones included)."""
    checked, problems = 0, []
    for method, path, operation in routes(spec, {"post", "put", "patch"}):
        if not body_types(operation):
            continue
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "text/plain; charset=utf-8"):
            response = http.request(
                method, path, content=b'{"model": "echo"}', headers={"content-type": content_type}
            )
            checked += 1
            if response.status_code != 415 or "not accepted here" not in response.text:
                problems.append(f"{method} {path} as {content_type}: {response.status_code} {response.text}")
    assert checked > 100, checked
    assert not problems, "\n".join(problems)


def test_the_415_says_how_to_send_json(http: httpx.Client) -> None:
    error = http.post("/v1/chat/completions", data={"model": "echo"}).json()["error"]
    assert error["code"] == "unsupported_media_type" and "application/json" in error["message"]
    assert "--json" in error["message"]
    anthropic = http.post("/v1/messages", content=b"{}", headers={"content-type": "text/plain"}).json()
    assert anthropic["type"] == "error" and anthropic["error"]["type"] == "invalid_request_error"


def test_the_instance_proxy_checks_the_type_of_the_route_it_forwards_to(http: httpx.Client) -> None:
    proxied = "/api/v1/instances/echo/proxy/v1/chat/completions"
    refused = http.post(proxied, content=b'{"messages": []}', headers={"content-type": "text/plain"})
    assert refused.status_code == 415, refused.text
    assert http.post(proxied, json={"messages": [{"role": "user", "content": "hi"}]}).status_code == 200


@pytest.mark.parametrize(
    "content_type",
    [None, "application/json", "application/json; charset=utf-8", "application/vnd.kernai+json"],
)
def test_json_and_untyped_bodies_are_read(http: httpx.Client, content_type: str | None) -> None:
    """As before: clients that send JSON without a type (requests' ``data=``) keep working."""
    headers = {"content-type": content_type} if content_type else {}
    response = http.post(
        "/v1/chat/completions", content=httpx.Request("POST", "/", json=CHAT).content, headers=headers
    )
    assert response.status_code == 200, response.text


def test_posts_without_a_body_keep_working(http: httpx.Client) -> None:
    assert http.post("/api/v1/instances/echo/start").status_code == 200
    assert http.post("/api/v1/instances/echo/stop").status_code == 200
    assert http.post("/api/traces/clear").status_code == 200


# --- cross-site requests: the Origin header ----------------------------------------------------------


def test_a_foreign_origin_is_refused_on_every_state_changing_route(
    http: httpx.Client, spec: dict[str, Any]
) -> None:
    checked, problems = 0, []
    for method, path, operation in routes(spec, {"post", "put", "patch", "delete"}):
        for origin in FOREIGN_ORIGINS:
            arguments = a_body(operation) if method != "DELETE" else {}
            response = http.request(method, path, headers={"origin": origin}, **arguments)
            checked += 1
            if response.status_code != 403 or "cors_origins" not in response.text:
                problems.append(f"{method} {path} from {origin}: {response.status_code} {response.text}")
    assert checked > 150, checked
    assert not problems, "\n".join(problems)


def test_multipart_uploads_from_a_foreign_origin_are_refused(http: httpx.Client) -> None:
    for path in ("/v1/audio/transcriptions", "/v1/audio/translations", "/vad"):
        response = http.post(
            path, data={"model": "echo"}, files=AUDIO, headers={"origin": FOREIGN_ORIGINS[0]}
        )
        assert response.status_code == 403, (path, response.text)
        assert response.json()["error"]["code"] == "origin_not_allowed"


def test_same_origin_and_no_origin_posts_are_accepted(http: httpx.Client, server: KernaiServer) -> None:
    for headers in (
        {},
        {"origin": server.url},
        {"origin": f"http://localhost:{server.port}", "host": f"localhost:{server.port}"},
    ):
        response = http.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == 200, (headers, response.text)


def test_reads_from_a_foreign_origin_are_answered_but_not_shared(http: httpx.Client) -> None:
    response = http.get("/v1/models", headers={"origin": "http://attacker.example"})
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


def test_a_websocket_from_a_foreign_origin_is_refused(server: KernaiServer) -> None:
    path = "/ws/backend-logs/echo"
    assert handshake(server, path, origin="http://attacker.example") == 403
    assert handshake(server, path, origin="null") == 403
    assert handshake(server, path, origin=server.url) == 101
    assert handshake(server, path) == 101


# --- worker environment ------------------------------------------------------------------------------


@pytest.mark.parametrize("variable", CODE_LOADERS)
def test_an_instance_may_not_set_a_variable_that_loads_code(http: httpx.Client, variable: str) -> None:
    response = http.post(
        "/api/v1/instances/probe",
        json={"backend_type": "reference", "environment": {variable: "/tmp/payload"}},
    )
    assert response.status_code == 400, response.text
    assert f"'{variable}' may not be set" in response.json()["error"]
    assert http.get("/api/v1/instances/probe").status_code == 404


def test_an_instance_may_set_other_variables(http: httpx.Client) -> None:
    created = http.post(
        "/api/v1/instances/threads",
        json={"backend_type": "reference", "environment": {"OMP_NUM_THREADS": "1"}},
    )
    assert created.status_code == 201, created.text
    assert created.json()["options"]["environment"] == {"OMP_NUM_THREADS": "1"}
    assert http.delete("/api/v1/instances/threads").status_code == 204


@pytest.mark.parametrize("variable", CODE_LOADERS)
def test_a_model_config_may_not_set_a_variable_that_loads_code(http: httpx.Client, variable: str) -> None:
    models = {m["id"]: m for m in http.get("/v1/models").json()["data"]}
    status = models[f"env-{variable}"]["status"]
    assert status["state"] == "error", status
    assert f"env-{variable}.yaml: environment.{variable}:" in status["error"]
    chat = http.post("/v1/chat/completions", json={**CHAT, "model": f"env-{variable}"})
    assert chat.status_code == 503 and chat.json()["error"]["code"] == "model_config_invalid"
