"""The API coverage table (docs/api-coverage.md) cannot drift: each operation's state is recomputed from
the app's routes (served, an alias kernai serves under another path, or not yet with the plan that will
serve it), and, where the API documents kernai follows are at hand ($KERNAI_API_SPECS, else
../shared/specs beside the repository), the operations are read from them. On a difference the test fails
with the table to paste."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
from litestar import Litestar
from litestar.exceptions import MethodNotAllowedException, NotFoundException

from kernai.http.app import create_app
from kernai.plugins import PluginRegistry
from kernai.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "api-coverage.md"
START, END = "<!-- coverage:start -->", "<!-- coverage:end -->"
SPECS = Path(os.environ.get("KERNAI_API_SPECS", ROOT.parent / "shared" / "specs"))

ALIASES = {
    (
        "POST",
        "/v1/",
    ): "each `/v1/...` route: the body's `model` picks the model, as llamactl's catch-all does",
}
"""Operations kernai serves under other paths: the documented one, and what serves it."""
PLANS = {
    "/api/agent/": "agents (tasks and jobs), with MCP",
    "/v1/mcp/": "agents (tasks and jobs), with MCP",
    "/api/p2p": "scale-out past one machine (Ray; LocalAI p2p, llamactl nodes)",
    "/v1/images/": "generative media (images, video, sound)",
    "/video": "generative media (images, video, sound)",
    "/v1/sound-generation": "generative media (images, video, sound)",
}
"""Path prefixes of the operations not served yet, and the work that will serve them (docs/architecture.md,
"Later"; no issue is filed for them yet)."""
SOURCES = {
    "LocalAI": "localai-swagger-operations.txt",
    "LocalAI backend monitor": "localai-backend-monitor.md",
    "llamactl swagger": "llamactl-swagger.yaml",
    "llamactl reference": "llamactl-api-reference.md",
    "LocalLab": "locallab-api.md",
}
METHOD = r"(GET|POST|PUT|PATCH|DELETE)"


def _swagger_yaml(text: str) -> list[tuple[str, str]]:
    """Operations of a swagger file whose indentation was lost: path lines, then their method lines."""
    operations, path, inside = [], None, False
    for line in text.splitlines():
        if line == "paths:":
            inside = True
        elif inside and line.startswith("securityDefinitions"):
            break
        elif inside and re.fullmatch(r"/\S*:", line):
            path = line[:-1]
        elif inside and path and re.fullmatch(r"(get|post|put|patch|delete):", line):
            operations.append((line[:-1].upper(), path))
    return operations


def _monitor_note(text: str) -> list[tuple[str, str]]:
    found = re.finditer(r"\*\*Method:\*\* `(\w+)`.*?\*\*Endpoints:\*\* ([^\n]+)", text, re.S)
    return [(m[1], path) for m in found for path in re.findall(r"`(/[^`]+)`", m[2])]


def documented_operations(specs: Path) -> dict[tuple[str, str], list[str]]:
    """``(method, path)`` of every operation the documents name, with the documents naming it."""
    operations: dict[tuple[str, str], list[str]] = {}
    known: dict[tuple[str, str], tuple[str, str]] = {}  # the same operation, its parameters named otherwise
    for document, name in SOURCES.items():
        text = (specs / name).read_text(encoding="utf-8")
        if name.endswith(".yaml"):
            found = _swagger_yaml(text)
        elif name == "localai-backend-monitor.md":
            found = _monitor_note(text)
        elif name.endswith(".txt"):
            found = [(m[1], m[2]) for m in re.finditer(rf"^### {METHOD} (\S+)$", text, re.M)]
        else:
            found = [(m[1], m[2]) for m in re.finditer(rf"^{METHOD} (/\S*)$", text, re.M)]
        for method, path in found:
            key = known.setdefault((method, re.sub(r"\{[^}]+\}|\*", "{}", path)), (method, path))
            documents = operations.setdefault(key, [])
            if document not in documents:
                documents.append(document)
    return operations


def _routed(app: Litestar, method: str, path: str) -> bool:
    concrete = re.sub(r"\{[^}]+\}", "1", path).replace("/*", "/x/y")
    for kind in (method, None):  # None: a WebSocket route at that path
        try:
            app.asgi_router.handle_routing(concrete, kind)
            return True
        except (NotFoundException, MethodNotAllowedException):
            continue
    return False


def state(app: Litestar, method: str, path: str) -> str:
    if _routed(app, method, path):
        return "served"
    if (method, path) in ALIASES:
        return f"alias: {ALIASES[(method, path)]}"
    plan = next((plan for prefix, plan in PLANS.items() if path.startswith(prefix)), None)
    return f"not yet: {plan}" if plan else "NOT SERVED, NO PLAN"


def table(app: Litestar, operations: dict[tuple[str, str], list[str]]) -> str:
    rows = sorted(operations.items(), key=lambda item: (item[0][1], item[0][0]))
    states = [state(app, method, path) for (method, path), _ in rows]
    count = {kind: sum(s.startswith(kind) for s in states) for kind in ("served", "alias", "not yet")}
    lines = [
        f"{len(rows)} operations: {count['served']} served, {count['alias']} served under another path, "
        f"{count['not yet']} not yet.",
        "",
        "| method | path | documented in | kernai |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {method} | `{path}` | {', '.join(documents)} | {status} |"
        for ((method, path), documents), status in zip(rows, states, strict=True)
    ]
    return "\n".join(lines)


def _page_operations(block: str) -> dict[tuple[str, str], list[str]]:
    found = re.finditer(r"^\| (\w+) \| `([^`]+)` \| ([^|]+) \|", block, re.M)
    return {(m[1], m[2]): [d.strip() for d in m[3].split(",")] for m in found}


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Litestar:
    root = tmp_path_factory.mktemp("coverage")
    return create_app(
        Settings(models_dir=str(root / "models"), data_dir=str(root / "data")), PluginRegistry()
    )


def test_the_coverage_table_matches_the_app_and_the_api_documents(app: Litestar) -> None:
    page = PAGE.read_text(encoding="utf-8")
    block = page.split(START, 1)[1].split(END, 1)[0].strip()
    operations = documented_operations(SPECS) if SPECS.is_dir() else _page_operations(block)
    expected = table(app, operations)
    assert "NOT SERVED, NO PLAN" not in expected, (
        "serve these operations or name the work that will:\n"
        + "\n".join(line for line in expected.splitlines() if "NO PLAN" in line)
    )
    assert block == expected, f"docs/api-coverage.md is out of date; paste between the markers:\n{expected}"


def test_the_operations_are_the_126_the_documents_name() -> None:
    if not SPECS.is_dir():
        pytest.skip(f"the API documents are not at {SPECS} (set KERNAI_API_SPECS)")
    operations: dict[Any, Any] = documented_operations(SPECS)
    assert len(operations) == 126
    assert operations[("POST", "/api/v1/backends/llama-cpp/parse-command")] == ["llamactl swagger"]
    assert operations[("GET", "/backend/monitor")] == ["LocalAI", "LocalAI backend monitor"]


def test_every_served_operation_is_in_the_openapi_document(app: Litestar) -> None:
    page = PAGE.read_text(encoding="utf-8")
    operations = _page_operations(page.split(START, 1)[1].split(END, 1)[0])

    def key(method: str, path: str) -> tuple[str, str]:
        return method.upper(), re.sub(r"\{[^}]+\}|\*", "{}", path).rstrip("/") or "/"

    document = app.openapi_schema.to_schema()
    listed = {key(method, path) for path, item in document["paths"].items() for method in item}
    websockets = {"/ws/backend-logs/{modelId}"}  # OpenAPI describes no WebSocket
    missing = [
        f"{method} {path}"
        for method, path in operations
        if state(app, method, path) == "served" and path not in websockets and key(method, path) not in listed
    ]
    assert not missing
