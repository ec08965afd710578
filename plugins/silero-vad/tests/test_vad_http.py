"""Voice activity detection through the HTTP API, on speech that the piper plugin synthesizes."""

from __future__ import annotations

import io
import struct
import wave

import pytest

from kernai.testing import KernaiServer

VAD = "silero-vad"
VOICE = "voice-en-us-joe"
SENTENCE = "The quick brown fox jumps over the lazy dog."


def speech_pcm(server: KernaiServer, rate: int) -> bytes:
    with server.client(timeout=120) as client:
        response = client.post(
            "/v1/audio/speech",
            json={"model": VOICE, "input": SENTENCE, "response_format": "pcm", "sample_rate": rate},
        )
    assert response.status_code == 200, response.text
    return response.content


def padded(pcm: bytes, rate: int) -> bytes:
    """``pcm`` with one second of silence on each side."""
    return b"\0\0" * rate + pcm + b"\0\0" * rate


@pytest.mark.slow
def test_json_samples_one_segment_after_one_second(vad_server: KernaiServer) -> None:
    pcm = padded(speech_pcm(vad_server, 16000), 16000)
    samples = [value / 32768 for value in struct.unpack(f"<{len(pcm) // 2}h", pcm)]
    with vad_server.client(timeout=60) as client:
        response = client.post("/vad", json={"model": VAD, "audio": samples})
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    assert len(segments) == 1, segments
    assert abs(segments[0]["start"] - 1.0) <= 0.15
    total = len(samples) / 16000
    assert total - 1.0 - 0.15 <= segments[0]["end"] <= total


@pytest.mark.slow
def test_uploaded_file_is_resampled(vad_server: KernaiServer) -> None:
    rate = 22050  # the voice's own rate; the backend resamples to 16 kHz
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(padded(speech_pcm(vad_server, rate), rate))
    with vad_server.client(timeout=60) as client:
        response = client.post(
            "/v1/vad", files={"file": ("speech.wav", buffer.getvalue())}
        )  # the only VAD model
    assert response.status_code == 200, response.text
    segments = response.json()["segments"]
    assert len(segments) == 1 and abs(segments[0]["start"] - 1.0) <= 0.15, segments
    assert not list((vad_server.data_dir / "tmp" / "uploads").iterdir())


def test_silence_has_no_segment(vad_server: KernaiServer) -> None:
    with vad_server.client() as client:
        response = client.post("/vad", json={"model": VAD, "audio": [0.0] * 16000})
    assert response.status_code == 200 and response.json() == {"segments": []}


@pytest.mark.parametrize(
    ("kwargs", "param", "message"),
    [
        ({"json": {"model": VAD, "audio": []}}, "audio", "empty"),
        ({"json": {"model": VAD, "audio": [0.1] * 100, "sample_rate": 44100}}, "sample_rate", "44100"),
        ({"json": {"model": VAD, "audio": "not samples"}}, None, "Invalid request"),
        ({"content": b"{not json", "headers": {"content-type": "application/json"}}, None, "Invalid request"),
        ({"files": {"file": ("a.wav", b"")}, "data": {"model": VAD}}, "file", "empty"),
        (
            {"files": {"file": ("a.wav", b"RIFF\x24\x08\0\0WAVEfmt ")}, "data": {"model": VAD}},
            "file",
            "not audio",
        ),
        (
            {"files": {"file": ("a.mp3", b"plain text, not audio " * 20)}, "data": {"model": VAD}},
            "file",
            "not audio",
        ),
    ],
)
def test_bad_audio_is_400(
    vad_server: KernaiServer, kwargs: dict[str, object], param: str | None, message: str
) -> None:
    with vad_server.client() as client:
        response = client.post("/vad", **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"], error
