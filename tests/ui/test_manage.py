"""The management pages in a real browser: install a model from a local gallery and watch its job finish,
create and edit an instance (a refused option shown at its field), create an API key (its secret shown
once) and revoke it, and see requests in the traces and charts."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.slow


def test_install_a_model_from_the_gallery_and_watch_the_job_reach_done(page: Page) -> None:
    page.goto("/ui/gallery")
    row = page.locator('tr[data-entry="local@tiny-echo"]')
    expect(row).to_contain_text("An echo model")
    page.fill("#search", "no-such-thing")
    expect(row).to_have_count(0)
    page.fill("#search", "echo")
    row.get_by_role("button", name="Install tiny-echo").click()
    expect(row.locator(".job-message")).to_contain_text("done 100 %")
    expect(row.get_by_role("button", name="Delete tiny-echo")).to_be_visible()  # the list, read again
    expect(row).to_contain_text("installed")
    page.goto("/ui/models")  # the new model is served
    expect(page.locator('tr[data-model="tiny-echo"]')).to_be_visible()


def test_a_slow_install_shows_its_progress_and_is_cancelled(page: Page) -> None:
    page.goto("/ui/gallery")
    row = page.locator('tr[data-entry="local@slow-echo"]')
    row.get_by_role("button", name="Install slow-echo").click()
    expect(row.locator(".job-message")).to_contain_text(re.compile(r"running [1-9]\d? %"), timeout=15_000)
    progress = float(row.locator("progress").get_attribute("value") or 0)
    assert 0 < progress < 100
    row.get_by_role("button", name="Cancel").click()
    expect(row.locator(".job-message")).to_contain_text("cancelled")
    expect(row.get_by_role("button", name="Install slow-echo")).to_be_visible()


def test_create_edit_start_and_delete_an_instance(page: Page) -> None:
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto("/ui/instances")
    expect(page.locator("#f-backend option", has_text="reference")).to_have_count(1)
    page.fill("#f-name", "made-here")
    page.select_option("#f-backend", "reference")
    page.click("#f-submit")
    row = page.locator('tr[data-instance="made-here"]')
    expect(row.locator(".state")).to_have_text("stopped")
    row.get_by_role("button", name="Edit made-here").click()
    page.fill("#f-model", "missing.bin")
    page.click("#f-submit")
    expect(page.locator("#e-model")).to_contain_text("file not found")  # the 400, at its field
    page.fill("#f-model", "")
    page.fill("#f-options", '{"context_size": "big"}')
    page.click("#f-submit")
    expect(page.locator("#e-backend_options")).to_contain_text("context_size")
    expect(page.locator("#e-model")).to_be_empty()
    page.fill("#f-options", '{"context_size": 512}')
    page.fill("#f-idle", "10")
    page.click("#f-submit")
    expect(page.locator("#form-title")).to_have_text("Create an instance")
    row.get_by_role("button", name="Start made-here", exact=True).click()
    expect(row.locator(".state")).to_have_text("running")
    row.get_by_role("button", name="Logs of made-here").click()
    expect(page.locator("#logs-panel")).to_be_visible()
    row.get_by_role("button", name="Delete made-here").click()
    expect(row).to_have_count(0)


def test_create_an_api_key_see_it_once_and_revoke_it(page: Page) -> None:
    page.goto("/ui/keys")
    page.fill("#k-name", "from-the-ui")
    page.click("#k-create")
    secret = page.locator("#new-key-value")
    expect(secret).to_have_text(re.compile(r"^sk-inference-[0-9a-f]{48}$"))
    key = secret.inner_text()
    row = page.locator('tr[data-key="from-the-ui"]')
    expect(row).to_contain_text("inference")
    assert key not in row.inner_text()
    page.reload()  # shown once: not after a reload, nor in the list
    expect(page.locator("#new-key")).to_be_hidden()
    expect(row).to_be_visible()
    assert key not in page.content()
    page.on("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Revoke from-the-ui").click()
    expect(row).to_have_count(0)


def test_traces_list_requests_and_the_charts_follow_the_metrics(page: Page) -> None:
    page.goto("/ui/models")  # its requests are traced
    expect(page.locator('tr[data-model="echo"]')).to_be_visible()
    page.goto("/ui/traces")
    expect(page.locator("#traces tr", has_text="GET /api/v1/instances").first).to_be_visible()
    expect(page.locator("#v-requests")).to_contain_text("/s", timeout=10_000)  # after the second sample
    expect(page.locator("#c-requests polyline")).to_have_count(1)
