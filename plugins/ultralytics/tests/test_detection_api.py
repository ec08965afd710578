"""``POST /v1/detection`` through a real server, with trained and seeded random YOLO models."""

from __future__ import annotations

import base64
import io
import itertools
import struct
import zlib
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from kernai.testing import KernaiServer

pytestmark = pytest.mark.slow  # YOLO models on torch

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
    Image.open(io.BytesIO(bus_jpg)).rotate(90, expand=True).save(
        sideways, format="JPEG", quality=95, exif=exif
    )
    upright = detections(server, model="fall", image=data_uri(bus_jpg))
    found = detections(server, model="fall", image=data_uri(sideways.getvalue()))
    assert [d["class_name"] for d in found] == ["Normal"] * 4
    for a, b in zip(sorted(upright, key=lambda d: d["x"]), sorted(found, key=lambda d: d["x"]), strict=True):
        assert all(
            abs(a[k] - b[k]) < 12 for k in ("x", "y", "width", "height")
        )  # JPEG re-encoding moves boxes a little


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
        inside = (
            mask.crop(
                (
                    int(d["x"]) - 2,
                    int(d["y"]) - 2,
                    int(d["x"] + d["width"]) + 3,
                    int(d["y"] + d["height"]) + 3,
                )
            )
            .tobytes()
            .count(255)
        )
        assert inside == pixels.count(255)  # ultralytics crops masks to their box


def test_request_overrides_threshold_max_detections_and_classes(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    everything = detections(server, model="random-seg", image=image, threshold=0.01, max_detections=40)
    assert len(everything) > 10
    assert [d for d in everything if d["confidence"] >= 0.09] == detections(
        server, model="random-seg", image=image, threshold=0.09, max_detections=40
    )
    assert len(detections(server, model="random-seg", image=image, threshold=0.01, max_detections=3)) == 3
    name = everything[0]["class_name"]
    only = detections(
        server,
        model="random-seg",
        image=image,
        threshold=0.01,
        max_detections=40,
        classes=[int(name.removeprefix("class"))],
    )
    assert {d["class_name"] for d in only} == {name}
    assert len(only) >= len(
        [d for d in everything if d["class_name"] == name]
    )  # fewer rivals for the 40 places


@pytest.mark.parametrize("model", ["random-seg", "random-det"])
def test_onnx_export_gives_the_same_boxes(server: KernaiServer, bus_jpg: bytes, model: str) -> None:
    image = data_uri(bus_jpg)
    torch_boxes = detections(server, model=model, image=image)
    onnx_boxes = detections(server, model=f"{model}-onnx", image=image)
    assert len(torch_boxes) == len(onnx_boxes) > 0
    for a, b in zip(torch_boxes, onnx_boxes, strict=True):
        assert a["class_name"] == b["class_name"]
        assert a["confidence"] == pytest.approx(b["confidence"], abs=2e-3)
        for key in ("x", "y", "width", "height"):
            assert a[key] == pytest.approx(b[key], abs=1.0)
        if model == "random-det":
            assert "mask" not in a and "mask" not in b
            continue
        mask_a, mask_b = (Image.open(io.BytesIO(base64.b64decode(d["mask"]))).tobytes() for d in (a, b))
        assert sum(p != q for p, q in zip(mask_a, mask_b, strict=True)) < 0.001 * len(mask_a)


def _png(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height)).save(buffer, format="PNG")
    return buffer.getvalue()


def _zero_width_png() -> bytes:
    """A PNG whose header says 0 pixels wide (PIL refuses to write one, and to open it)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", 0, 10, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def _empty_wmf() -> bytes:
    """A placeable Windows metafile with an empty bounding box: the one kind of file PIL opens as 0x0."""
    placeable = b"\xd7\xcd\xc6\x9a\x00\x00" + struct.pack("<hhhhH", 0, 0, 0, 0, 1440) + b"\0" * 6
    return placeable + b"\x01\x00\x09\x00" + b"\0" * 14  # the standard metafile header PIL checks for


@pytest.mark.parametrize(
    ("image", "words"),
    [
        (lambda bus, url: data_uri(b"this is not an image"), "not a picture"),
        (lambda bus, url: data_uri(bus[: len(bus) // 2]), "truncated"),
        (
            lambda bus, url: data_uri(_zero_width_png(), "image/png"),
            "not a picture in a known format, or it is 0 pixels",
        ),
        (lambda bus, url: data_uri(_empty_wmf(), "image/wmf"), "The image is 0x0 pixels"),
        (
            lambda bus, url: data_uri(_png(1200, 1000), "image/png"),
            "more than the limit",
        ),  # max_pixels 1,000,000
        (lambda bus, url: data_uri(bus, "text/plain"), "media type"),
        (lambda bus, url: "%%% not base64 %%%", "base64"),
        (lambda bus, url: f"{url}/missing.jpg", "HTTP 404"),
        (lambda bus, url: f"{url}/slow.jpg", "took more than"),
        (lambda bus, url: f"{url}/huge.jpg", "limit"),
        (lambda bus, url: "http://127.0.0.1:9/nothing-listens-here.jpg", "Could not fetch"),
    ],
)
def test_bad_images_get_a_400(
    server: KernaiServer, image_server: str, bus_jpg: bytes, image, words: str
) -> None:
    response = detect(server, model="random-seg", image=image(bus_jpg, image_server))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (
        words in error["message"] and error["type"] == "invalid_request_error" and error["param"] == "image"
    )


def test_other_client_mistakes(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    assert detect(server, model="nope", image=image).status_code == 404
    assert detect(server, model="random-seg", image=image, threshold=1.5).status_code == 400
    bad_class = detect(server, model="random-seg", image=image, classes=[80])
    assert bad_class.status_code == 400 and bad_class.json()["error"]["param"] == "classes"


def _mask(detection: dict) -> np.ndarray:
    return np.array(Image.open(io.BytesIO(base64.b64decode(detection["mask"])))) > 0


def _iou(a: dict, b: dict) -> float:
    width = min(a["x"] + a["width"], b["x"] + b["width"]) - max(a["x"], b["x"])
    height = min(a["y"] + a["height"], b["y"] + b["height"]) - max(a["y"], b["y"])
    overlap = max(width, 0) * max(height, 0)
    return overlap / (a["width"] * a["height"] + b["width"] * b["height"] - overlap)


def test_detection_model_gives_boxes_and_no_masks(server: KernaiServer, bus_jpg: bytes) -> None:
    found = detections(server, model="random-det", image=data_uri(bus_jpg), max_detections=10)
    assert len(found) == 10
    assert [d["confidence"] for d in found] == sorted((d["confidence"] for d in found), reverse=True)
    for d in found:
        assert set(d) == {"x", "y", "width", "height", "confidence", "class_name"}
        assert 0 <= d["x"] and d["x"] + d["width"] <= BUS_SIZE[0] + 1 and d["width"] > 0
        assert 0 <= d["y"] and d["y"] + d["height"] <= BUS_SIZE[1] + 1 and d["height"] > 0
        assert d["confidence"] >= 0.05 and d["class_name"]


def test_image_size_from_the_config_and_the_request(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    configured = detections(server, model="random-det", image=image)  # image_size: 320 in its config
    assert detections(server, model="random-det", image=image, image_size=320) == configured
    assert detections(server, model="random-det", image=image, image_size=640) != configured
    # at 32 px the model has 4x4 + 2x2 + 1x1 anchors: never more than 21 boxes, even with no threshold
    tiny = detections(server, model="random-det", image=image, image_size=32, threshold=0, max_detections=300)
    assert (
        0
        < len(tiny)
        <= 21
        < len(detections(server, model="random-det", image=image, threshold=0, max_detections=300))
    )


def test_iou_override_bounds_the_overlap_of_boxes_of_a_class(server: KernaiServer, bus_jpg: bytes) -> None:
    def worst_overlap(found: list[dict]) -> float:
        """The largest IoU of two boxes of one class, among boxes off the image's edges (clipping boxes to
        the image changes their overlap after non-maximum suppression)."""
        inside = [
            d
            for d in found
            if d["x"] > 1
            and d["y"] > 1
            and d["x"] + d["width"] < BUS_SIZE[0] - 1
            and d["y"] + d["height"] < BUS_SIZE[1] - 1
        ]
        return max(
            (_iou(a, b) for a, b in itertools.combinations(inside, 2) if a["class_name"] == b["class_name"]),
            default=0.0,
        )

    image = data_uri(bus_jpg)
    loose = detections(server, model="random-det", image=image, threshold=0.01, max_detections=300)  # iou 0.7
    strict = detections(server, model="random-det", image=image, threshold=0.01, max_detections=300, iou=0.1)
    assert len(strict) < len(loose)
    assert worst_overlap(strict) <= 0.1 + 1e-3 < worst_overlap(loose)


def test_task_from_the_config_for_an_onnx_file_that_does_not_say(
    server: KernaiServer, bus_jpg: bytes
) -> None:
    """The segmentation export without its metadata (ultralytics would guess 'detect') and
    ``task: segment``."""
    image = data_uri(bus_jpg)
    plain = detections(server, model="random-seg-plain", image=image)
    exported = detections(server, model="random-seg-onnx", image=image)
    assert plain and all("mask" in d for d in plain)
    # with no names in the file, class 7 is called "class7" instead of "7"
    assert [{**d, "class_name": d["class_name"].removeprefix("class")} for d in plain] == exported


def test_fastsam_without_prompts_segments_everything(server: KernaiServer, bus_jpg: bytes) -> None:
    found = detections(server, model="fastsam", image=data_uri(bus_jpg), max_detections=20)
    assert len(found) == 20 and {d["class_name"] for d in found} == {"object"}
    assert all(_mask(d).shape == BUS_SIZE[::-1] and _mask(d).any() for d in found)


def test_fastsam_points_keep_the_masks_under_them(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    everything = detections(server, model="fastsam", image=image, max_detections=20)
    masks = [_mask(d) for d in everything]
    ys, xs = np.nonzero(masks[0])
    on = int(xs[len(xs) // 2]), int(ys[len(ys) // 2])  # a pixel of the first mask
    under = [d for d, m in zip(everything, masks, strict=True) if m[on[1], on[0]]]
    assert detections(server, model="fastsam", image=image, max_detections=20, points=[list(on)]) == under
    ys, xs = np.nonzero(_mask(under[-1]))
    off = int(xs[0]), int(ys[0])  # a pixel of the last of them, given as "not on the object"
    kept = [d for d, m in zip(everything, masks, strict=True) if m[on[1], on[0]] and not m[off[1], off[0]]]
    assert kept != under
    assert (
        detections(server, model="fastsam", image=image, max_detections=20, points=[[*on, 1], [*off, 0]])
        == kept
    )
    # the model config's kind: fastsam does the same for a file whose name does not say FastSAM
    assert (
        detections(server, model="fastsam-by-config", image=image, max_detections=20, points=[list(on)])
        == under
    )


def test_fastsam_box_keeps_the_mask_that_fills_it_best(server: KernaiServer, bus_jpg: bytes) -> None:
    image = data_uri(bus_jpg)
    everything = detections(server, model="fastsam", image=image, max_detections=20)
    x1, y1, x2, y2 = 100, 200, 500, 900
    box = np.zeros(BUS_SIZE[::-1], dtype=bool)
    box[y1:y2, x1:x2] = True

    def fit(detection: dict) -> float:
        mask = _mask(detection)
        return float((mask & box).sum() / (mask | box).sum())

    found = detections(server, model="fastsam", image=image, max_detections=20, boxes=[[x1, y1, x2, y2]])
    assert len(found) == 1 and found[0] in everything
    assert fit(found[0]) == pytest.approx(max(fit(d) for d in everything))


@pytest.mark.parametrize(
    ("model", "body", "param", "words"),
    [
        ("random-seg", {"prompt": "a bus"}, "prompt", "No model here takes a text prompt"),
        ("fastsam", {"prompt": "a bus"}, "prompt", "the 'clip' package from GitHub, then its weights"),
        ("random-seg", {"points": [[10, 10]]}, "points", "takes no points or boxes; FastSAM models do"),
        ("random-det", {"boxes": [[10, 10, 50, 50]]}, "boxes", "takes no points or boxes; FastSAM models do"),
    ],
)
def test_prompts_a_model_does_not_take_are_refused(
    server: KernaiServer, bus_jpg: bytes, model: str, body: dict, param: str, words: str
) -> None:
    response = detect(server, model=model, image=data_uri(bus_jpg), **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "not_supported" and error["param"] == param and words in error["message"], error


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"points": [[10, 10, 2]]}, "points", "label"),
        ({"points": [[10]]}, "points[0]", "length >= 2"),
        ({"boxes": [[50, 10, 10, 50]]}, "boxes", "x2 > x1"),
        ({"boxes": [[10, 10, 50]]}, "boxes[0]", "length >= 4"),
    ],
)
def test_malformed_points_and_boxes_are_400(
    server: KernaiServer, bus_jpg: bytes, body: dict, param: str, words: str
) -> None:
    response = detect(server, model="fastsam", image=data_uri(bus_jpg), **body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_workers_never_reach_the_network(
    server: KernaiServer, models_dir: Path, network_logs: Path, bus_jpg: bytes
) -> None:
    """Every worker ran with a guard that refuses and records DNS lookups and connections
    (``offline/sitecustomize.py``); loading and predicting, on every kind of model, used none."""
    names = sorted(path.stem for path in models_dir.glob("*.yaml"))
    for name in names:
        assert detect(server, model=name, image=data_uri(bus_jpg)).status_code == 200
    for name in names:
        lines = (network_logs / f"{name}.log").read_text().splitlines()
        assert lines and all(line.startswith("armed ") for line in lines), (name, lines)
