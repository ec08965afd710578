"""The chat playground in a real browser: a streamed answer from the tiny llama, conversations kept."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Browser, Page, expect

from kernai.testing import KernaiServer
from tests.ui.conftest import PHONE, browsing

pytestmark = pytest.mark.slow


def test_root_leads_to_the_chat_page(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/chat$"))
    expect(page.get_by_role("link", name="Chat")).to_have_attribute("aria-current", "page")


def test_a_message_gets_a_streamed_answer_with_its_speed(page: Page) -> None:
    page.goto("/ui/chat")
    expect(page.locator('#model option[value="tiny"]')).to_have_count(1)
    page.locator("#settings summary").click()
    page.select_option("#model", "tiny")
    page.fill("#max-tokens", "24")
    page.fill("#prompt", "Hello there")
    page.keyboard.press("Enter")  # Enter sends
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".stats")).to_contain_text("tok/s", timeout=60_000)
    expect(answer.locator(".stats")).to_contain_text("TTFT")
    assert answer.locator(".body").inner_text().strip()
    expect(page.locator(".message.user")).to_have_text(re.compile("Hello there"))
    # the conversation is kept in the browser: it is listed, and there after a reload
    expect(page.locator("#conversations li")).to_have_count(1)
    page.reload()
    expect(page.locator(".message.user")).to_contain_text("Hello there")


def test_the_echo_model_answers_in_markdown(page: Page) -> None:
    page.goto("/ui/chat")
    page.locator("#settings summary").click()
    expect(page.locator('#model option[value="echo"]')).to_have_count(1)
    page.select_option("#model", "echo")
    page.fill("#prompt", "**bold** and `code`")
    page.click("#send")
    body = page.locator(".message.assistant .body").last
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("code")).to_have_text("code")


def test_stop_ends_an_answer_and_a_new_chat_starts_empty(page: Page) -> None:
    page.goto("/ui/chat")
    page.locator("#settings summary").click()
    expect(page.locator('#model option[value="slow-echo"]')).to_have_count(1)
    page.select_option("#model", "slow-echo")
    words = " ".join(f"word{i}" for i in range(60))  # echoed a word every 0.1 s
    page.fill("#prompt", words)
    page.click("#send")
    answer = page.locator(".message.assistant").last
    expect(answer.locator(".body")).to_contain_text("word3")
    expect(page.locator("#send")).to_be_disabled()
    page.click("#stop")
    expect(answer.locator(".stats")).to_contain_text("stopped")
    assert "word59" not in answer.locator(".body").inner_text()
    expect(page.locator("#send")).to_be_enabled()
    page.click("#new-chat")
    expect(page.locator(".message")).to_have_count(0)
    expect(page.locator("#conversations li")).to_have_count(1)  # the stopped one is kept
    expect(page.locator("#conversations li")).to_contain_text("word0")


FIRST_PAGE_BUDGET = 200_000
"""Bytes the first page may transfer, scripts, styles and icon included (issue 17)."""


def test_the_first_page_transfers_under_200_kb(page: Page) -> None:
    """A byte count, not a timing: the page and everything it loads, from an empty cache."""
    page.goto("/")
    expect(page.locator('#model option[value="tiny"]')).to_have_count(1)
    sizes = page.evaluate(
        """() => [...performance.getEntriesByType("navigation"), ...performance.getEntriesByType("resource")]
            .map((e) => ({ name: e.name, bytes: e.transferSize }))"""
    )
    assert any(entry["name"].endswith("/ui/chat") for entry in sizes)
    assert all(entry["bytes"] > 0 for entry in sizes), sizes  # nothing came from a cache
    total = sum(entry["bytes"] for entry in sizes)
    assert total < FIRST_PAGE_BUDGET, sizes


PAGES = ["chat", "audio", "detection", "models", "gallery", "instances", "keys", "traces"]


def test_every_page_fits_a_phone_and_is_reached_by_keyboard(
    browser: Browser, ui_server: KernaiServer
) -> None:
    with browsing(browser, ui_server, PHONE) as phone:
        for name in PAGES:
            phone.goto(f"/ui/{name}")
            expect(phone.locator("main")).to_be_visible()
            phone.wait_for_timeout(300)  # the page's first data
            width = phone.evaluate("() => document.documentElement.scrollWidth")
            assert width <= PHONE["width"], f"{name} is {width} px wide on a {PHONE['width']} px phone"
        phone.goto("/ui/gallery")
        phone.keyboard.press("Tab")  # the skip link first, then the navigation
        expect(phone.locator(".skip")).to_be_focused()
        phone.keyboard.press("Tab")
        phone.keyboard.press("Tab")
        expect(phone.get_by_role("link", name="Chat")).to_be_focused()
        phone.keyboard.press("Tab")
        phone.keyboard.press("Enter")
        expect(phone).to_have_url(re.compile(r"/ui/audio$"))
        phone.goto("/ui/chat")  # the chat page starts in its message box
        expect(phone.locator("#prompt")).to_be_focused()


def test_dark_and_light_follow_the_system_setting(browser: Browser, ui_server: KernaiServer) -> None:
    backgrounds = {}
    for scheme in ("light", "dark"):
        context = browser.new_context(base_url=ui_server.url, color_scheme=scheme)
        page = context.new_page()
        page.goto("/ui/models")
        backgrounds[scheme] = page.evaluate("() => getComputedStyle(document.body).backgroundColor")
        context.close()
    assert backgrounds == {"light": "rgb(247, 247, 249)", "dark": "rgb(21, 23, 28)"}
