"""Browser tests of the web UI: Playwright driving Debian's chromium (``/usr/bin/chromium``, which
``scripts/test.sh`` installs with apt; Playwright never downloads a browser here) against real servers."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from kernai.testing import KernaiServer, ServerFactory, model_configs
from kernai_llama_cpp.testing import shared_tiny_llama

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
    }
)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(
            f"no {CHROMIUM}: install Debian's chromium (apt-get install chromium; scripts/test.sh does)"
        )
    launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
    yield launched
    launched.close()


@pytest.fixture(scope="session")
def ui_server(kernai_server: ServerFactory) -> KernaiServer:
    """The tiny llama GGUF (llama-cpp) and an echo model (the reference backend)."""
    return kernai_server({"tiny.gguf": shared_tiny_llama(), **TEXT_MODELS}, plugins="llama-cpp,reference")


def open_context(
    browser: Browser, server: KernaiServer, viewport: dict[str, int] = DESKTOP
) -> BrowserContext:
    context = browser.new_context(base_url=server.url, viewport=viewport)  # type: ignore[arg-type]
    context.set_default_timeout(30_000)
    return context


@pytest.fixture
def page(browser: Browser, ui_server: KernaiServer) -> Iterator[Page]:
    """A fresh browser context (no cookies, no localStorage) on the UI server, at desktop width."""
    context = open_context(browser, ui_server)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    yield opened
    context.close()
    assert not errors, f"script errors on the page: {errors}"
