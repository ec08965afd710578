"""`kernai doctor`, run as users run it: each backend's self-test model loaded in a worker, one request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kernai.testing import install_plugin, on_pythonpath
from kernai.worker.client import WorkerCrashed

CRASHY = '''
"""A backend whose engine dies with SIGILL on its first request, as a miscompiled engine does."""
import os
import signal
import time

from kernai import Backend, SelfTest, hookimpl
from kernai.capabilities import Capability


@hookimpl
def register_backends(register):
    register(Backend(name="crashy", capabilities=[Capability.COMPLETION], requires_model_file=False,
                     selftest=f"{__name__}:selftest"))


def selftest(folder):
    return SelfTest(config={})


@hookimpl
def load(backend, config):
    return object()


@hookimpl
def predict(backend, model, request):
    os.kill(os.getpid(), signal.SIGILL)
    time.sleep(30)  # the signal may land on another thread: do not answer before it ends the process
'''


@pytest.fixture(scope="module")
def crashy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder that, on PYTHONPATH, installs the ``crashy`` plugin (its module and its entry point)."""
    return install_plugin(tmp_path_factory.mktemp("crashy"), "crashy", CRASHY)


def doctor(*args: str, plugins: str, extra_path: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KERNAI_LOAD_PLUGINS": plugins, "COLUMNS": "400"}
    if extra_path is not None:
        env["PYTHONPATH"] = on_pythonpath(extra_path)
    return subprocess.run(
        [sys.executable, "-m", "kernai", "doctor", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_a_working_backend_is_ok() -> None:
    result = doctor("reference", "--json", plugins="reference")
    assert result.returncode == 0, result.stderr
    (finding,) = json.loads(result.stdout)["backends"]
    assert finding["backend"] == "reference" and finding["outcome"] == "ok", finding
    assert finding["seconds"] > 0


def test_an_engine_that_dies_with_sigill_is_reported_with_the_signal_and_the_fix(crashy_path: Path) -> None:
    result = doctor("--json", plugins="crashy,reference", extra_path=crashy_path)
    assert result.returncode == 1, result.stdout + result.stderr
    findings = {f["backend"]: f for f in json.loads(result.stdout)["backends"]}
    assert findings["reference"]["outcome"] == "ok"
    crashed = findings["crashy"]
    assert crashed["outcome"] == "crashed" and crashed["signal"] == "SIGILL"
    assert "CPU instructions this machine cannot run" in crashed["detail"]
    assert "kernai backends install crashy" in crashed["detail"]
    # backends the bundled gallery offers that are not loaded here are listed as missing, with the command
    assert findings["llama-cpp"]["outcome"] == "missing"
    assert "kernai backends install llama-cpp" in findings["llama-cpp"]["detail"]


def test_the_table_names_the_crash(crashy_path: Path) -> None:
    result = doctor("crashy", plugins="crashy", extra_path=crashy_path)
    assert result.returncode == 1
    assert "crashed (SIGILL)" in result.stdout and "CPU instructions this machine cannot run" in result.stdout


def test_an_unknown_backend_is_a_clear_error() -> None:
    result = doctor("no-such-backend", plugins="reference")
    assert result.returncode == 2 and "no installed backend named no-such-backend" in result.stderr


@pytest.mark.parametrize(
    ("signum", "loading", "fatal", "code"),
    [
        (signal.SIGILL, False, True, "illegal_instruction"),
        (signal.SIGILL, True, True, "illegal_instruction"),
        (signal.SIGSEGV, True, True, "load_crashed"),
        (signal.SIGBUS, True, True, "load_crashed"),
        (signal.SIGSEGV, False, False, "worker_crashed"),
        (signal.SIGKILL, True, False, "worker_crashed"),
    ],
)
def test_which_crashes_are_not_worth_a_restart(signum: int, loading: bool, fatal: bool, code: str) -> None:
    crash = WorkerCrashed("m", -signum, "b", loading)
    assert crash.fatal is fatal and crash.code == code
