"""Installing backend plugins, each into an environment of its own (:mod:`kernai.backend_envs`).

An install builds a new environment next to the one serving (a venv of the server's interpreter that
sees kernai and nothing else of the server's environment), pip-installs the plugin there, asks it what
it declares, and only then moves the backend's link to it: a failed, cancelled or killed install leaves
the previous environment serving and its own half-built folder is removed. One job at a time changes a
backend, across processes (the server and the CLI): :class:`BackendLock`.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import platform
import shutil
import signal
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

from msgspec import Struct
from packaging.version import InvalidVersion, Version

from kernai.backend_envs import BUILDS, LOCKS, interpreter, site_packages
from kernai.backend_envs.declarations import EnvironmentPlugin, describe
from kernai.backend_envs.kernai_link import ensure_link_folder, link_kernai
from kernai.gallery.schema import BackendEntry, BackendVariant
from kernai.worker.client import signal_name

VARIANT_ENV = "KERNAI_BACKEND_VARIANT"


class PipFailed(Exception):
    pass


class Upgrade(Struct):
    """An installed backend for which a gallery offers a newer version."""

    name: str
    distribution: str
    installed_version: str
    available_version: str
    gallery: str


def detect_hardware() -> list[str]:
    """Hardware present, most capable first, ``cpu`` last; ``KERNAI_BACKEND_VARIANT`` forces one."""
    if forced := os.environ.get(VARIANT_ENV):
        return [forced]
    found = []
    if sys.platform == "darwin" and platform.machine() == "arm64":
        found.append("metal")
    if shutil.which("nvidia-smi") or Path("/proc/driver/nvidia/version").exists():
        found.append("cuda")
    if shutil.which("rocm-smi") or Path("/opt/rocm").is_dir():
        found.append("rocm")
    return [*found, "cpu"]


def choose_variant(entry: BackendEntry, requested: str | None = None) -> tuple[str, BackendVariant]:
    """The variant to install: the one asked for, else the first detected hardware the entry has."""
    if requested:
        if requested not in entry.variants:
            known = ", ".join(sorted(entry.variants)) or "none"
            raise ValueError(f"backend '{entry.name}' has no variant '{requested}' (variants: {known})")
        return requested, entry.variants[requested]
    for hardware in detect_hardware():
        if hardware in entry.variants:
            return hardware, entry.variants[hardware]
    return "default", BackendVariant()


class BackendLock:
    """Held by the one job that changes a backend: an advisory lock on ``.locks/NAME``, which the
    operating system releases when its process dies, however it dies."""

    def __init__(self, folder: Path, name: str) -> None:
        self.path = folder / LOCKS / name
        self._fd: int | None = None

    def acquire(self) -> bool:
        """Take the lock; ``False`` when another job (in any process) holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the lock
            self._fd = None


async def run(label: str, command: list[str], env: dict[str, str], on_line: Callable[[str], None]) -> None:
    """Run ``command`` (``label`` names it in errors), each output line to ``on_line``. It runs in a
    process group of its own, which is killed whole when the command fails or the job is cancelled, so
    no child (pip's ``--python`` runner, a build) outlives it."""
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
        start_new_session=True,
    )
    assert process.stdout is not None
    errors: list[str] = []
    try:
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            if line:
                on_line(line)
                if line.startswith("ERROR"):
                    errors.append(line)
        await process.wait()
    finally:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        if process.returncode is None:
            await process.wait()
    code = process.returncode
    if code != 0:
        if code is not None and code < 0:
            errors.append(f"{label} was killed ({signal_name(-code)})")
        raise PipFailed(" ".join(errors) or f"{label} exited with {code}")


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", *args, "--disable-pip-version-check", "--no-input"]


async def build_environment(
    folder: Path,
    name: str,
    requirement: str,
    variant: BackendVariant,
    scratch: Path,
    on_line: Callable[[str], None],
) -> tuple[Path, list[EnvironmentPlugin]]:
    """A new environment for backend ``name`` with ``requirement`` installed, and what its plugins
    declare. A local folder is built into a wheel first, by the server's pip (which installs nothing
    there). Nothing is left behind when it fails."""
    environment = folder / BUILDS / name / uuid.uuid4().hex[:12]
    try:
        on_line(f"creating environment {environment}")
        await run("venv", [sys.executable, "-m", "venv", "--without-pip", str(environment)], {}, on_line)
        link_kernai(site_packages(environment), await asyncio.to_thread(ensure_link_folder, folder))
        if await asyncio.to_thread(Path(requirement).is_dir):
            on_line(f"building a wheel of {requirement}")
            wheels = scratch / "wheels"
            await run(
                "pip wheel",
                _pip(
                    "wheel",
                    "--no-deps",
                    "--progress-bar",
                    "off",
                    "-w",
                    str(wheels),
                    *variant.pip_args,
                    requirement,
                ),
                variant.env,
                on_line,
            )
            requirement = str(next(wheels.glob("*.whl")))
        on_line(f"pip install {requirement}")
        await run(
            "pip install",
            _pip(
                "--python",
                str(interpreter(environment)),
                "install",
                "--progress-bar",
                "off",
                *variant.pip_args,
                requirement,
            ),
            variant.env,
            on_line,
        )
        plugins = await asyncio.to_thread(describe, environment)
    except BaseException:
        await asyncio.to_thread(shutil.rmtree, environment, True)
        raise
    return environment, plugins


def remove_environment(environment: Path) -> None:
    """Delete an environment folder that no longer serves."""
    shutil.rmtree(environment, ignore_errors=True)


def remove_stale_builds(folder: Path, name: str, keep: Path | None) -> None:
    """Remove the environments of backend ``name`` that do not serve: left by a job that was killed."""
    builds = folder / BUILDS / name
    if builds.is_dir():
        for build in builds.iterdir():
            if keep is None or build.resolve() != keep.resolve():
                shutil.rmtree(build, ignore_errors=True)


def newer(available: str | None, installed: str | None) -> bool:
    if not available or not installed:
        return False
    try:
        return Version(available) > Version(installed)
    except InvalidVersion:
        return False
