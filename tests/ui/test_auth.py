"""With API keys required, in a real browser: the login asks for a key once, a wrong key is refused, the
session cookie carries the key (and the CSRF token the page's requests) to the API, an inference key sees
only the playgrounds."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect

from kernai.testing import KernaiServer, ServerFactory, model_configs
from tests.ui.conftest import browsing

pytestmark = pytest.mark.slow
ADMIN = "ui-admin-key-0123456789"
USER = "ui-user-key-0123456789"


@pytest.fixture(scope="module")
def keyed_server(kernai_server: ServerFactory) -> KernaiServer:
    settings = {
        "require_management_auth": True,
        "require_inference_auth": True,
        "management_keys": [ADMIN],
        "inference_keys": [USER],
    }
    models = model_configs({"echo": {"backend": "reference"}})
    return kernai_server(models, plugins="reference", settings=settings, name="ui-keys")


@pytest.fixture
def keyed_page(browser: Browser, keyed_server: KernaiServer) -> Iterator[Page]:
    with browsing(browser, keyed_server) as opened:
        yield opened


def sign_in(page: Page, key: str) -> None:
    page.fill("#key", key)
    page.keyboard.press("Enter")


def test_a_wrong_key_is_refused_and_the_right_one_opens_every_page(keyed_page: Page) -> None:
    page = keyed_page
    page.goto("/")
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    sign_in(page, "not-a-key")
    expect(page.get_by_role("alert")).to_have_text("That key is not valid.")
    sign_in(page, ADMIN)
    expect(page).to_have_url(re.compile(r"/ui/chat$"))
    cookie = next(c for c in page.context.cookies() if c["name"] == "kernai_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    assert ADMIN not in page.content()
    assert page.evaluate("document.cookie") == ""  # the page's scripts cannot read it
    # a chat (a POST: the cookie and the page's CSRF token)
    page.locator("#settings summary").click()
    expect(page.locator("#model option", has_text="echo")).to_have_count(1)
    page.fill("#prompt", "signed in")
    page.click("#send")
    expect(page.locator(".message.assistant .body").last).not_to_be_empty()
    # a management page and a state change on it
    page.get_by_role("link", name="API keys").click()
    page.fill("#k-name", "made-while-signed-in")
    page.click("#k-create")
    expect(page.locator("#new-key-value")).to_have_text(re.compile(r"^sk-inference-"))
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/login$"))
    page.goto("/ui/keys")
    expect(page).to_have_url(re.compile(r"/ui/login\?next=/ui/keys$"))


def test_an_inference_key_sees_only_the_playgrounds(keyed_page: Page) -> None:
    page = keyed_page
    page.goto("/ui/chat")
    sign_in(page, USER)
    expect(page).to_have_url(re.compile(r"/ui/chat$"))
    nav = page.get_by_role("navigation", name="Pages")
    expect(nav.get_by_role("link", name="Audio")).to_be_visible()
    expect(nav.get_by_role("link", name="Models")).to_have_count(0)
    page.goto("/ui/models")
    expect(page.locator("#message")).to_contain_text("needs a management key")
