"""`kernai doctor ultralytics`, run as a user runs it, builds a random-weight YOLO, loads it in a worker and
detects on ``bus.jpg``, all without the network."""

from pathlib import Path

import pytest

from kernai.testing import on_pythonpath, run_doctor

pytestmark = pytest.mark.slow  # a YOLO model on torch

NETWORK_GUARD = Path(__file__).parent / "offline"


def test_doctor_detects_with_a_random_weight_yolo_offline(tmp_path: Path) -> None:
    log = tmp_path / "network.log"
    # every Python process of the run (the doctor, the child that builds the model, the worker) runs the guard
    env = {"KERNAI_TEST_NETWORK_LOG": str(log), "PYTHONPATH": on_pythonpath(NETWORK_GUARD)}
    done, [finding] = run_doctor("ultralytics", env=env, timeout=600)
    assert (finding["outcome"], done.returncode) == ("ok", 0), done.stdout + done.stderr
    assert finding["detail"] == "loaded its test model and answered a DetectionRequest"
    lines = log.read_text().splitlines()
    assert [line for line in lines if not line.startswith("armed ")] == []
    assert len(lines) >= 3, lines
