"""Making kernai importable in a backend environment without installing it there.

Every environment's ``site-packages`` holds a ``.pth`` file naming ``<backends>/.kernai``: a folder of
symbolic links to kernai and to each distribution it depends on (their packages, modules and metadata)
in the server's own environment, and to nothing else. So a worker imports the very kernai the server
runs (same version, same frame protocol), a plugin's ``kernai`` requirement is met without an index,
and no other package of the server's environment (another plugin, its engine) is visible.

The folder sits outside every environment: pip sees the linked distributions as installed elsewhere
and never removes them; a backend that pins another version of one of them gets its own copy, which
comes first on ``sys.path``. It is rebuilt (and swapped in atomically) when the server's environment
changes.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
from importlib.metadata import Distribution, PackageNotFoundError, distribution
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

import kernai

LINK_FOLDER = ".kernai"
PTH_NAME = "kernai-link.pth"


def closure(name: str = "kernai") -> list[Distribution]:
    """``name``'s distribution and every distribution it requires (extras left out), as installed here."""
    found: dict[str, Distribution] = {}
    pending = [name]
    while pending:
        wanted = canonicalize_name(pending.pop())
        if wanted in found:
            continue
        try:
            dist = distribution(wanted)
        except PackageNotFoundError:
            continue
        found[wanted] = dist
        for line in dist.requires or []:
            try:
                requirement = Requirement(line)
            except InvalidRequirement:
                continue
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return sorted(found.values(), key=lambda d: canonicalize_name(d.metadata["Name"]))


def _top_level_names(dist: Distribution) -> set[str]:
    text = dist.read_text("top_level.txt")
    if text:
        return {line.strip() for line in text.splitlines() if line.strip()}
    names = set()
    for file in dist.files or []:
        first = file.parts[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".pth", ".data")):
            continue
        if first.startswith("__editable__"):
            continue
        names.add(first.removesuffix(".py") if len(file.parts) == 1 and first.endswith(".py") else first)
    return names


def _location(name: str) -> Path | None:
    """Where the importable top-level ``name`` lives: a package folder or a module file."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if spec.submodule_search_locations:
        locations = list(spec.submodule_search_locations)
        return Path(locations[0]) if len(locations) == 1 else None
    return Path(spec.origin) if spec.origin and os.path.isabs(spec.origin) else None


def manifest() -> dict[str, str]:
    """Link name -> target for kernai's closure in this environment."""
    links: dict[str, str] = {}
    for dist in closure():
        metadata = getattr(dist, "_path", None)  # the .dist-info / .egg-info folder of a path distribution
        if isinstance(metadata, Path) and metadata.is_dir():
            links[metadata.name] = str(metadata)
        base = Path(str(dist.locate_file(""))).resolve()
        for name in _top_level_names(dist):
            location = _location(name)
            if location is not None and location.resolve().is_relative_to(base):
                links[location.name] = str(location)
    links["kernai"] = str(Path(kernai.__file__).parent)  # also where an editable install keeps it
    return dict(sorted(links.items()))


def ensure_link_folder(folder: Path) -> Path:
    """``folder/.kernai`` holding the links of :func:`manifest`, rebuilt when they changed."""
    links = manifest()
    digest = hashlib.sha256(repr(links).encode()).hexdigest()[:16]
    target = folder / f"{LINK_FOLDER}-{digest}"
    link = folder / LINK_FOLDER
    if link.is_symlink() and link.resolve() == target.resolve() and target.is_dir():
        return link
    folder.mkdir(parents=True, exist_ok=True)
    if not target.is_dir():
        staging = folder / f"{target.name}.{os.getpid()}.tmp"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        for name, path in links.items():
            (staging / name).symlink_to(path)
        os.replace(staging, target)
    staged = folder / f"{LINK_FOLDER}.{os.getpid()}.link"
    staged.unlink(missing_ok=True)
    staged.symlink_to(target.name, target_is_directory=True)
    previous = link.resolve() if link.is_symlink() else None
    os.replace(staged, link)
    if previous is not None and previous != target.resolve():
        shutil.rmtree(previous, ignore_errors=True)  # only links: the server's packages stay
    return link


def link_kernai(environment_site_packages: Path, link_folder: Path) -> None:
    """Make ``link_folder`` (see :func:`ensure_link_folder`) importable in an environment."""
    environment_site_packages.mkdir(parents=True, exist_ok=True)
    (environment_site_packages / PTH_NAME).write_text(f"{link_folder}\n", encoding="utf-8")
