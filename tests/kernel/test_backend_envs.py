"""The pieces of backend environments, without a server: the link switch, the job lock, the kernai link
and the cached declarations (a real venv and its interpreter, no pip)."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest

from kernai.backend_envs import activate, deactivate, installed, interpreter, site_packages
from kernai.backend_envs.declarations import CACHE_NAME, Declarations, declarations
from kernai.backend_envs.kernai_link import ensure_link_folder, link_kernai, manifest
from kernai.backend_facts import read_backend_facts
from kernai.gallery.backends import BackendLock, remove_stale_builds
from kernai.plugins import PluginRegistry

PLUGIN = """from kernai import Backend, hookimpl
from kernai.capabilities import Capability


@hookimpl
def register_backends(register):
    register(Backend(name="{name}", capabilities=[Capability.CHAT], requires_model_file=False))
"""


def fake_environment(path: Path) -> Path:
    """A folder that :func:`installed` takes for an environment (its interpreter exists)."""
    interpreter(path).parent.mkdir(parents=True)
    interpreter(path).touch()
    return path


def test_activate_switches_the_link_and_returns_the_environment_it_replaced(tmp_path: Path) -> None:
    first = fake_environment(tmp_path / ".builds" / "echo" / "a")
    second = fake_environment(tmp_path / ".builds" / "echo" / "b")
    assert installed(tmp_path) == {}
    assert activate(tmp_path, "echo", first) is None
    assert installed(tmp_path) == {"echo": first.resolve()}
    assert os.readlink(tmp_path / "echo") == ".builds/echo/a"  # relative: the data dir may move
    assert activate(tmp_path, "echo", second) == first.resolve()
    assert installed(tmp_path) == {"echo": second.resolve()}
    assert activate(tmp_path, "echo", second) is None  # the same one again replaces nothing
    assert sorted(p.name for p in tmp_path.iterdir()) == [".builds", "echo"]  # no staged link left
    (tmp_path / "broken").symlink_to(".builds/nothing")
    assert installed(tmp_path) == {"echo": second.resolve()}
    assert deactivate(tmp_path, "echo") == second.resolve()
    assert deactivate(tmp_path, "echo") is None
    assert installed(tmp_path) == {} and second.is_dir()


def test_stale_builds_are_removed_but_the_serving_one(tmp_path: Path) -> None:
    serving = fake_environment(tmp_path / ".builds" / "echo" / "a")
    fake_environment(tmp_path / ".builds" / "echo" / "killed")
    other = fake_environment(tmp_path / ".builds" / "echo-two" / "a")  # a name that starts the same
    remove_stale_builds(tmp_path, "echo", serving)
    assert [p.name for p in (tmp_path / ".builds" / "echo").iterdir()] == ["a"] and other.is_dir()
    remove_stale_builds(tmp_path, "echo", None)
    assert list((tmp_path / ".builds" / "echo").iterdir()) == []


def test_one_job_holds_a_backend_until_it_releases_it_or_its_process_dies(tmp_path: Path) -> None:
    first, second = BackendLock(tmp_path, "echo"), BackendLock(tmp_path, "echo")
    assert first.acquire()
    assert not second.acquire()
    assert BackendLock(tmp_path, "other").acquire()  # another backend is not held
    first.release()
    assert second.acquire()
    second.release()

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from kernai.gallery.backends import BackendLock; "
            "assert BackendLock(Path(sys.argv[1]), 'echo').acquire(); print('held', flush=True); "
            "time.sleep(60)",
            str(tmp_path),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    assert not first.acquire()  # held in another process
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert first.acquire()  # the operating system released it with the process
    first.release()


def test_the_kernai_link_holds_kernai_and_its_requirements_only(tmp_path: Path) -> None:
    links = manifest()
    assert Path(links["kernai"]).resolve() == Path(__import__("kernai").__file__).parent.resolve()
    names = {name.lower() for name in links}
    assert {"msgspec", "pluggy", "yaml", "litestar"} <= names
    assert any(name.startswith("kernai") and name.endswith("-info") for name in names)  # its metadata
    for extra in ("pytest", "mypy", "kernai_reference", "kernai_whisper", "faster_whisper", "piper"):
        assert extra not in names, extra  # test extras and plugins are not kernai's requirements
    folder = ensure_link_folder(tmp_path)
    target = folder.resolve()
    assert sorted(p.name for p in target.iterdir()) == sorted(links)
    assert ensure_link_folder(tmp_path).resolve() == target  # unchanged: not rebuilt


@pytest.fixture()
def environment(tmp_path: Path) -> Path:
    """A venv (no pip) with kernai linked in and the plugin ``cached-echo`` on its path."""
    path = tmp_path / ".builds" / "echo" / "a"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True)
    packages = site_packages(path)
    link_kernai(packages, ensure_link_folder(tmp_path))
    add_plugin(packages, "cached-echo")
    return path


def add_plugin(packages: Path, name: str) -> None:
    module = name.replace("-", "_")
    (packages / f"{module}.py").write_text(PLUGIN.format(name=name))
    info = packages / f"{module}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kernai]\n{name} = {module}\n")


def test_declarations_are_asked_once_and_again_when_the_environment_changes(environment: Path) -> None:
    plugins = declarations(environment)
    assert [(p.name, p.distribution, p.version, p.error) for p in plugins] == [
        ("cached-echo", "cached-echo", "1.0", None)
    ]
    assert [b.name for b in plugins[0].backends] == ["cached-echo"]
    cache = environment / CACHE_NAME
    kept = msgspec.json.decode(cache.read_bytes(), type=Declarations)
    marked = msgspec.structs.replace(
        kept, plugins=[msgspec.structs.replace(kept.plugins[0], version="cached")]
    )
    cache.write_bytes(msgspec.json.encode(marked))
    assert declarations(environment)[0].version == "cached"  # unchanged environment: no subprocess

    time.sleep(0.01)  # a new mtime
    add_plugin(site_packages(environment), "second-echo")
    names = [p.name for p in declarations(environment)]
    assert names == ["cached-echo", "second-echo"]


def test_a_plugin_that_fails_in_its_environment_is_reported_not_raised(environment: Path) -> None:
    (site_packages(environment) / "cached_echo.py").write_text("raise RuntimeError('broken on purpose')\n")
    (plugin,) = declarations(environment)
    assert plugin.backends == [] and plugin.error == "RuntimeError: broken on purpose"


def test_what_a_plugin_prints_while_it_loads_does_not_garble_the_answer(environment: Path) -> None:
    module = site_packages(environment) / "cached_echo.py"
    noisy = "import os\nprint('hello from python')\nos.write(1, b'hello from native code\\n')\n"
    module.write_text(noisy + module.read_text())
    (plugin,) = declarations(environment)
    assert plugin.error is None and [b.name for b in plugin.backends] == ["cached-echo"]


def test_an_environment_that_cannot_be_read_is_a_plugin_problem_not_a_crash(environment: Path) -> None:
    folder = environment.parents[2]  # the backends folder the fixture built the environment in
    activate(folder, "cached-echo", environment)
    broken = fake_environment(folder / ".builds" / "broken" / "a")  # its "interpreter" is an empty file
    activate(folder, "broken", broken)
    loaded = PluginRegistry(folder)
    assert loaded.backends["cached-echo"].environment == str(environment.resolve())
    assert loaded.backends["cached-echo"].python == str(interpreter(environment.resolve()))
    info = next(p for p in loaded.plugins() if p.name == "cached-echo")
    assert (info.environment, info.backends) == (str(environment.resolve()), ["cached-echo"])
    (problem,) = [p for p in loaded.problems if p.plugin == "broken"]
    assert not problem.loaded and "cannot be read" in problem.problem
    assert "kernai backends install broken" in problem.fix
    assert "broken" in loaded.load_errors


FACTS_PLUGIN = """import os, sys
from kernai import Backend, hookimpl
from kernai.backend_facts import BackendFacts
from kernai.capabilities import Capability


def facts():
    seen = {"python": sys.executable, "PYTHONPATH": os.environ.get("PYTHONPATH", "unset")}
    return BackendFacts(versions={**seen, "PYTHONNOUSERSITE": os.environ.get("PYTHONNOUSERSITE", "unset")})


@hookimpl
def register_backends(register):
    register(Backend(name="facts-echo", capabilities=[Capability.CHAT], facts="facts_echo:facts"))
"""


def test_a_backend_environments_facts_are_read_by_its_interpreter_with_its_isolated_environ(
    environment: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    packages = site_packages(environment)
    add_plugin(packages, "facts-echo")
    (packages / "facts_echo.py").write_text(FACTS_PLUGIN)
    folder = environment.parents[2]
    activate(folder, "facts-echo", environment)
    monkeypatch.setenv("PYTHONPATH", str(Path(__file__).parent))  # the server's: not for the environment
    entry = PluginRegistry(folder).backends["facts-echo"]
    facts = asyncio.run(read_backend_facts(entry))
    assert facts.versions == {
        "python": str(interpreter(environment.resolve())),
        "PYTHONPATH": "unset",
        "PYTHONNOUSERSITE": "1",
    }
