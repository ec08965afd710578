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
    expect(page.locator("#log")).to_contain_text("echo")  # the worker's lines so far
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


def test_edit_a_models_config_with_a_refused_value_shown_at_its_field(page: Page) -> None:
    page.goto("/ui/models")
    row = page.locator('tr[data-model="echo"]')
    row.get_by_role("button", name="Config of echo").click()
    panel = page.locator("#config-panel")
    expect(panel.get_by_role("heading")).to_have_text("Config of echo")
    expect(panel.locator('[data-path="delay"]')).to_be_visible()  # the reference backend's own option
    expect(panel.locator('[data-path="beam_size"]')).to_have_count(0)  # whisper's is not for it
    panel.locator('[data-path="threads"]').fill("1.5")
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator('[data-error-for="threads"]')).to_contain_text("threads")
    panel.locator('[data-path="threads"]').fill("2")
    panel.locator('[data-path="environment"]').fill('{"LD_PRELOAD": "/tmp/x.so"}')
    panel.get_by_role("button", name="Save").click()
    expect(panel.locator('[data-error-for="environment"]')).to_contain_text("LD_PRELOAD")
    expect(panel.locator('[data-error-for="threads"]')).to_be_empty()
    panel.locator('[data-path="environment"]').fill("")
    panel.get_by_role("button", name="Save").click()
    expect(panel).to_be_hidden()
    row.get_by_role("button", name="Config of echo").click()  # read again: the saved value
    expect(panel.locator('[data-path="threads"]')).to_have_value("2")


def test_the_pages_polling_does_not_fill_the_traces(page: Page) -> None:
    def instance_reads() -> int:
        traces = page.request.get("/api/traces").json()
        return sum(1 for t in traces if (t["method"], t["path"]) == ("GET", "/api/v1/instances"))

    before = instance_reads()
    polled = lambda request: request.headers.get("x-kernai-ui-poll") == "1"  # noqa: E731
    with page.expect_response(lambda r: r.url.endswith("/api/v1/instances") and polled(r.request)):
        page.goto("/ui/models")  # loads the list (traced), then refreshes it every 4 s (not traced)
    assert instance_reads() == before + 1
