"""The chat playground in a real browser: a streamed answer from the tiny llama, conversations kept."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

pytestmark = __import__("pytest").mark.slow


def test_root_leads_to_the_chat_page(page: Page) -> None:
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/chat$"))
    expect(page.get_by_role("link", name="Chat")).to_have_attribute("aria-current", "page")


def test_a_message_gets_a_streamed_answer_with_its_speed(page: Page) -> None:
    page.goto("/ui/chat")
    expect(page.locator("#model option", has_text="tiny")).to_have_count(1)
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
    expect(page.locator("#model option", has_text="echo")).to_have_count(1)
    page.select_option("#model", "echo")
    page.fill("#prompt", "**bold** and `code`")
    page.click("#send")
    body = page.locator(".message.assistant .body").last
    expect(body.locator("strong")).to_have_text("bold")
    expect(body.locator("code")).to_have_text("code")
