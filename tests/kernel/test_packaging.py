"""Packaging: each plugin folder is its own distribution depending on kernai; the kernel imports no engine."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_every_plugin_folder_is_its_own_distribution_with_an_entry_point() -> None:
    for folder in [*(ROOT / "plugins").iterdir(), *(ROOT / "contrib_backends").iterdir()]:
        if not folder.is_dir():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"].startswith("kernai-"), folder
        assert "kernai" in project.get("entry-points", {}), f"{folder}: no [project.entry-points.kernai]"
        # read from the installed metadata: llama-cpp and rerank compute theirs in setup.py
        assert any(Requirement(dep).name == "kernai" for dep in requires(project["name"]) or []), (
            f"{folder}: must depend on kernai"
        )


def test_the_kernel_imports_no_plugin_or_engine() -> None:
    forbidden = ("llama_cpp", "faster_whisper", "piper", "ultralytics", "torch", "onnxruntime", "kernai_")
    for source in (ROOT / "kernel").rglob("*.py"):
        for line in source.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                module = stripped.split()[1]
                assert not module.startswith(forbidden), f"{source}: {stripped}"


def test_the_web_uis_templates_and_static_files_are_package_data() -> None:
    """A non-editable install (a wheel) holds every file the UI serves: each matches a package-data glob."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    globs = setuptools["package-data"]["kernai.ui"]
    folder = ROOT / "kernel" / "kernai" / "ui"
    served = [
        path.relative_to(folder)
        for path in folder.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc")
    ]
    assert len(served) > 20
    assert [str(path) for path in served if not any(path.match(glob) for glob in globs)] == []
