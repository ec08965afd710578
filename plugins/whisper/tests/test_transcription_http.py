"""Transcription through the HTTP API on real models: piper speaks, whisper listens."""

from __future__ import annotations

import io
import json
import re
import wave
from pathlib import Path

import av
import httpx
import openai
import pytest

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow  # whisper models and a piper voice

TINY = "whisper-tiny.en"
BASE = "whisper-base"
VOICE = "voice-en-us-joe"
SENTENCE = "The quick brown fox jumps over the lazy dog."


def normalised(text: str) -> str:
    return " ".join(re.sub(r"[^a-z0-9 ]", " ", text.lower()).split())


def pcm_wav(pcm: bytes, rate: int) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(pcm)
    return buffer.getvalue()


def reencoded(audio: bytes, container: str, codec: str) -> bytes:
    """``audio`` decoded and encoded again with PyAV, e.g. into ``webm`` with Opus, ``ipod`` (.m4a) with AAC
    (the encoder converts the samples to the rate and format it takes)."""
    out = io.BytesIO()
    with av.open(io.BytesIO(audio)) as source, av.open(out, "w", format=container) as target:
        stream = target.add_stream(codec, rate=48000, layout="mono")
        for frame in source.decode(audio=0):
            frame.pts = None
            for packet in stream.encode(frame):
                target.mux(packet)
        for packet in stream.encode(None):
            target.mux(packet)
    return out.getvalue()


@pytest.fixture(scope="session")
def spoken(audio_server: KernaiServer) -> bytes:
    """SENTENCE as a WAV file, synthesized by the piper plugin over HTTP."""
    with audio_server.client(timeout=120) as client:
        response = client.post(
            "/v1/audio/speech", json={"model": VOICE, "input": SENTENCE, "response_format": "wav"}
        )
    assert response.status_code == 200, response.text
    return response.content


def transcribe(
    server: KernaiServer,
    audio: bytes,
    path: str = "/v1/audio/transcriptions",
    filename: str = "a.wav",
    **fields: str | list[str],
) -> httpx.Response:
    with server.client(timeout=120) as client:
        return client.post(path, files={"file": (filename, audio)}, data={"model": TINY, **fields})


def uploads_left(server: KernaiServer) -> list[Path]:
    folder = server.data_dir / "tmp" / "uploads"
    return list(folder.iterdir()) if folder.exists() else []


def test_round_trip_gives_back_the_sentence(audio_server: KernaiServer, spoken: bytes) -> None:
    response = transcribe(audio_server, spoken)
    assert response.status_code == 200, response.text
    assert normalised(response.json()["text"]) == normalised(SENTENCE)
    assert uploads_left(audio_server) == []


def test_openai_sdk_speech_and_transcription(audio_server: KernaiServer) -> None:
    client = openai.OpenAI(base_url=f"{audio_server.url}/v1", api_key="unused", timeout=120)
    speech = client.audio.speech.create(model=VOICE, voice="alloy", input=SENTENCE)  # mp3, the OpenAI default
    result = client.audio.transcriptions.create(
        model=TINY, file=("speech.mp3", speech.content), response_format="text"
    )
    assert normalised(result) == normalised(SENTENCE)
    verbose = client.audio.transcriptions.create(
        model=TINY,
        file=("speech.mp3", speech.content),
        response_format="verbose_json",
        timestamp_granularities=["word", "segment"],
    )
    assert verbose.language == "en" and 1.5 < verbose.duration < 5
    assert [normalised(w.word) for w in verbose.words] == normalised(SENTENCE).split()
    assert all(a.end <= b.start + 0.01 for a, b in zip(verbose.words, verbose.words[1:], strict=False))
    assert verbose.segments and verbose.segments[0].start < 0.5


def test_srt_from_ogg_and_vtt_from_flac(audio_server: KernaiServer) -> None:
    with audio_server.client(timeout=120) as client:
        ogg, flac = (
            client.post(
                "/v1/audio/speech", json={"model": VOICE, "input": SENTENCE, "response_format": fmt}
            ).content
            for fmt in ("opus", "flac")
        )
    srt = transcribe(audio_server, ogg, filename="speech.ogg", response_format="srt").text
    assert re.match(r"1\n00:00:00,\d{3} --> 00:00:0\d,\d{3}\n\S", srt), srt
    assert normalised(srt.split("\n", 2)[2]) == normalised(SENTENCE)
    vtt = transcribe(audio_server, flac, filename="speech.flac", response_format="vtt").text
    assert re.match(r"WEBVTT\n\n00:00:00\.\d{3} --> 00:00:0\d\.\d{3}\n\S", vtt), vtt


@pytest.mark.parametrize(
    ("container", "codec", "filename"), [("webm", "libopus", "speech.webm"), ("ipod", "aac", "speech.m4a")]
)
def test_webm_and_m4a_uploads(
    audio_server: KernaiServer, spoken: bytes, container: str, codec: str, filename: str
) -> None:
    upload = reencoded(spoken, container, codec)
    with av.open(io.BytesIO(upload)) as check:  # what a browser or a phone records
        assert check.streams.audio[0].codec_context.name == ("opus" if codec == "libopus" else codec)
    response = transcribe(audio_server, upload, filename=filename)
    assert response.status_code == 200, response.text
    assert normalised(response.json()["text"]) == normalised(SENTENCE)


def test_prompt_steers_the_spelling(audio_server: KernaiServer, spoken: bytes) -> None:
    """Whisper's initial prompt: it writes the words as the prompt spells them."""
    response = transcribe(audio_server, spoken, prompt="Quik Brahn Phox, Lazee Dawg.")
    assert response.status_code == 200, response.text
    assert "quik brahn phox" in normalised(response.json()["text"]), response.json()


def test_language_and_temperature(audio_server: KernaiServer, spoken: bytes) -> None:
    english = transcribe(
        audio_server, spoken, language="en", temperature="0.4", response_format="verbose_json"
    )
    assert english.status_code == 200, english.text
    body = english.json()
    assert body["language"] == "en" and normalised(body["text"]) == normalised(SENTENCE)
    assert body["segments"] and {s["temperature"] for s in body["segments"]} == {0.4}  # no fallback ladder
    # the multilingual model takes the language it is told instead of detecting English
    spanish = transcribe(audio_server, spoken, model=BASE, language="es", response_format="verbose_json")
    assert spanish.status_code == 200, spanish.text
    assert spanish.json()["language"] == "es"
    assert (
        transcribe(audio_server, spoken, model=BASE, response_format="verbose_json").json()["language"]
        == "en"
    )


def test_stream_sends_segments_then_done(audio_server: KernaiServer, spoken: bytes) -> None:
    response = transcribe(audio_server, spoken, stream="true")
    assert response.headers["content-type"].startswith("text/event-stream")
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert [e["type"] for e in events][-1] == "transcript.text.done"
    deltas = "".join(e["delta"] for e in events if e["type"] == "transcript.text.delta")
    assert normalised(deltas) == normalised(events[-1]["text"]) == normalised(SENTENCE)
    assert uploads_left(audio_server) == []


def test_translation_with_the_multilingual_base_model(audio_server: KernaiServer, spoken: bytes) -> None:
    response = transcribe(
        audio_server, spoken, path="/v1/audio/translations", model=BASE, response_format="verbose_json"
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"] == "translate"
    assert normalised(body["text"]) == normalised(SENTENCE)


def test_long_file_with_server_side_vad(audio_server: KernaiServer, tmp_path: Path) -> None:
    """Ten minutes of audio, the sentence near the end; uploaded from disk and skipped through with VAD."""
    with audio_server.client(timeout=120) as client:
        speech = client.post(
            "/v1/audio/speech",
            json={"model": VOICE, "input": SENTENCE, "response_format": "pcm", "sample_rate": 16000},
        )
    rate, silence = 16000, b"\0\0" * 16000 * 60
    path = tmp_path / "long.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        for _ in range(9):
            out.writeframes(silence)
        out.writeframes(b"\0\0" * rate * 55 + speech.content + b"\0\0" * rate * 7)
    with open(path, "rb") as handle:
        response = transcribe(audio_server, handle.read(), vad_filter="true", response_format="verbose_json")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["duration"] > 600
    assert "brown fox jumps over the lazy dog" in normalised(
        body["text"]
    )  # tiny.en may drop the first word here
    assert body["segments"][0]["start"] > 590


@pytest.mark.parametrize(
    ("audio", "filename", "fields", "param", "message"),
    [
        (b"", "empty.wav", {}, "file", "empty"),
        (b"RIFF\x24\x08\0\0WAVEfmt ", "truncated.wav", {}, "file", "not audio"),
        (b"hello, this is plain text and not audio at all", "notes.mp3", {}, "file", "not audio"),
        (pcm_wav(b"\0\0" * 800, 16000), "short.wav", {}, "file", "too short"),
        (None, "", {}, "file", "Missing 'file'"),
        (None, "", {"language": "fr"}, "language", "English-only"),
        (None, "", {"language": "xx"}, "language", "Unknown language"),
        (None, "", {"temperature": "2"}, "temperature", "between 0 and 1"),
        (None, "", {"response_format": "docx"}, "response_format", "docx"),
    ],
)
def test_bad_audio_and_parameters_are_400(
    audio_server: KernaiServer,
    spoken: bytes,
    audio: bytes | None,
    filename: str,
    fields: dict[str, str],
    param: str,
    message: str,
) -> None:
    files = {}
    if audio is not None:
        files = {"file": (filename, audio)}
    elif "Missing" not in message:
        files = {"file": ("a.wav", spoken)}
    with audio_server.client(timeout=60) as client:
        response = client.post(
            "/v1/audio/transcriptions", files=files or {"other": ("x", b"x")}, data={"model": TINY, **fields}
        )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"], error
    assert uploads_left(audio_server) == []


def test_not_multipart_is_415(audio_server: KernaiServer) -> None:
    with audio_server.client() as client:
        response = client.post("/v1/audio/transcriptions", json={"model": TINY})
    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "unsupported_media_type" and "multipart/form-data" in error["message"]
