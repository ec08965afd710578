"""Who imports whom in the kernel: the core imports no API surface and not the gallery, a surface imports no
other surface, and every default plugin is a module that registers routes, as a third-party one would."""

from __future__ import annotations

import ast
import importlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernai.plugins import DEFAULT_PLUGINS, PluginRegistry

PACKAGE = Path(__file__).resolve().parents[2] / "kernel" / "kernai"
PLUGIN_PACKAGES = ("kernai.surfaces", "kernai.gallery", "kernai.ui")


def module_name(source: Path) -> str:
    parts = source.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(source: Path) -> Iterator[str]:
    """Every module ``source`` imports, at its top or inside a function, as an absolute name."""
    package = module_name(source).rsplit(".", 0 if source.name == "__init__.py" else 1)[0]
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            yield ".".join(filter(None, [base, node.module or ""]))


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_core_imports_no_surface_and_not_the_gallery() -> None:
    problems = []
    for source in PACKAGE.rglob("*.py"):
        if any(inside(module_name(source), package) for package in PLUGIN_PACKAGES):
            continue
        problems += [
            f"{source.relative_to(PACKAGE)} imports {name}"
            for name in imported(source)
            if any(inside(name, package) for package in PLUGIN_PACKAGES)
        ]
    assert not problems, "\n".join(problems)


def test_a_surface_imports_no_other_surface() -> None:
    problems = []
    for source in (PACKAGE / "surfaces").rglob("*.py"):
        own = ".".join(module_name(source).split(".")[:3])
        problems += [
            f"{source.relative_to(PACKAGE)} imports {name}"
            for name in imported(source)
            if inside(name, "kernai.surfaces") and name != "kernai.surfaces" and not inside(name, own)
        ]
    assert not problems, "\n".join(problems)


def test_every_surface_package_is_a_default_plugin_that_registers_routes() -> None:
    surfaces = {f"kernai.surfaces.{p.name}" for p in (PACKAGE / "surfaces").iterdir() if p.is_dir()}
    surfaces.discard("kernai.surfaces.__pycache__")
    assert surfaces | {"kernai.gallery", "kernai.ui"} == set(DEFAULT_PLUGINS.values())
    for module in DEFAULT_PLUGINS.values():
        assert callable(importlib.import_module(module).register_routes), module


def test_the_default_plugins_load_whatever_kernai_load_plugins_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNAI_LOAD_PLUGINS", "")  # no entry-point plugin
    loaded = PluginRegistry()
    assert {name for name, _ in loaded.manager.list_name_plugin()} == set(DEFAULT_PLUGINS)
    assert loaded.plugins() == []  # `kernai plugins` lists what was installed
    assert [info.name for info in loaded.plugins(defaults=True)] == sorted(DEFAULT_PLUGINS)
