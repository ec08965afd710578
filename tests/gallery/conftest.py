"""A file server on 127.0.0.1 (Range, dropped connections, slow bodies) and a kernai server using it."""

from __future__ import annotations

import hashlib
import json
import re
import sysconfig
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx
import pytest
import yaml

from kernai.testing import KernaiServer, prepare_server


@dataclass
class Served:
    """A file the server offers, and how it misbehaves."""

    body: bytes
    drop_after: int | None = None
    """The first response stops after this many bytes (the connection closes mid-body)."""
    delay: float = 0.0
    """Seconds between 64 KiB chunks."""
    errors: list[int] = field(default_factory=list)
    """HTTP statuses the first GETs get instead of the file, one each, in order."""
    requests: list[str | None] = field(default_factory=list)
    """The Range header of every GET."""
    times: list[float] = field(default_factory=list)
    """When each GET came (``time.monotonic()``)."""


class FileServer:
    """``http://127.0.0.1:PORT/<path>`` for every path in ``files``; counts concurrent downloads."""

    def __init__(self) -> None:
        self.files: dict[str, Served] = {}
        self.proxied: list[str] = []
        """Requests that came as a proxy's (absolute URL in the request line)."""
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def add(self, path: str, body: bytes, **behaviour: Any) -> str:
        self.files[path] = Served(body, **behaviour)
        return f"{self.url}/{path}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def served(self) -> Served | None:
                if self.path.startswith("http://"):
                    server.proxied.append(self.path)
                return server.files.get(urlparse(self.path).path.lstrip("/"))

            def do_HEAD(self) -> None:
                served = self.served()
                if served is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(served.body)))
                self.end_headers()

            def do_GET(self) -> None:
                served = self.served()
                if served is None:
                    self.send_error(404)
                    return
                range_header = self.headers.get("Range")
                served.times.append(time.monotonic())
                served.requests.append(range_header)
                if len(served.requests) <= len(served.errors):
                    self.send_error(served.errors[len(served.requests) - 1])
                    return
                first = len(served.requests) == len(served.errors) + 1
                start = (
                    int(match.group(1))
                    if range_header and (match := re.match(r"bytes=(\d+)-", range_header))
                    else 0
                )
                body = served.body[start:]
                self.send_response(206 if start else 200)
                if start:
                    self.send_header(
                        "Content-Range", f"bytes {start}-{len(served.body) - 1}/{len(served.body)}"
                    )
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                limit = served.drop_after if first and served.drop_after is not None else len(body)
                with server._lock:
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    for offset in range(0, limit, 65536):
                        self.wfile.write(body[offset : min(offset + 65536, limit)])
                        self.wfile.flush()
                        if served.delay:
                            time.sleep(served.delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                finally:
                    with server._lock:
                        server.active -= 1
                if limit < len(body):
                    self.close_connection = True

        return Handler

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def blob(size: int, seed: int) -> bytes:
    """Deterministic bytes that differ for each seed."""
    chunk = hashlib.sha512(str(seed).encode()).digest()
    return (chunk * (size // len(chunk) + 1))[:size]


def entry(name: str, files: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    """A model entry served by the reference backend."""
    return {
        "name": name,
        "backend": "reference",
        "description": f"test model {name}",
        "files": files,
        **extra,
    }


def build_wheel(
    folder: Path,
    name: str,
    version: str,
    files: dict[str, bytes],
    requires: tuple[str, ...] = (),
    plugins: dict[str, str] | None = None,
) -> Path:
    """A minimal but valid wheel holding ``files`` (paths inside the wheel), requiring ``requires``, with
    ``plugins`` (entry-point name -> module) in the ``kernai`` group."""
    dist_info = f"{name.replace('-', '_')}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"
    metadata += "".join(f"Requires-Dist: {requirement}\n" for requirement in requires)
    if plugins:
        files = {
            **files,
            f"{dist_info}/entry_points.txt": (
                "[kernai]\n" + "".join(f"{n} = {m}\n" for n, m in plugins.items())
            ).encode(),
        }
    members = {
        **files,
        f"{dist_info}/METADATA": metadata.encode(),
        f"{dist_info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: kernai-tests\nRoot-Is-Purelib: true\n"
        b"Tag: py3-none-any\n",
    }
    record = "".join(f"{path},,\n" for path in members) + f"{dist_info}/RECORD,,\n"
    path = folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as wheel:
        for member, data in members.items():
            wheel.writestr(member, data)
        wheel.writestr(f"{dist_info}/RECORD", record)
    return path


ECHO_PLUGIN = '''"""A test backend: answers with the last user message reversed (STYLE "upper": capitals)."""
from kernai import Backend, hookimpl
from kernai import capabilities as cap

STYLE = "{style}"


@hookimpl
def register_backends(register):
    register(Backend(name="gallery-echo", capabilities=[cap.Capability.CHAT], requires_model_file=False))


@hookimpl
def load(backend, config):
    return STYLE


@hookimpl
def predict(backend, model, request):
    text = request.messages[-1].text()[::-1]
    return cap.ChatResult(content=text.upper() if model == "upper" else text, usage=cap.Usage(1, 1),
                          finish_reason="stop")


@hookimpl
def status(backend, model):
    return {{}}


@hookimpl
def shutdown(backend, model):
    return True
'''

ECHO_PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "kernai-gallery-echo"
version = "{version}"
dependencies = ["kernai"]

[project.entry-points.kernai]
gallery-echo = "kernai_gallery_echo"

[tool.setuptools]
packages = ["kernai_gallery_echo"]
"""


def write_plugin(folder: Path, version: str, style: str) -> None:
    """The ``kernai-gallery-echo`` plugin's source at ``folder``, ready for ``pip install``."""
    (folder / "kernai_gallery_echo").mkdir(parents=True, exist_ok=True)
    (folder / "pyproject.toml").write_text(ECHO_PYPROJECT.format(version=version))
    (folder / "kernai_gallery_echo" / "__init__.py").write_text(ECHO_PLUGIN.format(style=style))


def publish_backend(index: Path, version: str) -> None:
    """A backend gallery at ``index``: ``gallery-echo`` ``version``, from ``./gallery-echo`` next to it."""
    index.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "gallery-echo",
                    "description": "test backend",
                    "capabilities": ["chat"],
                    "distribution": "kernai-gallery-echo",
                    "pip": "./gallery-echo",
                    "version": version,
                    "variants": {"cpu": {"pip_args": ["--no-build-isolation"]}},
                }
            ]
        )
    )


def server_environment() -> list[str]:
    """What is installed in this (the server's) environment: every entry of its site-packages, with
    the size and modification time of each metadata folder's files, which any pip run changes."""
    packages = Path(sysconfig.get_path("purelib"))
    found = []
    for path in sorted(packages.iterdir()):
        found.append(path.name)
        if path.name.endswith((".dist-info", ".egg-info")):
            found += [f"{f.name}:{f.stat().st_size}:{f.stat().st_mtime_ns}" for f in path.iterdir()]
    return found


@pytest.fixture(autouse=True)
def server_environment_unchanged() -> Iterator[None]:
    """No gallery test may change the server's environment (backends install into their own)."""
    before = server_environment()
    yield
    assert server_environment() == before, "the server's environment changed"


class Gallery:
    """The local file server, the test galleries on it, and a kernai server configured with them.

    Two model galleries, ``test`` (searched first for a bare name) and ``mirror`` (trusted: its entries
    may set ``environment``). The server runs with this interpreter; the backends it installs go into
    environments of their own in its data directory. ``env`` is added to its environment.
    """

    def __init__(self, root: Path, env: dict[str, str] | None = None) -> None:
        self.root = root
        self.files = FileServer()
        self.wheels = root / "wheels"
        self.wheels.mkdir()
        self.indexes = {"test": root / "index.yaml", "mirror": root / "mirror.yaml"}
        self.entries: dict[str, list[dict[str, Any]]] = {name: [] for name in self.indexes}
        for index in self.indexes.values():
            index.write_text("[]\n")
        self.backends_index = root / "backends.yaml"
        self.backends_index.write_text("[]\n")
        self.extra_env = env or {}
        self.server: KernaiServer | None = None

    @property
    def index(self) -> Path:
        return self.indexes["test"]

    def add(self, model: dict[str, Any], gallery: str = "test") -> None:
        self.entries[gallery].append(model)
        self.indexes[gallery].write_text(yaml.safe_dump(self.entries[gallery], sort_keys=False))

    def env(self) -> dict[str, str]:
        return {
            "KERNAI_LOAD_PLUGINS": "reference,gallery-echo,reference-copy,safe-echo,pin-one,pin-two",
            "KERNAI_GALLERIES": json.dumps(
                [{"name": n, "url": str(i), "trusted": n == "mirror"} for n, i in self.indexes.items()]
            ),
            "KERNAI_BACKEND_GALLERIES": json.dumps([{"name": "test", "url": str(self.backends_index)}]),
            "HF_ENDPOINT": self.files.url,
            "HTTP_PROXY": self.files.url,  # the file server is also the proxy every download goes through
            "PIP_NO_INDEX": "1",
            "PIP_FIND_LINKS": str(self.wheels),
            **self.extra_env,
        }

    def start(self) -> KernaiServer:
        """Start the server, or start it again (on a fresh port) after a test stopped or killed it."""
        if self.server is None:
            self.server = prepare_server(self.root, env=self.env())
        return self.server.restart()

    @property
    def models_dir(self) -> Path:
        return self.root / "models"


@pytest.fixture(scope="session")
def gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    built = Gallery(tmp_path_factory.mktemp("gallery"))
    built.add(entry("placeholder", []))
    built.start()
    yield built
    if built.server is not None:
        built.server.stop()
    built.files.close()


@pytest.fixture()
def client(gallery: Gallery) -> Iterator[httpx.Client]:
    assert gallery.server is not None
    with gallery.server.client() as http:
        yield http


def wait_job(
    client: httpx.Client, uuid: str, prefix: str = "/models", timeout: float = 120.0
) -> dict[str, Any]:
    """Poll a job until it is processed; return its last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"{prefix}/jobs/{uuid}").json()
        if status["processed"]:
            return status
        time.sleep(0.05)
    raise TimeoutError(f"job {uuid} did not finish: {status}")


def leftovers(models_dir: Path, stem: str) -> list[str]:
    """Files in the models dir (any depth) whose name contains ``stem``."""
    return sorted(str(p.relative_to(models_dir)) for p in models_dir.rglob(f"*{stem}*"))
