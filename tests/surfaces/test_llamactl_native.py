"""llamactl's llama-cpp routes on a real server and the tiny random llama: parse-command (and creating the
instance it describes), and llama-server's own routes under ``/llama-cpp/{name}/``, with their errors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer, ServerFactory, model_configs

pytest.importorskip("kernai_llama_cpp")

TINY = {"parameters": {"model": "tiny.gguf", "temperature": 0}, "context_size": 256, "threads": 1}
HELLO_PROMPT = "<s><|user|>hello\n<|assistant|>"
"""The tiny model's chat template applied to one user turn, ``hello``."""


@pytest.fixture(scope="module")
def server(kernai_server: ServerFactory) -> KernaiServer:
    from kernai_llama_cpp.testing import shared_tiny_llama

    models = {
        "tiny.gguf": shared_tiny_llama(),
        **model_configs(
            {
                "tiny": TINY,
                "manual": {**TINY, "on_demand_start": False},
                "duo": {**TINY, "parallel": 2},
                "chatml": {**TINY, "chat_format": "chatml"},
            },
            backend="llama-cpp",
        ),
        **model_configs({"echo": {}}, backend="reference"),
    }
    return kernai_server(models, name="llamactl-native", plugins="reference,llama-cpp")


@pytest.fixture()
def http(server: KernaiServer) -> Iterator[httpx.Client]:
    with server.client() as client:
        yield client


def parse(http: httpx.Client, backend: str, command: str) -> httpx.Response:
    return http.post(f"/api/v1/backends/{backend}/parse-command", json={"command": command})


# --- parse-command ---------------------------------------------------------------------------------


def test_a_parsed_llama_server_command_creates_an_instance_that_runs(http: httpx.Client) -> None:
    reply = parse(
        http,
        "llama-cpp",
        "llama-server -m tiny.gguf -c 512 --threads 1 -ngl 99 --temp 0 -n 4 --port 8081 --jinja "
        "--batch-size 64 --fancy-new-flag 3",
    )
    assert reply.status_code == 200, reply.text
    options = reply.json()
    assert options["backend_type"] == "llama-cpp"
    assert options["backend_options"] == {
        "model": "tiny.gguf",
        "context_size": 512,
        "threads": 1,
        "gpu_layers": 99,
        "parameters": {"temperature": 0.0, "max_tokens": 4},
        "batch_size": 64,
    }
    ignored = "\n".join(options["ignored_flags"])
    assert "--port" in ignored and "--jinja" in ignored and "--fancy-new-flag" in ignored

    created = http.post("/api/v1/instances/parsed", json=options)
    assert created.status_code == 201, created.text
    try:
        answer = http.post("/llama-cpp/parsed/completion", json={"prompt": "hello"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["tokens_predicted"] == 4  # -n 4 became the default max_tokens
        assert answer.json()["generation_settings"]["n_ctx"] == 512
    finally:
        assert http.delete("/api/v1/instances/parsed").status_code == 204


def test_shell_quoting_and_the_other_programs(http: httpx.Client) -> None:
    quoted = parse(http, "llama-cpp", "/opt/bin/llama-server --model 'my model.gguf' \\\n  --ctx-size=2048")
    assert quoted.json()["backend_options"] == {"model": "my model.gguf", "context_size": 2048}
    vllm = parse(http, "vllm", "vllm serve org/model --tensor-parallel-size 2 --enforce-eager").json()
    assert vllm["backend_type"] == "vllm"
    assert vllm["backend_options"] == {"model": "org/model", "tensor_parallel_size": 2, "enforce_eager": True}
    mlx = parse(http, "mlx", "mlx_lm.server --model mlx-community/m --port 8080").json()
    assert mlx["backend_type"] == "mlx_lm" and mlx["backend_options"]["model"] == "mlx-community/m"


@pytest.mark.parametrize(
    ("backend", "command", "reason"),
    [
        ("llama-cpp", "", "empty"),
        ("llama-cpp", "   ", "empty"),
        ("llama-cpp", "llama-server -m 'unclosed.gguf", "No closing quotation"),
        ("llama-cpp", "ollama serve", "Expected a llama-server"),
        ("llama-cpp", "llama-server -m m.gguf -c", "-c needs a value"),
        ("llama-cpp", "llama-server -m -c 4", "-m needs a value"),
        ("llama-cpp", "llama-server -c many", "-c expects an integer"),
        ("vllm", "vllm run x", "vllm serve"),
        ("mlx", "llama-server -m x", "Expected a mlx_lm.server"),
    ],
)
def test_a_bad_command_is_a_400_naming_the_problem(
    http: httpx.Client, backend: str, command: str, reason: str
) -> None:
    reply = parse(http, backend, command)
    assert reply.status_code == 400
    assert reason in reply.json()["error"]


# --- llama-server's routes -------------------------------------------------------------------------


def test_completion_answers_as_llama_server(http: httpx.Client) -> None:
    reply = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 5, "n_probs": 2})
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["tokens_predicted"] == 5 and answer["stopped_limit"] is True
    assert answer["stop_type"] == "limit"
    assert not answer["stopped_eos"] and not answer["stopped_word"] and answer["stopping_word"] == ""
    assert answer["tokens_evaluated"] > 0 and answer["prompt"] == "hello"
    timings = answer["timings"]
    assert timings["predicted_n"] == 5 and timings["prompt_n"] == answer["tokens_evaluated"]
    assert timings["predicted_ms"] > 0 and timings["predicted_per_second"] > 0
    settings = answer["generation_settings"]
    assert settings["n_predict"] == 5 and settings["temperature"] == 0
    assert len(answer["completion_probabilities"]) == 5
    assert len(answer["completion_probabilities"][0]["top_logprobs"]) == 2

    nothing = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 0}).json()
    assert nothing["content"] == "" and nothing["tokens_predicted"] == 0 and nothing["stopped_limit"]
    assert nothing["tokens_evaluated"] == answer["tokens_evaluated"]  # the prompt is still counted


def test_a_token_id_prompt_is_evaluated_as_it_is(http: httpx.Client) -> None:
    as_text = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 5}).json()
    tokenize = {"content": "hello", "add_special": True}
    ids = http.post("/llama-cpp/tiny/tokenize", json=tokenize).json()["tokens"]  # BOS and the text
    by_ids = http.post("/llama-cpp/tiny/completion", json={"prompt": ids, "n_predict": 5}).json()
    assert by_ids["tokens_evaluated"] == len(ids) == as_text["tokens_evaluated"]
    assert by_ids["content"] == as_text["content"]  # temperature 0: the same tokens give the same text
    assert by_ids["prompt"].strip() == "hello"  # the answer shows the ids' text
    bare = ids[1:]  # without BOS, which a text prompt always gets: kept as sent, as llama-server does
    without_bos = http.post("/llama-cpp/tiny/completion", json={"prompt": bare, "n_predict": 5}).json()
    assert without_bos["tokens_evaluated"] == len(bare)
    counted = http.post("/llama-cpp/tiny/completion", json={"prompt": bare, "n_predict": 0}).json()
    assert counted["tokens_evaluated"] == len(bare)
    streamed = {"prompt": ids, "n_predict": 5, "stream": True}
    with http.stream("POST", "/llama-cpp/tiny/completion", json=streamed) as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert "".join(e["content"] for e in events) == as_text["content"]
    assert events[-1]["tokens_evaluated"] == len(ids)
    assert http.post("/llama-cpp/tiny/completion", json={"prompt": [1, 10**6]}).status_code == 400


def test_completion_streams_as_llama_server(http: httpx.Client) -> None:
    whole = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 6}).json()
    with http.stream(
        "POST", "/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 6, "stream": True}
    ) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert all(not event["stop"] for event in events[:-1]) and events[-1]["stop"] is True
    assert "".join(event["content"] for event in events) == whole["content"]
    assert events[-1]["tokens_predicted"] == 6 and events[-1]["timings"]["predicted_n"] == 6


def test_a_stop_string_ends_a_completion_as_a_stopped_word(http: httpx.Client) -> None:
    whole = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 12}).json()
    stop = whole["content"][3:5]  # temperature 0: the same prompt writes the same text up to the stop
    assert len(stop) == 2, whole
    body = {"prompt": "hello", "n_predict": 12, "stop": ["never written", stop]}
    answer = http.post("/llama-cpp/tiny/completion", json=body).json()
    assert answer["content"] == whole["content"][: whole["content"].index(stop)]
    assert answer["stopped_word"] is True and answer["stopping_word"] == stop
    assert answer["stop_type"] == "word" and not answer["stopped_eos"] and not answer["stopped_limit"]
    with http.stream("POST", "/llama-cpp/tiny/completion", json={**body, "stream": True}) as stream:
        events = [json.loads(line[6:]) for line in stream.iter_lines() if line.startswith("data: ")]
    assert "".join(event["content"] for event in events) == answer["content"]
    assert events[-1]["stopped_word"] is True and events[-1]["stopping_word"] == stop


def test_tokenize_detokenize_and_apply_template(http: httpx.Client) -> None:
    plain = http.post("/llama-cpp/tiny/tokenize", json={"content": "hi there"}).json()["tokens"]
    special = http.post("/llama-cpp/tiny/tokenize", json={"content": "hi there", "add_special": True}).json()
    assert special["tokens"] == [1, *plain]  # llama-server adds BOS only when asked
    pieces = http.post("/llama-cpp/tiny/tokenize", json={"content": "hi there", "with_pieces": True}).json()
    assert [piece["id"] for piece in pieces["tokens"]] == plain
    assert "".join(piece["piece"] for piece in pieces["tokens"]).strip() == "hi there"
    text = http.post("/llama-cpp/tiny/detokenize", json={"tokens": plain}).json()["content"]
    assert text.strip() == "hi there"
    template = http.post(
        "/llama-cpp/tiny/apply-template", json={"messages": [{"role": "user", "content": "hello"}]}
    )
    assert template.status_code == 200, template.text
    assert template.json() == {"prompt": HELLO_PROMPT}


def test_apply_template_renders_as_chat_does(http: httpx.Client) -> None:
    """The model's worker renders the messages with its own formatter: a Jinja template or a named
    chat_format, with kernai's tool prompt, exactly what a chat request is generated from."""
    hello = [{"role": "user", "content": "hello"}]
    bare = http.post(
        "/llama-cpp/tiny/apply-template", json={"messages": hello, "add_generation_prompt": False}
    )
    assert bare.json() == {"prompt": "<s><|user|>hello\n"}
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    with_tools = http.post("/llama-cpp/tiny/apply-template", json={"messages": hello, "tools": [tool]}).json()
    assert with_tools["prompt"].startswith('<s><|system|>You can call these tools:\n{"name":"lookup"')
    assert with_tools["prompt"].endswith(HELLO_PROMPT.removeprefix("<s>"))
    named = http.post("/llama-cpp/chatml/apply-template", json={"messages": hello})
    assert named.status_code == 200, named.text
    chatml = "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    assert named.json() == {"prompt": chatml}  # llama-cpp-python's chatml writes an empty system turn
    chat = http.post("/v1/chat/completions", json={"model": "chatml", "messages": hello, "max_tokens": 1})
    tokens = http.post(
        "/llama-cpp/chatml/tokenize", json={"content": named.json()["prompt"], "add_special": True}
    )
    assert chat.json()["usage"]["prompt_tokens"] == len(tokens.json()["tokens"])
    always = http.post(
        "/llama-cpp/chatml/apply-template", json={"messages": hello, "add_generation_prompt": False}
    )
    assert always.status_code == 400 and "generation prompt" in errors(always)["message"]
    odd = http.post("/llama-cpp/tiny/apply-template", json={"messages": [{"role": "wizard", "content": "x"}]})
    assert odd.status_code == 400 and "wizard" in errors(odd)["message"]
    echo = http.post("/llama-cpp/echo/apply-template", json={"messages": hello})
    assert echo.status_code == 400 and "not llama-cpp" in errors(echo)["message"]


@pytest.mark.slow
def test_apply_template_renders_gemmas_named_format(surfaces_server: KernaiServer, gemma: str) -> None:
    messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hello"}]
    with surfaces_server.client() as client:
        reply = client.post(f"/llama-cpp/{gemma}/apply-template", json={"messages": messages})
        assert reply.status_code == 200, reply.text
        prompt = reply.json()["prompt"]
        chat = client.post(
            "/v1/chat/completions", json={"model": gemma, "messages": messages, "max_tokens": 1}
        )
        tokens = client.post(f"/llama-cpp/{gemma}/tokenize", json={"content": prompt, "add_special": True})
    # gemma has no system turn: the system text opens the user's
    assert prompt == "<start_of_turn>user\nBe brief.\n\nhello<end_of_turn>\n<start_of_turn>model\n"
    assert chat.json()["usage"]["prompt_tokens"] == len(tokens.json()["tokens"])


def test_infill(http: httpx.Client) -> None:
    body = {
        "input_extra": [{"filename": "util.py", "text": "X = 1"}],
        "input_prefix": "def f(",
        "input_suffix": "):",
        "n_predict": 3,
    }
    reply = http.post("/llama-cpp/tiny/infill", json=body)
    assert reply.status_code == 200, reply.text
    assert reply.json()["tokens_predicted"] == 3 and reply.json()["prompt"] == "util.py\nX = 1\ndef f("
    assert http.post("/llama-cpp/tiny/infill", json={**body, "n_predict": "x"}).status_code == 400


def test_embeddings(http: httpx.Client) -> None:
    reply = http.post("/llama-cpp/tiny/embeddings", json={"content": ["a b", "c"]})
    assert reply.status_code == 200, reply.text
    items = reply.json()
    assert [item["index"] for item in items] == [0, 1]
    assert len(items[0]["embedding"]) == 1 and len(items[0]["embedding"][0]) == 64  # the tiny model's width


def test_props_slots_metrics_and_the_page(http: httpx.Client) -> None:
    http.post("/llama-cpp/tiny/completion", json={"prompt": "count me", "n_predict": 3})
    props = http.get("/llama-cpp/tiny/props")
    assert props.status_code == 200, props.text
    facts = props.json()
    assert facts["n_ctx"] == 256 and facts["default_generation_settings"]["n_ctx"] == 256
    assert facts["total_slots"] >= 1 and facts["model_path"] == "tiny.gguf"
    assert facts["chat_template"].startswith("{{ bos_token }}")
    slots = http.get("/llama-cpp/tiny/slots").json()
    assert len(slots) == facts["total_slots"] and slots[0]["n_ctx"] == 256
    assert slots[0]["is_processing"] is False
    metrics = http.get("/llama-cpp/tiny/metrics")
    assert metrics.status_code == 200 and metrics.headers["content-type"].startswith("text/plain")
    rows = [line.split() for line in metrics.text.splitlines() if not line.startswith("#")]
    counted = {name: float(value) for name, value in rows}
    assert counted["llamacpp:tokens_predicted_total"] >= 3 and counted["llamacpp:prompt_tokens_total"] > 0
    page = http.get("/llama-cpp/tiny/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "tiny" in page.text
    proxy_root = http.get("/api/v1/instances/tiny/proxy")
    assert proxy_root.status_code == 200 and "tiny" in proxy_root.text
    assert http.get("/api/v1/instances/ghost/proxy").json() == {"error": "The model 'ghost' does not exist"}


def test_the_instance_proxy_runs_llama_servers_own_routes(http: httpx.Client) -> None:
    """llamactl's documented example: ``POST .../proxy/completion`` reaches the instance's llama-server."""
    direct = http.post("/llama-cpp/tiny/completion", json={"prompt": "hello", "n_predict": 4}).json()
    proxied = http.post("/api/v1/instances/tiny/proxy/completion", json={"prompt": "hello", "n_predict": 4})
    assert proxied.status_code == 200, proxied.text
    assert proxied.json()["content"] == direct["content"] and proxied.json()["tokens_predicted"] == 4
    assert http.get("/api/v1/instances/tiny/proxy/props").json()["n_ctx"] == 256


def test_slots_are_the_engines_own(http: httpx.Client) -> None:
    """With continuous batching, ``parallel: 2`` is two slots of the context; a stream occupies one."""
    assert http.get("/llama-cpp/duo/props").json()["total_slots"] == 2
    body = {"prompt": "a long answer", "n_predict": 200, "stream": True}
    with http.stream("POST", "/llama-cpp/duo/completion", json=body) as stream:
        lines = stream.iter_lines()
        next(line for line in lines if line.startswith("data: "))
        busy = http.get("/llama-cpp/duo/slots").json()
        for _ in lines:
            pass
    assert [slot["id"] for slot in busy] == [0, 1]
    processing = [slot for slot in busy if slot["is_processing"]]
    assert len(processing) == 1 and processing[0]["prompt_tokens"] > 0
    reported = http.get("/backend/monitor", params={"model": "duo"}).json()["status"]["slots"]
    assert [slot["n_ctx"] for slot in busy] == [slot["n_ctx"] for slot in reported]
    idle = http.get("/llama-cpp/duo/slots").json()
    assert not any(slot["is_processing"] for slot in idle)


def errors(reply: httpx.Response) -> dict[str, Any]:
    body = reply.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "type"}, body
    assert body["error"]["code"] == reply.status_code
    return dict(body["error"])


def test_errors_in_llama_servers_shape(http: httpx.Client) -> None:
    assert http.post("/llama-cpp/ghost/completion", json={"prompt": "x"}).status_code == 404
    errors(http.post("/llama-cpp/ghost/completion", json={"prompt": "x"}))
    wrong = http.post("/llama-cpp/echo/completion", json={"prompt": "x"})
    assert wrong.status_code == 400 and "not llama-cpp" in errors(wrong)["message"]
    assert http.get("/llama-cpp/echo/props").status_code == 400
    stopped = http.post("/llama-cpp/manual/completion", json={"prompt": "x", "n_predict": 2})
    assert stopped.status_code == 503, stopped.text
    errors(stopped)
    assert http.get("/llama-cpp/manual/slots").status_code == 503
    assert http.post("/llama-cpp/tiny/completion", json={"n_predict": 2}).status_code == 400
    assert errors(http.post("/llama-cpp/tiny/completion", json={"prompt": "x", "n_probs": -1}))["code"] == 400
    assert http.post("/llama-cpp/tiny/detokenize", json={"tokens": [10**9]}).status_code == 400
    assert http.post("/llama-cpp/tiny/embeddings", json={}).status_code == 400
    rerank = http.post("/llama-cpp/tiny/reranking", json={"query": "q", "documents": ["a"]})
    assert rerank.status_code == 400 and "rerank" in errors(rerank)["message"]
    changed = http.post("/llama-cpp/tiny/props", json={"default_generation_settings": {}})
    assert changed.status_code == 501 and "--props" in errors(changed)["message"]


# --- backend facts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("prefix", ["/api/v1/backends/llama-cpp", "/api/v1/server"])
def test_help_version_and_devices_of_the_llama_cpp_backend(http: httpx.Client, prefix: str) -> None:
    import llama_cpp  # the test may import the engine; the server reads it in a subprocess

    help_text = http.get(f"{prefix}/help")
    assert help_text.status_code == 200 and help_text.headers["content-type"].startswith("text/plain")
    assert "  batch_size (integer, default 512, 1 to 2147483647): " in help_text.text
    assert (
        "  context_size (integer, 0 to 2147483647): " in help_text.text
        and "  -c, --ctx-size -> context_size" in help_text.text
    )
    assert "  parameters.temperature (number, 0 to 2): " in help_text.text
    version = http.get(f"{prefix}/version")
    assert version.status_code == 200, version.text
    assert f"llama-cpp-python {llama_cpp.__version__}\n" in version.text and "\nbuild: " in version.text
    facts = http.get(f"{prefix}/version", params={"format": "json"}).json()
    assert facts["versions"]["llama-cpp-python"] == llama_cpp.__version__ and "ggml" in facts["versions"]
    assert facts["build"]["gpu_offload"] == str(int(llama_cpp.llama_supports_gpu_offload()))
    devices = http.get(f"{prefix}/devices", params={"format": "json"}).json()
    cpu = next(device for device in devices if device["type"] == "cpu")
    assert cpu["name"] == "CPU" and cpu["memory_total"] > 0
    listed = http.get(f"{prefix}/devices").text
    assert listed.startswith("Available devices:\n  CPU: ") and "MiB free)" in listed
    assert http.get(f"{prefix}/devices", params={"format": "yaml"}).status_code == 400
