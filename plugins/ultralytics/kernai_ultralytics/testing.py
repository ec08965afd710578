"""Seeded random-weight YOLO checkpoints, for tests and benchmarks that need no download."""

from __future__ import annotations

from pathlib import Path

from kernai_ultralytics.detector import offline_environment


def write_random_yolo(path: Path, *, architecture: str = "yolo11n.yaml", seed: int = 0, noise: float = 0.1) -> Path:
    """Build ``architecture`` with seeded weights and save it as a ``.pt`` checkpoint.

    A freshly initialised head gives every box the same confidence (about 1e-4); seeded noise on
    every weight spreads the confidences (about 0.07 to 0.2 on ``bus.jpg``) so that results have
    an order to compare.
    """
    offline_environment()
    import torch
    from ultralytics import YOLO

    torch.manual_seed(seed)
    model = YOLO(architecture)
    generator = torch.Generator().manual_seed(seed + 1)
    with torch.no_grad():
        for parameter in model.model.parameters():
            parameter.add_(torch.randn(parameter.shape, generator=generator) * noise)
    model.save(str(path))
    return Path(path)
