"""The engine this environment runs is the portable build that the plugin's own install made, and it
generates here: a native build (AMX kernels, or instructions this CPU lacks) would fail these."""

from __future__ import annotations

import importlib.util
import json
import platform
import re
import shutil
import subprocess
import sys
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from urllib.parse import unquote, urlparse

import pytest

from kernai.testing import run_doctor

PLUGIN = Path(__file__).resolve().parents[1]


def engine_build() -> ModuleType:
    spec = importlib.util.spec_from_file_location("engine_build", PLUGIN / "engine_build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def system_info() -> dict[str, str]:
    """llama.cpp's compile-time CPU features, read in a child process (a bad build dies there, not here)."""
    code = "import llama_cpp; print(llama_cpp.llama_print_system_info().decode())"
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, f"importing llama_cpp failed ({done.returncode}): {done.stderr[-1000:]}"
    pairs = (part.split("=") for part in done.stdout.replace("CPU :", "|").split("|") if "=" in part)
    return {key.strip(): value.strip() for key, value in pairs}


def test_llama_cpp_python_was_installed_from_the_portable_build_of_this_machine() -> None:
    build = engine_build()
    direct = distribution("llama-cpp-python").read_text("direct_url.json")
    assert direct, "llama-cpp-python came from an index or pip's cache, not from the plugin's engine build"
    wheel = Path(unquote(urlparse(json.loads(direct)["url"]).path))
    assert wheel.parent == build.cache_root() / build.build_key(build.cmake_args()), wheel
    assert (wheel.parent / build.FLAGS_FILE).read_text().split() == build.cmake_args()
    # its own version, so that pip replaced any llama-cpp-python 0.3.36 built elsewhere
    assert distribution("llama-cpp-python").version == build.local_version(wheel.parent.name)


def test_the_engine_has_no_amx_and_no_instruction_this_cpu_lacks() -> None:
    info = system_info()
    enabled = {key for key, value in info.items() if value == "1"}
    assert not {key for key in enabled if key.startswith("AMX")}, info
    flags = engine_build().cpu_flags()
    needs = {
        "AVX": "avx",
        "AVX2": "avx2",
        "F16C": "f16c",
        "FMA": "fma",
        "BMI2": "bmi2",
        "AVX512": "avx512f",
        "AVX512_VBMI": "avx512vbmi",
        "AVX512_VNNI": "avx512_vnni",
        "AVX512_BF16": "avx512_bf16",
        "AVX_VNNI": "avx_vnni",
    }
    if flags:
        assert not [key for key in enabled if key in needs and needs[key] not in flags], info


SAPPHIRE_RAPIDS = {
    "avx",
    "avx2",
    "fma",
    "f16c",
    "bmi2",
    "avx_vnni",
    "avx512f",
    "avx512cd",
    "avx512vl",
    "avx512dq",
    "avx512bw",
    "avx512vbmi",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
}
V3 = {"AVX", "AVX2", "FMA", "F16C", "BMI2"}
AVX512 = {"AVX512", "AVX512_VBMI", "AVX512_VNNI", "AVX512_BF16"}
AMX = {"AMX_TILE", "AMX_INT8", "AMX_BF16"}


@pytest.mark.parametrize(
    ("machine", "flags", "on", "off"),
    [
        ("x86_64", SAPPHIRE_RAPIDS, V3 | AVX512 | {"AVX_VNNI"}, AMX),  # AMX reported: everything but AMX
        (
            "x86_64",
            SAPPHIRE_RAPIDS - {"avx512bw"},
            V3 | {"AVX_VNNI"},
            AVX512 | AMX,
        ),  # AVX-512 needs F+CD+VL+DQ+BW
        ("x86_64", {"avx", "avx2", "fma", "f16c", "bmi2"}, V3, AVX512 | AMX | {"AVX_VNNI"}),
        ("x86_64", {"sse4_2", "avx"}, {"AVX"}, (V3 - {"AVX"}) | AVX512 | AMX),
        ("x86_64", set(), V3, AVX512 | AMX),  # flags unreadable: x86-64-v3
        ("aarch64", {"fp", "asimd", "asimddp"}, set(), set()),
    ],
)
def test_the_flags_follow_the_cpu_never_native_never_amx(
    machine: str, flags: set[str], on: set[str], off: set[str]
) -> None:
    args = engine_build().portable_cmake_args(machine, flags)
    assert args[0] == "-DGGML_NATIVE=OFF"
    defined = dict(arg[len("-DGGML_") :].split("=") for arg in args)
    assert {key for key, value in defined.items() if value == "ON"} == on
    assert off <= {key for key, value in defined.items() if value == "OFF"}


def test_cmake_args_from_the_environment_follow_and_change_the_cache_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    build = engine_build()
    monkeypatch.delenv("CMAKE_ARGS", raising=False)
    plain = build.cmake_args()
    monkeypatch.setenv("CMAKE_ARGS", "-DGGML_CUDA=on")
    assert build.cmake_args() == [*plain, "-DGGML_CUDA=on"]
    assert build.build_key(build.cmake_args()) != build.build_key(plain)


def test_index_mode_depends_on_the_package_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERNAI_LLAMA_CPP_ENGINE", "index")
    assert engine_build().engine_requirement() == "llama-cpp-python>=0.3.36,<0.4"


@pytest.mark.slow
def test_doctor_chats_with_a_quantized_model_in_a_worker() -> None:
    done, [finding] = run_doctor("llama-cpp")
    assert done.returncode == 0 and finding["outcome"] == "ok", finding


@pytest.mark.skipif(
    shutil.which("objdump") is None or platform.machine() != "x86_64", reason="needs objdump, x86_64"
)
def test_the_engine_libraries_hold_no_instruction_the_cpu_does_not_report() -> None:
    """The machine code itself: not one AMX tile register (tmm) in llama.cpp's libraries, and AVX-512
    registers (zmm) only where the CPU reports AVX-512, whatever the runtime dispatch decides."""
    import llama_cpp

    libraries = sorted((Path(llama_cpp.__file__).parent / "lib").glob("lib*.so"))
    assert libraries
    counts = {}
    for library in libraries:
        listing = subprocess.run(
            ["objdump", "-d", "--no-show-raw-insn", str(library)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        counts[library.name] = {reg: len(re.findall(rf"%{reg}\d", listing)) for reg in ("tmm", "zmm", "ymm")}
    assert all(count["tmm"] == 0 for count in counts.values()), counts
    flags = engine_build().cpu_flags()
    if "avx512f" not in flags:
        assert all(count["zmm"] == 0 for count in counts.values()), counts
    if "avx2" in flags:
        assert counts["libggml-cpu.so"]["ymm"] > 0, "no AVX2 (ymm) code either: is this the right library?"
