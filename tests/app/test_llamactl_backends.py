"""llamactl's backend routes in-process, on a server without the llama-cpp backend: parse-command still
parses (what no installed backend can take is listed, not dropped) and the engine facts are a 404."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from kernai.http.app import create_app
from kernai.plugins import PluginRegistry
from kernai.settings import Settings


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient[Any]]:
    root: Path = tmp_path_factory.mktemp("llamactl")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNAI_LOAD_PLUGINS", "reference")
        registry = PluginRegistry()
    settings = Settings(models_dir=str(root / "models"), data_dir=str(root / "data"), rate_limit=False)
    with TestClient(create_app(settings, registry), base_url="http://127.0.0.1:8080") as client:
        yield client


def test_parse_command_without_the_backend_lists_what_it_cannot_take(client: TestClient[Any]) -> None:
    reply = client.post(
        "/api/v1/backends/llama-cpp/parse-command",
        json={"command": "llama-server -m m.gguf -c 4096 -np 4 --mlock --no-mmap -fa on --api-key secret"},
    )
    assert reply.status_code == 200, reply.text
    options = reply.json()
    assert options["backend_options"] == {"model": "m.gguf", "context_size": 4096}
    assert options["parallel"] == 4
    ignored = "\n".join(options["ignored_flags"])
    assert "mlock: the llama-cpp backend is not installed" in ignored and "flash_attn" in ignored
    assert "--api-key: kernai serves every model on its own host and port" in ignored
    assert "secret" not in reply.text
    created = client.post("/api/v1/instances/parsed", json=options)
    assert created.status_code == 400 and "unknown backend 'llama-cpp'" in created.json()["error"]
    as_llamactl_names_it = client.post(
        "/api/v1/instances/parsed", json={**options, "backend_type": "llama_cpp"}
    )
    assert "unknown backend 'llama-cpp'" in as_llamactl_names_it.json()["error"]


@pytest.mark.parametrize("route", ["help", "version", "devices"])
def test_the_facts_of_a_backend_that_is_not_installed_are_a_404(client: TestClient[Any], route: str) -> None:
    for prefix in ("/api/v1/backends/llama-cpp", "/api/v1/server"):
        reply = client.get(f"{prefix}/{route}")
        assert reply.status_code == 404
        assert reply.json() == {
            "error": "The llama-cpp backend is not installed (kernai backends install llama-cpp)"
        }
