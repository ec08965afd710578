"""Every POST/PUT/PATCH route of the OpenAPI document, fed malformed bodies: 4xx with a JSON error, never 5xx.

The routes come from ``/docs/openapi.json``, so a new route is covered without touching this file.
The server is this module's own: the sweep also calls routes that delete, stop and clear, which
must not disturb the session server the other tests share.

No 5xx is excused: the one model (``echo``, reference backend) loads, ``nope`` is a 404, and the
llamactl proxy forwards to this server itself, so no route has an unavailable upstream or model
to report with a 502/503 here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow  # its own server, swept with every route's bodies

NESTED = {"nested": {"deeper": [1, {"x": None}]}}
HUGE = 10**30
"""No int64 holds it, yet msgspec accepts it for an ``int`` field: it reaches the handlers."""
NAMES = ("nope", "echo")
"""Path parameters: a name nothing has, and the one model configured. ``POST /models/delete/echo``
deletes it on the way, which only turns the later requests that name it into 404s."""
PROXIED = "v1/chat/completions"
"""The llamactl proxy's ``{path}``: the route of the server's own that it forwards to."""
LOCALLAB_PATHS = {"/generate", "/generate/batch", "/chat", "/models/load", "/models/unload"}
_JSON_TYPES = {"object": NESTED, "string": "text", "integer": HUGE, "array": [NESTED], "boolean": True}


@pytest.fixture(scope="module")
def sweep_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    root = tmp_path_factory.mktemp("malformed")
    (root / "models").mkdir()
    (root / "models" / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    with (
        KernaiServer(root / "models", root / "data", env={"KERNAI_LOAD_PLUGINS": "reference"}) as server,
        server.client(timeout=30) as client,
    ):
        yield client


def _resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def _body_schema(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """The object schema of a body, also of an optional one (``oneOf: [object, null]``)."""
    schema = _resolve(spec, schema)
    branches = [s for s in schema.get("oneOf", []) if s.get("type") != "null"]
    return _resolve(spec, branches[0]) if len(branches) == 1 else schema


def _example(spec: dict[str, Any], schema: dict[str, Any], name: str = "") -> Any:
    """A small value that fits ``schema``: required properties only, the first of each choice."""
    schema = _resolve(spec, schema)
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            return _example(spec, next(s for s in schema[choice] if s.get("type") != "null"), name)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        props = schema.get("properties", {})
        return {key: _example(spec, props[key], key) for key in schema.get("required", []) if key in props}
    if kind == "array":
        return [_example(spec, schema.get("items", {}), name)]
    if kind == "integer":
        return max(1, int(schema.get("minimum", 1)))
    if kind == "number":
        return 0.5
    if kind == "boolean":
        return False
    return "echo" if name == "model" else "hello"


def _types(spec: dict[str, Any], schema: dict[str, Any]) -> set[str] | None:
    """The JSON types ``schema`` admits, or None for any."""
    schema = _resolve(spec, schema)
    for choice in ("oneOf", "anyOf"):
        if choice in schema:
            branches = [_types(spec, branch) for branch in schema[choice]]
            return None if None in branches else set().union(*branches)  # type: ignore[arg-type]
    if "const" in schema or "enum" in schema:
        names = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}
        return {names[type(v)] for v in schema.get("enum", [schema.get("const")])}
    kind = schema.get("type")
    if kind is None:
        return {"object"} if "properties" in schema else None
    kinds = set(kind) if isinstance(kind, list) else {kind}
    return kinds | {"integer"} if "number" in kinds else kinds


def _wrong(spec: dict[str, Any], schema: dict[str, Any]) -> Any:
    """A value of a JSON type that ``schema`` does not admit (None where it admits any)."""
    admitted = _types(spec, schema)
    if admitted is None:
        return None
    return next((value for kind, value in _JSON_TYPES.items() if kind not in admitted), None)


def _bodies(spec: dict[str, Any], body: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], bool]]:
    """(label, httpx arguments, whether it must be a 4xx) for a route whose ``requestBody`` is ``body``."""
    declared = bool(body)
    yield "not JSON", {"content": b"{not json", "headers": {"content-type": "application/json"}}, declared
    yield "a list", {"json": [1, 2]}, declared
    yield "a number", {"json": 3}, declared
    yield "a string", {"json": "text"}, declared
    content = body.get("content", {})
    media = content.get("application/json") or content.get("multipart/form-data") or {}
    optional = "null" in (_types(spec, media.get("schema", {})) or set())  # Litestar says required anyway
    yield "no body", {}, declared and not optional
    schema = _body_schema(spec, media.get("schema", {}))
    props = schema.get("properties", {})
    yield "an empty object", {"json": {}}, bool(schema.get("required"))
    if not props:
        return
    wrong = {
        key: value for key, value in ((k, _wrong(spec, v)) for k, v in props.items()) if value is not None
    }
    yield "every property of a wrong type", {"json": wrong}, bool(wrong)
    yield "every property huge", {"json": dict.fromkeys(props, HUGE)}, False
    base = _example(spec, schema)
    for key in props:
        if key in wrong:
            yield f"{key}: {wrong[key]!r}", {"json": {**base, key: wrong[key]}}, True
        yield f"{key}: huge", {"json": {**base, key: HUGE}}, False
        yield f"{key}: [huge]", {"json": {**base, key: [HUGE]}}, False
    if "multipart/form-data" in content:
        yield (
            "multipart without the file",
            {"data": {"model": "echo"}, "files": {"other": ("a.txt", b"x")}},
            True,
        )
        yield "text/plain", {"content": b"hello", "headers": {"content-type": "text/plain"}}, True
        yield (
            "a broken multipart body",
            {"content": b"hello", "headers": {"content-type": "multipart/form-data; boundary=zz"}},
            True,
        )
        for key in props:
            if key != "file" and _types(spec, props[key]) != {"string"}:
                yield (
                    f"multipart {key}: not a value",
                    {
                        "data": {"model": "echo", key: "{[not a value"},
                        "files": {"file": ("a.wav", b"not audio")},
                    },
                    True,
                )


def _routes(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            if method not in {"post", "put", "patch"}:
                continue
            names = [p["name"] for p in operation.get("parameters", []) if p.get("in") == "path"]
            for value in NAMES if names else ("",):
                path = template
                for name in names:
                    path = path.replace("{" + name + "}", PROXIED if name == "path" else value)
                yield method.upper(), path, operation.get("requestBody", {})


def _error_shape_problem(path: str, body: Any) -> str | None:
    """What is wrong with an error body for ``path`` (the shape of the surface that serves it), or None."""
    if not isinstance(body, dict):
        return "not a JSON object"
    if path == "/v1/messages":  # Anthropic's surface inside /v1: Anthropic's clients parse their own shape
        ok = (
            body.get("type") == "error"
            and isinstance(body.get("error"), dict)
            and {"type", "message"} <= set(body["error"])
        )
    elif path.startswith("/api/v1/") and not path.startswith("/api/v1/instances/echo/proxy/"):
        ok = isinstance(body.get("error"), str)  # llamactl; its proxy to a model passes on the route's answer
    elif path in LOCALLAB_PATHS:
        ok = isinstance(body.get("detail"), str)
    elif path.startswith("/llama-cpp/"):  # llama-server's own routes of an instance: its shape
        error = body.get("error")
        ok = isinstance(error, dict) and set(error) == {"code", "message", "type"} and bool(error["message"])
    else:  # OpenAI, on /v1 and on its un-prefixed aliases
        error = body.get("error")
        ok = (
            isinstance(error, dict)
            and set(error) == {"message", "type", "param", "code"}
            and isinstance(error["message"], str)
            and error["message"] != ""
        )
    return None if ok else f"not the error shape of {path}: {body}"


def test_malformed_bodies_get_a_4xx_json_error_never_a_5xx(sweep_client: httpx.Client) -> None:
    spec = sweep_client.get("/docs/openapi.json").json()
    problems: list[str] = []
    checked = 0
    for method, path, body in _routes(spec):
        for label, arguments, must_fail in _bodies(spec, body):
            response = sweep_client.request(method, path, **arguments)
            checked += 1
            where = f"{method} {path} with {label}: {response.status_code}"
            if response.status_code >= 500:
                problems.append(f"{where} {response.text[:200]}")
                continue
            if must_fail and response.status_code < 400:
                problems.append(f"{where}: a malformed body was accepted")
            if response.status_code >= 400:
                try:
                    problem = _error_shape_problem(path, response.json())
                except ValueError:
                    problem = f"not JSON: {response.text[:200]}"
                if problem:
                    problems.append(f"{where}: {problem}")
    assert checked > 1000, checked
    assert not problems, "\n".join(problems)
