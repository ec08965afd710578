"""LocalAI's model-configuration and metrics routes on a real server with the tiny random llama: config-json
editing, config-metadata and its autocomplete providers, token metrics, the API instructions."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from kernai.testing import KernaiServer, ServerFactory, model_configs

pytest.importorskip("kernai_llama_cpp")

TINY = {"parameters": {"model": "tiny.gguf", "temperature": 0}, "context_size": 256, "threads": 1}


@pytest.fixture(scope="module")
def server(kernai_server: ServerFactory) -> KernaiServer:
    from kernai_llama_cpp.testing import shared_tiny_llama

    models = {
        "tiny.gguf": shared_tiny_llama(),
        **model_configs({"tiny": TINY, "edited": TINY}, backend="llama-cpp"),
        **model_configs({"echo": {}, "slow-echo": {"delay": 0.05}}, backend="reference"),
    }
    return kernai_server(models, name="localai-management", plugins="reference,llama-cpp")


@pytest.fixture()
def http(server: KernaiServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def worker_pid(http: httpx.Client, model: str) -> int | None:
    pid = http.get("/backend/monitor", params={"model": model}).json().get("pid")
    return int(pid) if pid is not None else None


# --- PATCH /api/models/config-json/{name} ----------------------------------------------------------


def test_a_patch_deep_merges_into_the_yaml_and_restarts_only_for_keys_the_worker_uses(
    http: httpx.Client, server: KernaiServer
) -> None:
    path = server.models_dir / "edited.yaml"
    assert (
        http.post("/v1/completions", json={"model": "edited", "prompt": "a", "max_tokens": 1}).status_code
        == 200
    )
    first = worker_pid(http, "edited")
    assert first is not None

    described = http.patch("/api/models/config-json/edited", json={"description": "a tiny model"})
    assert described.status_code == 200, described.text
    assert described.json()["success"] is True and described.json()["restarted"] is False
    assert worker_pid(http, "edited") == first  # a description is not something the worker uses
    saved = yaml.safe_load(path.read_text())
    assert saved["description"] == "a tiny model" and saved["parameters"]["model"] == "tiny.gguf"

    tuned = http.patch("/api/models/config-json/edited", json={"parameters": {"max_tokens": 3}})
    assert tuned.status_code == 200, tuned.text
    saved = yaml.safe_load(path.read_text())
    assert saved["parameters"] == {
        "model": "tiny.gguf",
        "temperature": 0,
        "max_tokens": 3,
    }  # merged, not replaced
    assert tuned.json()["restarted"] is True
    second = worker_pid(http, "edited")
    assert second is not None and second != first
    answer = http.post("/v1/completions", json={"model": "edited", "prompt": "a"}).json()
    assert answer["usage"]["completion_tokens"] == 3  # the new default applies

    removed = http.patch("/api/models/config-json/edited", json={"description": None})
    assert removed.status_code == 200 and "description" not in yaml.safe_load(path.read_text())


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"context_size": "big"}, "context_size"),
        ({"nonsense": 1}, "nonsense"),
        ({"parameters": {"model": "../../etc/passwd"}}, "parameters.model"),
        ({"backend": "no-such-backend"}, "backend"),
        ({"batch_size": "many"}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"threads_batch": -1}, "threads_batch"),
        ({"name": "renamed"}, "name"),
    ],
)
def test_an_invalid_patch_is_a_400_naming_the_key_and_leaves_the_file_alone(
    http: httpx.Client, server: KernaiServer, patch: dict[str, object], field: str
) -> None:
    path = server.models_dir / "tiny.yaml"
    before = path.read_bytes()
    reply = http.patch("/api/models/config-json/tiny", json=patch)
    assert reply.status_code == 400, reply.text
    error = reply.json()["error"]
    assert error["param"] == field, error
    assert path.read_bytes() == before
    assert [p.name for p in server.models_dir.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_patch_errors(http: httpx.Client) -> None:
    assert http.patch("/api/models/config-json/ghost", json={"description": "x"}).status_code == 404
    assert http.patch("/api/models/config-json/tiny", content=b"[1, 2]").status_code == 400
    assert http.patch("/api/models/config-json/tiny", content=b"{not json").status_code == 400


def test_an_instance_is_edited_the_same_way(http: httpx.Client) -> None:
    options = {"backend_type": "llama-cpp", "backend_options": {"model": "tiny.gguf", "context_size": 128}}
    assert http.post("/api/v1/instances/patched", json=options).status_code == 201
    try:
        reply = http.patch(
            "/api/models/config-json/patched", json={"context_size": 192, "parameters": {"seed": 4}}
        )
        assert reply.status_code == 200, reply.text
        instance = http.get("/api/v1/instances/patched").json()
        assert instance["source"] == "instance"
        assert instance["options"]["backend_options"]["context_size"] == 192
        assert instance["options"]["backend_options"]["parameters"] == {"model": "tiny.gguf", "seed": 4}
        assert http.patch("/api/models/config-json/patched", json={"threads": -3.5}).status_code == 400
    finally:
        http.delete("/api/v1/instances/patched")


# --- config-metadata ---------------------------------------------------------------------------------


def test_config_metadata_is_generated_from_the_config_and_the_backends(http: httpx.Client) -> None:
    index = http.get("/api/models/config-metadata").json()
    assert {s["id"] for s in index["sections"]} == {"general", "llm", "parameters", "lifecycle"}
    llm = http.get("/api/models/config-metadata", params={"section": "llm"}).json()["fields"]
    by_path = {f["path"]: f for f in llm}
    assert by_path["context_size"]["type"] == "integer" and by_path["context_size"]["description"]
    assert "backend" not in by_path["context_size"]  # every model has it
    assert by_path["batch_size"] == {
        "path": "batch_size",
        "type": "integer",
        "section": "llm",
        "description": by_path["batch_size"]["description"],
        "default": 512,
        "minimum": 1,
        "maximum": 2**31 - 1,
        "backend": "llama-cpp",
    }
    assert by_path["pooling"]["choices"] == ["mean", "cls", "last"]
    parameters = http.get("/api/models/config-metadata", params={"section": "parameters"}).json()["fields"]
    assert {f["path"] for f in parameters} >= {
        "parameters.model",
        "parameters.temperature",
        "parameters.seed",
    }
    everything = http.get("/api/models/config-metadata", params={"section": "all"}).json()["fields"]
    assert {f["section"] for f in everything} == {"general", "llm", "parameters", "lifecycle"}
    backend = next(f for f in everything if f["path"] == "backend")
    assert backend["autocomplete"] == "backends"
    bad = http.get("/api/models/config-metadata", params={"section": "nope"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "section"


def test_autocomplete_providers(http: httpx.Client) -> None:
    def values(provider: str) -> list[str]:
        reply = http.get(f"/api/models/config-metadata/autocomplete/{provider}")
        assert reply.status_code == 200, reply.text
        return list(reply.json()["values"])

    assert {"llama-cpp", "reference"} <= set(values("backends"))
    assert {"tiny", "edited", "echo"} <= set(values("models"))
    assert {"tiny", "edited"} <= set(values("models:chat"))
    assert "tiny" in values("models:embeddings") and "tiny" not in values("models:tts")
    assert "tiny" in values("models:apply_template") and "echo" not in values("models:apply_template")
    assert values("models:transcript") == [] and values("models:vad") == []
    assert http.get("/api/models/config-metadata/autocomplete/nope").status_code == 404


# --- token metrics ----------------------------------------------------------------------------------


def test_token_metrics_of_the_last_and_active_requests(http: httpx.Client) -> None:
    body = {"model": "tiny", "prompt": "count", "max_tokens": 5, "temperature": 0}
    usage = http.post("/v1/completions", json=body).json()["usage"]
    with http.stream("POST", "/v1/completions", json={**body, "stream": True}) as stream:
        assert stream.status_code == 200
        stream.read()
    metrics = http.get("/tokenMetrics", params={"model": "tiny"})
    assert metrics.status_code == 200, metrics.text
    tiny = metrics.json()["tiny"]
    last = tiny["last"]
    assert last["capability"] == "completion"
    assert last["prompt_tokens"] == usage["prompt_tokens"] and last["generated_tokens"] == 5
    assert last["time_to_first_token_ms"] > 0 and last["tokens_per_second"] > 0 and last["duration_ms"] > 0
    assert tiny["requests"] >= 2 and tiny["generated_tokens"] >= 10 and tiny["active"] == []
    everything = http.get("/v1/tokenMetrics").json()
    assert {"tiny", "edited", "echo"} <= set(everything) and everything["tiny"]["requests"] == tiny[
        "requests"
    ]
    by_body = http.request("GET", "/tokenMetrics", json={"model": "tiny"}).json()  # LocalAI sends a body
    assert set(by_body) == {"tiny"}
    assert http.get("/tokenMetrics", params={"model": "ghost"}).status_code == 404


def test_token_metrics_show_a_request_in_flight(http: httpx.Client) -> None:
    body = {
        "model": "slow-echo",
        "messages": [{"role": "user", "content": " ".join(["w"] * 40)}],
        "stream": True,
    }
    with http.stream("POST", "/v1/chat/completions", json=body) as stream:
        lines = stream.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        active = http.get("/tokenMetrics", params={"model": "slow-echo"}).json()["slow-echo"]["active"]
        for _ in lines:
            pass
    assert len(active) == 1 and active[0]["capability"] == "chat" and active[0]["generated_tokens"] >= 1
    assert active[0]["time_to_first_token_ms"] is not None


# --- API instructions -------------------------------------------------------------------------------


def test_api_instructions_are_generated_from_the_openapi_document(http: httpx.Client) -> None:
    index = http.get("/api/instructions").json()
    names = {area["name"]: area for area in index["instructions"]}
    assert {"localai", "llamactl", "llama-cpp", "openai"} <= set(names)
    assert (
        names["llama-cpp"]["url"] == "/api/instructions/llama-cpp" and names["llama-cpp"]["operations"] >= 12
    )
    guide = http.get("/api/instructions/llama-cpp")
    assert guide.status_code == 200 and guide.headers["content-type"].startswith("text/markdown")
    assert "## POST /llama-cpp/{name}/completion" in guide.text
    assert "- `prompt` (" in guide.text and "curl -X POST http://" in guide.text
    fragment = http.get("/api/instructions/localai", params={"format": "json"}).json()
    assert fragment["name"] == "localai" and fragment["tags"] == ["localai"]
    assert "/api/models/config-json/{name}" in fragment["swagger_fragment"]["paths"]
    schemas = fragment["swagger_fragment"]["components"]["schemas"]
    assert all(ref.rsplit("/", 1)[-1] in schemas for ref in _refs(fragment["swagger_fragment"]["paths"]))
    missing = http.get("/api/instructions/nope")
    assert missing.status_code == 404 and "error" in missing.json()
    assert http.get("/api/instructions/localai", params={"format": "xml"}).status_code == 400


def _refs(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["$ref"]] if isinstance(value.get("$ref"), str) else []
        return found + [ref for item in value.values() for ref in _refs(item)]
    if isinstance(value, list):
        return [ref for item in value for ref in _refs(item)]
    return []


# --- VRAM estimate (gemma against llama.cpp's own buffers: test_vram_estimate.py) ------------------


def test_vram_estimate_of_the_tiny_model_and_its_errors(http: httpx.Client) -> None:
    reply = http.post("/api/models/vram-estimate", json={"model": "tiny", "context_size": 256})
    assert reply.status_code == 200, reply.text
    tiny = reply.json()
    # 2 layers x 256 cells x 4 KV heads x (16 + 16) x 2 bytes; 533 760 bytes of F32 tensors
    assert tiny["kvCacheBytes"] == 2 * 256 * 4 * 32 * 2 and tiny["sizeBytes"] == 533760
    assert tiny["model_max_context"] == 1024 and tiny["sizeDisplay"] == "533.8 KB"
    assert tiny["vramBytes"] == tiny["weightsVramBytes"] + tiny["kvCacheBytes"] + tiny["computeBytes"]
    assert http.post("/api/models/vram-estimate", json={"model": "ghost"}).status_code == 404
    no_file = http.post("/api/models/vram-estimate", json={"model": "echo"})
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "model"
    bits = http.post("/api/models/vram-estimate", json={"model": "tiny", "kv_quant_bits": 5})
    assert bits.status_code == 400 and bits.json()["error"]["param"] == "kv_quant_bits"
    assert (
        http.post("/api/models/vram-estimate", json={"model": "tiny", "context_size": 0}).status_code == 400
    )
    assert http.post("/api/models/vram-estimate", json={}).status_code == 400
