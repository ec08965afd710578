"""The audio and detection playgrounds in a real browser, on the real piper, whisper, silero and YOLO
models: speak a sentence, transcribe a generated WAV with its voice activity, count the boxes drawn."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from kernai.testing import KernaiServer
from kernai_ultralytics.testing import sample_image

pytestmark = pytest.mark.slow
SENTENCE = "The quick brown fox jumps over the lazy dog."


@pytest.fixture(scope="module")
def spoken_wav(media_server: KernaiServer, tmp_path_factory: pytest.TempPathFactory) -> Path:
    with media_server.client(timeout=120) as client:
        response = client.post("/v1/audio/speech", json={"model": "voice", "input": SENTENCE})
    assert response.status_code == 200, response.text
    path = tmp_path_factory.mktemp("speech") / "fox.wav"
    path.write_bytes(response.content)
    return path


def test_speak_a_sentence_and_the_player_gets_it(media_page: Page) -> None:
    media_page.goto("/ui/audio")
    expect(media_page.locator("#tts-model option", has_text="voice")).to_have_count(1)
    expect(media_page.locator("#tts-voice option")).not_to_have_count(0)  # the voices of the model
    media_page.fill("#tts-text", "Hello from the browser.")
    media_page.click("#speak")
    audio = media_page.locator("#tts-audio")
    expect(audio).to_have_attribute("src", re.compile(r"^blob:"), timeout=60_000)
    duration = media_page.wait_for_function(
        "() => { const a = document.getElementById('tts-audio'); return a.readyState >= 1 && a.duration; }"
    )
    assert duration.json_value() > 0.5


def test_transcribe_a_generated_wav_with_timestamps_and_voice_activity(
    media_page: Page, spoken_wav: Path
) -> None:
    media_page.goto("/ui/audio")
    expect(media_page.locator("#stt-model option", has_text="whisper")).to_have_count(1)
    expect(media_page.locator("#vad-model option", has_text="silero")).to_have_count(1)
    media_page.set_input_files("#stt-file", spoken_wav)
    media_page.click("#transcribe")
    expect(media_page.locator("#stt-text")).to_contain_text("quick brown fox", timeout=90_000)
    expect(media_page.locator("#segments li").first).to_contain_text(re.compile(r"0:00\.\d\d – 0:0\d\.\d\d"))
    expect(media_page.locator("#vad-summary")).to_contain_text(re.compile(r"[1-9]\d* speech segments?"))


def test_detection_draws_a_box_for_each_person_on_the_bus(media_page: Page) -> None:
    media_page.goto("/ui/detection")
    expect(media_page.locator("#model option", has_text="fall")).to_have_count(1)
    media_page.set_input_files("#image", sample_image("bus.jpg"))
    media_page.click("#detect")
    expect(media_page.locator("#summary")).to_have_text("4 objects found", timeout=120_000)
    expect(media_page.locator("#boxes .box")).to_have_count(4)
    expect(media_page.locator("#boxes .box span").first).to_contain_text("Normal")
    expect(media_page.locator("#results tr")).to_have_count(4)
