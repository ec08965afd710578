"""Which copy of a plugin loads when an environment holds several, and what each left-out copy reports
(kernai.discovery), on dist-info folders written into a temporary folder."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint, distributions
from pathlib import Path
from types import ModuleType

import pytest

from kernai.discovery import load_plugins


def dist_info(site: Path, project: str, entry_point: str, record: list[str] | None = None) -> None:
    info = site / f"{project.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kernai]\n{entry_point}\n")
    if record is not None:
        (info / "RECORD").write_text("".join(f"{path},,\n" for path in record))


def kernai_entry_points(site: Path) -> list[EntryPoint]:
    return [
        ep for dist in distributions(path=[str(site)]) for ep in dist.entry_points if ep.group == "kernai"
    ]


@pytest.fixture()
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in ("kernai_fine", "kernai_broken"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    (tmp_path / "kernai_fine.py").write_text("")
    (tmp_path / "kernai_broken.py").write_text("raise RuntimeError('broken at import')\n")
    return tmp_path


def test_a_copy_that_fails_to_import_leaves_the_next_one_to_load(site: Path) -> None:
    dist_info(site, "kernai-broken", "dup = kernai_broken", ["kernai_broken.py"])  # complete: tried first
    dist_info(site, "kernai-fine", "dup = kernai_fine")  # no RECORD: tried second
    registered: list[tuple[str, str]] = []

    def register(module: ModuleType, name: str) -> None:
        registered.append((name, module.__name__))

    loaded = load_plugins(kernai_entry_points(site), register)
    assert registered == [("dup", "kernai_fine")]
    [problem] = loaded.problems
    assert problem.loaded and "RuntimeError: broken at import" in problem.problem
    assert problem.line().startswith("plugin dup loaded, but importing kernai_broken raised")


def test_a_complete_install_wins_over_a_copy_without_record_and_the_leftover_is_skipped(site: Path) -> None:
    dist_info(site, "kernai-fine-copy", "fine = kernai_fine")
    dist_info(site, "kernai-fine", "fine = kernai_fine", ["kernai_fine.py"])
    dist_info(site, "~ernai-fine", "fine = kernai_fine", ["kernai_fine.py"])
    loaded = load_plugins(kernai_entry_points(site), lambda module, name: None)
    assert loaded.entry_points["fine"].dist is not None
    assert loaded.entry_points["fine"].dist.name == "kernai-fine"
    duplicate, leftover = loaded.problems
    assert (
        duplicate.loaded and f"remove the folder {site / 'kernai_fine_copy-1.0.dist-info'}" in duplicate.fix
    )
    assert leftover.loaded and f"remove the folder {site / '~ernai_fine-1.0.dist-info'}" in leftover.fix


def test_a_plugin_the_register_refuses_is_not_loaded(site: Path) -> None:
    dist_info(site, "kernai-fine", "fine = kernai_fine", ["kernai_fine.py"])

    def refuse(module: ModuleType, name: str) -> None:
        raise ValueError(f"Plugin name already registered: {name}")

    loaded = load_plugins(kernai_entry_points(site), refuse)
    assert loaded.entry_points == {}
    [problem] = loaded.problems
    assert (
        not problem.loaded
        and problem.fix == "upgrade it (pip install -U kernai-fine) or remove it (pip uninstall kernai-fine)"
    )
