"""The kernel distribution ships every subpackage of kernel/ (a non-editable install must work)."""

from __future__ import annotations

import tomllib
from importlib.metadata import requires
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def test_every_kernel_subpackage_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    on_disk = {
        ".".join(("kernai", *init.parent.relative_to(ROOT / "kernel").parts))
        for init in (ROOT / "kernel").rglob("__init__.py")
    }
    assert on_disk - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


def test_every_plugin_folder_is_its_own_distribution_with_an_entry_point() -> None:
    for folder in [*(ROOT / "plugins").iterdir(), *(ROOT / "contrib_backends").iterdir()]:
        if not folder.is_dir():
            continue
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        assert project["name"].startswith("kernai-"), folder
        assert "kernai" in project.get("entry-points", {}), f"{folder}: no [project.entry-points.kernai]"
        # read from the installed metadata: llama-cpp and rerank compute theirs in setup.py
        assert any(Requirement(dep).name == "kernai" for dep in requires(project["name"]) or []), \
            f"{folder}: must depend on kernai"


def test_the_kernel_imports_no_plugin_or_engine() -> None:
    forbidden = ("llama_cpp", "faster_whisper", "piper", "ultralytics", "torch", "onnxruntime", "kernai_")
    for source in (ROOT / "kernel").rglob("*.py"):
        for line in source.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import ", "from ")):
                module = stripped.split()[1]
                assert not module.startswith(forbidden), f"{source}: {stripped}"
