"""Backend installs through /backends/*: each backend in an environment of its own under the data
directory, usable without a restart; the server's own environment never changes (conftest checks)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import psutil
import pytest
import yaml

from tests.gallery.conftest import Gallery, publish_backend, wait_job, write_plugin

pytestmark = pytest.mark.slow  # backends installed with pip


def chat(client: httpx.Client, text: str, model: str = "echo-model") -> httpx.Response:
    return client.post(
        "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": text}]}
    )


def answer(client: httpx.Client, text: str, model: str = "echo-model") -> str:
    reply = chat(client, text, model)
    assert reply.status_code == 200, reply.text
    content: str = reply.json()["choices"][0]["message"]["content"]
    return content


def worker_python(client: httpx.Client, model: str) -> str:
    """The interpreter the model's worker process runs."""
    pid = next(m["pid"] for m in client.get("/system").json()["loaded_models"] if m["id"] == model)
    return str(psutil.Process(pid).cmdline()[0])


def environments(client: httpx.Client) -> dict[str, str | None]:
    return {b["name"]: b["environment"] for b in client.get("/backends").json()}


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
    first = installed["gallery-echo"]["environment"]
    assert Path(first).is_relative_to(gallery.root / "data" / "backends"), first
    assert installed["reference"]["environment"] is None  # the development install, next to kernai
    system = {b["name"]: b for b in client.get("/system").json()["backends"]}
    assert (system["gallery-echo"]["environment"], system["reference"]["environment"]) == (first, None)
    assert client.get("/backends/available").json()[0]["installed_version"] == "0.1.0"
    definition = gallery.root / "echo-model.yaml"
    definition.write_text(yaml.safe_dump({"name": "echo-model", "backend": "gallery-echo"}))
    assert (
        wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])["state"]
        == "done"
    )
    assert answer(client, "stressed") == "desserts"
    assert worker_python(client, "echo-model").startswith(first)

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
    second = environments(client)["gallery-echo"]
    assert second != first and not Path(first).exists()  # the old environment went with its worker
    assert answer(client, "stressed") == "DESSERTS"
    assert worker_python(client, "echo-model").startswith(second)
    assert client.get("/backends/upgrades").json() == {}

    # a pinned model keeps its backend: delete and upgrade answer 409 unless forced
    assert client.put("/api/models/toggle-pinned/echo-model/pin").status_code == 200
    for path in ("/backends/delete/gallery-echo", "/backends/upgrade/gallery-echo"):
        refused = client.post(path)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "backend_in_use"
        assert "'echo-model' (pinned)" in refused.json()["error"]["message"]
    assert answer(client, "stressed") == "DESSERTS"

    status = wait_job(
        client, client.post("/backends/delete/gallery-echo?force=true").json()["uuid"], "/backends"
    )
    assert status["state"] == "done", status
    assert "gallery-echo" not in {b["name"] for b in client.get("/backends").json()}
    assert not Path(second).exists()
    assert not (gallery.root / "data" / "backends" / "gallery-echo").exists()
    orphaned = chat(client, "stressed")  # its config names a backend no longer installed
    assert orphaned.status_code == 503 and orphaned.json()["error"]["code"] == "model_config_invalid"
    jobs = [
        j for j in client.get("/backends/jobs").json().values() if j["gallery_element_name"] == "gallery-echo"
    ]
    assert [(j["op"], j["state"]) for j in sorted(jobs, key=lambda j: j["created_at"])] == [
        ("install", "done"),
        ("upgrade", "done"),
        ("delete", "done"),
    ]
    removed = wait_job(client, client.post("/models/delete/echo-model").json()["uuid"])
    assert removed["state"] == "done", removed


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
    assert client.get("/backends/galleries").json() == [{"name": "test", "url": str(gallery.backends_index)}]


def test_a_development_install_is_never_replaced_or_removed(gallery: Gallery, client: httpx.Client) -> None:
    """``reference`` comes from the server's own environment (an editable install): 409, nothing runs."""
    gallery.backends_index.write_text(
        yaml.safe_dump([{"name": "reference", "distribution": "kernai-reference", "pip": "kernai-reference"}])
    )
    jobs = client.get("/backends/jobs").json()
    for path, body in [
        ("/backends/delete/reference", None),
        ("/backends/delete/reference?force=true", None),
        ("/backends/upgrade/reference", None),
        ("/backends/apply", {"id": "test@reference"}),
        ("/backends/apply", {"id": "test@reference", "force": True}),
    ]:
        reply = client.post(path, json=body)
        assert reply.status_code == 409, (path, reply.text)
        error = reply.json()["error"]
        assert error["code"] == "server_environment", error
        assert "'kernai-reference' 0.1.0" in error["message"], error
        assert "never replaces or removes" in error["message"], error
    assert client.get("/backends/jobs").json() == jobs
    assert environments(client)["reference"] is None
    definition = gallery.root / "ref-model.yaml"
    definition.write_text(yaml.safe_dump({"name": "ref-model", "backend": "reference"}))
    model = wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])
    assert model["state"] == "done", model
    assert answer(client, "hello", "ref-model") == "hello"


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
        assert status["message"].startswith("installed backend 'gallery-echo' (cuda) in "), status
        assert {b["name"]: b["version"] for b in client.get("/backends").json()}[
            "gallery-echo"
        ] == "0.1.0+cuda"
        model = wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])
        assert model["state"] == "done", model
        assert answer(client, "stressed") == "DESSERTS"
