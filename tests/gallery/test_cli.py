"""`kernai models ...` and `kernai backends ...` as users run them, against the local gallery."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.gallery.conftest import Gallery, blob, entry, sha256


def kernai(gallery: Gallery, root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **gallery.env(), "COLUMNS": "200"}
    dirs = ["--models-dir", str(root / "models"), "--data-dir", str(root / "data")]
    command = [
        sys.executable,
        "-m",
        "kernai",
        *args[:2],
        *(dirs if args[:2] != ("backends", "list") else []),
        *args[2:],
    ]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


def test_models_install_list_remove(gallery: Gallery, tmp_path: Path) -> None:
    data = blob(2_000_000, seed=20)
    gallery.add(
        entry(
            "cli-model",
            [
                {
                    "filename": "cli-model.bin",
                    "sha256": sha256(data),
                    "uri": gallery.files.add("cli-model.bin", data, delay=0.01),
                }
            ],
        )
    )
    gallery.add(
        entry(
            "cli-corrupt",
            [
                {
                    "filename": "cli-corrupt.bin",
                    "sha256": sha256(b"other"),
                    "uri": gallery.files.add("cli-corrupt.bin", data),
                }
            ],
        )
    )

    available = kernai(gallery, tmp_path, "models", "available")
    assert available.returncode == 0, available.stderr
    assert "test@cli-model" in available.stdout

    installed = kernai(gallery, tmp_path, "models", "install", "test@cli-model")
    assert installed.returncode == 0, installed.stderr
    assert "cli-model.bin" in installed.stdout and "2.0/2.0 MB" in installed.stdout
    assert "installed model 'cli-model'" in installed.stdout
    assert (tmp_path / "models" / "cli-model.bin").read_bytes() == data

    listed = json.loads(kernai(gallery, tmp_path, "models", "list", "--json").stdout)
    assert listed["models"] == [
        {"name": "cli-model", "backend": "reference", "model": "cli-model.bin", "source": "test@cli-model"}
    ]

    missing = kernai(gallery, tmp_path, "models", "install", "test@nope")
    assert missing.returncode == 1 and "no model 'test@nope'" in missing.stderr
    corrupt = kernai(gallery, tmp_path, "models", "install", "cli-corrupt")
    assert corrupt.returncode == 1 and "sha256" in corrupt.stderr and "failed" in corrupt.stderr
    assert not list((tmp_path / "models").glob("cli-corrupt*"))

    removed = kernai(gallery, tmp_path, "models", "remove", "cli-model")
    assert removed.returncode == 0, removed.stderr
    assert not (tmp_path / "models" / "cli-model.bin").exists()
    assert not (tmp_path / "models" / "cli-model.yaml").exists()
    assert kernai(gallery, tmp_path, "models", "remove", "cli-model").returncode == 1


def test_backends_list_and_available(gallery: Gallery, tmp_path: Path) -> None:
    listed = kernai(gallery, tmp_path, "backends", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert (rows["reference"]["distribution"], rows["reference"]["plugin"]) == (
        "kernai-reference",
        "reference",
    )
    assert "chat" in rows["reference"]["capabilities"]
    available = kernai(gallery, tmp_path, "backends", "available", "--json")
    assert available.returncode == 0, available.stderr
    assert json.loads(available.stdout)["errors"] == {}
