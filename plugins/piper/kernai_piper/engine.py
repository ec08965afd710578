"""A piper voice behind the typed speech request."""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from piper import PiperVoice, SynthesisConfig

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest, NotSupported
from kernai_piper.encode import FORMATS, Encoder

OPENAI_VOICES = frozenset(
    {
        "alloy",
        "ash",
        "ballad",
        "coral",
        "echo",
        "fable",
        "nova",
        "onyx",
        "sage",
        "shimmer",
        "verse",
        "marin",
        "cedar",
    }
)
"""Names the OpenAI SDK's users send; they select the voice's default speaker."""


class PiperEngine(Model):
    """One piper voice (one ``.onnx`` file and its ``.onnx.json``), possibly with several speakers."""

    def __init__(self, config: ModelConfig) -> None:
        assert config.model_path is not None
        options = config.options
        self.path = Path(config.model_path)
        self.max_input_chars = int(options["max_input_chars"])
        config_file = options.get("config_file")
        self.voice = PiperVoice.load(
            self.path, config_path=str(self.path.parent / config_file) if config_file else None
        )
        self.name = self.path.name.removesuffix(".onnx")
        self.speakers: dict[str, int] = dict(self.voice.config.speaker_id_map)
        self.default_speaker: str | None = options.get("speaker")
        if self.default_speaker is not None and self.default_speaker not in self.speakers:
            raise InvalidRequest(
                f"speaker '{self.default_speaker}' is not in this voice (has: "
                f"{', '.join(self.speakers) or 'one unnamed speaker'})",
                param="speaker",
            )
        self.sample_rate = int(self.voice.config.sample_rate)
        self.noise_scale: float | None = options.get("noise_scale")
        self.noise_w: float | None = options.get("noise_w")
        self.requests = 0
        self.lock = threading.Lock()

    def predict(self, request: cap.Request) -> cap.Result | Iterator[cap.Chunk] | None:
        if isinstance(request, cap.VoicesRequest):
            return self.voices()
        if not isinstance(request, cap.SpeechRequest):
            return None
        return self.stream(request) if request.stream else self.synthesize(request)

    def voices(self) -> cap.VoicesResult:
        language = self.voice.config.espeak_voice
        if not self.speakers:
            return cap.VoicesResult(
                [cap.Voice(id=self.name, name=self.name, language=language)], default=self.name
            )
        voices = [cap.Voice(id=name, name=name, language=language) for name in self.speakers]
        default = self.default_speaker or next(
            (name for name, sid in self.speakers.items() if sid == self.voice.config.default_speaker_id), None
        )
        return cap.VoicesResult(voices, default=default)

    def _speaker_id(self, voice: str | None) -> int | None:
        name = (voice or "").strip()
        if name in self.speakers:
            return self.speakers[name]
        if name in ("", "default", self.name) or name.lower() in OPENAI_VOICES:
            return self.speakers[self.default_speaker] if self.default_speaker else None
        known = ", ".join(v.id for v in self.voices().voices)
        raise InvalidRequest(f"Unknown voice '{name}' for this model; its voices: {known}", param="voice")

    def _check(self, request: cap.SpeechRequest) -> tuple[str, SynthesisConfig]:
        text = request.input.strip()
        if not text:
            raise InvalidRequest("'input' is empty: give the text to speak", param="input")
        if len(request.input) > self.max_input_chars:
            raise InvalidRequest(
                f"'input' has {len(request.input)} characters; the limit of this model is "
                f"{self.max_input_chars}",
                param="input",
            )
        if request.response_format not in FORMATS:
            raise NotSupported(
                f"response_format '{request.response_format}' is not one of {', '.join(FORMATS)}",
                param="response_format",
            )
        if not 0.25 <= request.speed <= 4.0:
            raise InvalidRequest("'speed' must be between 0.25 and 4.0", param="speed")
        base = self.voice.config.length_scale
        return text, SynthesisConfig(
            speaker_id=self._speaker_id(request.voice),
            length_scale=base / request.speed,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w,
        )

    def _encoded(
        self, request: cap.SpeechRequest, streaming: bool
    ) -> tuple[Encoder, Generator[bytes, None, None]]:
        text, synthesis = self._check(request)
        encoder = Encoder(request.response_format, self.sample_rate, request.sample_rate, streaming=streaming)
        with self.lock:
            self.requests += 1

        def pieces() -> Generator[bytes, None, None]:
            try:
                for chunk in self.voice.synthesize(text, syn_config=synthesis):
                    if data := encoder.write(chunk.audio_int16_array):
                        yield data
                if encoder.samples == 0:
                    raise InvalidRequest("'input' has nothing to speak (no words)", param="input")
                if tail := encoder.finish():
                    yield tail
            finally:
                encoder.close()

        return encoder, pieces()

    def synthesize(self, request: cap.SpeechRequest) -> cap.SpeechResult:
        encoder, pieces = self._encoded(request, streaming=False)
        audio = b"".join(pieces)
        return cap.SpeechResult(audio=audio, sample_rate=encoder.rate, format=request.response_format)

    def stream(self, request: cap.SpeechRequest) -> Iterator[cap.SpeechChunk]:
        encoder, pieces = self._encoded(request, streaming=True)
        return self._chunks(encoder, pieces, request.response_format)

    @staticmethod
    def _chunks(
        encoder: Encoder, pieces: Generator[bytes, None, None], fmt: str
    ) -> Iterator[cap.SpeechChunk]:
        with closing(pieces):
            for data in pieces:
                yield cap.SpeechChunk(audio=data, sample_rate=encoder.rate, format=fmt)

    def status(self) -> dict[str, Any]:
        return {
            "voice": self.name,
            "sample_rate": self.sample_rate,
            "speakers": len(self.speakers) or 1,
            "requests_served": self.requests,
        }
