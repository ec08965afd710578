"""Typed requests to results or chunk iterators, one function per capability."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from contextlib import closing

import numpy as np

from kernai import capabilities as cap
from kernai.errors import InvalidRequest, NotSupported
from kernai_llama_cpp import conversation, grammars
from kernai_llama_cpp.generation import Generation
from kernai_llama_cpp.model import LlamaModel

COMPLETION_MAX_TOKENS = 16
"""OpenAI's default ``max_tokens`` for ``/v1/completions``; chat defaults to the rest of the context."""


# --- chat ------------------------------------------------------------------------------------------


def chat_generation(model: LlamaModel, request: cap.ChatRequest) -> tuple[Generation, list[cap.Tool]]:
    tools, required = conversation.chosen_tools(request)
    if tools and request.grammar:
        raise InvalidRequest("grammar cannot be combined with tools", param="grammar")
    prompt, template_stops = conversation.render(model, request, tools, required)
    grammar: str | None
    if tools:
        gbnf = grammars.tool_gbnf(
            tools, optional=not required, answer_schema=grammars.response_schema(request.response_format)
        )
        grammar = grammars.checked(model, gbnf, "tools")
    else:
        grammar = grammars.request_grammar(model, request.grammar, request.response_format)
    generation = Generation(
        model,
        prompt,
        request.sampling,
        param="messages",
        stop=[*request.sampling.stop, *template_stops],
        grammar=grammar,
        top_logprobs=request.top_logprobs if request.logprobs else None,
    )
    generation.check_context()
    return generation, tools


def chat(model: LlamaModel, request: cap.ChatRequest) -> cap.ChatResult:
    generation, tools = chat_generation(model, request)
    pieces = list(generation.run())
    text = "".join(piece.text for piece in pieces)
    logprobs = [lp for piece in pieces for lp in piece.logprobs] if request.logprobs else None
    usage = generation.usage()
    if tools and (call := conversation.parse_tool_call(text, tools)) is not None:
        return cap.ChatResult(tool_calls=[call], finish_reason="tool_calls", usage=usage, logprobs=logprobs)
    return cap.ChatResult(
        content=text,
        finish_reason=generation.finish_reason,
        usage=usage,
        logprobs=logprobs,
        stop_sequence=_requested_stop(generation, request),
    )


def chat_stream(model: LlamaModel, request: cap.ChatRequest) -> Iterator[cap.ChatChunk]:
    generation, tools = chat_generation(model, request)
    return _usage_first(_chat_chunks(model, generation, tools, request), generation)


def _usage_first(
    chunks: Generator[cap.ChatChunk, None, None], generation: Generation
) -> Iterator[cap.ChatChunk]:
    """The chunks, the first one carrying the usage so far: the prompt's size is known from the start
    (Anthropic's ``message_start`` reports it); the last chunk's usage is the final count."""
    with closing(chunks):
        for index, chunk in enumerate(chunks):
            if index == 0 and chunk.usage is None:
                chunk.usage = generation.usage()
            yield chunk


def _chat_chunks(
    model: LlamaModel, generation: Generation, tools: list[cap.Tool], request: cap.ChatRequest
) -> Generator[cap.ChatChunk, None, None]:
    logprobs = request.logprobs
    calling = None if tools else False  # decided by the first text: a tool call starts with "{"
    held: list[str] = []  # a tool call is sent whole, once it is complete
    held_logprobs: list[cap.TokenLogprob] = []
    for piece in generation.run():
        if calling is None and piece.text:
            calling = piece.text.startswith("{")
        if calling is not False:
            held.append(piece.text)
            held_logprobs += piece.logprobs
            continue
        text, piece_logprobs = "".join(held) + piece.text, held_logprobs + piece.logprobs
        held, held_logprobs = [], []
        if text or piece_logprobs:
            yield cap.ChatChunk(content=text, logprobs=piece_logprobs if logprobs else None)
    usage = generation.usage()
    text = "".join(held)
    if calling and (call := conversation.parse_tool_call(text, tools)) is not None:
        delta = cap.ToolCallDelta(index=0, id=call.id, function=call.function)
        yield cap.ChatChunk(tool_calls=[delta], logprobs=held_logprobs if logprobs else None)
        yield cap.ChatChunk(finish_reason="tool_calls", usage=usage)
        return
    if text or held_logprobs:
        yield cap.ChatChunk(content=text, logprobs=held_logprobs if logprobs else None)
    yield cap.ChatChunk(
        finish_reason=generation.finish_reason,
        usage=usage,
        stop_sequence=_requested_stop(generation, request),
    )


def _requested_stop(generation: Generation, request: cap.ChatRequest | cap.CompletionRequest) -> str | None:
    """The client's stop sequence that ended generation (not the chat template's own)."""
    return generation.stop_sequence if generation.stop_sequence in request.sampling.stop else None


# --- completion ------------------------------------------------------------------------------------


def completion_generation(model: LlamaModel, request: cap.CompletionRequest) -> Generation:
    if request.suffix is not None:
        fim = model.fim_tokens()
        if fim is None:
            raise NotSupported(
                f"Model '{model.name}' has no fill-in-the-middle tokens, so 'suffix' is not supported",
                param="suffix",
            )
        prefix, suffix, middle = fim
        bos = [model.llama.token_bos()] if model.llama._model.add_bos_token() else []
        prompt = (
            bos
            + [prefix]
            + _prompt_tokens(model, request, add_bos=False, special=False)
            + [suffix]
            + model.tokenize(request.suffix, add_bos=False, special=False)
            + [middle]
        )
    else:
        prompt = _prompt_tokens(model, request)
    grammar = grammars.request_grammar(model, request.grammar, request.response_format)
    generation = Generation(
        model,
        prompt,
        request.sampling,
        param="prompt",
        default_max_tokens=COMPLETION_MAX_TOKENS,
        stop=request.sampling.stop,
        grammar=grammar,
        top_logprobs=request.logprobs,
    )
    generation.check_context()
    return generation


def _prompt_tokens(model: LlamaModel, request: cap.CompletionRequest, **tokenizing: bool) -> list[int]:
    """The client's token ids as they are (as llama-server takes them), else the prompt's text tokenized."""
    if request.prompt_tokens is None:
        return model.tokenize(request.prompt, **tokenizing)
    model.check_token_ids(request.prompt_tokens, "prompt")
    return request.prompt_tokens


def completion(model: LlamaModel, request: cap.CompletionRequest) -> cap.CompletionResult:
    generation = completion_generation(model, request)
    pieces = list(generation.run())
    text = "".join(piece.text for piece in pieces)
    logprobs = [lp for piece in pieces for lp in piece.logprobs] if request.logprobs is not None else None
    return cap.CompletionResult(
        text=(request.prompt + text) if request.echo else text,
        finish_reason=generation.finish_reason,
        logprobs=logprobs,
        usage=generation.usage(),
        stop_sequence=_requested_stop(generation, request),
    )


def completion_stream(model: LlamaModel, request: cap.CompletionRequest) -> Iterator[cap.CompletionChunk]:
    generation = completion_generation(model, request)

    def chunks() -> Iterator[cap.CompletionChunk]:
        if request.echo:
            yield cap.CompletionChunk(text=request.prompt)
        for piece in generation.run():
            if piece.text or piece.logprobs:
                yield cap.CompletionChunk(
                    text=piece.text, logprobs=piece.logprobs if request.logprobs is not None else None
                )
        yield cap.CompletionChunk(
            finish_reason=generation.finish_reason,
            usage=generation.usage(),
            stop_sequence=_requested_stop(generation, request),
        )

    return chunks()


# --- embeddings and tokens -------------------------------------------------------------------------


def embeddings(model: LlamaModel, request: cap.EmbeddingsRequest) -> cap.EmbeddingsResult:
    counts = [len(model.tokenize(text)) for text in request.input]
    limit = model.embedding_limit
    for index, count in enumerate(counts):
        if count > limit:
            raise InvalidRequest(
                f"Input {index} is {count} tokens long; this model embeds at most {limit} tokens per input",
                param="input",
                code="context_length_exceeded",
            )
    raw = model.embed(request.input)
    vectors = []
    for item in raw:
        vector = _pool(np.asarray(item, dtype=np.float32), model.pooling)
        if request.dimensions is not None:
            if request.dimensions > vector.shape[0]:
                raise InvalidRequest(
                    f"dimensions must be at most {vector.shape[0]} for this model", param="dimensions"
                )
            vector = vector[: request.dimensions]
        norm = float(np.linalg.norm(vector))
        vectors.append((vector / norm if norm > 0 else vector).tolist())
    return cap.EmbeddingsResult(embeddings=vectors, usage=cap.Usage(prompt_tokens=sum(counts)))


def _pool(vectors: np.ndarray, pooling: str | None) -> np.ndarray:
    """One vector per input: the engine's pooled vector, or a pooling of its per-token vectors."""
    if vectors.ndim == 1:
        return vectors
    if pooling == "cls":
        return vectors[0]
    if pooling == "last":
        return vectors[-1]
    return vectors.mean(axis=0)


def tokenize(model: LlamaModel, request: cap.TokenizeRequest) -> cap.TokenizeResult:
    return cap.TokenizeResult(tokens=model.tokenize(request.content, add_bos=request.add_special))


def detokenize(model: LlamaModel, request: cap.DetokenizeRequest) -> cap.DetokenizeResult:
    model.check_token_ids(request.tokens, "tokens")
    text = model.llama.detokenize(request.tokens).decode("utf-8", errors="replace")
    return cap.DetokenizeResult(content=text)
