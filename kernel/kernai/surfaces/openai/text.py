"""OpenAI's text endpoints: chat, completions, edits, embeddings."""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import AsyncGenerator
from typing import Any, TypeGuard

import msgspec
from litestar import Controller, post
from litestar.types import Scope

from kernai.auth.principal import Caller
from kernai.capabilities import (
    ChatChunk,
    ChatMessage,
    ChatRequest,
    ChatResult,
    CompletionChunk,
    CompletionRequest,
    CompletionResult,
    DetokenizeRequest,
    DetokenizeResult,
    EmbeddingsRequest,
    EmbeddingsResult,
    Usage,
)
from kernai.errors import InvalidRequest, NotSupported
from kernai.http.inference import (
    new_id,
    now,
    prefetch,
    sampling_with_defaults,
    sse_event,
    sse_response,
    stop_list,
)
from kernai.http.routes import RouteClass, route_opt
from kernai.http.scope import caller_of
from kernai.manager import ModelManager
from kernai.surfaces.openai.schemas import (
    AssistantMessage,
    ChatChoice,
    ChatChunkChoice,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Completion,
    CompletionChoice,
    CompletionRequestWire,
    Delta,
    Edit,
    EditChoice,
    EditRequest,
    EmbeddingData,
    EmbeddingList,
    EmbeddingRequestWire,
    EmbeddingUsage,
    SamplingFields,
    ToolCallDeltaWire,
)
from kernai.surfaces.openai.translate import (
    chat_logprobs,
    completion_logprobs,
    response_format_of,
    sum_usage,
    tool_calls_of,
    with_seed,
)

_DONE = b"data: [DONE]\n\n"
EDIT_MAX_TOKENS = 256
"""``/v1/edits`` output limit when neither the request nor the model config sets ``max_tokens``
(OpenAI's edits had none, LocalAI's takes one); a chat without a limit runs to the end of the context."""


def _sampling(
    manager: ModelManager, caller: Caller, model: str, data: SamplingFields, max_tokens: int | None
) -> Any:
    defaults = manager.get(model, caller=caller).config.parameters
    return sampling_with_defaults(
        defaults,
        max_tokens=max_tokens,
        temperature=data.temperature,
        top_p=data.top_p,
        top_k=data.top_k,
        min_p=data.min_p,
        repeat_penalty=data.repeat_penalty,
        presence_penalty=data.presence_penalty,
        frequency_penalty=data.frequency_penalty,
        seed=data.seed,
        stop=stop_list(data.stop),
        logit_bias=data.logit_bias,
    )


def _all_str(items: list[str | int | list[int]]) -> TypeGuard[list[str]]:
    return all(isinstance(item, str) for item in items)


def _is_token_array(value: object) -> TypeGuard[list[int]]:
    return isinstance(value, list) and all(isinstance(t, int) for t in value)


def _token_arrays(value: list[str | int | list[int]], param: str) -> list[list[int]]:
    """One token array or a list of them, as a list of arrays; 400 naming ``param`` for another mix."""
    arrays = [value] if all(isinstance(item, int) for item in value) else value
    checked = [array for array in arrays if _is_token_array(array)]
    if len(checked) != len(arrays):
        raise InvalidRequest(f"{param} must be a string, a list of strings, or token arrays", param=param)
    return checked


async def _token_texts(
    manager: ModelManager, caller: Caller, model: str, arrays: list[list[int]], param: str
) -> list[str]:
    """The text of each token array, as the model detokenizes it (a bad id is a 400 naming ``param``)."""
    texts: list[str] = []
    for tokens in arrays:
        try:
            result = await manager.predict(model, DetokenizeRequest(tokens=tokens), caller=caller)
        except InvalidRequest as error:
            if error.param == "tokens":
                error.param = param
            raise
        assert isinstance(result, DetokenizeResult)
        texts.append(result.content)
    return texts


async def _completion_prompts(
    manager: ModelManager, caller: Caller, data: CompletionRequestWire
) -> list[tuple[str, list[int] | None]]:
    """Each prompt's text, with its token ids when the client sent ids (the backend evaluates those as
    they are; the text is what ``echo`` shows)."""
    value = data.prompt
    if isinstance(value, str):
        return [(value, None)]
    if _all_str(value):
        return [(text, None) for text in value]
    arrays = _token_arrays(value, "prompt")
    texts = await _token_texts(manager, caller, data.model, arrays, "prompt")
    return list(zip(texts, arrays, strict=True))


async def _predict_n(manager: ModelManager, caller: Caller, model: str, request: Any, n: int) -> list[Any]:
    return list(
        await asyncio.gather(
            *(manager.predict(model, with_seed(request, i), caller=caller) for i in range(n))
        )
    )


class OpenAIController(Controller):
    """``/v1/chat/completions``, ``/v1/completions``, ``/v1/edits``, ``/v1/embeddings``."""

    tags = ["OpenAI"]
    opt = route_opt(RouteClass.INFERENCE)

    @post(["/v1/chat/completions", "/chat/completions"], status_code=200)
    async def chat(self, data: ChatCompletionRequest, manager: ModelManager, scope: Scope) -> Any:
        """Chat completion, streamed as server-sent events when ``stream`` is true."""
        caller = caller_of(scope)
        request = ChatRequest(
            messages=data.messages,
            sampling=_sampling(
                manager, caller, data.model, data, data.max_completion_tokens or data.max_tokens
            ),
            tools=data.tools,
            tool_choice=data.tool_choice,
            response_format=response_format_of(data.response_format),
            grammar=data.grammar,
            logprobs=data.logprobs,
            top_logprobs=data.top_logprobs or 0,
            stream=data.stream,
        )
        if data.stream:
            return await self._stream_chat(manager, caller, data, request)
        results: list[ChatResult] = await _predict_n(manager, caller, data.model, request, data.n)
        return ChatCompletion(
            id=new_id("chatcmpl"),
            created=now(),
            model=data.model,
            choices=[
                ChatChoice(
                    index=i,
                    finish_reason=r.finish_reason,
                    logprobs=chat_logprobs(r.logprobs),
                    message=AssistantMessage(
                        role="assistant", content=r.content, tool_calls=tool_calls_of(r)
                    ),
                )
                for i, r in enumerate(results)
            ],
            usage=sum_usage([r.usage for r in results]),
        )

    async def _stream_chat(
        self, manager: ModelManager, caller: Caller, data: ChatCompletionRequest, request: ChatRequest
    ) -> Any:
        ident, created = new_id("chatcmpl"), now()
        first = await prefetch(manager.stream(data.model, request, caller=caller))
        include_usage = data.stream_options is not None and data.stream_options.include_usage

        def event(index: int, delta: Delta, finish: str | None = None, logprobs: Any = None) -> bytes:
            choice = ChatChunkChoice(index=index, delta=delta, finish_reason=finish, logprobs=logprobs)
            return sse_event(
                ChatCompletionChunk(id=ident, created=created, model=data.model, choices=[choice])
            )

        async def events() -> AsyncGenerator[bytes, None]:
            usages: list[Usage] = []
            for index in range(data.n):
                chunks = (
                    first
                    if index == 0
                    else await prefetch(manager.stream(data.model, with_seed(request, index), caller=caller))
                )
                yield event(index, Delta(role="assistant", content=""))
                usage = Usage()  # a chunk's usage is the count so far: the last one is final
                async for chunk in chunks:
                    assert isinstance(chunk, ChatChunk)
                    usage = chunk.usage or usage
                    if chunk.content or chunk.tool_calls or chunk.logprobs:
                        tool_calls = (
                            [ToolCallDeltaWire.of(d) for d in chunk.tool_calls] if chunk.tool_calls else None
                        )
                        yield event(
                            index,
                            Delta(content=chunk.content, tool_calls=tool_calls),
                            logprobs=chat_logprobs(chunk.logprobs),
                        )
                    if chunk.finish_reason is not None:
                        yield event(index, Delta(), finish=chunk.finish_reason)
                usages.append(usage)
            if include_usage:
                yield sse_event(
                    ChatCompletionChunk(
                        id=ident, created=created, model=data.model, choices=[], usage=sum_usage(usages)
                    )
                )
            yield _DONE

        return sse_response(events())

    @post(["/v1/completions", "/completions"], status_code=200)
    async def completions(self, data: CompletionRequestWire, manager: ModelManager, scope: Scope) -> Any:
        """Text completion of one prompt or a list of them (text or token ids); ``n`` choices per prompt."""
        caller = caller_of(scope)
        prompts = await _completion_prompts(manager, caller, data)
        if not prompts:
            raise InvalidRequest("prompt must not be an empty list", param="prompt")
        if data.best_of is not None and data.best_of < data.n:
            raise InvalidRequest("best_of must be at least n", param="best_of")
        if data.best_of is not None and data.best_of > data.n:
            raise NotSupported(
                "best_of greater than n (ranking extra candidates server-side) is not "
                "supported; ask for n choices instead",
                param="best_of",
            )
        base = CompletionRequest(
            prompt="",
            sampling=_sampling(manager, caller, data.model, data, data.max_tokens),
            suffix=data.suffix,
            echo=data.echo,
            logprobs=data.logprobs,
            response_format=response_format_of(data.response_format),
            grammar=data.grammar,
            stream=data.stream,
        )
        requests = [
            with_seed(msgspec.structs.replace(base, prompt=text, prompt_tokens=tokens), i)
            for text, tokens in prompts
            for i in range(data.n)
        ]
        if data.stream:
            return await self._stream_completions(manager, caller, data, requests)
        results: list[CompletionResult] = []
        for result in await asyncio.gather(
            *(manager.predict(data.model, r, caller=caller) for r in requests)
        ):
            assert isinstance(result, CompletionResult)
            results.append(result)
        return Completion(
            id=new_id("cmpl"),
            created=now(),
            model=data.model,
            choices=[
                CompletionChoice(
                    index=i,
                    text=r.text,
                    finish_reason=r.finish_reason,
                    logprobs=completion_logprobs(r.logprobs, len(q.prompt) if q.echo else 0),
                )
                for i, (q, r) in enumerate(zip(requests, results, strict=True))
            ],
            usage=sum_usage([r.usage for r in results]),
        )

    async def _stream_completions(
        self,
        manager: ModelManager,
        caller: Caller,
        data: CompletionRequestWire,
        requests: list[CompletionRequest],
    ) -> Any:
        ident, created = new_id("cmpl"), now()
        first = await prefetch(manager.stream(data.model, requests[0], caller=caller))
        include_usage = data.stream_options is not None and data.stream_options.include_usage

        def event(index: int, text: str, finish: str | None, logprobs: Any = None) -> bytes:
            choice = CompletionChoice(index=index, text=text, finish_reason=finish, logprobs=logprobs)
            return sse_event(Completion(id=ident, created=created, model=data.model, choices=[choice]))

        async def events() -> AsyncGenerator[bytes, None]:
            usages: list[Usage] = []
            for index, request in enumerate(requests):
                chunks = (
                    first
                    if index == 0
                    else await prefetch(manager.stream(data.model, request, caller=caller))
                )
                usage = Usage()
                offset = len(request.prompt) if request.echo else 0  # text_offset runs on across chunks
                async for chunk in chunks:
                    assert isinstance(chunk, CompletionChunk)
                    usage = chunk.usage or usage
                    if chunk.text or chunk.finish_reason is not None or chunk.logprobs:
                        logprobs = completion_logprobs(chunk.logprobs, offset)
                        yield event(index, chunk.text, chunk.finish_reason, logprobs)
                    offset += sum(len(lp.token) for lp in chunk.logprobs or [])
                usages.append(usage)
            if include_usage:
                yield sse_event(
                    Completion(
                        id=ident, created=created, model=data.model, choices=[], usage=sum_usage(usages)
                    )
                )
            yield _DONE

        return sse_response(events())

    @post(["/v1/edits", "/edits"], status_code=200)
    async def edits(self, data: EditRequest, manager: ModelManager, scope: Scope) -> Edit:
        """The legacy edits endpoint, served as a chat: the instruction as system message, input as user."""
        caller = caller_of(scope)
        defaults = manager.get(data.model, caller=caller).config.parameters
        max_tokens = data.max_tokens or defaults.max_tokens or EDIT_MAX_TOKENS
        request = ChatRequest(
            messages=[
                ChatMessage(role="system", content=data.instruction),
                ChatMessage(role="user", content=data.input),
            ],
            sampling=sampling_with_defaults(
                defaults, max_tokens=max_tokens, temperature=data.temperature, top_p=data.top_p
            ),
        )
        results: list[ChatResult] = await _predict_n(manager, caller, data.model, request, data.n)
        return Edit(
            created=now(),
            choices=[EditChoice(index=i, text=r.content or "") for i, r in enumerate(results)],
            usage=sum_usage([r.usage for r in results]),
        )

    @post(["/v1/embeddings", "/embeddings"], status_code=200)
    async def embeddings(
        self, data: EmbeddingRequestWire, manager: ModelManager, scope: Scope
    ) -> EmbeddingList:
        """Embeddings of a string, a list of strings, or token arrays; ``float`` or ``base64``."""
        caller = caller_of(scope)
        if data.encoding_format not in ("float", "base64"):
            raise InvalidRequest("encoding_format must be 'float' or 'base64'", param="encoding_format")
        texts = await self._embedding_texts(manager, caller, data)
        result = await manager.predict(
            data.model, EmbeddingsRequest(input=texts, dimensions=data.dimensions), caller=caller
        )
        assert isinstance(result, EmbeddingsResult)

        def encode(vector: list[float]) -> list[float] | str:
            if data.encoding_format == "base64":
                return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            return vector

        return EmbeddingList(
            data=[EmbeddingData(index=i, embedding=encode(v)) for i, v in enumerate(result.embeddings)],
            model=data.model,
            usage=EmbeddingUsage(result.usage.prompt_tokens, result.usage.prompt_tokens),
        )

    async def _embedding_texts(
        self, manager: ModelManager, caller: Caller, data: EmbeddingRequestWire
    ) -> list[str]:
        value = data.input
        if isinstance(value, str):
            return [value]
        if _all_str(value):
            return list(value)
        return await _token_texts(manager, caller, data.model, _token_arrays(value, "input"), "input")
