"""Rate limits (429 + Retry-After), body size limits (413), CORS and extra response headers."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from kernai.testing import KernaiServer

from .conftest import chat, make_server


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    settings = {
        "require_inference_auth": True,
        "inference_keys": [f"bucket-{c}" for c in "abcdefg"],
        "rate_limit_localhost": True,
        "rate_limit_per_minute": 60,
        "rate_limit_burst": 3,
        "max_body_size": 2000,
        "body_size_limits": {"/v1/embeddings": 100},
        "cors_origins": ["https://app.example"],
        "response_headers": {"X-Served-By": "kernai-ops"},
    }
    with make_server(tmp_path_factory.mktemp("limited"), {"echo": {}}, settings) as server:
        yield server


@pytest.fixture()
def http(limited: KernaiServer) -> Iterator[httpx.Client]:
    with limited.client() as client:
        yield client


def test_a_burst_over_the_limit_is_429_with_retry_after(http: httpx.Client) -> None:
    headers = {"x-api-key": "bucket-a"}  # one bucket per valid key (per address without one)
    assert [http.get("/v1/models", headers=headers).status_code for _ in range(3)] == [200, 200, 200]
    limited = http.get("/v1/models", headers=headers)
    assert limited.status_code == 429 and limited.json()["error"]["type"] == "rate_limit_error"
    assert int(limited.headers["retry-after"]) == 1  # one token a second at 60 a minute
    assert http.get("/v1/models", headers={"x-api-key": "bucket-b"}).status_code == 200
    assert http.get("/healthz", headers=headers).status_code == 200  # health is never limited


def test_bodies_over_the_route_limit_are_413(http: httpx.Client) -> None:
    big = chat(http, "echo", "x" * 3000, **{"x-api-key": "bucket-c"})
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    small_route = http.post(
        "/v1/embeddings", json={"model": "echo", "input": "y" * 200}, headers={"x-api-key": "bucket-d"}
    )
    assert small_route.status_code == 413

    def chunks() -> Iterator[bytes]:  # no Content-Length: the limit still holds while reading
        for _ in range(30):
            yield b" " * 100

    streamed = http.post(
        "/v1/chat/completions",
        content=chunks(),
        headers={"content-type": "application/json", "x-api-key": "bucket-e"},
    )
    assert streamed.status_code == 413
    assert chat(http, "echo", "fits", **{"x-api-key": "bucket-f"}).status_code == 200
    proxied = http.post(  # through an instance's proxy, the inner route's limit
        "/api/v1/instances/echo/proxy/v1/embeddings",
        json={"input": "y" * 200},
        headers={"x-api-key": "bucket-g"},
    )
    assert proxied.status_code == 413, proxied.text
    fits = http.post(
        "/api/v1/instances/echo/proxy/v1/embeddings",
        json={"input": "y" * 20},
        headers={"x-api-key": "bucket-g"},
    )
    assert fits.status_code == 200, fits.text


def test_cors_preflight_and_extra_response_headers(http: httpx.Client) -> None:
    preflight = http.options(
        "/v1/chat/completions",
        headers={
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "authorization,content-type",
        },
    )
    assert preflight.status_code in (200, 204)
    assert preflight.headers["access-control-allow-origin"] == "https://app.example"
    response = http.get("/v1/models", headers={"origin": "https://app.example", "x-api-key": "bucket-g"})
    assert response.headers["access-control-allow-origin"] == "https://app.example"
    assert response.headers["x-served-by"] == "kernai-ops"
    other = http.options(
        "/v1/chat/completions",
        headers={"origin": "https://evil.example", "access-control-request-method": "POST"},
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


@pytest.mark.slow
def test_failed_authentications_are_limited_per_address(tmp_path: Path) -> None:
    """Guessing keys: each 401 takes a token from the address's bucket; once it is empty no key is checked."""
    settings = {
        "require_inference_auth": True,
        "inference_keys": ["the-right-key"],
        "rate_limit_localhost": True,
        "rate_limit_burst": 3,
    }
    with make_server(tmp_path, {}, settings) as server, server.client() as http:
        guesses = [http.get("/v1/models", headers={"x-api-key": f"guess-{i}"}) for i in range(5)]
        assert [reply.status_code for reply in guesses] == [401, 401, 401, 429, 429]
        assert guesses[-1].json()["error"]["type"] == "rate_limit_error"
        assert int(guesses[-1].headers["retry-after"]) == 1
        assert http.get("/v1/models").status_code == 429  # no key, same address
        assert http.get("/v1/models", headers={"x-api-key": "the-right-key"}).status_code == 429
        assert 'kernai_rejected_requests_total{reason="failed_auth"} 4.0' in http.get("/metrics").text
        time.sleep(1.1)  # a token back after a second at 60 a minute
        assert http.get("/v1/models", headers={"x-api-key": "the-right-key"}).status_code == 200
        assert http.get("/v1/models", headers={"x-api-key": "guess-5"}).status_code == 401
        assert http.get("/v1/models", headers={"x-api-key": "guess-6"}).status_code == 429
