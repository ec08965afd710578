"""The models page in a real browser: load and unload a model and see its state, memory and log; pin,
disable and enable it."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow


def test_unload_and_load_a_model_and_see_its_state_change(page: Page) -> None:
    page.goto("/ui/models")
    row = page.locator('tr[data-model="echo"]')
    expect(row.locator(".state")).to_have_text(re.compile("running|stopped"))
    if row.locator(".state").inner_text() == "running":
        row.get_by_role("button", name="Unload echo").click()
    expect(row.locator(".state")).to_have_text("stopped")
    row.get_by_role("button", name="Load echo").click()
    expect(row.locator(".state")).to_have_text("running")
    expect(row.locator("td").nth(3)).to_contain_text("iB")  # the worker's memory, from /backend/monitor
    row.get_by_role("button", name="Log of echo").click()  # the live log, over the WebSocket
    expect(page.locator("#log-panel")).to_be_visible()
    row.get_by_role("button", name="Unload echo").click()
    expect(row.locator(".state")).to_have_text("stopped")
    expect(row.get_by_role("button", name="Load echo")).to_be_visible()


def test_pin_disable_and_enable_a_model(page: Page) -> None:
    page.goto("/ui/models")
    row = page.locator('tr[data-model="tiny"]')
    row.get_by_role("button", name="Pin tiny").click()
    expect(row.locator(".tag", has_text="pinned")).to_be_visible()
    row.get_by_role("button", name="Unpin tiny").click()
    expect(row.locator(".tag", has_text="pinned")).to_have_count(0)
    row.get_by_role("button", name="Disable tiny").click()
    expect(row.locator(".tag", has_text="disabled")).to_be_visible()
    expect(row.get_by_role("button", name="Load tiny")).to_be_disabled()
    row.get_by_role("button", name="Enable tiny").click()
    expect(row.locator(".tag", has_text="disabled")).to_have_count(0)
    expect(row.get_by_role("button", name="Load tiny")).to_be_enabled()
