"""The rules behind the browser checks, the worker environment and the bind check, as fast unit tests."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
from litestar import Litestar, Request, post
from litestar.params import Body

from kernai.auth.keys import KeyStore, PermissionMode
from kernai.auth.principal import KeyKind
from kernai.environment import check_environment, refusal
from kernai.http.browser_guard import (
    BODY_MEDIA_TYPES,
    JSON,
    MULTIPART,
    BrowserGuard,
    accepted_media_types,
    host_name,
)
from kernai.http.exposure import bind_refusal, is_loopback, open_routes_warning, required_auth
from kernai.settings import Settings
from kernai.store import open_database

OPEN = {KeyKind.MANAGEMENT: False, KeyKind.INFERENCE: False}


@pytest.mark.parametrize(
    ("value", "name"),
    [
        ("Example.LAN.:8080", "example.lan"),
        ("localhost", "localhost"),
        ("[::1]:80", "[::1]"),
        ("::1", "[::1]"),
        ("[::1]", "[::1]"),
        ("0.0.0.0", "0.0.0.0"),
        ("::", "[::]"),
        ("*.Corp.example", "*.corp.example"),
    ],
)
def test_host_name(value: str, name: str) -> None:
    assert host_name(value) == name


@pytest.mark.parametrize(
    ("bound", "host", "allowed"),
    [
        ("127.0.0.1", "localhost:9", True),
        ("127.0.0.1", "[::1]:9", True),
        ("127.0.0.1", "evil.example", False),
        ("127.0.0.1", "10.0.0.5", False),
        ("127.0.0.1", "localhost.evil.example", False),
        ("192.168.1.5", "192.168.1.5:8080", True),
        ("192.168.1.5", "192.168.1.6", False),
        ("::1", "[::1]:8080", True),
        ("0.0.0.0", "10.0.0.5", True),
        ("::", "[fe80::1]", True),
        ("0.0.0.0", "evil.example", False),
    ],
)
def test_allowed_hosts_by_bound_address(bound: str, host: str, allowed: bool) -> None:
    assert BrowserGuard(Settings(host=bound)).host_allowed(host) is allowed


@pytest.mark.parametrize(
    ("origin", "host", "allowed"),
    [
        ("http://127.0.0.1:8080", "127.0.0.1:8080", True),
        ("https://127.0.0.1:8080", "127.0.0.1:8080", True),  # same host and port: only this server serves it
        ("http://127.0.0.1:8081", "127.0.0.1:8080", False),
        ("http://localhost:8080", "127.0.0.1:8080", False),
        ("http://kernai.lan", "kernai.lan:80", True),
        ("https://kernai.lan", "kernai.lan", True),
        ("http://kernai.lan:8080", "kernai.lan", False),
        ("http://[::1]:8080", "[::1]:8080", True),
        ("null", "127.0.0.1:8080", False),
        ("file://", "127.0.0.1:8080", False),
        ("http://127.0.0.1:99999", "127.0.0.1:99999", False),
        ("http://127.0.0.1:8080", None, False),
        ("http://UI.example:3000/", "127.0.0.1:8080", True),  # in cors_origins
    ],
)
def test_allowed_origins(origin: str, host: str | None, allowed: bool) -> None:
    guard = BrowserGuard(Settings(cors_origins=["http://ui.example:3000"]))
    assert guard.origin_allowed(origin, host) is allowed


@pytest.mark.filterwarnings("ignore:.*Reserved kwarg 'data'")  # the app's handlers declare data so, too
def test_the_body_types_of_a_handler() -> None:
    @post("/json")
    async def json_body(data: dict[str, Any]) -> None: ...

    @post("/form")
    async def form_body(data: Annotated[dict[str, Any], Body(media_type=MULTIPART)]) -> None: ...

    @post("/raw", opt={BODY_MEDIA_TYPES: [JSON, MULTIPART]})
    async def raw_body(request: Request[Any, Any, Any]) -> None: ...

    @post("/none")
    async def no_body() -> None: ...

    Litestar([json_body, form_body, raw_body, no_body])
    assert accepted_media_types(json_body) == {JSON}
    assert accepted_media_types(form_body) == {MULTIPART}
    assert accepted_media_types(raw_body) == {JSON, MULTIPART}
    assert accepted_media_types(no_body) is None


@pytest.mark.parametrize(
    "name",
    [
        "LD_PRELOAD",
        "ld_preload",
        "LD_LIBRARY_PATH",
        "DYLD_INSERT_LIBRARIES",
        "PYTHONPATH",
        "PYTHONSTARTUP",
        "PYTHONHOME",
        "PYTHONBREAKPOINT",
        "PATH",
        "Path",
        "HOME",
        "BASH_ENV",
        "BASH_FUNC_ls%%",
        "NODE_OPTIONS",
        "PERL5OPT",
        "GCONV_PATH",
        "OPENSSL_CONF",
        "GIT_SSH_COMMAND",
        "A=B",
        "",
    ],
)
def test_variables_a_model_may_not_set(name: str) -> None:
    assert refusal(name) is not None


@pytest.mark.parametrize(
    "name",
    [
        "OMP_NUM_THREADS",
        "CUDA_VISIBLE_DEVICES",
        "HF_HOME",
        "MY_PATH",
        "TOKENIZERS_PARALLELISM",
        "KERNAI_TEST_MARK",
    ],
)
def test_variables_a_model_may_set(name: str) -> None:
    assert refusal(name) is None


def test_check_environment_names_the_first_refused_variable() -> None:
    name, message = check_environment({"OMP_NUM_THREADS": "1", "PYTHONPATH": "/x"}) or ("", "")
    assert name == "PYTHONPATH"
    assert message.startswith("'PYTHONPATH' may not be set for a worker: Python reads")
    assert check_environment({"OMP_NUM_THREADS": "1"}) is None
    assert check_environment({"X": "a\0b"}) == ("X", "'X': a value may not contain a NUL character")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.5", False),
        ("my-host", False),
    ],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_bind_refusal_and_the_open_routes() -> None:
    assert bind_refusal(Settings(host="127.0.0.1"), OPEN) is None
    assert bind_refusal(Settings(host="0.0.0.0"), OPEN) is not None
    assert bind_refusal(Settings(host="0.0.0.0", insecure_allow_open_management=True), OPEN) is None
    assert bind_refusal(Settings(host="0.0.0.0"), {**OPEN, KeyKind.MANAGEMENT: True}) is None
    prefixes = {KeyKind.MANAGEMENT: ["/api/*"], KeyKind.INFERENCE: [f"/p{i}" for i in range(20)]}
    assert open_routes_warning(Settings(host="127.0.0.1"), OPEN, prefixes) is None
    assert open_routes_warning(Settings(host="0.0.0.0"), dict.fromkeys(KeyKind, True), prefixes) is None
    warning = open_routes_warning(Settings(host="0.0.0.0"), {**OPEN, KeyKind.MANAGEMENT: True}, prefixes)
    assert warning is not None and "management" not in warning
    assert "inference routes (/p0, /p1, " in warning and "/p11, ...)" in warning and "/p12" not in warning


def test_required_auth_reads_the_switch_kept_in_the_database(tmp_path: Path) -> None:
    settings = Settings(data_dir=str(tmp_path))
    assert required_auth(settings)[KeyKind.MANAGEMENT] is False
    keys = KeyStore(open_database(tmp_path), settings)
    keys.create("admin", KeyKind.MANAGEMENT, PermissionMode.ALLOW_ALL, [], None)
    keys.require(KeyKind.MANAGEMENT, True)
    keys.db.close()
    assert required_auth(settings)[KeyKind.MANAGEMENT] is True
