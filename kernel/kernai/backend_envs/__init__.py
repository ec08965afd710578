"""Backend environments: one venv per backend the gallery installs, under ``<data dir>/backends``.

A backend installed this way never shares packages with the server or with another backend: its
dependencies (and their licences) stay in its own folder, and a failed or killed install cannot touch
what serves now. The layout::

    <data dir>/backends/
      NAME              a symbolic link to the environment that serves backend NAME
      .builds/NAME/ID/  the environments; an install builds a new one and moves the link only when it
                        succeeded, so the previous one keeps serving until then
      .kernai/          kernai and its dependencies, linked from the server's environment
                        (:mod:`kernai.backend_envs.kernai_link`); every environment sees them
      .locks/NAME       held by the job that changes NAME (install, upgrade, delete)

The server learns what each environment's plugins declare without importing them
(:mod:`kernai.backend_envs.declarations`); a worker of a model on such a backend runs with that
environment's interpreter. Plugins installed next to kernai (a development checkout) keep working as
before and are never changed by the gallery.
"""

from __future__ import annotations

import os
import sys
import sysconfig
from pathlib import Path

BUILDS = ".builds"
LOCKS = ".locks"


def root(data_path: Path) -> Path:
    """The folder holding every backend environment of a data directory."""
    return data_path / "backends"


def interpreter(environment: Path) -> Path:
    """The Python of an environment."""
    return environment / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")


def site_packages(environment: Path) -> Path:
    """Where packages installed into ``environment`` go (a venv of this interpreter)."""
    return Path(sysconfig.get_path("purelib", "venv", vars={"base": str(environment)}))


def installed(folder: Path) -> dict[str, Path]:
    """The backend environments in ``folder`` by name: each link's resolved environment."""
    found: dict[str, Path] = {}
    if not folder.is_dir():
        return found
    for link in sorted(folder.iterdir()):
        if link.name.startswith(".") or not link.is_symlink():
            continue
        target = link.resolve()
        if interpreter(target).exists():
            found[link.name] = target
    return found


def activate(folder: Path, name: str, environment: Path) -> Path | None:
    """Point backend ``name`` at ``environment`` in one atomic step; return the environment it replaced."""
    link = folder / name
    previous = link.resolve() if link.is_symlink() else None
    staged = folder / f".{name}.{os.getpid()}.link"
    staged.unlink(missing_ok=True)
    staged.symlink_to(os.path.relpath(environment, folder), target_is_directory=True)
    os.replace(staged, link)
    return previous if previous != environment.resolve() else None


def deactivate(folder: Path, name: str) -> Path | None:
    """Remove backend ``name``'s link in one atomic step; return the environment it pointed at."""
    link = folder / name
    if not link.is_symlink():
        return None
    previous = link.resolve()
    link.unlink()
    return previous
