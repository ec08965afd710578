"""The web UI's pages and login in this process (Litestar's test client): who is sent to the login form,
the cookie a login sets and when the API takes it, what the pages hold, and `/` with the UI off."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from litestar.testing import TestClient

import kernai.ui
from kernai import hookimpl
from kernai.http.app import create_app
from kernai.http.session import SESSION_COOKIE, csrf_token
from kernai.pages import UiPage
from kernai.plugins import PluginRegistry, register_checked
from kernai.settings import Settings
from tests.app.test_app import app_client

ADMIN = "admin-key-for-the-ui-tests"
USER = "user-key-for-the-ui-tests"
ORIGIN = {"origin": "http://127.0.0.1:8080"}
KEYS = {
    "require_management_auth": True,
    "require_inference_auth": True,
    "management_keys": [ADMIN],
    "inference_keys": [USER],
}


def login(client: TestClient[Any], key: str, next_url: str = "") -> Any:
    return client.post(
        "/ui/login", data={"key": key, "next": next_url}, headers=ORIGIN, follow_redirects=False
    )


def test_without_keys_every_page_opens_and_root_leads_to_the_ui(tmp_path: Path) -> None:
    with app_client(tmp_path) as client:
        assert client.get("/", follow_redirects=False).headers["location"] == "/ui/"
        assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/chat"
        for page in ("chat", "audio", "detection", "models", "gallery", "instances", "keys", "traces"):
            response = client.get(f"/ui/{page}")
            assert response.status_code == 200, page
            assert response.headers["content-type"].startswith("text/html")
            assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
            assert response.headers["cache-control"] == "no-store"
        assert client.get("/ui/no-such-page").status_code == 404
        assert client.get("/docs").status_code == 200  # the API docs stay
        css = client.get("/ui/static/kernai.css")
        assert css.status_code == 200 and "max-age" in css.headers["cache-control"]
        assert client.get("/ui/static/../__init__.py").status_code == 404


def test_ui_at_root_off_leaves_root_unserved(tmp_path: Path) -> None:
    with app_client(tmp_path, ui_at_root=False) as client:
        assert client.get("/", follow_redirects=False).status_code == 404
        assert client.get("/ui/chat").status_code == 200


def test_the_ui_plugin_can_be_disabled(tmp_path: Path) -> None:
    with app_client(tmp_path, disabled_plugins=["ui"]) as client:
        assert client.get("/ui/chat").status_code == 404
        assert client.get("/ui/static/kernai.css").status_code == 404


def test_a_visitor_without_a_key_is_sent_to_the_login_and_a_wrong_key_is_refused(tmp_path: Path) -> None:
    with app_client(tmp_path, **KEYS) as client:
        response = client.get("/ui/models", follow_redirects=False)
        assert (response.status_code, response.headers["location"]) == (303, "/ui/login?next=/ui/models")
        assert client.get("/ui/", follow_redirects=False).headers["location"] == "/ui/login"
        refused = login(client, "wrong")
        assert refused.status_code == 401 and "That key is not valid." in refused.text
        assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
        assert client.get("/v1/models").status_code == 401
        # a login form posted by another site's page is refused before the key is looked at
        foreign = client.post("/ui/login", data={"key": ADMIN}, headers={"origin": "http://evil.example"})
        assert foreign.status_code == 403


def test_a_login_form_that_repeats_a_field_is_a_400_page_saying_so(tmp_path: Path) -> None:
    form = {**ORIGIN, "content-type": "application/x-www-form-urlencoded"}
    with app_client(tmp_path, **KEYS) as client:
        for body, field in (
            (f"key={ADMIN}&key=other", "key"),
            (f"key={ADMIN}&next=/ui/a&next=/ui/b", "next"),
        ):
            response = client.post("/ui/login", content=body, headers=form, follow_redirects=False)
            assert response.status_code == 400 and response.headers["content-type"].startswith("text/html")
            assert f"The form sent &#39;{field}&#39; 2 times; send it once." in response.text
            assert SESSION_COOKIE not in response.headers.get("set-cookie", "")
        assert login(client, ADMIN).status_code == 303  # the same key, sent once


def test_a_login_keeps_the_key_in_a_strict_httponly_cookie_that_the_api_takes(tmp_path: Path) -> None:
    with app_client(tmp_path, **KEYS) as client:
        response = login(client, ADMIN, "/ui/keys")
        assert (response.status_code, response.headers["location"]) == (303, "/ui/keys")
        cookie = response.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
        assert ADMIN not in response.headers["set-cookie"]  # encoded, never the key as it is
        page = client.get("/ui/keys")
        assert page.status_code == 200
        assert ADMIN not in page.text and csrf_token(ADMIN) in page.text  # the token, never the key
        assert client.get("/v1/models").status_code == 200  # a read, with the cookie alone
        assert client.get("/api/v1/auth/keys").status_code == 200
        body = {"name": "made-in-a-test"}
        assert client.post("/api/v1/auth/keys", json=body, headers=ORIGIN).status_code == 401  # no token
        headers = {**ORIGIN, "x-csrf-token": csrf_token(ADMIN)}
        assert client.post("/api/v1/auth/keys", json=body, headers=headers).status_code == 201
        foreign = {"origin": "http://127.0.0.1:3000", "x-csrf-token": csrf_token(ADMIN)}
        assert client.post("/api/v1/auth/keys", json=body, headers=foreign).status_code == 403
        # nothing of the login is traced
        traces = client.get("/api/traces").json()
        assert not [t for t in traces if t["path"].startswith("/ui/")]
        assert login(client, "whatever").status_code == 401
        assert client.post("/ui/logout", headers=ORIGIN, follow_redirects=False).status_code == 303
        assert client.get("/v1/models").status_code == 401


def test_an_inference_key_sees_only_the_playgrounds(tmp_path: Path) -> None:
    with app_client(tmp_path, **KEYS) as client:
        assert login(client, USER).headers["location"] == "/ui/"
        chat = client.get("/ui/chat")
        assert chat.status_code == 200
        assert 'href="/ui/audio"' in chat.text and 'href="/ui/models"' not in chat.text
        refused = client.get("/ui/models")
        assert refused.status_code == 403 and "needs a management key" in refused.text
        assert client.get("/api/v1/instances").status_code == 403


class ImagesPlugin:
    """A capability plugin's playground, through ``register_ui_pages`` (and a page whose name is taken)."""

    def __init__(self, folder: Path) -> None:
        self.template = folder / "images.html"
        self.template.write_text(
            '{% extends "layout.html" %}{% block main %}<h1 id="images">Images</h1>{% endblock %}'
            '{% block scripts %}<script src="/images/static/images.js"></script>{% endblock %}'
        )

    @hookimpl
    def register_ui_pages(self) -> list[UiPage]:
        return [
            UiPage(name="images", title="Images", template=str(self.template), order=25),
            UiPage(name="chat", title="Another chat", template=str(self.template)),
        ]


def test_a_plugin_adds_a_page_in_the_layout_and_the_navigation(tmp_path: Path) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("KERNAI_LOAD_PLUGINS", "reference")
        registry = PluginRegistry()
    register_checked(registry.manager, ImagesPlugin(tmp_path), "images")
    settings = Settings(models_dir=str(tmp_path / "models"), data_dir=str(tmp_path / "data"))
    with TestClient(create_app(settings, registry), base_url="http://127.0.0.1:8080") as client:
        page = client.get("/ui/images")
        assert page.status_code == 200
        assert '<h1 id="images">Images</h1>' in page.text and "/images/static/images.js" in page.text
        assert 'aria-current="page">Images</a>' in page.text  # in the navigation, after Audio (order 25)
        assert page.text.index('href="/ui/audio"') < page.text.index('href="/ui/images"')
        assert page.text.index('href="/ui/images"') < page.text.index('href="/ui/detection"')
        chat = client.get("/ui/chat")  # the taken name is the UI's own page still
        assert "Another chat" not in chat.text and 'id="prompt"' in chat.text


def test_the_uis_polling_is_not_traced_but_what_it_changes_is(tmp_path: Path) -> None:
    poll = {"X-Kernai-UI-Poll": "1"}
    with app_client(tmp_path, rate_limit=False) as client:
        for path in ("/api/v1/instances", "/v1/models", "/backend/monitor?model=echo", "/models/jobs/nope"):
            client.get(path, headers=poll)
        client.get("/api/v1/instances")  # a read someone made
        client.post("/backend/shutdown", json={"model": "echo"}, headers={**ORIGIN, **poll})  # a change
        traced = [(t["method"], t["path"]) for t in client.get("/api/traces").json()]
        assert traced == [("GET", "/api/v1/instances"), ("POST", "/backend/shutdown")]
        metrics = client.get("/metrics").text  # the polls still count as requests
        assert (
            'kernai_http_requests_total{method="GET",model="",route="/v1/models",status="200"} 1.0' in metrics
        )
    scripts = Path(kernai.ui.__file__).parent / "static"
    for page in ("models.js", "instances.js", "gallery.js"):  # the pages that poll mark their polls
        assert "poll" in (scripts / page).read_text(), page
    assert 'headers["X-Kernai-UI-Poll"] = "1"' in (scripts / "kernai.js").read_text()
