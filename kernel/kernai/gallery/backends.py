"""Installing backend plugins: pip into the server's own environment, with a hardware variant."""

from __future__ import annotations

import asyncio
import os
import platform
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from msgspec import Struct
from packaging.version import InvalidVersion, Version

from kernai.gallery.schema import BackendEntry, BackendVariant
from kernai.plugins import PluginInfo

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


async def run_pip(args: list[str], env: dict[str, str], on_line: Callable[[str], None]) -> None:
    """``python -m pip ARGS`` in this interpreter's environment; each output line goes to ``on_line``."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "pip",
        *args,
        "--disable-pip-version-check",
        "--no-input",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={**os.environ, **env},
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
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise PipFailed(" ".join(errors) or f"pip exited with {process.returncode}")


async def install(
    requirement: str, variant: BackendVariant, on_line: Callable[[str], None], upgrade: bool = False
) -> None:
    args = [
        "install",
        "--progress-bar",
        "off",
        *(["--upgrade"] if upgrade else []),
        *variant.pip_args,
        requirement,
    ]
    await run_pip(args, variant.env, on_line)


async def uninstall(distribution: str, on_line: Callable[[str], None]) -> None:
    await run_pip(["uninstall", "--yes", distribution], {}, on_line)


def plugin_of(plugins: list[PluginInfo], backend: str) -> PluginInfo | None:
    """The installed plugin that provides ``backend``."""
    return next((info for info in plugins if backend in info.backends), None)


def newer(available: str | None, installed: str | None) -> bool:
    if not available or not installed:
        return False
    try:
        return Version(available) > Version(installed)
    except InvalidVersion:
        return False
