"""LocalAI's API guides for agents, ``GET /api/instructions`` and ``/api/instructions/{name}``, generated
from kernai's own OpenAPI document: one guide per tag (area), with each route's request and response shapes
and a curl example; markdown by default, the OpenAPI fragment with ``?format=json``."""

from __future__ import annotations

import json
import re
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.exceptions import NotFoundException
from msgspec import Struct

from kernai.errors import InvalidRequest
from kernai.http.routes import RouteClass, route_opt

METHODS = ("get", "post", "put", "patch", "delete")
EXAMPLES = {"string": "text", "integer": 1, "number": 0.5, "boolean": True, "array": [], "object": {}}


class InstructionArea(Struct):
    name: str
    description: str
    url: str
    operations: int


class InstructionIndex(Struct):
    instructions: list[InstructionArea]
    hint: str


class APIInstruction(Struct):
    """LocalAI's ``localai.APIInstructionResponse``."""

    name: str
    description: str
    tags: list[str]
    swagger_fragment: dict[str, Any]


def slug(tag: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", tag.lower()).strip("-")


def _areas(document: dict[str, Any]) -> dict[str, tuple[str, dict[str, dict[str, Any]]]]:
    """Per area name: its tag and its paths (each with the operations of that tag)."""
    areas: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {}
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation is None:
                continue
            for tag in operation.get("tags", ["other"]):
                _, paths = areas.setdefault(slug(tag), (tag, {}))
                paths.setdefault(path, {})[method] = operation
    return areas


def _description(tag: str, paths: dict[str, dict[str, Any]]) -> str:
    count = sum(len(methods) for methods in paths.values())
    summaries = [op.get("summary", "") for methods in paths.values() for op in methods.values()]
    named = "; ".join(s for s in summaries[:4] if s)
    return f"The {tag} routes ({count} operations)" + (
        f": {named}" + ("; ..." if count > 4 else "") if named else ""
    )


def _resolve(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
        found = document.get("components", {}).get("schemas", {}).get(ref.rsplit("/", 1)[-1], {})
        return found if isinstance(found, dict) else {}
    return schema


def _components(fragment: Any, document: dict[str, Any], found: dict[str, Any]) -> None:
    """Every component ``fragment`` refers to, transitively, into ``found``."""
    if isinstance(fragment, dict):
        ref = fragment.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[-1]
            if name not in found:
                found[name] = document.get("components", {}).get("schemas", {}).get(name, {})
                _components(found[name], document, found)
        for value in fragment.values():
            _components(value, document, found)
    elif isinstance(fragment, list):
        for value in fragment:
            _components(value, document, found)


def _shape(schema: dict[str, Any], document: dict[str, Any]) -> str:
    """One line per field: name, type, required."""
    schema = _resolve(schema, document)
    properties = schema.get("properties", {})
    if not properties:
        return f"`{schema.get('type', 'any')}`"
    required = set(schema.get("required", []))
    return "\n".join(
        f"- `{name}` ({_type(spec, document)}{', required' if name in required else ''})"
        + (f": {spec['description']}" if isinstance(spec, dict) and spec.get("description") else "")
        for name, spec in properties.items()
    )


def _type(spec: Any, document: dict[str, Any]) -> str:
    if not isinstance(spec, dict):
        return "any"
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    choices = spec.get("oneOf") or spec.get("anyOf")
    if isinstance(choices, list):
        return " | ".join(_type(choice, document) for choice in choices)
    return str(spec.get("type", "any"))


def _example(schema: dict[str, Any], document: dict[str, Any]) -> dict[str, Any]:
    """A body with each required field set to a placeholder of its type."""
    schema = _resolve(schema, document)
    properties = schema.get("properties", {})
    body: dict[str, Any] = {}
    for name in schema.get("required", []):
        spec = _resolve(properties.get(name, {}), document)
        kind = spec.get("type")
        body[name] = EXAMPLES.get(kind, "text") if isinstance(kind, str) else "text"
    return body


def _request_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        if isinstance(media, dict) and isinstance(media.get("schema"), dict):
            return dict(media["schema"])
    return None


def _response_schema(operation: dict[str, Any]) -> dict[str, Any] | None:
    for status, response in operation.get("responses", {}).items():
        if str(status).startswith("2"):
            for media in response.get("content", {}).values():
                if isinstance(media, dict) and isinstance(media.get("schema"), dict):
                    return dict(media["schema"])
    return None


def markdown(
    name: str, tag: str, paths: dict[str, dict[str, Any]], document: dict[str, Any], base: str
) -> str:
    lines = [f"# {name}", "", _description(tag, paths) + ".", ""]
    for path, methods in paths.items():
        for method, operation in methods.items():
            lines += [f"## {method.upper()} {path}", ""]
            if summary := operation.get("summary"):
                lines += [summary, ""]
            if description := operation.get("description"):
                lines += [description.strip(), ""]
            request = _request_schema(operation)
            curl = f"curl -X {method.upper()} {base}{path}"
            if request is not None:
                lines += ["Request body:", "", _shape(request, document), ""]
                example = json.dumps(_example(request, document))
                curl += f" -H 'Content-Type: application/json' -d '{example}'"
            if (response := _response_schema(operation)) is not None:
                lines += ["Response:", "", _shape(response, document), ""]
            lines += ["```bash", curl, "```", ""]
    return "\n".join(lines)


class InstructionsController(Controller):
    path = "/api/instructions"
    tags = ["localai"]
    opt = route_opt(RouteClass.MANAGEMENT)

    @get("/", summary="The API's areas, each with a guide for agents")
    async def index(self, request: Request[Any, Any, Any]) -> InstructionIndex:
        areas = _areas(request.app.openapi_schema.to_schema())
        return InstructionIndex(
            [
                InstructionArea(
                    name,
                    _description(tag, paths),
                    f"/api/instructions/{name}",
                    sum(len(methods) for methods in paths.values()),
                )
                for name, (tag, paths) in sorted(areas.items())
            ],
            "GET /api/instructions/{name} for an area's guide in markdown, ?format=json for its OpenAPI "
            "fragment",
        )

    @get("/{name:str}", summary="One area's guide (markdown) or OpenAPI fragment (?format=json)")
    async def guide(self, name: str, request: Request[Any, Any, Any], format: str | None = None) -> Any:
        document = request.app.openapi_schema.to_schema()
        areas = _areas(document)
        if name not in areas:
            raise NotFoundException(f"No instruction '{name}': see /api/instructions")
        tag, paths = areas[name]
        if format == "json":
            components: dict[str, Any] = {}
            _components(paths, document, components)
            fragment = {"paths": paths, "components": {"schemas": components}}
            return APIInstruction(name, _description(tag, paths), [tag], fragment)
        if format not in (None, "markdown", "md"):
            raise InvalidRequest(f"Unknown format '{format}': use json or markdown", param="format")
        base = str(request.base_url).rstrip("/")
        return Response(markdown(name, tag, paths, document, base), media_type="text/markdown")
