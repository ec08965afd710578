"""`kernai models ...` and `kernai backends ...` as users run them, against the local gallery."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kernai.testing import KernaiServer, prepare_server
from tests.gallery.conftest import (
    Gallery,
    blob,
    entry,
    publish_backend,
    sha256,
    write_plugin,
)


def kernai(
    gallery: Gallery, root: Path, *args: str, python: str = sys.executable, **extra_env: str
) -> subprocess.CompletedProcess[str]:
    """``python -m kernai ARGS`` with the test galleries (and ``extra_env``), on the dirs under ``root``."""
    env = {**os.environ, **gallery.env(), "COLUMNS": "200", **extra_env}
    dirs = ["--models-dir", str(root / "models"), "--data-dir", str(root / "data")]
    command = [python, "-m", "kernai", *args[:2], *dirs, *args[2:]]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.slow
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


@pytest.mark.slow
def test_ctrl_c_interrupts_an_install_and_the_next_one_resumes(gallery: Gallery, tmp_path: Path) -> None:
    data = blob(3_000_000, seed=21)
    url = gallery.files.add("cli-slow.bin", data, delay=0.05)
    gallery.add(entry("cli-slow", [{"filename": "cli-slow.bin", "sha256": sha256(data), "uri": url}]))
    dirs = ["--models-dir", str(tmp_path / "models"), "--data-dir", str(tmp_path / "data")]
    command = [sys.executable, "-m", "kernai", "models", "install", "test@cli-slow", *dirs]
    partial = tmp_path / "models" / "cli-slow.bin.partial"
    with subprocess.Popen(command, env={**os.environ, **gallery.env()}, stdout=subprocess.DEVNULL) as install:
        deadline = time.monotonic() + 60
        while not (partial.is_file() and partial.stat().st_size > 0):
            assert time.monotonic() < deadline and install.poll() is None, "no download started"
            time.sleep(0.02)
        install.send_signal(signal.SIGINT)
        assert install.wait(30) != 0
    kept = partial.stat().st_size
    assert 0 < kept < len(data)
    with KernaiServer(tmp_path / "models", tmp_path / "data", env=gallery.env()) as server:
        with server.client() as client:
            [job] = client.get("/models/jobs").json().values()
    assert (job["state"], job["cancelled"]) == ("interrupted", False) and "Ctrl-C" in job["error"], job

    gallery.files.files["cli-slow.bin"].delay = 0
    resumed = kernai(gallery, tmp_path, "models", "install", "test@cli-slow")
    assert resumed.returncode == 0, resumed.stderr
    assert gallery.files.files["cli-slow.bin"].requests[-1] == f"bytes={kept}-"
    assert (tmp_path / "models" / "cli-slow.bin").read_bytes() == data


@pytest.mark.slow
def test_backends_list_and_available(gallery: Gallery, tmp_path: Path) -> None:
    listed = kernai(gallery, tmp_path, "backends", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["name"]: row for row in json.loads(listed.stdout)}
    assert (rows["reference"]["distribution"], rows["reference"]["plugin"]) == (
        "kernai-reference",
        "reference",
    )
    assert "chat" in rows["reference"]["capabilities"]
    assert rows["reference"]["environment"] is None  # the development install, in kernai's environment
    available = kernai(gallery, tmp_path, "backends", "available", "--json")
    assert available.returncode == 0, available.stderr
    assert json.loads(available.stdout)["errors"] == {}


@pytest.mark.slow
def test_backends_install_upgrade_remove(gallery: Gallery, tmp_path: Path) -> None:
    write_plugin(tmp_path / "gallery-echo", "0.1.0", "plain")
    index = tmp_path / "backends.yaml"
    publish_backend(index, "0.1.0")
    galleries = json.dumps([{"name": "test", "url": str(index)}])

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return kernai(gallery, tmp_path, *args, KERNAI_BACKEND_GALLERIES=galleries)

    def listed() -> dict[str, dict[str, str]]:
        done = run("backends", "list", "--json")
        assert done.returncode == 0, done.stderr
        return {row["name"]: row for row in json.loads(done.stdout)}

    def reply(text: str) -> str:
        """A request to a server started on the directories the CLI changed."""
        config = {"name": "echo-model", "backend": "gallery-echo"}
        server = prepare_server(tmp_path, models={"echo-model.yaml": config}, env=gallery.env())
        with server, server.client() as client:
            answer = client.post(
                "/v1/chat/completions",
                json={"model": "echo-model", "messages": [{"role": "user", "content": text}]},
            )
            assert answer.status_code == 200, answer.text
            return str(answer.json()["choices"][0]["message"]["content"])

    assert "gallery-echo" not in listed()
    installed = run("backends", "install", "test@gallery-echo")
    assert installed.returncode == 0, installed.stderr
    assert "installed backend 'gallery-echo' (cpu)" in installed.stdout
    first = listed()["gallery-echo"]
    assert first["version"] == "0.1.0"
    assert Path(first["environment"]).is_relative_to(tmp_path / "data" / "backends"), first
    assert reply("stressed") == "desserts"
    assert "every backend is up to date" in run("backends", "upgrade", "--check").stdout

    write_plugin(tmp_path / "gallery-echo", "0.2.0", "upper")
    publish_backend(index, "0.2.0")
    assert "gallery-echo: 0.1.0 -> 0.2.0" in run("backends", "upgrade", "--check").stdout
    upgraded = run("backends", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "upgraded backend 'gallery-echo'" in upgraded.stdout
    second = listed()["gallery-echo"]
    assert second["version"] == "0.2.0" and not Path(first["environment"]).exists()
    assert reply("stressed") == "DESSERTS"

    pinned = "name: echo-model\nbackend: gallery-echo\npinned: true\n"
    (tmp_path / "models" / "echo-model.yaml").write_text(pinned)
    refused = run("backends", "remove", "gallery-echo")
    assert refused.returncode == 1 and "'echo-model' (pinned)" in refused.stderr, refused.stderr
    removed = run("backends", "remove", "gallery-echo", "--force")
    assert removed.returncode == 0, removed.stderr
    assert "removed backend 'gallery-echo'" in removed.stdout
    assert "gallery-echo" not in listed() and not Path(second["environment"]).exists()
    again = run("backends", "remove", "gallery-echo")
    assert again.returncode == 1 and "no installed backend 'gallery-echo'" in again.stderr
    development = run("backends", "remove", "reference")
    assert development.returncode == 1 and "server's own environment" in development.stderr, development
    missing = run("backends", "install", "test@nothing")
    assert missing.returncode == 1 and "test@nothing" in missing.stderr
