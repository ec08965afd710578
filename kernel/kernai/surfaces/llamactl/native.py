"""llama-server's own routes of a llama-cpp instance, as llamactl serves them under ``/llama-cpp/{name}/``:
each translated to the kernel's typed requests through the model manager, so the instance starts on
demand when it allows it (503 when it is stopped and does not), 404 names an unknown instance and 400 one
whose backend is not llama-cpp. Errors are llama-server's ``{"error": {"code", "message", "type"}}``.
"""

from __future__ import annotations

import asyncio
import html
import time
from collections.abc import AsyncGenerator
from typing import Any

import msgspec
from litestar import Controller, Response, get, post
from litestar.exceptions import HTTPException
from litestar.types import Scope

from kernai import __version__
from kernai.auth.principal import Caller
from kernai.capabilities import (
    ApplyTemplateRequest,
    ApplyTemplateResult,
    CompletionChunk,
    CompletionRequest,
    DetokenizeRequest,
    DetokenizeResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    RerankRequest,
    RerankResult,
    Sampling,
    TokenizeRequest,
    TokenizeResult,
    TokenLogprob,
)
from kernai.errors import InvalidRequest, KernaiError, ModelUnavailable
from kernai.gguf_file import GGUFFacts, InvalidGGUF, gguf_facts
from kernai.http.inference import prefetch, response_format, sampling_with_defaults, sse_event, sse_response
from kernai.http.scope import caller_of
from kernai.manager import ManagedModel, ModelManager
from kernai.surfaces.llamactl.commands import LLAMA_CPP
from kernai.surfaces.llamactl.native_schemas import (
    ApplyTemplateAnswer,
    ApplyTemplateWire,
    CompletionAnswer,
    CompletionWire,
    DetokenizeAnswer,
    DetokenizeWire,
    EmbeddingItem,
    EmbeddingsWire,
    InfillWire,
    PartialCompletion,
    Props,
    RerankAnswer,
    RerankItem,
    RerankWire,
    SamplingWire,
    Slot,
    Timings,
    TokenizeAnswer,
    TokenizeWire,
    TokenPiece,
    TokenProbability,
    llama_server_shape,
)
from kernai.surfaces.llamactl.templates import chat_template

NATIVE_PATHS = frozenset(
    "completion infill tokenize detokenize embeddings reranking apply-template props slots metrics".split()
)
PROPS_READ_ONLY = "This server does not support changing global properties. Start it with `--props`"


def llama_model(manager: ModelManager, name: str, caller: Caller) -> ManagedModel:
    """The instance ``name`` (404 unknown, 403 not the caller's); 400 when llama-cpp does not serve it."""
    model = manager.get(name, caller=caller)
    caller.use(name)
    if model.config.backend != LLAMA_CPP:
        raise InvalidRequest(
            f"Instance '{name}' runs on backend '{model.config.backend}', not {LLAMA_CPP}", param="name"
        )
    return model


async def model_facts(model: ManagedModel) -> GGUFFacts | None:
    """The model's GGUF facts (read in a thread, cached), ``None`` when the file is not one."""
    if model.config.model_path is None:
        return None
    try:
        return await asyncio.to_thread(gguf_facts, model.config.model_path)
    except (InvalidGGUF, OSError):
        return None


async def running_status(manager: ModelManager, model: ManagedModel) -> dict[str, Any]:
    """What the running worker's status hook reports, the instance started on demand if it is not
    running (503 when it may not be)."""
    if model.config.disabled:
        raise ModelUnavailable(f"Model '{model.name}' is disabled", code="model_disabled")
    await manager.ensure_running(model)
    facts = await manager.monitor(model.name)
    status = facts.get("status")
    return status if isinstance(status, dict) else {}


def _context_size(model: ManagedModel, status: dict[str, Any]) -> int:
    """The instance's context in tokens: as its running worker reports it, else as its config sets it."""
    return int(status.get("n_ctx") or status.get("context_size") or model.config.context_size or 0)


def _sampling(model: ManagedModel, data: SamplingWire) -> Sampling:
    return sampling_with_defaults(
        model.config.parameters,
        max_tokens=data.n_predict if data.n_predict >= 0 else None,
        temperature=data.temperature,
        top_k=data.top_k,
        top_p=data.top_p,
        min_p=data.min_p,
        repeat_penalty=data.repeat_penalty,
        presence_penalty=getattr(data, "presence_penalty", None),
        frequency_penalty=getattr(data, "frequency_penalty", None),
        seed=data.seed if data.seed is not None and data.seed >= 0 else None,
        stop=list(data.stop),
    )


def generation_settings(
    model: ManagedModel, sampling: Sampling, stream: bool, n_probs: int
) -> dict[str, Any]:
    return {
        "n_ctx": model.config.context_size,
        "n_predict": sampling.max_tokens if sampling.max_tokens is not None else -1,
        "model": model.name,
        "seed": sampling.seed if sampling.seed is not None else -1,
        "temperature": sampling.temperature,
        "top_k": sampling.top_k,
        "top_p": sampling.top_p,
        "min_p": sampling.min_p,
        "repeat_penalty": sampling.repeat_penalty,
        "presence_penalty": sampling.presence_penalty,
        "frequency_penalty": sampling.frequency_penalty,
        "stop": sampling.stop,
        "n_probs": n_probs,
        "stream": stream,
    }


def _probabilities(logprobs: list[TokenLogprob] | None) -> list[TokenProbability] | None:
    if logprobs is None:
        return None
    return [
        TokenProbability(
            token=lp.token,
            logprob=lp.logprob,
            bytes=lp.bytes,
            top_logprobs=[
                TokenProbability(token=t.token, logprob=t.logprob, bytes=t.bytes) for t in lp.top_logprobs
            ],
        )
        for lp in logprobs
    ]


def _timings(prompt_n: int, prompt_s: float, predicted_n: int, predicted_s: float) -> Timings:
    def per_token(seconds: float, n: int) -> float:
        return round(seconds * 1000 / n, 3) if n else 0.0

    def per_second(seconds: float, n: int) -> float:
        return round(n / seconds, 3) if seconds > 0 else 0.0

    return Timings(
        prompt_n=prompt_n,
        prompt_ms=round(prompt_s * 1000, 3),
        prompt_per_token_ms=per_token(prompt_s, prompt_n),
        prompt_per_second=per_second(prompt_s, prompt_n),
        predicted_n=predicted_n,
        predicted_ms=round(predicted_s * 1000, 3),
        predicted_per_token_ms=per_token(predicted_s, predicted_n),
        predicted_per_second=per_second(predicted_s, predicted_n),
    )


class _Generation:
    """One /completion or /infill: the chunks it streams, and the answer they add up to."""

    def __init__(self, model: ManagedModel, request: CompletionRequest, prompt: str, n_probs: int) -> None:
        self.model = model
        self.request = request
        self.prompt = prompt
        self.n_probs = n_probs
        self.text: list[str] = []
        self.probabilities: list[TokenProbability] = []
        self.finish_reason = "stop"
        self.stop_sequence: str | None = None
        self.prompt_tokens = 0
        self.predicted = 0
        self.begun = time.perf_counter()
        self.first: float | None = None

    def add(self, chunk: CompletionChunk) -> None:
        if self.first is None:
            self.first = time.perf_counter()
        self.text.append(chunk.text)
        self.probabilities += _probabilities(chunk.logprobs) or []
        if chunk.text:
            self.predicted += 1
        if chunk.finish_reason is not None:
            self.finish_reason = chunk.finish_reason
        self.stop_sequence = chunk.stop_sequence or self.stop_sequence
        if chunk.usage is not None:
            self.prompt_tokens, self.predicted = chunk.usage.prompt_tokens, chunk.usage.completion_tokens

    def answer(self, content: str) -> CompletionAnswer:
        end = time.perf_counter()
        first = self.first if self.first is not None else end
        word = self.stop_sequence or ""
        limit = self.finish_reason == "length"
        stop_type = "limit" if limit else "word" if word else "eos"
        return CompletionAnswer(
            content=content,
            model=self.model.name,
            tokens_predicted=self.predicted,
            tokens_evaluated=self.prompt_tokens,
            generation_settings=generation_settings(
                self.model, self.request.sampling, self.request.stream, self.n_probs
            ),
            prompt=self.prompt,
            has_new_line="\n" in "".join(self.text),
            stop_type=stop_type,
            stopped_eos=stop_type == "eos",
            stopped_word=stop_type == "word",
            stopped_limit=limit,
            stopping_word=word,
            timings=_timings(self.prompt_tokens, first - self.begun, self.predicted, end - first),
            completion_probabilities=self.probabilities if self.n_probs else None,
        )


def _error_event(error: KernaiError) -> bytes:
    return sse_event(llama_server_shape(error.status_code, error.message, error.error_type, None, None))


async def _complete(
    manager: ModelManager, model: ManagedModel, request: CompletionRequest, caller: Caller, n_probs: int
) -> Any:
    """Run ``request`` as a stream (so the timings can split prompt and generation) and answer as
    llama-server: one JSON body, or its events (``data: {...}``, the last with ``"stop": true``)."""
    generation = _Generation(model, request, request.prompt, n_probs)
    chunks = await prefetch(
        manager.stream(model.name, msgspec.structs.replace(request, stream=True), caller=caller)
    )
    if not request.stream:
        async for chunk in chunks:
            assert isinstance(chunk, CompletionChunk)
            generation.add(chunk)
        return generation.answer("".join(generation.text))

    async def events() -> AsyncGenerator[bytes, None]:
        async for chunk in chunks:
            assert isinstance(chunk, CompletionChunk)
            generation.add(chunk)
            if chunk.text or chunk.logprobs:
                yield sse_event(
                    PartialCompletion(
                        content=chunk.text,
                        tokens_predicted=generation.predicted,
                        tokens_evaluated=generation.prompt_tokens,
                        completion_probabilities=_probabilities(chunk.logprobs) if n_probs else None,
                    )
                )
        yield sse_event(generation.answer(""))

    return sse_response(events(), _error_event)


async def _evaluate_only(
    manager: ModelManager, model: ManagedModel, request: CompletionRequest, caller: Caller
) -> CompletionAnswer:
    """``n_predict: 0``: no token generated; the prompt's size is its token ids' count, or what the model's
    tokenizer makes of its text."""
    tokens = request.prompt_tokens
    if tokens is None:
        result = await manager.predict(model.name, TokenizeRequest(content=request.prompt), caller=caller)
        assert isinstance(result, TokenizeResult)
        tokens = result.tokens
    generation = _Generation(model, request, request.prompt, 0)
    generation.prompt_tokens, generation.finish_reason = len(tokens), "length"
    answer = generation.answer("")
    answer.generation_settings["n_predict"] = 0
    return answer


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>{name}</title></head>
<body><h1>{name}</h1>
<p>An instance of backend {backend} served by kernai {version}: status <b>{status}</b>,
model file <code>{file}</code>.</p>
<p>llama-server's routes, for a llama-cpp instance: {routes}; OpenAI's under <code>/v1</code>
(<a href="/docs">API documentation</a>).</p></body></html>
"""


def instance_page(model: ManagedModel) -> str:
    """A small page for an instance (llama-server serves its web UI there)."""
    return PAGE.format(
        name=html.escape(model.name),
        backend=html.escape(model.config.backend),
        routes=", ".join(f"<code>{path}</code>" for path in sorted(NATIVE_PATHS)),
        version=__version__,
        status=html.escape(model.status),
        file=html.escape(model.config.parameters.model or ""),
    )


class LlamaCppController(Controller):
    path = "/llama-cpp/{name:str}"
    tags = ["llama.cpp"]

    @get(
        "/", media_type="text/html", summary="A page for the instance (llama-server serves its web UI there)"
    )
    async def index(self, name: str, manager: ModelManager, scope: Scope) -> Response[str]:
        model = llama_model(manager, name, caller_of(scope))
        return Response(instance_page(model), media_type="text/html")

    @post("/completion", status_code=200, summary="llama-server's completion (text or token-id prompt)")
    async def completion(self, name: str, data: CompletionWire, manager: ModelManager, scope: Scope) -> Any:
        caller = caller_of(scope)
        model = llama_model(manager, name, caller)
        prompt, tokens = data.prompt, None
        if isinstance(prompt, list):  # evaluated as they are; their text is the answer's "prompt"
            tokens = list(prompt)
            result = await manager.predict(name, DetokenizeRequest(tokens=tokens), caller=caller)
            assert isinstance(result, DetokenizeResult)
            prompt = result.content
        request = CompletionRequest(
            prompt=prompt,
            prompt_tokens=tokens,
            sampling=_sampling(model, data),
            logprobs=data.n_probs or None,
            grammar=data.grammar,
            response_format=response_format("json_schema", data.json_schema) if data.json_schema else None,
            stream=data.stream,
        )
        if data.n_predict == 0:  # llama-server evaluates the prompt and generates nothing
            return await _evaluate_only(manager, model, request, caller)
        return await _complete(manager, model, request, caller, data.n_probs)

    @post("/infill", status_code=200, summary="Fill in the middle (models with FIM tokens)")
    async def infill(self, name: str, data: InfillWire, manager: ModelManager, scope: Scope) -> Any:
        caller = caller_of(scope)
        model = llama_model(manager, name, caller)
        extra = "".join(f"{item.filename}\n{item.text}\n" for item in data.input_extra)
        request = CompletionRequest(
            prompt=extra + data.input_prefix + data.prompt,
            suffix=data.input_suffix,
            sampling=_sampling(model, data),
            stream=data.stream,
        )
        return await _complete(manager, model, request, caller, 0)

    @post("/tokenize", status_code=200, summary="Text to token ids (with each token's text on request)")
    async def tokenize(
        self, name: str, data: TokenizeWire, manager: ModelManager, scope: Scope
    ) -> TokenizeAnswer:
        caller = caller_of(scope)
        llama_model(manager, name, caller)
        request = TokenizeRequest(content=data.content, add_special=data.add_special)
        result = await manager.predict(name, request, caller=caller)
        assert isinstance(result, TokenizeResult)
        if not data.with_pieces:
            return TokenizeAnswer(list(result.tokens))
        pieces = []
        for token in result.tokens:  # one at a time: a long text must not fill the model's queue
            piece = await manager.predict(name, DetokenizeRequest(tokens=[token]), caller=caller)
            assert isinstance(piece, DetokenizeResult)
            pieces.append(TokenPiece(token, piece.content))
        return TokenizeAnswer(list(pieces))

    @post("/detokenize", status_code=200, summary="Token ids to text")
    async def detokenize(
        self, name: str, data: DetokenizeWire, manager: ModelManager, scope: Scope
    ) -> DetokenizeAnswer:
        caller = caller_of(scope)
        llama_model(manager, name, caller)
        result = await manager.predict(name, DetokenizeRequest(tokens=list(data.tokens)), caller=caller)
        assert isinstance(result, DetokenizeResult)
        return DetokenizeAnswer(result.content)

    @post("/embeddings", status_code=200, summary="One pooled embedding per input")
    async def embeddings(
        self, name: str, data: EmbeddingsWire, manager: ModelManager, scope: Scope
    ) -> list[EmbeddingItem]:
        caller = caller_of(scope)
        llama_model(manager, name, caller)
        given = data.content if data.content is not None else data.input
        if given is None:
            raise InvalidRequest("Missing 'content': the text to embed", param="content")
        texts = [given] if isinstance(given, str) else list(given)
        result = await manager.predict(name, EmbeddingsRequest(input=texts), caller=caller)
        assert isinstance(result, EmbeddingsResult)
        return [EmbeddingItem(i, [vector]) for i, vector in enumerate(result.embeddings)]

    @post("/reranking", status_code=200, summary="Documents scored against a query (reranker models)")
    async def reranking(
        self, name: str, data: RerankWire, manager: ModelManager, scope: Scope
    ) -> RerankAnswer:
        caller = caller_of(scope)
        llama_model(manager, name, caller)
        request = RerankRequest(query=data.query, documents=data.documents, top_n=data.top_n)
        result = await manager.predict(name, request, caller=caller)
        assert isinstance(result, RerankResult)
        ranked = sorted(result.results, key=lambda score: score.relevance_score, reverse=True)
        if data.top_n is not None:
            ranked = ranked[: data.top_n]
        return RerankAnswer(name, [RerankItem(r.index, r.relevance_score) for r in ranked])

    @post(
        "/apply-template", status_code=200, summary="Messages to the prompt the model's chat template makes"
    )
    async def apply_template(
        self, name: str, data: ApplyTemplateWire, manager: ModelManager, scope: Scope
    ) -> ApplyTemplateAnswer:
        caller = caller_of(scope)
        llama_model(manager, name, caller)
        request = ApplyTemplateRequest(
            messages=data.messages, tools=data.tools, add_generation_prompt=data.add_generation_prompt
        )
        result = await manager.predict(name, request, caller=caller)
        assert isinstance(result, ApplyTemplateResult)
        return ApplyTemplateAnswer(result.prompt)

    @get("/props", summary="Default generation settings, slots, chat template, model file, context size")
    async def props(self, name: str, manager: ModelManager, scope: Scope) -> Props:
        model = llama_model(manager, name, caller_of(scope))
        status = await running_status(manager, model)
        facts = await model_facts(model)
        n_ctx = _context_size(model, status)
        defaults = sampling_with_defaults(model.config.parameters)
        settings = generation_settings(model, defaults, False, 0) | {"n_ctx": n_ctx}
        return Props(
            default_generation_settings={"n_ctx": n_ctx, "params": settings},
            total_slots=int(status.get("parallel") or model.admission.parallel),
            model_path=model.config.parameters.model or "",
            chat_template=chat_template(model.config, facts),
            n_ctx=n_ctx,
            modalities={"vision": False, "audio": False},
            build_info=f"kernai {__version__}",
        )

    @post(
        "/props", status_code=200, summary="Change global properties (llama-server needs --props; kernai: no)"
    )
    async def change_props(self, name: str, manager: ModelManager, scope: Scope) -> None:
        llama_model(manager, name, caller_of(scope))
        raise HTTPException(status_code=501, detail=PROPS_READ_ONLY)

    @get("/slots", summary="The instance's generation slots: context, whether busy, params, token counts")
    async def slots(self, name: str, manager: ModelManager, scope: Scope) -> list[Slot]:
        model = llama_model(manager, name, caller_of(scope))
        status = await running_status(manager, model)
        n_ctx = _context_size(model, status)
        reported = status.get("slots")
        if isinstance(reported, list):
            return [
                Slot(
                    id=int(slot.get("id", index)),
                    n_ctx=int(slot.get("n_ctx") or n_ctx),
                    is_processing=slot.get("state") == "processing",
                    params=dict(slot.get("params") or {}),
                    prompt_tokens=int(slot.get("prompt_tokens") or 0),
                    generated_tokens=int(slot.get("generated_tokens") or 0),
                    cached_tokens=int(slot.get("cached_tokens") or 0),
                )
                for index, slot in enumerate(reported)
                if isinstance(slot, dict)
            ]
        active = manager.recorder.tokens.of(name).active
        return [
            Slot(
                id=index,
                n_ctx=n_ctx,
                is_processing=index < len(active),
                prompt_tokens=active[index].prompt_tokens if index < len(active) else 0,
                generated_tokens=active[index].generated_tokens if index < len(active) else 0,
            )
            for index in range(max(1, model.admission.parallel))
        ]

    @get(
        "/metrics",
        media_type="text/plain; version=0.0.4",
        summary="The instance's metrics in Prometheus text",
    )
    async def metrics(self, name: str, manager: ModelManager, scope: Scope) -> str:
        model = llama_model(manager, name, caller_of(scope))
        return prometheus_text(model, manager)

    @post("/metrics", media_type="text/plain; version=0.0.4", status_code=200, summary="Same as GET")
    async def metrics_post(self, name: str, manager: ModelManager, scope: Scope) -> str:
        model = llama_model(manager, name, caller_of(scope))
        return prometheus_text(model, manager)


def prometheus_text(model: ManagedModel, manager: ModelManager) -> str:
    """llama-server's ``/metrics`` names, from what kernai counted for this instance."""
    tokens = manager.recorder.tokens.of(model.name)
    prompt_rate = tokens.prompt_tokens / tokens.prompt_seconds if tokens.prompt_seconds else 0.0
    predicted_rate = tokens.generated_tokens / tokens.generation_seconds if tokens.generation_seconds else 0.0
    rows = [
        ("prompt_tokens_total", "counter", "Number of prompt tokens processed.", tokens.prompt_tokens),
        ("prompt_seconds_total", "counter", "Prompt process time", tokens.prompt_seconds),
        (
            "tokens_predicted_total",
            "counter",
            "Number of generation tokens processed.",
            tokens.generated_tokens,
        ),
        ("tokens_predicted_seconds_total", "counter", "Predict process time", tokens.generation_seconds),
        ("n_requests_total", "counter", "Requests served.", tokens.requests),
        ("prompt_tokens_seconds", "gauge", "Average prompt throughput in tokens/s.", prompt_rate),
        ("predicted_tokens_seconds", "gauge", "Average generation throughput in tokens/s.", predicted_rate),
        ("requests_processing", "gauge", "Number of requests processing.", model.admission.running),
        ("requests_deferred", "gauge", "Number of requests deferred.", model.admission.waiting),
    ]
    lines = []
    for metric, kind, help_text, value in rows:
        lines += [
            f"# HELP llamacpp:{metric} {help_text}",
            f"# TYPE llamacpp:{metric} {kind}",
            f"llamacpp:{metric} {value}",
        ]
    return "\n".join(lines) + "\n"
