"""faster-whisper behind the typed transcription request."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator
from typing import Any

import av
import numpy as np
from faster_whisper import WhisperModel
from faster_whisper.audio import decode_audio
from faster_whisper.tokenizer import _LANGUAGE_CODES

from kernai import Model
from kernai import capabilities as cap
from kernai.config import ModelConfig
from kernai.errors import InvalidRequest

SAMPLE_RATE = 16000


def decode(path: str) -> np.ndarray:
    """The file's audio as 16 kHz mono float32; a 400 for anything that is not decodable audio."""
    try:
        return decode_audio(path, sampling_rate=SAMPLE_RATE)
    except IndexError:  # PyAV found streams, none of them audio
        raise InvalidRequest("The file has no audio stream", param="file") from None
    except (av.FFmpegError, ValueError) as exc:
        raise InvalidRequest(
            f"The file is not audio that can be decoded ({getattr(exc, 'strerror', None) or exc})",
            param="file",
        ) from None


def _segment(segment: Any) -> cap.Segment:
    words = None
    if segment.words is not None:
        words = [
            cap.Word(
                word=w.word,
                start=round(float(w.start), 3),
                end=round(float(w.end), 3),
                probability=float(w.probability),
            )
            for w in segment.words
        ]
    return cap.Segment(
        id=segment.id - 1,  # faster-whisper counts from 1, OpenAI from 0
        start=round(float(segment.start), 3),
        end=round(float(segment.end), 3),
        text=segment.text,
        words=words,
        avg_logprob=float(segment.avg_logprob),
        no_speech_prob=float(segment.no_speech_prob),
        temperature=float(segment.temperature or 0.0),
        compression_ratio=float(segment.compression_ratio),
        tokens=[int(token) for token in segment.tokens],
    )


class WhisperEngine(Model):
    """One loaded Whisper model and the defaults from its config."""

    def __init__(self, config: ModelConfig) -> None:
        options = config.options
        self.path = config.model_path
        self.beam_size = int(options["beam_size"])
        self.language: str | None = options.get("language")
        self.vad_filter = bool(options["vad_filter"])
        self.min_duration = float(options["min_duration"])
        self.compute_type = str(options["compute_type"])
        self.model = WhisperModel(
            str(config.model_path),
            device=options["device"],
            compute_type=self.compute_type,
            cpu_threads=config.threads or 0,
            num_workers=config.parallel,
            local_files_only=True,
        )
        self.requests = 0
        self.lock = threading.Lock()

    @property
    def multilingual(self) -> bool:
        return bool(self.model.model.is_multilingual)

    def _language(self, request: cap.TranscriptionRequest) -> str | None:
        language = (request.language or self.language or "").strip().lower() or None
        if language is None:
            return None
        if language not in _LANGUAGE_CODES:
            raise InvalidRequest(
                f"Unknown language code '{language}' (use ISO-639-1, e.g. 'en')", param="language"
            )
        if not self.multilingual and language != "en":
            raise InvalidRequest(
                f"This model is English-only and cannot transcribe '{language}'", param="language"
            )
        return language

    def _run(self, request: cap.TranscriptionRequest) -> tuple[Iterable[Any], Any]:
        language = self._language(request)
        audio = decode(request.audio_path)
        duration = len(audio) / SAMPLE_RATE
        if duration < self.min_duration:
            raise InvalidRequest(
                f"The audio is too short ({duration:.2f} s); the minimum is {self.min_duration:g} s",
                param="file",
            )
        with self.lock:
            self.requests += 1
        temperature: float | list[float]
        if request.temperature is None:
            temperature = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
        else:
            temperature = request.temperature
        return self.model.transcribe(
            audio,
            language=language,
            task="translate" if request.translate and self.multilingual else "transcribe",
            initial_prompt=request.prompt or None,
            temperature=temperature,
            beam_size=self.beam_size,
            word_timestamps=request.word_timestamps,
            vad_filter=request.vad_filter or self.vad_filter,
        )

    def predict(self, request: cap.Request) -> cap.Result | Iterator[cap.Chunk] | None:
        if not isinstance(request, cap.TranscriptionRequest):
            return None
        return self.stream(request) if request.stream else self.transcribe(request)

    def transcribe(self, request: cap.TranscriptionRequest) -> cap.TranscriptionResult:
        segments, info = self._run(request)
        converted = [_segment(segment) for segment in segments]
        return cap.TranscriptionResult(
            text="".join(segment.text for segment in converted).strip(),
            language=info.language,
            duration=round(float(info.duration), 3),
            segments=converted,
        )

    def stream(self, request: cap.TranscriptionRequest) -> Iterator[cap.TranscriptionChunk]:
        """One chunk per segment as it is decoded; the last chunk carries language and duration.

        Decoding happens before the first chunk, so a bad file fails as a whole request."""
        segments, info = self._run(request)
        return self._chunks(segments, info)

    @staticmethod
    def _chunks(segments: Iterable[Any], info: Any) -> Iterator[cap.TranscriptionChunk]:
        for segment in segments:
            yield cap.TranscriptionChunk(segment=_segment(segment))
        yield cap.TranscriptionChunk(language=info.language, duration=round(float(info.duration), 3))

    def status(self) -> dict[str, Any]:
        return {
            "model": self.path,
            "multilingual": self.multilingual,
            "compute_type": self.compute_type,
            "requests_served": self.requests,
        }

    def close(self) -> None:
        del self.model
