"""A conformance kit for backend authors.

Subclass :class:`BackendConformance` in a pytest module, name your backend and give it a model
config; pytest then runs the contract checks against a real worker process::

    from kernai.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "my-backend"
        model_config = {"parameters": {"model": "tiny.bin"}}

        def prepare_models_dir(self, models_dir):
            (models_dir / "tiny.bin").write_bytes(make_tiny_model())

Capabilities whose requests need data (transcription, VAD, detection) need a sample in
``requests``; text capabilities have defaults.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import msgspec
import pytest
import yaml

from kernai import capabilities as cap
from kernai.manager import ModelManager
from kernai.plugins import registry
from kernai.samples import sample_request
from kernai.settings import Settings

T = TypeVar("T")

RESULT_TYPES: dict[cap.Capability, type[msgspec.Struct]] = {
    cap.Capability.CHAT: cap.ChatResult,
    cap.Capability.COMPLETION: cap.CompletionResult,
    cap.Capability.EMBEDDINGS: cap.EmbeddingsResult,
    cap.Capability.TOKENIZE: cap.TokenizeResult,
    cap.Capability.DETOKENIZE: cap.DetokenizeResult,
    cap.Capability.APPLY_TEMPLATE: cap.ApplyTemplateResult,
    cap.Capability.TRANSCRIPTION: cap.TranscriptionResult,
    cap.Capability.SPEECH: cap.SpeechResult,
    cap.Capability.VAD: cap.VADResult,
    cap.Capability.DETECTION: cap.DetectionResult,
    cap.Capability.RERANK: cap.RerankResult,
}
CHUNK_TYPES: dict[cap.Capability, type[msgspec.Struct]] = {
    cap.Capability.CHAT: cap.ChatChunk,
    cap.Capability.COMPLETION: cap.CompletionChunk,
    cap.Capability.TRANSCRIPTION: cap.TranscriptionChunk,
    cap.Capability.SPEECH: cap.SpeechChunk,
}


class BackendConformance:
    """Contract checks for one backend; subclass and set ``backend`` and ``model_config``."""

    backend: ClassVar[str]
    model_config: ClassVar[dict[str, Any]] = {}
    requests: ClassVar[dict[cap.Capability, cap.Request]] = {}

    def prepare_models_dir(self, models_dir: Path) -> None:
        """Put the model files that ``model_config`` names into ``models_dir``."""

    # --- harness -------------------------------------------------------------------------------

    @pytest.fixture
    def conformance_settings(self, tmp_path: Path) -> Settings:
        models_dir = tmp_path / "models"
        models_dir.mkdir()
        self.prepare_models_dir(models_dir)
        config = {"name": "conformance", "backend": self.backend, **self.model_config}
        (models_dir / "conformance.yaml").write_text(yaml.safe_dump(config))
        return Settings(models_dir=str(models_dir), data_dir=str(tmp_path / "data"))

    def run(self, settings: Settings, check: Callable[[ModelManager], Awaitable[T]]) -> T:
        async def main() -> T:
            manager = ModelManager.open(settings, registry())
            manager.reload()
            assert not manager.config_errors, f"model config rejected: {manager.config_errors}"
            try:
                return await check(manager)
            finally:
                await manager.shutdown()

        return asyncio.run(main())

    def request_for(self, capability: cap.Capability, tmp_path: Path) -> cap.Request:
        if capability in self.requests:
            return self.requests[capability]
        if capability is cap.Capability.DETOKENIZE:
            raise LookupError("detokenize is checked together with tokenize")
        if (request := sample_request(capability, tmp_path)) is None:
            pytest.fail(f"give a sample request for '{capability.value}' in {type(self).__name__}.requests")
        return request

    @property
    def capabilities(self) -> list[cap.Capability]:
        entry = registry().backends.get(self.backend)
        assert entry is not None, f"backend '{self.backend}' is not registered by any installed plugin"
        return list(entry.backend.capabilities)

    # --- the contract --------------------------------------------------------------------------

    def test_declares_backend(self) -> None:
        capabilities = self.capabilities
        assert capabilities, "a backend must declare at least one capability"
        assert all(isinstance(c, cap.Capability) for c in capabilities)

    def test_loads_and_reports_status(self, conformance_settings: Settings) -> None:
        async def check(manager: ModelManager) -> dict[str, Any]:
            model = manager.get("conformance")
            worker = await manager.ensure_running(model)
            assert model.state.value == "ready"
            return await worker.status()

        info = self.run(conformance_settings, check)
        assert isinstance(info, dict)
        msgspec.json.encode(info)  # status must be JSON-serialisable

    def test_predicts_each_capability(self, conformance_settings: Settings, tmp_path: Path) -> None:
        wanted = [c for c in self.capabilities if c is not cap.Capability.DETOKENIZE]

        async def check(manager: ModelManager) -> dict[cap.Capability, cap.Result]:
            results: dict[cap.Capability, cap.Result] = {}
            for capability in wanted:
                results[capability] = await manager.predict(
                    "conformance", self.request_for(capability, tmp_path)
                )
            if cap.Capability.DETOKENIZE in self.capabilities:
                tokenized = results[cap.Capability.TOKENIZE]
                assert isinstance(tokenized, cap.TokenizeResult), f"tokenize: got {type(tokenized).__name__}"
                tokens = tokenized.tokens
                results[cap.Capability.DETOKENIZE] = await manager.predict(
                    "conformance", cap.DetokenizeRequest(tokens=tokens)
                )
            return results

        for capability, result in self.run(conformance_settings, check).items():
            assert isinstance(result, RESULT_TYPES[capability]), (
                f"{capability.value}: got {type(result).__name__}"
            )

    def test_streams(self, conformance_settings: Settings, tmp_path: Path) -> None:
        streamable = [c for c in self.capabilities if c in CHUNK_TYPES]
        if not streamable:
            pytest.skip("no streaming capability declared")

        async def collect(manager: ModelManager, request: cap.Request) -> list[Any]:
            stream: AsyncIterator[Any] = manager.stream("conformance", request)
            return [chunk async for chunk in stream]

        async def check(manager: ModelManager) -> dict[cap.Capability, list[Any]]:
            out = {}
            for capability in streamable:
                request = msgspec.structs.replace(self.request_for(capability, tmp_path), stream=True)
                out[capability] = await collect(manager, request)
            return out

        for capability, chunks in self.run(conformance_settings, check).items():
            assert chunks, f"{capability.value}: the stream yielded no chunk"
            assert all(isinstance(c, CHUNK_TYPES[capability]) for c in chunks)

    def test_shuts_down_cleanly(self, conformance_settings: Settings) -> None:
        async def check(manager: ModelManager) -> int | None:
            worker = await manager.ensure_running(manager.get("conformance"))
            await worker.stop(grace=30)
            assert worker.process is not None
            return worker.process.returncode

        assert self.run(conformance_settings, check) == 0, "the worker must exit 0 after the shutdown hook"
