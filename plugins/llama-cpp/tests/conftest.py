"""One real `kernai serve` for the plugin's HTTP tests, with tiny generated models and gemma-3-270m.

Models (all served by the llama-cpp backend):

- ``tiny``: the tiny random-weight llama (1024-token context, Jinja chat template, FIM tokens);
  exact, fast checks of every parameter path.
- ``tiny-embed``: the same file with ``embeddings: true`` and ``pooling: last``.
- ``tiny-base``: a tiny llama without a chat template and no chat_format: chat must be refused.
- ``tiny-jinja``: the same file with a Jinja ``chat_template`` in its config.
- ``tiny-tuned``: every engine option set; ``tiny-bad-option``: an option value the backend refuses.
- ``gemma``: gemma-3-270m Q4_K_M with ``chat_format: gemma``, the real model.
- ``tiny-p4``, ``gemma-p4``: the same models with ``parallel: 4`` (continuous batching, four slots).

Other suites can ask the ``kernai_server`` fixture for such a server, with the model files of
``kernai_llama_cpp.testing``.

The helpers below serve the test modules (``from .conftest import ...``): streamed OpenAI answers,
calls run at once in threads, a model's engine status.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from kernai.testing import KernaiServer, ServerFactory
from kernai_llama_cpp.testing import gemma_gguf, shared_tiny_llama, write_tiny_llama

MODELS = {
    "tiny.yaml": "name: tiny\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\ncontext_size: 1024\n",
    "tiny-embed.yaml": "name: tiny-embed\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\n"
    "context_size: 1024\nembeddings: true\npooling: last\n",
    "tiny-base.yaml": "name: tiny-base\nbackend: llama-cpp\nparameters:\n  model: tiny-base.gguf\n"
    "context_size: 1024\n",
    "tiny-jinja.yaml": "name: tiny-jinja\nbackend: llama-cpp\nparameters:\n  model: tiny-base.gguf\n"
    'context_size: 1024\nchat_template: "{% for m in messages %}[{{ m.role }}] {{ m.content }}\\n'
    '{% endfor %}[assistant]"\n',
    "tiny-tuned.yaml": "name: tiny-tuned\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\n"
    "context_size: 256\nthreads: 2\nthreads_batch: 1\ngpu_layers: 0\nbatch_size: 64\n"
    "mmap: false\nmlock: false\nflash_attn: true\nchat_format: chatml\n",
    "tiny-bad-option.yaml": "name: tiny-bad-option\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\n"
    "pooling: max\n",
    "gemma.yaml": "name: gemma\nbackend: llama-cpp\nparameters:\n  model: gemma.gguf\n  temperature: 0\n"
    "chat_format: gemma\ncontext_size: 1024\n",
    "tiny-p4.yaml": "name: tiny-p4\nbackend: llama-cpp\nparameters:\n  model: tiny.gguf\ncontext_size: 1024\n"
    "parallel: 4\n",
    "gemma-p4.yaml": "name: gemma-p4\nbackend: llama-cpp\nparameters:\n  model: gemma.gguf\n"
    "  temperature: 0\nchat_format: gemma\ncontext_size: 2048\nparallel: 4\n",
}


@pytest.fixture(scope="session")
def llama_server(kernai_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory) -> KernaiServer:
    tiny_base = write_tiny_llama(tmp_path_factory.mktemp("tiny-base") / "tiny-base.gguf", chat_template=None)
    files = {"tiny.gguf": shared_tiny_llama(), "tiny-base.gguf": tiny_base, "gemma.gguf": gemma_gguf()}
    return kernai_server({**files, **MODELS}, name="llama-cpp-server", plugins="llama-cpp")


@pytest.fixture()
def client(llama_server: KernaiServer) -> Iterator[httpx.Client]:
    with llama_server.client(timeout=120) as http:
        yield http


def run_together(
    calls: dict[str, Callable[[], dict[str, Any]]], timeout: float = 120
) -> dict[str, dict[str, Any]]:
    """Run the calls at once, each in its own thread; their results by name."""
    results: dict[str, dict[str, Any]] = {}
    failures: list[BaseException] = []

    def run(name: str, call: Callable[[], dict[str, Any]]) -> None:
        try:
            results[name] = call()
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=run, args=item) for item in calls.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    assert not failures, failures
    return results


def monitor_status(client: httpx.Client, model: str) -> dict[str, Any]:
    """The engine's status of a running ``model`` (slots, counters), as ``/backend/monitor`` shows it."""
    return client.get("/backend/monitor", params={"model": model}).json()["status"]


def stream_lines(server: KernaiServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """The data lines of a streamed answer, with the times of the first and the last one."""
    lines: list[str] = []
    first = last = 0.0
    with (
        httpx.Client(base_url=server.url, timeout=120) as http,
        http.stream("POST", path, json=body) as response,
    ):
        assert response.status_code == 200, response.read()
        for line in response.iter_lines():
            if not line.strip() or line.startswith("event:"):
                continue
            last = time.monotonic()
            first = first or last
            lines.append(line.removeprefix("data: "))
    return {"lines": lines, "first": first, "last": last}


def openai_stream(server: KernaiServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """A streamed OpenAI chat or completion (usage asked for with ``stream_options``): its text, finish
    reason and usage."""
    body = {"stream": True, "stream_options": {"include_usage": True}, **body}
    text, finish, usage = "", None, None
    for line in stream_lines(server, path, body)["lines"]:
        if line == "[DONE]":
            continue
        event = json.loads(line)
        usage = event.get("usage") or usage
        for choice in event["choices"]:
            text += (choice["delta"].get("content") or "") if "delta" in choice else choice["text"]
            finish = choice["finish_reason"] or finish
    return {"text": text, "finish_reason": finish, "usage": usage}
