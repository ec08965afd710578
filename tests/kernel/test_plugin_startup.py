"""Start-up in an environment with broken plugins: a second distribution of the reference plugin, the
``~name.dist-info`` an interrupted pip uninstall leaves, a half-removed package and a plugin that raises on
import. The server starts, logs one line per problem with its fix, and ``/system``, ``kernai plugins``
and ``kernai doctor`` report them; a model on the reference backend still serves."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from kernai.testing import KernaiServer, install_plugin, on_pythonpath, run_doctor

pytestmark = pytest.mark.slow


def dist_info(site: Path, folder: str, project: str, entry_points: str, record: str | None = None) -> Path:
    """A ``.dist-info`` folder in ``site``: METADATA, the ``kernai`` entry points and, if given, a RECORD."""
    info = site / folder
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[kernai]\n{entry_points}\n")
    if record is not None:
        (info / "RECORD").write_text(record)
    return info


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    site = install_plugin(tmp_path_factory.mktemp("site"), "boom", "raise RuntimeError('boom at import')\n")
    dist_info(
        site, "kernai_reference_copy-1.0.dist-info", "kernai-reference-copy", "reference = kernai_reference"
    )
    dist_info(site, "~ernai_reference-1.0.dist-info", "kernai-reference", "reference = kernai_reference")
    dist_info(
        site,
        "kernai_gone-1.0.dist-info",
        "kernai-gone",
        "gone = kernai_gone",
        "kernai_gone/__init__.py,,\nkernai_gone-1.0.dist-info/METADATA,,\n",
    )
    return site


@pytest.fixture(scope="module")
def env(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": on_pythonpath(site), "KERNAI_LOAD_PLUGINS": "reference,boom,gone"}


@pytest.fixture(scope="module")
def server(
    site: Path, env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[KernaiServer]:
    root = tmp_path_factory.mktemp("server")
    (root / "models").mkdir()
    (root / "models" / "echo.yaml").write_text("name: echo\nbackend: reference\n")
    with KernaiServer(root / "models", root / "data", env=env) as running:
        yield running


def check_problems(problems: list[dict[str, object]], site: Path) -> None:
    by_plugin: dict[str, list[dict[str, object]]] = {}
    for problem in problems:
        by_plugin.setdefault(str(problem["plugin"]), []).append(problem)
    assert sorted(by_plugin) == ["boom", "gone", "reference"]
    [boom] = by_plugin["boom"]
    assert not boom["loaded"] and "RuntimeError: boom at import" in str(boom["problem"])
    assert "pip uninstall kernai-boom" in str(boom["fix"])
    [gone] = by_plugin["gone"]
    assert not gone["loaded"] and "half removed (1 of its 1 files are gone)" in str(gone["problem"])
    assert "pip install --force-reinstall kernai-gone" in str(gone["fix"])
    duplicate, leftover = sorted(by_plugin["reference"], key=lambda p: "leftover" in str(p["problem"]))
    assert duplicate["loaded"] and "skipped kernai-reference-copy" in str(duplicate["problem"])
    assert f"remove the folder {site / 'kernai_reference_copy-1.0.dist-info'}" in str(duplicate["fix"])
    assert leftover["loaded"] and "interrupted pip uninstall" in str(leftover["problem"])
    assert f"remove the folder {site / '~ernai_reference-1.0.dist-info'}" in str(leftover["fix"])


def test_the_server_starts_logs_one_line_per_problem_and_lists_them_in_system(
    server: KernaiServer, site: Path
) -> None:
    with server.client() as client:
        system = client.get("/system").json()
        chat = client.post(
            "/v1/chat/completions", json={"model": "echo", "messages": [{"role": "user", "content": "hi"}]}
        )
    assert chat.status_code == 200, chat.text  # its worker loads the healthy copy of the reference plugin
    assert [b["name"] for b in system["backends"]] == ["reference"]
    check_problems(system["plugin_problems"], site)
    assert sorted(system["plugin_errors"]) == ["boom", "gone", "reference"]
    log = server.log()
    assert "Traceback" not in log and "already registered" not in log
    problem_lines = [line for line in log.splitlines() if "fix: " in line]
    assert len(problem_lines) == 4, log
    assert any(
        "plugin boom not loaded: importing kernai_boom raised RuntimeError" in line for line in problem_lines
    )


def test_kernai_plugins_lists_the_problems(site: Path, env: dict[str, str]) -> None:
    run = {"capture_output": True, "text": True, "timeout": 60, "env": {**os.environ, **env}}
    listing = subprocess.run([sys.executable, "-m", "kernai", "plugins", "--json"], **run)  # type: ignore[call-overload]
    assert listing.returncode == 0, listing.stderr
    parsed = json.loads(listing.stdout)
    assert [p["name"] for p in parsed["plugins"]] == ["reference"]
    assert parsed["plugins"][0]["distribution"] == "kernai-reference"
    check_problems(parsed["problems"], site)
    table = subprocess.run([sys.executable, "-m", "kernai", "plugins"], **run)  # type: ignore[call-overload]
    assert table.returncode == 0, table.stderr
    assert "plugin boom not loaded" in table.stdout and "pip uninstall kernai-boom" in table.stdout


def test_kernai_doctor_checks_the_healthy_copy(env: dict[str, str]) -> None:
    done, findings = run_doctor("reference", env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [(f["backend"], f["outcome"]) for f in findings] == [("reference", "ok")]
