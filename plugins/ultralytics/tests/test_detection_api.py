"""``POST /v1/detection`` through a real server, with trained and seeded random YOLO models."""

from __future__ import annotations

import base64
import io

import httpx
import pytest
from PIL import Image

from kernai.testing import KernaiServer

BUS_SIZE = (810, 1080)


def data_uri(data: bytes, media_type: str = "image/jpeg") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def detect(server: KernaiServer, **body: object) -> httpx.Response:
    with server.client(timeout=120) as client:
        return client.post("/v1/detection", json=body)


def detections(server: KernaiServer, **body: object) -> list[dict]:
    response = detect(server, **body)
    assert response.status_code == 200, response.text
    return response.json()["detections"]


def test_fall_detector_finds_the_four_people_on_the_bus(server: KernaiServer, bus_jpg: bytes) -> None:
    found = detections(server, model="fall", image=data_uri(bus_jpg))
    assert [d["class_name"] for d in found] == ["Normal"] * 4
    for d in found:
        assert 0 <= d["x"] and d["x"] + d["width"] <= BUS_SIZE[0] + 1
        assert 0 <= d["y"] and d["y"] + d["height"] <= BUS_SIZE[1] + 1
        assert d["height"] > 2 * d["width"]  # people standing, in pixels of the original image
        assert 0.25 <= d["confidence"] <= 1 and "mask" not in d


def test_fall_detector_sees_a_fall_in_the_rotated_picture(server: KernaiServer, image_server: str) -> None:
    found = detections(server, model="fall", image=f"{image_server}/bus-rotated.jpg")
    falls = [d for d in found if d["class_name"] == "Fall"]
    assert falls, found
    assert all(d["width"] > d["height"] for d in falls)  # lying people: the rotated image is 1080 wide


def test_exif_orientation_is_applied(server: KernaiServer, bus_jpg: bytes) -> None:
    """A phone photo: pixels stored sideways, EXIF orientation 6 says turn 90 degrees clockwise to view."""
    sideways = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.open(io.BytesIO(bus_jpg)).rotate(90, expand=True).save(sideways, format="JPEG", quality=95, exif=exif)
    upright = detections(server, model="fall", image=data_uri(bus_jpg))
    found = detections(server, model="fall", image=data_uri(sideways.getvalue()))
    assert [d["class_name"] for d in found] == ["Normal"] * 4
    for a, b in zip(sorted(upright, key=lambda d: d["x"]), sorted(found, key=lambda d: d["x"])):
        assert all(abs(a[k] - b[k]) < 12 for k in ("x", "y", "width", "height"))  # JPEG re-encoding moves boxes a little


def test_segmentation_gives_a_png_mask_inside_each_box(server: KernaiServer, bus_jpg: bytes) -> None:
    found = detections(server, model="random-seg", image=base64.b64encode(bus_jpg).decode(), max_detections=5)
    assert len(found) == 5
    for d in found:
        assert set(d) == {"x", "y", "width", "height", "confidence", "class_name", "mask"}
        assert d["confidence"] >= 0.05 and d["class_name"]
        mask = Image.open(io.BytesIO(base64.b64decode(d["mask"])))
        assert mask.format == "PNG" and mask.mode == "L" and mask.size == BUS_SIZE
        pixels = mask.tobytes()
        assert set(pixels) <= {0, 255} and pixels.count(255) > 0
        inside = mask.crop((int(d["x"]) - 2, int(d["y"]) - 2, int(d["x"] + d["width"]) + 3,
                            int(d["y"] + d["height"]) + 3)).tobytes().count(255)
        assert inside == pixels.count(255)  # ultralytics crops masks to their box


def test_request_overrides_threshold_max_detections_and_classes(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    everything = detections(server, model="random-seg", image=image, threshold=0.01, max_detections=40)
    assert len(everything) > 10
    assert [d for d in everything if d["confidence"] >= 0.09] == detections(server, model="random-seg", image=image,
                                                                              threshold=0.09, max_detections=40)
    assert len(detections(server, model="random-seg", image=image, threshold=0.01, max_detections=3)) == 3
    name = everything[0]["class_name"]
    only = detections(server, model="random-seg", image=image, threshold=0.01, max_detections=40,
                      classes=[int(name.removeprefix("class"))])
    assert {d["class_name"] for d in only} == {name}
    assert len(only) >= len([d for d in everything if d["class_name"] == name])  # fewer rivals for the 40 places


def test_onnx_export_gives_the_same_boxes(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    torch_boxes = detections(server, model="random-seg", image=image)
    onnx_boxes = detections(server, model="random-seg-onnx", image=image)
    assert len(torch_boxes) == len(onnx_boxes) > 0
    for a, b in zip(torch_boxes, onnx_boxes):
        assert a["class_name"] == b["class_name"]
        assert a["confidence"] == pytest.approx(b["confidence"], abs=2e-3)
        for key in ("x", "y", "width", "height"):
            assert a[key] == pytest.approx(b[key], abs=1.0)
        mask_a, mask_b = (Image.open(io.BytesIO(base64.b64decode(d["mask"]))).tobytes() for d in (a, b))
        assert sum(p != q for p, q in zip(mask_a, mask_b)) < 0.001 * len(mask_a)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zero_width_png() -> bytes:
    """A PNG whose header says 0 pixels wide (PIL refuses to write one)."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b"")


@pytest.mark.parametrize(("image", "words"), [
    (lambda bus, url: data_uri(b"this is not an image"), "not a picture"),
    (lambda bus, url: data_uri(bus[: len(bus) // 2]), "truncated"),
    (lambda bus, url: data_uri(_zero_width_png(), "image/png"), "image"),
    (lambda bus, url: data_uri(_png(1200, 1000), "image/png"), "more than the limit"),  # max_pixels 1,000,000
    (lambda bus, url: data_uri(bus, "text/plain"), "media type"),
    (lambda bus, url: "%%% not base64 %%%", "base64"),
    (lambda bus, url: f"{url}/missing.jpg", "HTTP 404"),
    (lambda bus, url: f"{url}/slow.jpg", "took more than"),
    (lambda bus, url: f"{url}/huge.jpg", "limit"),
    (lambda bus, url: "http://127.0.0.1:9/nothing-listens-here.jpg", "Could not fetch"),
])
def test_bad_images_get_a_400(server: KernaiServer, image_server: str, bus_jpg: bytes, image, words: str) -> None:
    response = detect(server, model="random-seg", image=image(bus_jpg, image_server))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert words in error["message"] and error["type"] == "invalid_request_error" and error["param"] == "image"


def test_other_client_mistakes(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    assert detect(server, model="nope", image=image).status_code == 404
    prompt = detect(server, model="random-seg", image=image, prompt="a bus")
    assert prompt.status_code == 400 and prompt.json()["error"]["code"] == "not_supported"
    assert detect(server, model="random-seg", image=image, threshold=1.5).status_code == 400
    bad_class = detect(server, model="random-seg", image=image, classes=[80])
    assert bad_class.status_code == 400 and bad_class.json()["error"]["param"] == "classes"
