"""llama-server's routes of an instance on the real gemma-3-270m: the native completion says what the
OpenAI completion says, the props and tokens are gemma's, and a model chatting through a named
chat_format has no Jinja template to apply."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.slow


def test_gemma_through_llama_servers_routes(http: httpx.Client, gemma: str) -> None:
    prompt = "The capital of France is"
    openai = http.post("/v1/completions", json={"model": gemma, "prompt": prompt, "max_tokens": 8}).json()
    native = http.post(f"/llama-cpp/{gemma}/completion", json={"prompt": prompt, "n_predict": 8})
    assert native.status_code == 200, native.text
    answer = native.json()
    assert answer["content"] == openai["choices"][0]["text"]  # temperature 0 in gemma's config
    assert answer["tokens_evaluated"] == openai["usage"]["prompt_tokens"]
    assert answer["tokens_predicted"] == openai["usage"]["completion_tokens"]
    assert answer["timings"]["predicted_per_second"] > 0

    tokens = http.post(f"/llama-cpp/{gemma}/tokenize", json={"content": prompt, "add_special": True}).json()
    assert tokens["tokens"][0] == 2  # gemma's <bos>
    text = http.post(f"/llama-cpp/{gemma}/detokenize", json={"tokens": tokens["tokens"][1:]}).json()
    assert text["content"].strip() == prompt

    props = http.get(f"/llama-cpp/{gemma}/props").json()
    assert props["n_ctx"] == 2048 and props["model_path"] == "gemma-3-270m-q4_k_m.gguf"
    assert props["chat_template"] == ""  # the GGUF has none; the config names chat_format gemma
    template = http.post(
        f"/llama-cpp/{gemma}/apply-template", json={"messages": [{"role": "user", "content": "hi"}]}
    )  # rendered in the worker by the named chat_format
    assert template.json()["prompt"] == "<start_of_turn>user\nhi<end_of_turn>\n<start_of_turn>model\n"
