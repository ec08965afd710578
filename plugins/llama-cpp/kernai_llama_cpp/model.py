"""A loaded GGUF model: the llama.cpp handle, its chat formatter, and the facts the hooks report."""

from __future__ import annotations

import ctypes
import inspect
import threading
from collections.abc import Iterator
from typing import Any

import llama_cpp
from llama_cpp import llama_chat_format

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest
from kernai_llama_cpp.options import DEFAULT_CONTEXT_SIZE, POOLING_TYPES, default_threads

Formatter = Any  # llama_chat_format.ChatFormatter: (messages=..., tools=...) -> ChatFormatterResponse
_PROBE = "kernai-probe-7f3a"


class LlamaModel(Model):
    """One ``llama_cpp.Llama`` plus what the request handlers need to know about it.

    llama.cpp contexts are not thread-safe: every use of ``llama`` holds ``lock``.
    """

    def __init__(self, config: ModelConfig) -> None:
        options = config.options
        threads = config.threads or default_threads()
        self.embeddings = config.embeddings
        self.pooling: str | None = options.get("pooling")
        context_size = config.context_size or DEFAULT_CONTEXT_SIZE
        batch = int(options["batch_size"])
        if config.model_path is None:
            raise InvalidRequest("parameters.model: a GGUF file is required")
        if self.embeddings:  # a whole input must fit in one (micro-)batch
            batch = max(batch, context_size)
        self.llama = llama_cpp.Llama(
            config.model_path,
            n_ctx=context_size,
            n_batch=batch,
            n_ubatch=batch if self.embeddings else min(batch, 512),
            n_threads=threads,
            n_threads_batch=options.get("threads_batch") or threads,
            n_gpu_layers=config.gpu_layers or 0,
            use_mmap=bool(options["mmap"]),
            use_mlock=bool(options["mlock"]),
            flash_attn=bool(options["flash_attn"]),
            embedding=self.embeddings,
            pooling_type=POOLING_TYPES[self.pooling] if self.pooling and self.embeddings else -1,
            verbose=False,
        )
        self.name = config.name
        self.context_size = self.llama.n_ctx()
        self.n_vocab = self.llama.n_vocab()
        self.lock = threading.Lock()
        self._pieces: dict[int, bytes] = {}
        self.formatter, self.template_source = self._chat_formatter(options)
        self.folds_system, self.keeps_tool_role = self._probe_template()
        self.requests = 0
        self.tokens_generated = 0
        self.active_generations = 0

    def predict(self, request: cap.Request) -> cap.Result | Iterator[cap.Chunk] | None:
        from kernai_llama_cpp import handlers  # handlers import this module

        self.requests += 1
        match request:
            case cap.ChatRequest(stream=True):
                return handlers.chat_stream(self, request)
            case cap.ChatRequest():
                return handlers.chat(self, request)
            case cap.CompletionRequest(stream=True):
                return handlers.completion_stream(self, request)
            case cap.CompletionRequest():
                return handlers.completion(self, request)
            case cap.EmbeddingsRequest():
                return handlers.embeddings(self, request)
            case cap.TokenizeRequest():
                return handlers.tokenize(self, request)
            case cap.DetokenizeRequest():
                return handlers.detokenize(self, request)
        return None

    # --- chat templates ----------------------------------------------------------------------------

    def _chat_formatter(self, options: dict[str, Any]) -> tuple[Formatter | None, str | None]:
        """The formatter from the config's Jinja template, its chat format, or the GGUF's template."""
        if template := options.get("chat_template"):
            return self._jinja(template), "config chat_template"
        if name := options.get("chat_format"):
            return _registered_formatter(name), f"chat_format {name}"
        if template := self.llama.metadata.get("tokenizer.chat_template"):
            return self._jinja(template), "gguf"
        return None, None

    def _jinja(self, template: str) -> Formatter:
        model = self.llama._model
        eos, bos = self.llama.token_eos(), self.llama.token_bos()
        try:
            return llama_chat_format.Jinja2ChatFormatter(
                template=template,
                eos_token=model.token_get_text(eos) if eos != -1 else "",
                bos_token=model.token_get_text(bos) if bos != -1 else "",
                stop_token_ids=[eos],
            )
        except Exception as exc:
            raise InvalidRequest(f"chat_template: not a valid Jinja template: {exc}") from None

    def _probe_template(self) -> tuple[bool, bool]:
        """Whether system messages must be folded into the first user turn (the template drops or
        rejects them), and whether the template renders ``tool`` messages."""
        formatter = self.formatter
        if formatter is None:
            return False, False

        def renders(messages: list[dict[str, Any]]) -> bool:
            try:
                return _PROBE in formatter(messages=messages).prompt
            except Exception:
                return False

        keeps_system = renders([{"role": "system", "content": _PROBE}, {"role": "user", "content": "hi"}])
        keeps_tool = renders(
            [
                {"role": "user", "content": "hi"},
                {"role": "assistant", "content": "call"},
                {"role": "tool", "content": _PROBE, "tool_call_id": "call_0"},
            ]
        )
        return not keeps_system, keeps_tool

    # --- tokens ------------------------------------------------------------------------------------

    def tokenize(self, text: str, *, add_bos: bool = True, special: bool = True) -> list[int]:
        return self.llama.tokenize(text.encode("utf-8"), add_bos=add_bos, special=special)

    def piece(self, token: int) -> bytes:
        """The bytes of one token as it appears in generated text (special tokens render empty)."""
        if (cached := self._pieces.get(token)) is not None:
            return cached
        size = 64
        while True:
            buffer = ctypes.create_string_buffer(size)
            length = llama_cpp.llama_token_to_piece(self.llama._model.vocab, token, buffer, size, 0, False)
            if length >= 0:
                break
            size = -length
        self._pieces[token] = piece = buffer.raw[:length]
        return piece

    def is_end_of_generation(self, token: int) -> bool:
        return bool(llama_cpp.llama_vocab_is_eog(self.llama._model.vocab, token))

    def check_token_ids(self, tokens: list[int], param: str) -> None:
        bad = next((t for t in tokens if not 0 <= t < self.n_vocab), None)
        if bad is not None:
            raise InvalidRequest(
                f"Token id {bad} is out of range (the vocabulary has {self.n_vocab} tokens)", param=param
            )

    @property
    def embedding_limit(self) -> int:
        """The most tokens one input to :meth:`embed` may have."""
        return min(self.context_size, self.llama.n_batch)

    def embed(self, texts: list[str]) -> list[Any]:
        """Per input, a pooled vector (``embeddings: true`` with pooling) or one vector per token.

        A generative model is switched to embedding output for the call and back afterwards, so
        every model serves embeddings (as Ollama's do); ``embeddings: true`` makes it the model's job.
        """
        if self.embeddings:
            return self.llama.embed(texts, normalize=False, truncate=False)
        context = self.llama.ctx
        self.llama.context_params.embeddings = True
        llama_cpp.llama_set_embeddings(context, True)
        try:
            return self.llama.embed(texts, normalize=False, truncate=False)
        finally:
            llama_cpp.llama_set_embeddings(context, False)
            self.llama.context_params.embeddings = False
            self.llama.reset()  # embed cleared the KV cache under the prompt cache's feet

    def fim_tokens(self) -> tuple[int, int, int] | None:
        model = self.llama._model
        tokens = (model.token_prefix(), model.token_suffix(), model.token_middle())
        return None if -1 in tokens else tokens

    def engine_settings(self) -> dict[str, Any]:
        """The settings as llama.cpp runs them (read from its context and parameters, not the config)."""
        context, load_mode = self.llama.ctx, self.llama.model_params.load_mode
        flash_attn = self.llama.context_params.flash_attn_type == llama_cpp.LLAMA_FLASH_ATTN_TYPE_ENABLED
        return {
            "context_size": llama_cpp.llama_n_ctx(context),
            "threads": llama_cpp.llama_n_threads(context),
            "threads_batch": llama_cpp.llama_n_threads_batch(context),
            "batch_size": llama_cpp.llama_n_batch(context),
            "ubatch_size": llama_cpp.llama_n_ubatch(context),
            "gpu_layers": self.llama.model_params.n_gpu_layers,
            "mmap": load_mode in (llama_cpp.LLAMA_LOAD_MODE_MMAP, llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK),
            "mlock": load_mode in (llama_cpp.LLAMA_LOAD_MODE_MLOCK, llama_cpp.LLAMA_LOAD_MODE_MMAP_MLOCK),
            "flash_attn": flash_attn,
            "pooling": self.pooling,
        }

    def status(self) -> dict[str, Any]:
        return {
            **self.engine_settings(),
            "vocabulary": self.n_vocab,
            "chat_template": self.template_source,
            "embeddings": self.embeddings,
            "requests": self.requests,
            "tokens_generated": self.tokens_generated,
            "active_generations": self.active_generations,
        }

    def close(self) -> None:
        self.llama.close()


def _registered_formatter(name: str) -> Formatter:
    """The formatter behind one of llama-cpp-python's registered chat formats."""
    try:
        handler = llama_chat_format.get_chat_completion_handler(name)
    except Exception:
        handler = None
    formatter = inspect.getclosurevars(handler).nonlocals.get("chat_formatter") if handler else None
    if formatter is None:
        registry = llama_chat_format.LlamaChatCompletionHandlerRegistry()._chat_handlers
        known = ", ".join(
            n for n, h in registry.items() if "chat_formatter" in inspect.getclosurevars(h).nonlocals
        )
        raise InvalidRequest(f"chat_format: unknown or unsupported chat format '{name}' (known: {known})")
    return formatter
