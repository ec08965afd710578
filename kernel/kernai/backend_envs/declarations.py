"""What the plugins of a backend environment declare, learned without importing them into the server.

``python -m kernai.backend_envs.declarations`` runs with the environment's interpreter: it loads each
plugin of the ``kernai`` entry-point group there, calls ``register_backends`` and prints what it found
as JSON. The server keeps the answer in ``kernai-declarations.json`` inside the environment and asks
again when the environment's packages changed.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import msgspec
from msgspec import Struct

from kernai.backend_envs import interpreter, site_packages
from kernai.backends import Backend

CACHE_NAME = "kernai-declarations.json"
DESCRIBE_TIMEOUT = 120.0
"""Seconds the environment's interpreter has to import its plugins and answer."""


class EnvironmentPlugin(Struct, frozen=True, kw_only=True):
    """A plugin of a backend environment and the backends it registers (or why it could not load)."""

    name: str
    module: str
    distribution: str | None
    version: str | None
    hooks: list[str]
    backends: list[Backend]
    error: str | None = None


class Declarations(Struct, frozen=True, kw_only=True):
    """The cached answer, and the state of the environment it describes."""

    fingerprint: str
    plugins: list[EnvironmentPlugin]


class UnreadableEnvironment(Exception):
    """The environment's interpreter could not say what its plugins declare."""


def isolated_environ() -> dict[str, str]:
    """This process's environment variables for a backend environment's interpreter: without the
    ones that would make it import the server's packages."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    return {**env, "PYTHONNOUSERSITE": "1"}


def interpreter_environ(python: str) -> dict[str, str]:
    """The environment variables of a subprocess that ``python`` runs (a worker, a facts reader): a
    backend environment's interpreter gets :func:`isolated_environ`, the server's own this process's."""
    return isolated_environ() if python != sys.executable else dict(os.environ)


def fingerprint(environment: Path) -> str:
    """Changes whenever a package is installed into or removed from ``environment``."""
    packages = site_packages(environment)
    names = sorted(os.listdir(packages)) if packages.is_dir() else []
    stamp = packages.stat().st_mtime_ns if packages.is_dir() else 0
    return hashlib.sha256(f"{stamp}:{names}".encode()).hexdigest()


def declarations(environment: Path) -> list[EnvironmentPlugin]:
    """The plugins of ``environment``: from its cache when the environment has not changed since."""
    cache = environment / CACHE_NAME
    current = fingerprint(environment)
    try:
        cached = msgspec.json.decode(cache.read_bytes(), type=Declarations)
        if cached.fingerprint == current:
            return cached.plugins
    except (OSError, msgspec.DecodeError):
        pass
    plugins = describe(environment)
    staged = cache.with_name(f"{CACHE_NAME}.{os.getpid()}.tmp")
    try:
        staged.write_bytes(msgspec.json.encode(Declarations(fingerprint=current, plugins=plugins)))
        os.replace(staged, cache)
    except OSError:  # a read-only environment: asked again next time
        staged.unlink(missing_ok=True)
    return plugins


def describe(environment: Path) -> list[EnvironmentPlugin]:
    """Ask the environment's interpreter what its plugins declare."""
    try:
        done = subprocess.run(
            [str(interpreter(environment)), "-m", "kernai.backend_envs.declarations"],
            capture_output=True,
            timeout=DESCRIBE_TIMEOUT,
            env=isolated_environ(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise UnreadableEnvironment(f"{environment}: {exc}") from None
    if done.returncode != 0:
        tail = done.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no output"]
        raise UnreadableEnvironment(f"{environment}: exit code {done.returncode}: {tail[0]}")
    try:
        return msgspec.json.decode(done.stdout, type=list[EnvironmentPlugin])
    except msgspec.DecodeError as exc:
        raise UnreadableEnvironment(f"{environment}: unreadable answer: {exc}") from None


def describe_here() -> list[EnvironmentPlugin]:
    """The plugins of this interpreter's environment (run inside a backend environment)."""
    from kernai.plugins import new_plugin_manager, register_checked

    found = []
    for entry_point in sorted(entry_points(group="kernai"), key=lambda ep: ep.name):
        dist = entry_point.dist
        plugin = EnvironmentPlugin(
            name=entry_point.name,
            module=entry_point.value,
            distribution=dist.name if dist else None,
            version=dist.version if dist else None,
            hooks=[],
            backends=[],
        )
        manager = new_plugin_manager()
        backends: list[Backend] = []
        try:
            register_checked(manager, entry_point.load(), entry_point.name)
            manager.hook.register_backends(register=backends.append)
        except Exception as exc:  # reported by the server as this plugin's load error
            found.append(msgspec.structs.replace(plugin, error=f"{type(exc).__name__}: {exc}"))
            continue
        callers = manager.get_hookcallers(manager.get_plugin(entry_point.name)) or []
        found.append(
            msgspec.structs.replace(plugin, hooks=sorted(c.name for c in callers), backends=backends)
        )
    return found


def main() -> None:
    """Print the declarations as JSON on stdout; whatever the plugins print while they load (Python or
    native code) goes to stderr instead, so it cannot garble the answer."""
    answer = os.dup(1)
    os.dup2(2, 1)
    try:
        plugins = describe_here()
        sys.stdout.flush()
    finally:
        os.dup2(answer, 1)
        os.close(answer)
    sys.stdout.buffer.write(msgspec.json.encode(plugins))


if __name__ == "__main__":
    main()
