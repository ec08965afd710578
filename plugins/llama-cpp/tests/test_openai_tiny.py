"""Every OpenAI parameter path through HTTP, on the tiny random-weight model (exact, fast checks).

The model's output is meaningless but deterministic at temperature 0, so each parameter is
checked by what it must change: a stop string cuts the greedy text where it occurs, a grammar
confines it, a bias forces a token, a seed repeats a sampled text.
"""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path
from typing import Any

import httpx
import pytest

from kernai_llama_cpp.options import default_threads
from kernai_llama_cpp.testing import shared_tiny_llama

HELLO = [{"role": "user", "content": "hello"}]


def chat(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/chat/completions", json={"model": "tiny", "messages": HELLO, **body})
    assert response.status_code == 200, response.text
    return response.json()


def complete(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/completions", json={"model": "tiny", "prompt": "once upon a time", **body})
    assert response.status_code == 200, response.text
    return response.json()


def sse(response: httpx.Response) -> list[Any]:
    """The decoded events of an SSE body, with ``[DONE]`` kept as a string."""
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [line[len("data: ") :] for line in response.text.splitlines() if line.startswith("data: ")]
    return [event if event == "[DONE]" else json.loads(event) for event in events]


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


# --- chat ------------------------------------------------------------------------------------------


def test_chat_greedy_is_deterministic_and_counts_tokens(client: httpx.Client) -> None:
    first = chat(client, max_tokens=12, temperature=0)
    second = chat(client, max_completion_tokens=12, temperature=0, top_k=1, min_p=0.0, repeat_penalty=1.0)
    assert first["object"] == "chat.completion"
    choice = first["choices"][0]
    assert choice["message"]["role"] == "assistant" and choice["message"]["content"]
    assert choice["message"]["content"] == second["choices"][0]["message"]["content"]
    assert choice["finish_reason"] == "length"
    usage = first["usage"]
    assert usage["completion_tokens"] == 12
    assert usage["total_tokens"] == usage["prompt_tokens"] + 12
    # the prompt is the GGUF's Jinja template applied to the messages
    rendered = client.post(
        "/v1/tokenize",
        json={"model": "tiny", "content": "<s><|user|>hello\n<|assistant|>", "add_special": False},
    ).json()["tokens"]
    assert usage["prompt_tokens"] == len(rendered)


def test_chat_content_parts_and_all_roles(client: httpx.Client) -> None:
    plain = chat(client, max_tokens=6, temperature=0)
    parts = chat(
        client,
        max_tokens=6,
        temperature=0,
        messages=[
            {"role": "user", "content": [{"type": "text", "text": "hel"}, {"type": "text", "text": "lo"}]}
        ],
    )
    assert parts["choices"][0]["message"]["content"] == plain["choices"][0]["message"]["content"]
    image = [
        {
            "role": "user",
            "content": [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AA=="}}],
        }
    ]
    refused = client.post("/v1/chat/completions", json={"model": "tiny", "messages": image})
    assert error_of(refused, 400)["code"] == "not_supported"
    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "sunny"},
        {"role": "user", "content": "thanks"},
    ]
    usage = chat(client, max_tokens=4, messages=conversation)["usage"]
    # every role reaches the template: the call as its JSON text, the result as a tool turn
    rendered = (
        '<s><|system|>be brief\n<|user|>weather?\n<|assistant|>{"name": "get_weather", "arguments": {}}\n'
        "<|tool|>sunny\n<|user|>thanks\n<|assistant|>"
    )
    as_user = rendered.replace("<|tool|>sunny", "<|user|>Result of get_weather: sunny")
    counts = [
        len(
            client.post("/v1/tokenize", json={"model": "tiny", "content": text, "add_special": False}).json()[
                "tokens"
            ]
        )
        for text in (rendered, as_user)
    ]
    assert usage["prompt_tokens"] == counts[0] != counts[1]


def test_stop_cuts_the_greedy_text(client: httpx.Client) -> None:
    full = chat(client, max_tokens=24, temperature=0)["choices"][0]["message"]["content"]
    stop = full[5:8]
    cut = chat(client, max_tokens=24, temperature=0, stop=[stop, "never-there"])["choices"][0]
    assert cut["message"]["content"] == full[: full.index(stop)]
    assert cut["finish_reason"] == "stop"
    assert (
        chat(client, max_tokens=24, temperature=0, stop=stop)["choices"][0]["message"]["content"]
        == full[: full.index(stop)]
    )
    message = client.post(
        "/v1/messages",
        json={  # the backend reports which stop sequence matched
            "model": "tiny",
            "max_tokens": 24,
            "temperature": 0,
            "messages": HELLO,
            "stop_sequences": ["never-there", stop],
        },
    )
    assert message.status_code == 200, message.text
    assert message.json()["stop_reason"] == "stop_sequence" and message.json()["stop_sequence"] == stop


def test_seed_repeats_sampling_and_n_gives_choices(client: httpx.Client) -> None:
    sampled = [
        chat(client, max_tokens=16, temperature=1.5, top_k=0, top_p=1.0, min_p=0.0, seed=seed)
        for seed in (7, 7, 8)
    ]
    texts = [r["choices"][0]["message"]["content"] for r in sampled]
    assert texts[0] == texts[1] and texts[0] != texts[2]
    many = chat(client, max_tokens=8, temperature=1.5, seed=3, n=3)
    assert [c["index"] for c in many["choices"]] == [0, 1, 2]
    assert len({c["message"]["content"] for c in many["choices"]}) > 1
    assert many["usage"]["completion_tokens"] == 24


def test_top_k_top_p_min_p_narrow_sampling_to_the_greedy_token(client: httpx.Client) -> None:
    greedy = chat(client, max_tokens=16, temperature=0)["choices"][0]["message"]["content"]
    hot = {"max_tokens": 16, "temperature": 2.0, "seed": 1}
    assert chat(client, **hot)["choices"][0]["message"]["content"] != greedy
    for narrow in ({"top_k": 1}, {"top_p": 0.0001, "top_k": 0}, {"min_p": 1.0, "top_k": 0}):
        assert chat(client, **hot, **narrow)["choices"][0]["message"]["content"] == greedy, narrow


def test_penalties_change_the_text(client: httpx.Client) -> None:
    base = chat(client, max_tokens=40, temperature=0)["choices"][0]["message"]["content"]
    for penalty in ({"repeat_penalty": 1.8}, {"presence_penalty": 2.0}, {"frequency_penalty": 2.0}):
        assert (
            chat(client, max_tokens=40, temperature=0, **penalty)["choices"][0]["message"]["content"] != base
        )


def test_logit_bias_forces_a_token(client: httpx.Client) -> None:
    token = client.post("/v1/tokenize", json={"model": "tiny", "content": "Z", "add_special": False}).json()[
        "tokens"
    ][-1]
    result = chat(client, max_tokens=5, temperature=0, logit_bias={str(token): 100})
    assert result["choices"][0]["message"]["content"].replace(" ", "") == "ZZZZZ"
    error = error_of(
        client.post(
            "/v1/chat/completions", json={"model": "tiny", "messages": HELLO, "logit_bias": {"99999": 1}}
        ),
        400,
    )
    assert error["param"] == "logit_bias"


def test_logprobs(client: httpx.Client) -> None:
    result = chat(client, max_tokens=6, temperature=0, logprobs=True, top_logprobs=3)
    content = result["choices"][0]["logprobs"]["content"]
    assert len(content) == 6
    assert "".join(item["token"] for item in content) == result["choices"][0]["message"]["content"]
    for item in content:
        top = item["top_logprobs"]
        assert len(top) == 3 and item["logprob"] <= 0
        assert [t["logprob"] for t in top] == sorted((t["logprob"] for t in top), reverse=True)
        assert top[0]["token"] == item["token"] and top[0]["logprob"] == pytest.approx(item["logprob"])
    assert chat(client, max_tokens=2)["choices"][0].get("logprobs") is None


def test_json_object_and_json_schema(client: httpx.Client) -> None:
    plain = chat(client, max_tokens=40, temperature=0)["choices"][0]["message"]["content"]
    assert not plain.lstrip().startswith("{")  # unconstrained, the model does not write JSON
    loose = chat(client, max_tokens=40, temperature=0, response_format={"type": "json_object"})["choices"][0]
    assert loose["finish_reason"] == "stop" and isinstance(json.loads(loose["message"]["content"]), dict)
    cut = chat(client, max_tokens=20, temperature=1.0, seed=1, response_format={"type": "json_object"})[
        "choices"
    ][0]
    assert cut["finish_reason"] == "length" and cut["message"]["content"].startswith('{"')  # cut inside a key
    schema = {
        "type": "object",
        "properties": {"answer": {"enum": ["yes", "no"]}, "count": {"type": "integer"}},
        "required": ["answer", "count"],
        "additionalProperties": False,
    }
    for response_format in (
        {"type": "json_schema", "json_schema": {"name": "reply", "schema": schema}},
        {"type": "json_object", "schema": schema},
    ):
        result = chat(client, max_tokens=60, temperature=0, response_format=response_format)
        data = json.loads(result["choices"][0]["message"]["content"])
        assert (
            set(data) == {"answer", "count"}
            and data["answer"] in ("yes", "no")
            and isinstance(data["count"], int)
        )


def test_grammar(client: httpx.Client) -> None:
    for seed in range(3):
        result = chat(client, max_tokens=5, temperature=1.0, seed=seed, grammar='root ::= "yes" | "no"')
        assert result["choices"][0]["message"]["content"] in ("yes", "no")
    error = error_of(
        client.post(
            "/v1/chat/completions", json={"model": "tiny", "messages": HELLO, "grammar": "root ::= (unclosed"}
        ),
        400,
    )
    assert error["param"] == "grammar"


WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"enum": ["Paris", "Rome"]}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {
            "type": "object",
            "properties": {"zone": {"enum": ["UTC", "CET"]}},
            "required": ["zone"],
        },
    },
}


@pytest.mark.parametrize("tool_choice", ["required", {"type": "function", "function": {"name": "get_time"}}])
def test_tool_calls_come_back_parsed(client: httpx.Client, tool_choice: Any) -> None:
    result = chat(client, max_tokens=60, temperature=0, tools=[WEATHER, TIME], tool_choice=tool_choice)
    choice = result["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None
    (call,) = choice["message"]["tool_calls"]
    assert call["type"] == "function" and call["id"].startswith("call_")
    arguments = json.loads(call["function"]["arguments"])
    if isinstance(tool_choice, dict):
        assert call["function"]["name"] == "get_time" and arguments["zone"] in ("UTC", "CET")
    else:
        assert call["function"]["name"] in ("get_weather", "get_time")


def test_tool_choice_auto_none_and_streamed_call(client: httpx.Client) -> None:
    none = chat(client, max_tokens=8, temperature=0, tools=[WEATHER], tool_choice="none")
    assert none["choices"][0]["finish_reason"] == "length" and none["choices"][0]["message"]["content"]
    auto = chat(client, max_tokens=60, temperature=0, tools=[WEATHER], tool_choice="auto")["choices"][0]
    assert auto["finish_reason"] in ("tool_calls", "length", "stop")
    if auto["finish_reason"] == "tool_calls":
        assert auto["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    else:
        assert not auto["message"]["content"].startswith("{")
    auto_events = sse(
        client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": HELLO,
                "max_tokens": 60,
                "temperature": 0,
                "tools": [WEATHER],
                "tool_choice": "auto",
                "stream": True,
            },
        )
    )
    deltas = [c["delta"] for e in auto_events[:-1] for c in e["choices"]]
    if auto["finish_reason"] == "tool_calls":  # the stream says what the whole answer said
        streamed = [d for delta in deltas for d in delta.get("tool_calls") or []]
        assert [d["function"] for d in streamed] == [c["function"] for c in auto["message"]["tool_calls"]]
    else:
        assert "".join(d.get("content") or "" for d in deltas) == auto["message"]["content"]
    streamed = client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": HELLO,
            "max_tokens": 60,
            "temperature": 0,
            "tools": [WEATHER],
            "tool_choice": "required",
            "stream": True,
        },
    )
    events = sse(streamed)
    calls = [d for e in events[:-1] for c in e["choices"] for d in (c["delta"].get("tool_calls") or [])]
    assert len(calls) == 1 and calls[0]["function"]["name"] == "get_weather"
    assert json.loads(calls[0]["function"]["arguments"])["city"] in ("Paris", "Rome")
    assert [c["finish_reason"] for e in events[:-1] for c in e["choices"] if c["finish_reason"]] == [
        "tool_calls"
    ]
    error = error_of(
        client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": HELLO,
                "tools": [WEATHER],
                "tool_choice": {"type": "function", "function": {"name": "nope"}},
            },
        ),
        400,
    )
    assert error["param"] == "tool_choice"


def test_stream_matches_non_stream_and_reports_usage(client: httpx.Client) -> None:
    whole = chat(client, max_tokens=16, temperature=0)
    response = client.post(
        "/v1/chat/completions",
        json={
            "model": "tiny",
            "messages": HELLO,
            "max_tokens": 16,
            "temperature": 0,
            "stream": True,
            "stream_options": {"include_usage": True},
        },
    )
    events = sse(response)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == whole["choices"][0]["message"]["content"]
    assert [
        c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]
    ] == ["length"]
    assert chunks[-1]["choices"] == []
    counts = ("prompt_tokens", "completion_tokens", "total_tokens")  # not cached_tokens: the 2nd had a hit
    assert {key: chunks[-1]["usage"][key] for key in counts} == {key: whole["usage"][key] for key in counts}
    with_logprobs = sse(
        client.post(
            "/v1/chat/completions",
            json={
                "model": "tiny",
                "messages": HELLO,
                "max_tokens": 16,
                "temperature": 0,
                "stream": True,
                "logprobs": True,
            },
        )
    )
    streamed = [
        lp
        for e in with_logprobs[:-1]
        for c in e["choices"]
        for lp in (c.get("logprobs") or {}).get("content", [])
    ]
    assert len(streamed) == 16 and "".join(lp["token"] for lp in streamed) == text


# --- completions, edits ----------------------------------------------------------------------------


def test_completions_prompt_list_echo_and_stream(client: httpx.Client) -> None:
    single = complete(client, max_tokens=10, temperature=0)
    assert single["object"] == "text_completion" and single["usage"]["completion_tokens"] == 10
    both = complete(client, prompt=["once upon a time", "hello world"], max_tokens=10, temperature=0)
    assert [c["index"] for c in both["choices"]] == [0, 1]
    assert both["choices"][0]["text"] == single["choices"][0]["text"]
    echoed = complete(client, max_tokens=10, temperature=0, echo=True)
    assert echoed["choices"][0]["text"] == "once upon a time" + single["choices"][0]["text"]
    default = complete(client, temperature=0)
    assert default["usage"]["completion_tokens"] == 16  # OpenAI's default max_tokens for completions
    events = sse(
        client.post(
            "/v1/completions",
            json={
                "model": "tiny",
                "prompt": "once upon a time",
                "max_tokens": 10,
                "temperature": 0,
                "stream": True,
            },
        )
    )
    assert events[-1] == "[DONE]"
    assert "".join(e["choices"][0]["text"] for e in events[:-1]) == single["choices"][0]["text"]


def test_completions_of_token_ids_evaluate_them_as_sent(client: httpx.Client) -> None:
    text = "once upon a time"
    ids = client.post("/v1/tokenize", json={"model": "tiny", "content": text}).json()["tokens"]
    single = complete(client, max_tokens=6, temperature=0)
    by_ids = complete(client, prompt=ids, max_tokens=6, temperature=0, echo=True)
    assert by_ids["usage"]["prompt_tokens"] == len(ids) == single["usage"]["prompt_tokens"]
    assert by_ids["choices"][0]["text"].endswith(single["choices"][0]["text"])
    assert by_ids["choices"][0]["text"].strip().startswith(text)  # echo shows the ids' text
    bare = ids[1:]  # no BOS: a text prompt always gets one, token ids are taken as they are
    arrays = complete(client, prompt=[ids, bare], max_tokens=6, temperature=0)
    assert arrays["usage"]["prompt_tokens"] == 2 * len(ids) - 1
    assert arrays["choices"][0]["text"] == single["choices"][0]["text"]
    mixed = client.post("/v1/completions", json={"model": "tiny", "prompt": ["a", [1, 2]]})
    assert error_of(mixed, 400)["param"] == "prompt"
    out_of_range = client.post("/v1/completions", json={"model": "tiny", "prompt": [1, 10**6]})
    assert error_of(out_of_range, 400)["param"] == "prompt"


def test_completion_logprobs_and_suffix(client: httpx.Client) -> None:
    result = complete(client, max_tokens=4, temperature=0, logprobs=2)
    logprobs = result["choices"][0]["logprobs"]
    assert "".join(logprobs["tokens"]) == result["choices"][0]["text"]
    assert all(len(top) <= 2 for top in logprobs["top_logprobs"])
    echoed = complete(client, max_tokens=4, temperature=0, logprobs=0, echo=True)["choices"][0]
    assert echoed["logprobs"]["text_offset"][0] == len("once upon a time")  # offsets count the echoed prompt
    for echo in (False, True):  # streamed offsets run on across chunks, as in the whole answer
        whole = complete(client, max_tokens=6, temperature=0, logprobs=1, echo=echo)["choices"][0]["logprobs"]
        events = sse(
            client.post(
                "/v1/completions",
                json={
                    "model": "tiny",
                    "prompt": "once upon a time",
                    "max_tokens": 6,
                    "temperature": 0,
                    "logprobs": 1,
                    "echo": echo,
                    "stream": True,
                },
            )
        )
        streamed = [e["choices"][0]["logprobs"] for e in events[:-1] if e["choices"][0]["logprobs"]]
        assert len(streamed) > 1
        assert [offset for lp in streamed for offset in lp["text_offset"]] == whole["text_offset"]
    infill = complete(client, max_tokens=6, temperature=0, suffix=" the end")
    assert infill["choices"][0]["text"] != complete(client, max_tokens=6, temperature=0)["choices"][0]["text"]
    refused = client.post(
        "/v1/completions", json={"model": "gemma", "prompt": "def f(", "suffix": "return x"}
    )
    assert error_of(refused, 400)["param"] == "suffix"


def test_best_of_other_than_n_is_refused(client: httpx.Client) -> None:
    assert complete(client, max_tokens=2, n=2, best_of=2)["usage"]["completion_tokens"] == 4
    more = client.post("/v1/completions", json={"model": "tiny", "prompt": "x", "best_of": 3, "n": 2})
    error = error_of(more, 400)
    assert error["param"] == "best_of" and error["code"] == "not_supported"
    fewer = client.post("/v1/completions", json={"model": "tiny", "prompt": "x", "best_of": 1, "n": 2})
    assert error_of(fewer, 400)["param"] == "best_of"


def test_edits(client: httpx.Client) -> None:
    def edit(**body: Any) -> dict[str, Any]:
        response = client.post(
            "/v1/edits",
            json={"model": "tiny", "instruction": "fix", "input": "helo", "temperature": 0, **body},
        )
        assert response.status_code == 200, response.text
        return response.json()

    result = edit(max_tokens=8)
    assert result["object"] == "edit"
    # an edit is a chat turn: the instruction as system message, the input as user message
    messages = [{"role": "system", "content": "fix"}, {"role": "user", "content": "helo"}]
    same = chat(client, messages=messages, max_tokens=8, temperature=0)
    assert result["choices"][0]["text"] == same["choices"][0]["message"]["content"]
    assert result["usage"]["prompt_tokens"] == same["usage"]["prompt_tokens"]
    assert result["usage"]["completion_tokens"] == same["usage"]["completion_tokens"] == 8
    rendered = client.post(
        "/v1/tokenize",
        json={
            "model": "tiny",
            "content": "<s><|system|>fix\n<|user|>helo\n<|assistant|>",
            "add_special": False,
        },
    ).json()["tokens"]
    assert result["usage"]["prompt_tokens"] == len(rendered)
    assert edit()["usage"]["completion_tokens"] == 256  # the default limit, not the rest of the context
    assert (
        error_of(
            client.post("/v1/edits", json={"model": "tiny", "instruction": "fix", "max_tokens": 0}), 400
        )["param"]
        == "max_tokens"
    )


# --- embeddings, tokens ----------------------------------------------------------------------------


def embed(client: httpx.Client, **body: Any) -> dict[str, Any]:
    response = client.post("/v1/embeddings", json={"model": "tiny", **body})
    assert response.status_code == 200, response.text
    return response.json()


def test_embeddings_shapes_encodings_dimensions(client: httpx.Client) -> None:
    single = embed(client, input="hello world")
    vector = single["data"][0]["embedding"]
    assert len(vector) == 64 and sum(v * v for v in vector) == pytest.approx(1.0, abs=1e-4)
    batch = embed(client, input=["hello world", "once upon a time"])
    assert [d["index"] for d in batch["data"]] == [0, 1]
    assert batch["data"][0]["embedding"] == pytest.approx(vector, abs=1e-5)
    assert batch["usage"]["prompt_tokens"] > single["usage"]["prompt_tokens"]
    packed = embed(client, input="hello world", encoding_format="base64")["data"][0]["embedding"]
    assert list(struct.unpack("<64f", base64.b64decode(packed))) == pytest.approx(vector, abs=1e-6)
    short = embed(client, input="hello world", dimensions=8)["data"][0]["embedding"]
    assert len(short) == 8 and sum(v * v for v in short) == pytest.approx(1.0, abs=1e-4)
    assert (
        error_of(client.post("/v1/embeddings", json={"model": "tiny", "input": "x", "dimensions": 65}), 400)[
            "param"
        ]
        == "dimensions"
    )
    tokens = client.post("/v1/tokenize", json={"model": "tiny", "content": "hello world"}).json()["tokens"]
    assert embed(client, input=tokens)["data"][0]["embedding"] == pytest.approx(vector, abs=1e-5)


def test_embedding_model_pooling_from_config(client: httpx.Client) -> None:
    mean = embed(client, input="hello world")["data"][0]["embedding"]
    last = embed(client, model="tiny-embed", input="hello world")["data"][0]["embedding"]
    assert len(last) == 64 and last != pytest.approx(mean, abs=1e-3)
    too_long = client.post("/v1/embeddings", json={"model": "tiny-embed", "input": "a " * 1100})
    assert "1024" in error_of(too_long, 400)["message"]


def test_tokenize_detokenize(client: httpx.Client) -> None:
    tokens = client.post("/v1/tokenize", json={"model": "tiny", "content": "hello world, été"}).json()[
        "tokens"
    ]
    assert tokens[0] == 1  # BOS
    response = client.post("/v1/detokenize", json={"model": "tiny", "tokens": tokens})
    assert response.status_code == 200 and response.json() == {"content": "hello world, été"}
    bare = client.post(
        "/v1/tokenize", json={"model": "tiny", "content": "hello", "add_special": False}
    ).json()["tokens"]
    assert bare == tokens[1 : len(bare) + 1]
    assert (
        error_of(client.post("/v1/detokenize", json={"model": "tiny", "tokens": [5, 100000]}), 400)["param"]
        == "tokens"
    )


# --- errors ----------------------------------------------------------------------------------------


def test_prompt_over_the_context_is_a_400_naming_the_limit(client: httpx.Client) -> None:
    long_prompt = "hello " * 1100
    for path, body in (
        ("/v1/completions", {"prompt": long_prompt}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": long_prompt}]}),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": long_prompt}], "stream": True}),
    ):
        error = error_of(client.post(path, json={"model": "tiny", **body}), 400)
        assert "1024" in error["message"] and error["code"] == "context_length_exceeded"


def test_unknown_model_is_a_404(client: httpx.Client) -> None:
    for path, body in (
        ("/v1/chat/completions", {"messages": HELLO}),
        ("/v1/completions", {"prompt": "x"}),
        ("/v1/embeddings", {"input": "x"}),
        ("/v1/tokenize", {"content": "x"}),
    ):
        error = error_of(client.post(path, json={"model": "no-such-model", **body}), 404)
        assert error["code"] == "model_not_found" and "no-such-model" in error["message"]


def test_chat_template_from_the_model_config(client: httpx.Client) -> None:
    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello"}]
    usage = chat(client, model="tiny-jinja", messages=messages, max_tokens=2)["usage"]
    rendered = "[system] be brief\n[user] hello\n[assistant]"
    tokens = client.post(
        "/v1/tokenize", json={"model": "tiny-jinja", "content": rendered, "add_special": False}
    )
    assert usage["prompt_tokens"] == len(tokens.json()["tokens"])


def test_engine_options_from_the_model_config(client: httpx.Client) -> None:
    def monitor(model: str) -> dict[str, Any]:
        return client.get("/backend/monitor", params={"model": model}).json()

    def maps_the_gguf(pid: int) -> bool:
        return str(shared_tiny_llama().resolve()) in Path(f"/proc/{pid}/maps").read_text()

    result = chat(client, model="tiny-tuned", max_tokens=4, temperature=0)
    assert result["usage"]["completion_tokens"] == 4
    chat(client, max_tokens=1)
    tuned, plain = monitor("tiny-tuned"), monitor("tiny")
    status = tuned["status"]  # read from llama.cpp's context and parameters, not echoed from the config
    assert status["context_size"] == 256 and status["threads"] == 2 and status["threads_batch"] == 1
    assert status["batch_size"] == 64 and status["ubatch_size"] == 64 and status["gpu_layers"] == 0
    assert status["mmap"] is False and status["mlock"] is False and status["flash_attn"] is True
    assert plain["status"]["threads"] == plain["status"]["threads_batch"] == default_threads()
    assert plain["status"]["batch_size"] == 512 and plain["status"]["mmap"] is True
    assert plain["status"]["flash_attn"] is False
    assert maps_the_gguf(plain["pid"]) and not maps_the_gguf(tuned["pid"])  # mmap as the process does it
    assert status["chat_template"] == "chat_format chatml"
    # chatml (llama-cpp-python's, with its empty system turn), not the GGUF's template
    prompt = "<|im_start|>system\n<|im_end|>\n<|im_start|>user\nhello<|im_end|>\n<|im_start|>assistant\n"
    tokens = client.post("/v1/tokenize", json={"model": "tiny-tuned", "content": prompt}).json()["tokens"]
    assert result["usage"]["prompt_tokens"] == len(tokens)
    cards = {card["id"]: card for card in client.get("/v1/models").json()["data"]}
    assert cards["tiny-bad-option"]["status"]["state"] == "error"
    assert "pooling" in cards["tiny-bad-option"]["status"]["error"]


def test_model_without_chat_template_refuses_chat_but_completes(client: httpx.Client) -> None:
    error = error_of(client.post("/v1/chat/completions", json={"model": "tiny-base", "messages": HELLO}), 400)
    assert "chat_format" in error["message"]
    assert complete(client, model="tiny-base", max_tokens=3)["usage"]["completion_tokens"] == 3
