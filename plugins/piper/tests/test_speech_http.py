"""Speech through the HTTP API: OpenAI, LocalAI and ElevenLabs surfaces, every output format, streaming."""

from __future__ import annotations

import base64
import io
import json
import time
import wave

import av
import httpx
import openai
import pytest

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow  # a piper voice

VOICE = "voice-en-us-joe"
TEXT = "Hello there. Good bye."
STORY = (
    "The sun rose over the quiet hills. Birds began to sing in the tall trees. A farmer walked out to his "
    "field. He looked up at the clouds and smiled. It was going to be a good day. His old dog ran on ahead."
)


def decoded(data: bytes) -> tuple[str, int, float]:
    """Codec name, sample rate and duration in seconds of an encoded audio file."""
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(audio=0))
        return stream.codec_context.name, stream.rate, samples / stream.rate


def speech(server: KernaiServer, **body: object) -> httpx.Response:
    with server.client(timeout=120) as client:
        return client.post("/v1/audio/speech", json={"model": VOICE, "input": TEXT, **body})


@pytest.mark.parametrize(
    ("fmt", "codec", "rate", "media_type"),
    [
        ("wav", "pcm_s16le", 22050, "audio/wav"),
        ("mp3", "mp3float", 22050, "audio/mpeg"),
        ("flac", "flac", 22050, "audio/flac"),
        ("opus", "opus", 48000, "audio/ogg"),
    ],
)
def test_each_format_is_a_valid_file(
    piper_server: KernaiServer, fmt: str, codec: str, rate: int, media_type: str
) -> None:
    response = speech(piper_server, response_format=fmt)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith(media_type)
    got_codec, got_rate, seconds = decoded(response.content)
    assert (got_codec, got_rate) == (codec, rate)
    assert 1.0 < seconds < 4, seconds


def test_pcm_is_24khz_16bit_like_openai(exact_voice_server: KernaiServer) -> None:
    # piper varies phoneme lengths at random unless its noise is off: this voice has it off
    wav = speech(exact_voice_server, response_format="wav")
    pcm = speech(exact_voice_server, response_format="pcm")
    assert pcm.status_code == 200 and pcm.headers["x-sample-rate"] == "24000"
    with wave.open(io.BytesIO(wav.content)) as reader:
        wav_seconds = reader.getnframes() / reader.getframerate()
    assert len(pcm.content) % 2 == 0
    assert abs(len(pcm.content) / 2 / 24000 - wav_seconds) < 0.005


def test_noise_options_make_synthesis_repeatable(
    exact_voice_server: KernaiServer, piper_server: KernaiServer
) -> None:
    exact = [speech(exact_voice_server, response_format="wav").content for _ in range(2)]
    assert exact[0] == exact[1]
    varied = {speech(piper_server, response_format="wav").content for _ in range(3)}
    assert len(varied) > 1


def test_a_voice_config_the_voice_refuses_is_a_503_and_an_error_state(
    exact_voice_server: KernaiServer,
) -> None:
    response = speech(exact_voice_server, model="voice-bad-speaker")
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["code"] == "load_failed" and "nobody" in error["message"]
    with exact_voice_server.client() as client:
        models = {m["id"]: m for m in client.get("/v1/models").json()["data"]}
    status = models["voice-bad-speaker"]["status"]
    assert status["state"] == "error" and "nobody" in status["error"]


def test_speed_changes_duration(piper_server: KernaiServer) -> None:
    normal = decoded(speech(piper_server, response_format="flac").content)[2]
    fast = decoded(speech(piper_server, response_format="flac", speed=2.0).content)[2]
    assert fast < normal * 0.65


def test_stream_sends_sentences_as_they_are_ready(piper_server: KernaiServer) -> None:
    """The first sentence's audio arrives while the other five are still being synthesized."""
    speech(piper_server)  # the voice is loaded before the clock starts
    start = time.monotonic()
    with (
        piper_server.client(timeout=120) as client,
        client.stream(
            "POST",
            "/v1/audio/speech",
            json={"model": VOICE, "input": STORY, "response_format": "wav", "stream": True},
        ) as response,
    ):
        assert response.status_code == 200 and "content-length" not in response.headers
        arrivals = [(time.monotonic() - start, chunk) for chunk in response.iter_raw() if chunk]
    first, total = arrivals[0][0], arrivals[-1][0]
    assert first < 0.5 * total, (first, total)
    data = b"".join(chunk for _, chunk in arrivals)
    assert data[:4] == b"RIFF"
    assert decoded(data)[2] > 8.0


def test_sse_stream_of_base64_audio(piper_server: KernaiServer) -> None:
    with piper_server.client(timeout=120) as client:
        response = client.post(
            "/v1/audio/speech",
            json={"model": VOICE, "input": TEXT, "response_format": "mp3", "stream_format": "sse"},
        )
    assert response.status_code == 200
    events = [json.loads(line[6:]) for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "speech.audio.done"
    audio = b"".join(base64.b64decode(e["audio"]) for e in events if e["type"] == "speech.audio.delta")
    assert decoded(audio)[0] == "mp3float"


def test_openai_sdk_speech(piper_server: KernaiServer) -> None:
    client = openai.OpenAI(base_url=f"{piper_server.url}/v1", api_key="unused")
    response = client.audio.speech.create(model=VOICE, voice="alloy", input=TEXT, response_format="flac")
    assert decoded(response.content)[0] == "flac"


def test_localai_tts_and_elevenlabs(piper_server: KernaiServer) -> None:
    with piper_server.client(timeout=120) as client:
        tts = client.post("/tts", json={"model": VOICE, "input": TEXT})
        assert tts.status_code == 200 and tts.content[:4] == b"RIFF"
        eleven = client.post(
            "/v1/text-to-speech/en_US-joe-medium", params={"output_format": "pcm_16000"}, json={"text": TEXT}
        )
        assert eleven.status_code == 200 and eleven.headers["x-sample-rate"] == "16000"
        by_model = client.post(f"/v1/text-to-speech/{VOICE}/stream", json={"text": TEXT})
        assert by_model.status_code == 200 and decoded(by_model.content)[1] == 44100
        missing = client.post("/v1/text-to-speech/nobody", json={"text": TEXT})
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "voice_not_found"


def test_voices_are_listed(piper_server: KernaiServer) -> None:
    with piper_server.client() as client:
        listed = client.get("/v1/audio/voices").json()["data"]
        eleven = client.get("/v1/voices").json()["voices"]
    assert listed == [
        {
            "model": VOICE,
            "voices": [{"id": "en_US-joe-medium", "name": "en_US-joe-medium", "language": "en-us"}],
            "default": "en_US-joe-medium",
        }
    ]
    assert [v["voice_id"] for v in eleven] == ["en_US-joe-medium"]


@pytest.mark.parametrize(
    ("body", "param", "message"),
    [
        ({"input": ""}, "input", "empty"),
        ({"input": "   "}, "input", "empty"),
        ({"input": "word " * 101}, "input", "limit"),
        ({"input": "...", "response_format": "wav"}, "input", "nothing to speak"),
        ({"voice": "zork"}, "voice", "Unknown voice"),
        ({"response_format": "aac"}, "response_format", "aac"),
        ({"speed": 9}, "speed", "between"),
        ({"sample_rate": 12345}, "sample_rate", "sample_rate"),
    ],
)
def test_bad_requests_are_400(
    piper_server: KernaiServer, body: dict[str, object], param: str, message: str
) -> None:
    response = speech(piper_server, **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and message in error["message"]


def test_bad_stream_request_is_400_before_any_audio(piper_server: KernaiServer) -> None:
    response = speech(piper_server, input="", stream=True)
    assert response.status_code == 400 and response.json()["error"]["param"] == "input"
