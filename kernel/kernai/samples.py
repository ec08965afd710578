"""Small sample inputs for each capability (a tone, a sentence), for ``kernai doctor`` and the conformance
kit."""

from __future__ import annotations

import io
import math
import struct
import wave
from pathlib import Path

from kernai import capabilities as cap


def tone_pcm(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A 440 Hz tone as float32 PCM, for VAD requests."""
    return struct.pack(
        f"<{int(seconds * rate)}f",
        *(0.3 * math.sin(2 * math.pi * 440 * i / rate) for i in range(int(seconds * rate))),
    )


def tone_wav(seconds: float = 1.0, rate: int = 16000) -> bytes:
    """A 440 Hz tone as a 16-bit mono WAV file, for transcription requests."""
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(32767 * 0.3 * math.sin(2 * math.pi * 440 * i / rate)))
                for i in range(int(seconds * rate))
            )
        )
    return buffer.getvalue()


DEFAULT_REQUESTS: dict[cap.Capability, cap.Request] = {
    cap.Capability.CHAT: cap.ChatRequest(
        messages=[cap.ChatMessage(role="user", content="Say hello")],
        sampling=cap.Sampling(max_tokens=8, temperature=0),
    ),
    cap.Capability.COMPLETION: cap.CompletionRequest(
        prompt="Once upon a time", sampling=cap.Sampling(max_tokens=8, temperature=0)
    ),
    cap.Capability.EMBEDDINGS: cap.EmbeddingsRequest(input=["hello world", "goodbye"]),
    cap.Capability.TOKENIZE: cap.TokenizeRequest(content="hello world"),
    cap.Capability.APPLY_TEMPLATE: cap.ApplyTemplateRequest(
        messages=[cap.ChatMessage(role="user", content="Say hello")]
    ),
    cap.Capability.SPEECH: cap.SpeechRequest(input="Hello world."),
    cap.Capability.VAD: cap.VADRequest(audio=tone_pcm()),
    cap.Capability.RERANK: cap.RerankRequest(
        query="light", documents=["the speed of light", "bread recipes"]
    ),
}


def sample_request(capability: cap.Capability, folder: Path) -> cap.Request | None:
    """A request for ``capability`` that any model of it can serve (files go to ``folder``); ``None``
    where the capability needs an input only the backend knows how to make (detection's image)."""
    if capability is cap.Capability.TRANSCRIPTION:
        audio = folder / "tone.wav"
        audio.write_bytes(tone_wav())
        return cap.TranscriptionRequest(audio_path=str(audio))
    if capability is cap.Capability.DETOKENIZE:
        return cap.DetokenizeRequest(tokens=[1, 2, 3])
    return DEFAULT_REQUESTS.get(capability)
