"""A model config's numbers out of range are refused the same way however the config is written: a YAML
file at start (the model in error, the file and key named), llamactl's instances and LocalAI's config-json
(a 400 naming the field, nothing written). Nothing here starts a worker."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

from tests.app.test_app import app_client

OUT_OF_RANGE = {
    "hot.yaml": "name: hot\nbackend: reference\nparameters:\n  temperature: 9\n",
    "negative-context.yaml": "name: negative-context\nbackend: reference\ncontext_size: -5\n",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bounds")
    (root / "models").mkdir()
    for name, text in OUT_OF_RANGE.items():
        (root / "models" / name).write_text(text)
    return root


@pytest.fixture(scope="module")
def client(root: Path) -> Iterator[TestClient[Any]]:
    with app_client(root, rate_limit=False) as running:
        yield running


def test_a_yaml_file_out_of_range_puts_its_model_in_error_naming_the_file_and_key(
    client: TestClient[Any],
) -> None:
    models = {model["id"]: model for model in client.get("/v1/models").json()["data"]}
    for name, where in (
        ("hot", "hot.yaml: parameters.temperature: Expected `float` <= 2.0"),
        ("negative-context", "negative-context.yaml: context_size: Expected `int` >= 0"),
    ):
        status = models[name]["status"]
        assert status["state"] == "error" and where in status["error"], (name, status)
    assert models["echo"]["status"]["state"] == "uninitialized"  # the others still serve


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"idle_timeout": -1}, "idle_timeout"),
        ({"restart_delay": -0.5}, "restart_delay"),
        ({"max_restarts": -1}, "max_restarts"),
        ({"parallel": 0}, "parallel"),
        ({"backend_options": {"context_size": -5}}, "context_size"),
        ({"backend_options": {"threads": -1}}, "threads"),
        ({"backend_options": {"gpu_layers": -2}}, "gpu_layers"),
        ({"backend_options": {"parameters": {"temperature": 9}}}, "parameters.temperature"),
        ({"backend_options": {"parameters": {"top_p": 1.5}}}, "parameters.top_p"),
        ({"backend_options": {"parameters": {"presence_penalty": -3}}}, "parameters.presence_penalty"),
        ({"backend_options": {"parameters": {"max_tokens": 0}}}, "parameters.max_tokens"),
        ({"backend_options": {"delay": -1}}, "delay: expected at least 0"),  # the backend's own option
        ({"backend_options": {"dimensions": 0}}, "dimensions: expected at least 1"),
    ],
)
def test_an_instance_out_of_range_is_a_400_naming_the_field_and_nothing_is_stored(
    client: TestClient[Any], options: dict[str, Any], param: str
) -> None:
    body = {"backend_type": "reference", **options}
    created = client.post("/api/v1/instances/bounded", json=body)
    assert created.status_code == 400, created.text
    assert param in created.json()["error"], created.json()
    assert client.get("/api/v1/instances/bounded").status_code == 404

    good = {"backend_type": "reference", "idle_timeout": 2}
    assert client.post("/api/v1/instances/kept", json=good).status_code in (201, 409)
    replaced = client.put("/api/v1/instances/kept", json=body)
    assert replaced.status_code == 400, replaced.text
    assert param in replaced.json()["error"], replaced.json()
    assert client.get("/api/v1/instances/kept").json()["options"]["idle_timeout"] == 2


@pytest.mark.parametrize(
    ("patch", "param"),
    [
        ({"context_size": -5}, "context_size"),
        ({"parameters": {"temperature": 9}}, "parameters.temperature"),
        ({"parameters": {"frequency_penalty": 2.5}}, "parameters.frequency_penalty"),
        ({"parameters": {"min_p": -0.1}}, "parameters.min_p"),
        ({"idle_timeout": -60}, "idle_timeout"),
    ],
)
def test_config_json_out_of_range_is_a_400_naming_the_field_and_the_file_is_unchanged(
    client: TestClient[Any], root: Path, patch: dict[str, Any], param: str
) -> None:
    path = root / "models" / "echo.yaml"
    before = path.read_bytes()
    response = client.patch("/api/models/config-json/echo", json=patch)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and f"echo.yaml: {param}: Expected" in error["message"], error
    assert path.read_bytes() == before


def test_values_at_the_bounds_are_accepted(client: TestClient[Any], root: Path) -> None:
    patch = {
        "context_size": 0,
        "threads": 0,
        "gpu_layers": -1,
        "idle_timeout": 0,
        "parameters": {"temperature": 2, "top_p": 1, "presence_penalty": -2, "seed": -1, "top_k": 0},
    }
    response = client.patch("/api/models/config-json/echo", json=patch)
    assert response.status_code == 200, response.text
    assert "temperature: 2" in (root / "models" / "echo.yaml").read_text()


def test_config_metadata_gives_each_keys_bounds(client: TestClient[Any]) -> None:
    fields = client.get("/api/models/config-metadata", params={"section": "all"}).json()["fields"]
    bounds = {f["path"]: (f.get("minimum"), f.get("maximum")) for f in fields}
    assert bounds["parameters.temperature"] == (0, 2)
    assert bounds["context_size"] == (0, 2**31 - 1)
    assert bounds["delay"] == (0, None) and bounds["dimensions"] == (1, 65536)  # the reference backend's
    assert bounds["description"] == (None, None)
