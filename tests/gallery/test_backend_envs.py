"""Backend environments as users meet them: a plugin folder and a package index as sources, jobs that
cannot corrupt what serves (concurrent, killed and failing installs), and two backends whose
dependencies conflict. The server's own environment never changes (conftest checks after each test)."""

from __future__ import annotations

import importlib.util
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest
import yaml

from kernai.testing import free_port
from tests.gallery.conftest import Gallery, blob, build_wheel, wait_job
from tests.gallery.test_backend_jobs import answer, environments, worker_python
from tests.gallery.test_cli import kernai

pytestmark = pytest.mark.slow  # backends installed with pip

REFERENCE = Path(__file__).parents[2] / "contrib_backends" / "reference"

PLUGIN = '''"""A test backend: answers REPLY + the last user message."""
from kernai import Backend, hookimpl
from kernai import capabilities as cap
{imports}


@hookimpl
def register_backends(register):
    register(Backend(name="{name}", capabilities=[cap.Capability.CHAT], requires_model_file=False))


@hookimpl
def load(backend, config):
    return {reply}


@hookimpl
def predict(backend, model, request):
    text = model + request.messages[-1].text()
    return cap.ChatResult(content=text, usage=cap.Usage(1, 1), finish_reason="stop")


@hookimpl
def status(backend, model):
    return {{}}


@hookimpl
def shutdown(backend, model):
    return True
'''


def plugin_wheel(
    folder: Path,
    name: str,
    version: str,
    reply: str,
    requires: tuple[str, ...] = (),
    imports: str = "",
    padding: int = 0,
) -> Path:
    """The wheel of plugin ``name`` (distribution ``kernai-NAME``, module ``kernai_NAME``), whose model
    answers the Python expression ``reply`` followed by the message; ``padding`` bytes make it big."""
    module = "kernai_" + name.replace("-", "_")
    files = {f"{module}/__init__.py": PLUGIN.format(name=name, reply=reply, imports=imports).encode()}
    if padding:
        files[f"{module}/padding.bin"] = blob(padding, seed=7)
    return build_wheel(folder, f"kernai-{name}", version, files, ("kernai", *requires), {name: module})


def publish(index: Path, name: str, pip: str, version: str, **variant: Any) -> None:
    """A backend gallery at ``index`` holding one entry."""
    entry: dict[str, Any] = {"name": name, "distribution": f"kernai-{name}", "pip": pip, "version": version}
    if variant:
        entry["variants"] = {"cpu": variant}
    index.write_text(yaml.safe_dump([entry]))


def apply(client: httpx.Client, path: str, body: Any = None) -> dict[str, Any]:
    reply = client.post(path, json=body)
    assert reply.status_code == 200, reply.text
    return wait_job(client, reply.json()["uuid"], "/backends")


def add_model(gallery: Gallery, client: httpx.Client, name: str, backend: str, **options: Any) -> None:
    definition = gallery.root / f"{name}.yaml"
    definition.write_text(yaml.safe_dump({"name": name, "backend": backend, "overrides": options}))
    job = wait_job(client, client.post("/models/apply", json={"url": str(definition)}).json()["uuid"])
    assert job["state"] == "done", job


def builds(gallery: Gallery, backend: str) -> list[str]:
    """The environment folders of ``backend``: the serving one, and any other left behind."""
    folder = gallery.root / "data" / "backends" / ".builds" / backend
    return sorted(str(path) for path in folder.iterdir()) if folder.is_dir() else []


def test_a_renamed_copy_of_the_reference_backend_from_its_folder(
    gallery: Gallery, client: httpx.Client
) -> None:
    """The reference plugin's folder, renamed so that the development install stays: both serve at once,
    each from its own environment, with the same module name."""
    copy = gallery.root / "reference-copy"
    shutil.copytree(
        REFERENCE, copy, ignore=shutil.ignore_patterns("tests", "build", "*.egg-info", "__pycache__")
    )
    module = copy / "kernai_reference" / "__init__.py"
    module.write_text(module.read_text().replace('NAME = "reference"', 'NAME = "reference-copy"'))
    project = copy / "pyproject.toml"
    project.write_text(
        project.read_text()
        .replace('name = "kernai-reference"', 'name = "kernai-reference-copy"')
        .replace('reference = "kernai_reference"', 'reference-copy = "kernai_reference"')
    )
    publish(
        gallery.backends_index,
        "reference-copy",
        "./reference-copy",
        "0.1.0",
        pip_args=["--no-build-isolation"],
    )

    status = apply(client, "/backends/apply", {"id": "reference-copy"})
    assert status["state"] == "done", status
    where = environments(client)
    assert where["reference"] is None and where["reference-copy"] is not None
    add_model(gallery, client, "copy-model", "reference-copy")
    add_model(gallery, client, "dev-model", "reference")
    assert answer(client, "from the copy", "copy-model") == "from the copy"
    assert answer(client, "from the checkout", "dev-model") == "from the checkout"
    assert worker_python(client, "copy-model").startswith(str(where["reference-copy"]))
    assert worker_python(client, "dev-model") == sys.executable
    python = Path(str(where["reference-copy"])) / "bin" / "python"
    imported = "import kernai_reference, kernai; print(kernai_reference.__file__); print(kernai.__version__)"
    seen = subprocess.run([python, "-c", imported], capture_output=True, text=True, check=True).stdout.split()
    assert seen[0].startswith(str(where["reference-copy"])) and seen[1] == __import__("kernai").__version__
    # the server's other packages (another plugin, its engine) are not visible there
    for other in ("kernai_whisper", "kernai_piper", "piper", "faster_whisper", "pytest"):
        if importlib.util.find_spec(other) is not None:
            hidden = subprocess.run([python, "-c", f"import {other}"], capture_output=True, text=True)
            assert hidden.returncode == 1 and "ModuleNotFoundError" in hidden.stderr, other

    # a model busy with a request keeps its backend: 409 until the request is done
    add_model(gallery, client, "slow-copy", "reference-copy", delay=0.5)
    assert gallery.server is not None
    with gallery.server.client() as other, ThreadPoolExecutor(1) as pool:
        slow = pool.submit(answer, other, "one two three four five six seven eight", "slow-copy")
        deadline = time.monotonic() + 30
        while not any(
            m["id"] == "slow-copy" and m["state"] == "busy"
            for m in client.get("/system").json()["loaded_models"]
        ):
            assert time.monotonic() < deadline and not slow.done()
            time.sleep(0.05)
        refused = client.post("/backends/delete/reference-copy")
        assert refused.status_code == 409 and "'slow-copy' (busy)" in refused.json()["error"]["message"], (
            refused.text
        )
        assert slow.result() == "one two three four five six seven eight"

    status = apply(client, "/backends/delete/reference-copy")
    assert status["state"] == "done", status
    assert "reference-copy" not in environments(client)
    assert answer(client, "still here", "dev-model") == "still here"
    for model in ("copy-model", "dev-model", "slow-copy"):
        assert wait_job(client, client.post(f"/models/delete/{model}").json()["uuid"])["state"] == "done"


@pytest.fixture()
def package_index(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``python -m http.server`` over a folder with a ``simple/`` index: (the folder, the index URL)."""
    (tmp_path / "simple").mkdir()
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1", "--directory", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/simple/", timeout=1)
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    yield tmp_path, f"http://127.0.0.1:{port}/simple/"
    server.terminate()
    server.wait()


def test_install_upgrade_and_delete_from_a_package_index(
    gallery: Gallery, client: httpx.Client, package_index: tuple[Path, str]
) -> None:
    folder, url = package_index
    project = folder / "simple" / "kernai-safe-echo"
    project.mkdir()
    # the index is the only source: no --no-index, no find-links, and no proxy for 127.0.0.1
    variant = {"pip_args": ["--index-url", url], "env": {"PIP_NO_INDEX": "0", "NO_PROXY": "127.0.0.1"}}
    for version, reply in [("1.0", '"v1: "'), ("2.0", '"v2: "')]:
        plugin_wheel(project, "safe-echo", version, reply)
        publish(gallery.backends_index, "safe-echo", f"kernai-safe-echo=={version}", version, **variant)
        status = apply(
            client,
            "/backends/apply" if version == "1.0" else "/backends/upgrade/safe-echo",
            {"id": "safe-echo"} if version == "1.0" else None,
        )
        assert status["state"] == "done", status
        assert {b["name"]: b["version"] for b in client.get("/backends").json()}["safe-echo"] == version
        if version == "1.0":
            add_model(gallery, client, "safe-model", "safe-echo")
        assert answer(client, "hi", "safe-model") == f"v{version[0]}: hi"
        assert len(builds(gallery, "safe-echo")) == 1
    status = apply(client, "/backends/delete/safe-echo")
    assert status["state"] == "done", status
    assert builds(gallery, "safe-echo") == []
    assert wait_job(client, client.post("/models/delete/safe-model").json()["uuid"])["state"] == "done"


def pip_processes(server_pid: int) -> list[psutil.Process]:
    found = []
    for process in psutil.Process(server_pid).children(recursive=True):
        try:
            if any("pip" in part for part in process.cmdline()):
                found.append(process)
        except psutil.NoSuchProcess:
            pass
    return found


def test_concurrent_killed_and_failing_installs_leave_the_serving_version(
    gallery: Gallery, client: httpx.Client
) -> None:
    plugin_wheel(gallery.wheels, "safe-echo", "1.0", '"v1: "')
    publish(gallery.backends_index, "safe-echo", "kernai-safe-echo==1.0", "1.0")
    assert apply(client, "/backends/apply", {"id": "safe-echo"})["state"] == "done"
    add_model(gallery, client, "safe-model", "safe-echo")
    assert answer(client, "hi", "safe-model") == "v1: hi"
    serving = builds(gallery, "safe-echo")

    # version 2 comes slowly from the file server (a find-links URL): 2 MB at 64 KiB per 0.2 s
    slow = gallery.root / "slow"
    slow.mkdir()
    wheel = plugin_wheel(slow, "safe-echo", "2.0", '"v2: "', padding=2_000_000)
    served = gallery.files.add(f"slow/{wheel.name}", wheel.read_bytes(), delay=0.2)
    publish(
        gallery.backends_index,
        "safe-echo",
        "kernai-safe-echo==2.0",
        "2.0",
        pip_args=["--find-links", served],
    )
    first = client.post("/backends/upgrade/safe-echo")
    assert first.status_code == 200, first.text
    running = first.json()["uuid"]
    for path, body in [
        ("/backends/apply", {"id": "safe-echo"}),
        ("/backends/upgrade/safe-echo", None),
        ("/backends/delete/safe-echo", None),
    ]:
        second = client.post(path, json=body)
        assert second.status_code == 409, second.text
        assert (
            second.json()["error"]["code"] == "job_running" and running in second.json()["error"]["message"]
        )

    # the CLI on the server's data directory is refused too: the lock holds across processes
    cli = kernai(gallery, gallery.root, "backends", "install", "safe-echo")
    assert cli.returncode == 1 and f"already has a job running ({running})" in cli.stderr, cli.stderr

    # SIGKILL to pip halfway through the download
    download = gallery.files.files[served.removeprefix(gallery.files.url + "/")]
    deadline = time.monotonic() + 60
    while not download.requests:
        job = client.get(f"/backends/jobs/{running}").json()
        assert time.monotonic() < deadline and not job["processed"], (
            "pip never started the download",
            job["error"],
        )
        time.sleep(0.05)
    assert gallery.server is not None and gallery.server.process is not None
    killed = pip_processes(gallery.server.process.pid)
    assert killed
    for process in killed:
        process.send_signal(signal.SIGKILL)
    status = wait_job(client, running, "/backends")
    assert status["state"] == "failed" and "killed (SIGKILL)" in status["error"], status
    assert answer(client, "hi", "safe-model") == "v1: hi"
    assert {b["name"]: b["version"] for b in client.get("/backends").json()}["safe-echo"] == "1.0"
    assert builds(gallery, "safe-echo") == serving  # the half-built environment is gone

    # the next install succeeds
    download.delay = 0
    status = apply(client, "/backends/upgrade/safe-echo")
    assert status["state"] == "done", status
    assert answer(client, "hi", "safe-model") == "v2: hi"
    serving = builds(gallery, "safe-echo")
    assert len(serving) == 1

    # a requirement that cannot be found changes nothing
    publish(gallery.backends_index, "safe-echo", "kernai-safe-echo==9.9", "9.9")
    status = apply(client, "/backends/apply", {"id": "safe-echo"})
    assert status["state"] == "failed" and "kernai-safe-echo==9.9" in status["error"], status
    assert builds(gallery, "safe-echo") == serving
    assert {b["name"]: b["version"] for b in client.get("/backends").json()}["safe-echo"] == "2.0"
    assert answer(client, "hi", "safe-model") == "v2: hi"

    assert apply(client, "/backends/delete/safe-echo")["state"] == "done"
    assert wait_job(client, client.post("/models/delete/safe-model").json()["uuid"])["state"] == "done"


def test_two_backends_with_conflicting_pins_both_work(gallery: Gallery, client: httpx.Client) -> None:
    """``pin-one`` needs pinme 1.0, ``pin-two`` pinme 2.0: each environment has its own, the server none."""
    for version in ("1.0", "2.0"):
        build_wheel(
            gallery.wheels, "pinme", version, {"pinme/__init__.py": f'VERSION = "{version}"\n'.encode()}
        )
    plugin_wheel(
        gallery.wheels, "pin-one", "0.1.0", '"pinme " + pinme.VERSION + ": "', ("pinme==1.0",), "import pinme"
    )
    plugin_wheel(
        gallery.wheels, "pin-two", "0.1.0", '"pinme " + pinme.VERSION + ": "', ("pinme==2.0",), "import pinme"
    )
    gallery.backends_index.write_text(
        yaml.safe_dump(
            [
                {"name": name, "distribution": f"kernai-{name}", "pip": f"kernai-{name}==0.1.0"}
                for name in ("pin-one", "pin-two")
            ]
        )
    )
    jobs = [client.post("/backends/apply", json={"id": name}) for name in ("pin-one", "pin-two")]
    for job in jobs:  # two backends: their jobs run side by side
        assert job.status_code == 200, job.text
        assert wait_job(client, job.json()["uuid"], "/backends")["state"] == "done"
    for name in ("pin-one", "pin-two"):
        add_model(gallery, client, f"{name}-model", name)
    assert answer(client, "hi", "pin-one-model") == "pinme 1.0: hi"
    assert answer(client, "hi", "pin-two-model") == "pinme 2.0: hi"
    assert importlib.util.find_spec("pinme") is None  # nothing of theirs in the server's environment
    for name in ("pin-one", "pin-two"):
        assert apply(client, f"/backends/delete/{name}")["state"] == "done"
        assert wait_job(client, client.post(f"/models/delete/{name}-model").json()["uuid"])["state"] == "done"
