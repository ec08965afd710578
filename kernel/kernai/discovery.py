"""Which installed distribution provides each plugin, and what is wrong when that is not clear.

An environment can hold more than one ``kernai`` entry point of one name: a second distribution that
declares it, a dist-info whose files are gone (a half-removed package), or the ``~name`` folder that an
interrupted pip uninstall leaves. Start-up never fails on them: :func:`load_plugins` loads the best
candidate of each name, and every candidate it leaves out, every plugin that fails to import or to
register, is a :class:`PluginProblem` naming the distributions and the fix.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from importlib.metadata import Distribution, EntryPoint
from pathlib import Path
from types import ModuleType

from msgspec import Struct
from msgspec.structs import replace

log = logging.getLogger(__name__)

Register = Callable[[ModuleType, str], None]
"""Registers a plugin's module under its name, raising when the plugin is refused."""


class PluginProblem(Struct, frozen=True):
    """A plugin, or a distribution that provides one, that start-up left out: what is wrong and the fix."""

    plugin: str
    distributions: list[str]
    """Each as ``name version (dist-info folder)``."""
    problem: str
    fix: str
    loaded: bool
    """Whether the plugin loaded anyway, from another distribution."""

    def line(self) -> str:
        """The problem in one log line."""
        state = "loaded, but" if self.loaded else "not loaded:"
        return (
            f"plugin {self.plugin} {state} {self.problem} [{'; '.join(self.distributions)}]; fix: {self.fix}"
        )


class Loaded(Struct, frozen=True):
    """The entry point each plugin loaded from, and the problems met on the way."""

    entry_points: dict[str, EntryPoint]
    problems: list[PluginProblem]


def folder(dist: Distribution | None) -> Path | None:
    """A distribution's metadata folder (its ``.dist-info``), where it has one."""
    path = getattr(dist, "_path", None)  # PathDistribution's, which importlib.metadata reads too
    return Path(path) if path is not None else None


def describe(entry_point: EntryPoint) -> str:
    dist = entry_point.dist
    if dist is None:
        return entry_point.value
    return f"{dist.name} {dist.version} ({folder(dist) or 'unknown location'})"


def _project(entry_point: EntryPoint) -> str:
    return entry_point.dist.name if entry_point.dist else entry_point.module


def is_leftover(entry_point: EntryPoint) -> bool:
    """Whether the entry point comes from a ``~name.dist-info`` folder: pip's temporary name for a
    distribution it is uninstalling, left behind when pip was interrupted."""
    found = folder(entry_point.dist)
    return found is not None and found.name.startswith("~")


def missing_files(dist: Distribution | None) -> tuple[int, int] | None:
    """``(missing, listed)``: how many of the files a distribution's ``RECORD`` lists outside its
    metadata folder are gone; ``None`` when it has no ``RECORD``."""
    files = dist.files if dist is not None else None
    if files is None:
        return None
    meta = folder(dist)
    listed = [f for f in files if meta is None or f.parts[0] != meta.name]
    return sum(not Path(str(f.locate())).exists() for f in listed), len(listed)


def _rank(entry_point: EntryPoint) -> int:
    """0: every file its ``RECORD`` lists is there; 1: no ``RECORD`` (not installed by an installer);
    2: some of its files are gone."""
    counts = missing_files(entry_point.dist)
    if counts is None:
        return 1
    return 2 if counts[0] else 0


def candidates(entry_points: Iterable[EntryPoint]) -> tuple[dict[str, list[EntryPoint]], list[EntryPoint]]:
    """The entry points of each plugin name, best first (complete installs, then those without a
    ``RECORD``, then those with files gone; in ``sys.path`` order within each), and the leftovers."""
    by_name: dict[str, list[EntryPoint]] = {}
    leftovers = []
    for entry_point in entry_points:
        if is_leftover(entry_point):
            leftovers.append(entry_point)
        else:
            by_name.setdefault(entry_point.name, []).append(entry_point)
    ranked = {
        name: found if len(found) == 1 else sorted(found, key=_rank)  # stable: sys.path order within a rank
        for name, found in sorted(by_name.items())
    }
    return ranked, leftovers


def upgrade_or_remove(project: str) -> str:
    """The fix for a plugin distribution that fails to import or to register."""
    return f"upgrade it (pip install -U {project}) or remove it (pip uninstall {project})"


def _import_fix(entry_point: EntryPoint) -> tuple[str, str]:
    """What an import failure means for this distribution, and its fix."""
    project = _project(entry_point)
    counts = missing_files(entry_point.dist)
    if counts is not None and counts[0]:
        return (
            f"the distribution is half removed ({counts[0]} of its {counts[1]} files are gone)",
            f"reinstall it (pip install --force-reinstall {project}) or remove it (pip uninstall {project})",
        )
    return "", upgrade_or_remove(project)


def _duplicate_fix(skipped: EntryPoint, chosen: EntryPoint) -> str:
    meta = folder(skipped.dist)
    rank = _rank(skipped)
    if rank and meta is not None:
        why = "its files are gone" if rank == 2 else "no installer wrote it: it has no RECORD"
        return f"remove the folder {meta} ({why})"
    if skipped.module == chosen.module:
        return (
            f"pip uninstall {_project(skipped)}, then pip install --force-reinstall {_project(chosen)} "
            f"(both install the module {chosen.module})"
        )
    return f"pip uninstall {_project(skipped)} (or {_project(chosen)}, to use the other)"


def _try(name: str, entry_point: EntryPoint, register: Register) -> PluginProblem | None:
    try:
        module = entry_point.load()
    except Exception as exc:  # any error in a plugin's import must not stop the server
        log.debug("importing plugin %s failed", name, exc_info=True)
        half_removed, fix = _import_fix(entry_point)
        problem = f"importing {entry_point.value} raised {type(exc).__name__}: {exc}"
        return PluginProblem(
            name,
            [describe(entry_point)],
            f"{half_removed}: {problem}" if half_removed else problem,
            fix,
            False,
        )
    try:
        register(module, name)
    except Exception as exc:  # pluggy's PluginValidationError, or ValueError for a name or module taken
        return PluginProblem(
            name,
            [describe(entry_point)],
            f"{type(exc).__name__}: {exc}",
            upgrade_or_remove(_project(entry_point)),
            False,
        )
    return None


def load_plugins(entry_points: Iterable[EntryPoint], register: Register) -> Loaded:
    """Load and ``register`` one entry point per plugin name: the first of its :func:`candidates` that
    imports and registers; every other candidate and every failure becomes a :class:`PluginProblem`."""
    ranked, leftovers = candidates(entry_points)
    chosen: dict[str, EntryPoint] = {}
    problems: list[PluginProblem] = []
    for name, found in ranked.items():
        failed: list[EntryPoint] = []
        failures: list[PluginProblem] = []
        for entry_point in found:
            if any(entry_point.value == other.value for other in failed):
                continue  # the same module, which failed already
            if (problem := _try(name, entry_point, register)) is None:
                chosen[name] = entry_point
                break
            failed.append(entry_point)
            failures.append(problem)
        if (winner := chosen.get(name)) is None:
            problems += failures
        else:  # a copy that failed, beside the one that loaded
            problems += [replace(problem, loaded=True) for problem in failures]
            problems += [
                PluginProblem(
                    name,
                    [describe(skipped), describe(winner)],
                    f"{len(found)} distributions provide it; loaded {_project(winner)}, skipped "
                    f"{_project(skipped)}",
                    _duplicate_fix(skipped, winner),
                    True,
                )
                for skipped in found
                if skipped is not winner and all(skipped is not other for other in failed)
            ]
    for leftover in leftovers:
        meta = folder(leftover.dist)
        problems.append(
            PluginProblem(
                leftover.name,
                [describe(leftover)],
                "skipped the leftover of an interrupted pip uninstall",
                f"remove the folder {meta} (and the other folders named '~...' beside it)",
                leftover.name in chosen,
            )
        )
    return Loaded(chosen, problems)
