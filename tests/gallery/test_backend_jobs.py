"""Backend installs through /backends/*: pip into the server's environment, usable without a restart."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import yaml

from tests.gallery.conftest import Gallery, publish_backend, wait_job, write_plugin

pytestmark = pytest.mark.slow  # backends installed with pip


def chat(client: httpx.Client, text: str) -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": "echo-model", "messages": [{"role": "user", "content": text}]}
    )


def test_install_use_upgrade_and_remove_a_backend_without_restart(
    gallery: Gallery, client: httpx.Client
) -> None:
    write_plugin(gallery.root / "gallery-echo", "0.1.0", "plain")
    publish_backend(gallery.backends_index, "0.1.0")
    assert "gallery-echo" not in {b["name"] for b in client.get("/backends").json()}
    assert [b["installed"] for b in client.get("/backends/available").json()] == [False]

    status = wait_job(
        client, client.post("/backends/apply", json={"id": "test@gallery-echo"}).json()["uuid"], "/backends"
    )
    assert status["state"] == "done", status
    installed = {b["name"]: b for b in client.get("/backends").json()}
    assert installed["gallery-echo"]["version"] == "0.1.0"
    assert installed["gallery-echo"]["distribution"] == "kernai-gallery-echo"
    assert client.get("/backends/available").json()[0]["installed_version"] == "0.1.0"
    definition = gallery.root / "echo-model.yaml"
    definition.write_text(yaml.safe_dump({"name": "echo-model", "backend": "gallery-echo"}))
    assert (
        wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])["state"]
        == "done"
    )
    reply = chat(client, "stressed")
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "desserts"

    assert client.get("/backends/upgrades").json() == {}
    write_plugin(gallery.root / "gallery-echo", "0.2.0", "upper")
    publish_backend(gallery.backends_index, "0.2.0")
    upgrades = client.post("/backends/upgrades/check").json()
    assert upgrades == {
        "gallery-echo": {
            "name": "gallery-echo",
            "distribution": "kernai-gallery-echo",
            "installed_version": "0.1.0",
            "available_version": "0.2.0",
            "gallery": "test",
        }
    }
    status = wait_job(client, client.post("/backends/upgrade/gallery-echo").json()["uuid"], "/backends")
    assert status["state"] == "done", status
    assert {b["name"]: b["version"] for b in client.get("/backends").json()}["gallery-echo"] == "0.2.0"
    assert chat(client, "stressed").json()["choices"][0]["message"]["content"] == "DESSERTS"
    assert client.get("/backends/upgrades").json() == {}

    status = wait_job(client, client.post("/backends/delete/gallery-echo").json()["uuid"], "/backends")
    assert status["state"] == "done", status
    assert "gallery-echo" not in {b["name"] for b in client.get("/backends").json()}
    orphaned = chat(client, "stressed")  # its config names a backend no longer installed
    assert orphaned.status_code == 503 and orphaned.json()["error"]["code"] == "model_config_invalid"
    jobs = client.get("/backends/jobs").json()
    assert [(j["op"], j["state"]) for j in sorted(jobs.values(), key=lambda j: j["created_at"])] == [
        ("install", "done"),
        ("upgrade", "done"),
        ("delete", "done"),
    ]


def test_backend_client_errors(gallery: Gallery, client: httpx.Client) -> None:
    publish_backend(gallery.backends_index, "0.1.0")
    cases = [
        ("/backends/apply", {"id": "test@nothing"}, 404),
        ("/backends/apply", {"id": "gallery-echo", "variant": "metal"}, 400),
        ("/backends/apply", {}, 400),
        ("/backends/delete/nothing", None, 404),
        ("/backends/upgrade/nothing", None, 404),
    ]
    for path, body, code in cases:
        reply = client.post(path, json=body)
        assert reply.status_code == code, (path, body, reply.text)
        assert reply.json()["error"]["message"]
    assert client.get("/backends/jobs/nothing").status_code == 404

    # reference lives in the outer venv, outside the server's environment: pip leaves it, the job says so
    status = wait_job(client, client.post("/backends/delete/reference").json()["uuid"], "/backends")
    assert status["state"] == "failed" and "pip did not remove 'kernai-reference'" in status["error"], status
    assert "reference" in {b["name"] for b in client.get("/backends").json()}
    assert client.get("/backends/galleries").json() == [{"name": "test", "url": str(gallery.backends_index)}]


@pytest.fixture()
def cuda_gallery(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gallery]:
    """A gallery and server of their own, whose hardware detection is forced to ``cuda``."""
    forced = Gallery(tmp_path_factory.mktemp("cuda-gallery"), env={"KERNAI_BACKEND_VARIANT": "cuda"})
    yield forced
    if forced.server is not None:
        forced.server.stop()
    forced.files.close()


def test_the_detected_hardware_picks_the_variant_and_its_pip_requirement(cuda_gallery: Gallery) -> None:
    for variant, style in [("cpu", "plain"), ("cuda", "upper")]:
        write_plugin(cuda_gallery.root / f"echo-{variant}", f"0.1.0+{variant}", style)
    build = ["--no-build-isolation"]
    cuda_gallery.backends_index.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "gallery-echo",
                    "distribution": "kernai-gallery-echo",
                    "pip": "./echo-cpu",
                    "variants": {
                        "cpu": {"pip": "./echo-cpu", "pip_args": build},
                        "cuda": {"pip": "./echo-cuda", "pip_args": build},
                    },
                }
            ]
        )
    )
    definition = cuda_gallery.root / "echo-model.yaml"
    definition.write_text(yaml.safe_dump({"name": "echo-model", "backend": "gallery-echo"}))

    with cuda_gallery.start().client() as client:
        reply = client.post("/backends/apply", json={"id": "gallery-echo"})
        status = wait_job(client, reply.json()["uuid"], "/backends")
        assert status["state"] == "done", status
        assert status["message"] == "installed backend 'gallery-echo' (cuda)"
        assert {b["name"]: b["version"] for b in client.get("/backends").json()}[
            "gallery-echo"
        ] == "0.1.0+cuda"
        model = wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])
        assert model["state"] == "done", model
        assert chat(client, "stressed").json()["choices"][0]["message"]["content"] == "DESSERTS"
