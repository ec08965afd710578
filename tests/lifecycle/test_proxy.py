"""llamactl's instance proxy, served in-process: also where the server's real port is not
``settings.port``, counted and traced once, and behind the same keys as the instance itself."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from kernai.testing import KernaiServer

from .conftest import CONFIG_INFERENCE_KEY
from .test_observability import samples, value

KEY = {"x-api-key": CONFIG_INFERENCE_KEY}
PROXY_ROUTE = "/api/v1/instances/{name}/proxy/{path}"


@pytest.fixture()
def http(embedded: KernaiServer) -> Iterator[httpx.Client]:
    with embedded.client() as client:
        yield client


def proxied_chat(http: httpx.Client, name: str, text: str, **headers: str) -> httpx.Response:
    return http.post(
        f"/api/v1/instances/{name}/proxy/v1/chat/completions",
        headers=headers,
        json={"messages": [{"role": "user", "content": text}]},
    )


def test_the_proxy_serves_the_instance_whatever_port_the_settings_name(
    http: httpx.Client, embedded: KernaiServer
) -> None:
    assert http.get("/api/v1/config").json()["port"] != embedded.port

    reply = proxied_chat(http, "alpha", "through the proxy", **KEY)
    assert reply.status_code == 200, reply.text
    assert reply.json()["model"] == "alpha"
    assert reply.json()["choices"][0]["message"]["content"] == "through the proxy"
    with http.stream(
        "POST",
        "/api/v1/instances/alpha/proxy/v1/chat/completions",
        headers=KEY,
        json={"stream": True, "messages": [{"role": "user", "content": "a b c"}]},
    ) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        events = [line for line in stream.iter_lines() if line.startswith("data: ")]
    assert len(events) > 2 and events[-1] == "data: [DONE]"

    listed = http.get("/api/v1/instances/alpha/proxy/v1/models", headers=KEY).json()
    assert [card["id"] for card in listed["data"]] == ["alpha"]  # the instance's own server knows one model
    assert http.get("/api/v1/instances/alpha/proxy/health", headers=KEY).json() == {"status": "ok"}
    missing = http.get("/api/v1/instances/alpha/proxy/no/such/route", headers=KEY)
    assert missing.status_code == 404
    unknown = proxied_chat(http, "ghost", "hi", **KEY)
    assert unknown.status_code == 404 and "error" in unknown.json()


def test_a_proxied_request_is_counted_and_traced_once(client: httpx.Client) -> None:
    assert proxied_chat(client, "echo", "warm up").status_code == 200
    client.post("/api/traces/clear")
    before = samples(client)

    assert proxied_chat(client, "echo", "counted once").status_code == 200

    after = samples(client)
    proxy = {"method": "POST", "route": PROXY_ROUTE, "status": "200", "model": "echo"}
    assert (
        value(after, "kernai_http_requests_total", **proxy)
        - value(before, "kernai_http_requests_total", **proxy)
        == 1
    )
    chat_route = {"method": "POST", "route": "/v1/chat/completions", "status": "200", "model": "echo"}
    assert value(after, "kernai_http_requests_total", **chat_route) == value(
        before, "kernai_http_requests_total", **chat_route
    )
    assert (
        value(after, "kernai_completion_tokens_total", model="echo")
        - value(before, "kernai_completion_tokens_total", model="echo")
        == 2
    )
    traces = [t for t in client.get("/api/traces").json() if t["model"] == "echo" or "echo" in t["path"]]
    assert [(t["path"], t["model"]) for t in traces] == [
        ("/api/v1/instances/echo/proxy/v1/chat/completions", "echo")
    ]
    assert "counted once" in traces[0]["request"]


def test_a_per_instance_key_reaches_only_its_own_instance_through_the_proxy(http: httpx.Client) -> None:
    created = http.post(
        "/api/v1/auth/keys",
        json={"name": "alpha-only", "permission_mode": "per_instance", "instance_names": ["alpha"]},
    )
    assert created.status_code == 201, created.text
    own = {"Authorization": f"Bearer {created.json()['key']}"}

    assert proxied_chat(http, "alpha", "mine", **own).status_code == 200
    refused = proxied_chat(http, "beta", "not mine", **own)
    assert refused.status_code == 403 and "beta" in refused.json()["error"]
    for path in ("health", "v1/models"):
        assert http.get(f"/api/v1/instances/beta/proxy/{path}", headers=own).status_code == 403, path
    missing = proxied_chat(http, "alpha", "no key")
    assert missing.status_code == 401 and missing.headers["www-authenticate"] == "Bearer"
    assert (
        proxied_chat(http, "alpha", "wrong key", authorization="Bearer sk-inference-wrong").status_code == 401
    )
    assert proxied_chat(http, "beta", "an allow-all key", **KEY).status_code == 200
