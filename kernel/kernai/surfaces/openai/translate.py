"""OpenAI's wire structs to and from the capability structs: usage, tool calls, log probabilities,
response formats, and the seed of each of ``n`` choices."""

from __future__ import annotations

from typing import Any

import msgspec

from kernai.capabilities import ChatResult, TokenLogprob, Usage
from kernai.http.inference import response_format
from kernai.surfaces.openai.schemas import (
    CompletionLogprobs,
    LogprobsContent,
    PromptTokensDetails,
    ToolCallWire,
    UsageWire,
    WireResponseFormat,
)


def sum_usage(usages: list[Usage]) -> UsageWire:
    prompt = sum(u.prompt_tokens for u in usages)
    completion = sum(u.completion_tokens for u in usages)
    cached = PromptTokensDetails(sum(u.cached_tokens for u in usages))
    return UsageWire(prompt, completion, prompt + completion, cached)


def tool_calls_of(result: ChatResult) -> list[ToolCallWire] | None:
    return [ToolCallWire.of(call) for call in result.tool_calls] if result.tool_calls else None


def chat_logprobs(logprobs: list[TokenLogprob] | None) -> LogprobsContent | None:
    if logprobs is None:
        return None
    return LogprobsContent(
        content=[
            {
                "token": lp.token,
                "logprob": lp.logprob,
                "bytes": lp.bytes,
                "top_logprobs": [
                    {"token": t.token, "logprob": t.logprob, "bytes": t.bytes} for t in lp.top_logprobs
                ],
            }
            for lp in logprobs
        ]
    )


def completion_logprobs(logprobs: list[TokenLogprob] | None, start: int = 0) -> CompletionLogprobs | None:
    if logprobs is None:
        return None
    offsets, offset = [], start
    for lp in logprobs:
        offsets.append(offset)
        offset += len(lp.token)
    return CompletionLogprobs(
        tokens=[lp.token for lp in logprobs],
        token_logprobs=[lp.logprob for lp in logprobs],
        top_logprobs=[{t.token: t.logprob for t in lp.top_logprobs} for lp in logprobs],
        text_offset=offsets,
    )


def response_format_of(wire: WireResponseFormat | None) -> Any:
    if wire is None:
        return None
    schema = wire.json_schema.schema if wire.json_schema is not None else wire.schema
    return response_format(wire.type, schema)


def with_seed(request: Any, index: int) -> Any:
    """The request for choice ``index`` of ``n``: a given seed is offset so choices differ."""
    if index == 0 or request.sampling.seed is None:
        return request
    sampling = msgspec.structs.replace(request.sampling, seed=request.sampling.seed + index)
    return msgspec.structs.replace(request, sampling=sampling)
