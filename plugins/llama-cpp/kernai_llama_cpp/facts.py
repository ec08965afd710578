"""The engine's facts for llamactl's ``/backends/llama-cpp/version`` and ``/devices``: the llama-cpp-python
and ggml/llama.cpp library versions, the CPU features and offload support it was built with, and the
compute devices ggml sees (through its C API, which llama-cpp-python does not bind). Called by
``python -m kernai.backend_facts`` in a short subprocess, never in the server process."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import llama_cpp

from kernai.backend_facts import BackendFacts, Device

DEVICE_TYPES = {0: "cpu", 1: "gpu", 2: "igpu", 3: "accel"}
"""ggml's ``enum ggml_backend_dev_type``."""


def _library_versions(folder: Path) -> dict[str, str]:
    """``{"ggml": "0.25.3", "llama": "0.5.0"}`` from the shared libraries' versioned file names."""
    versions = {}
    for name in ("ggml", "llama"):
        for path in folder.glob(f"lib{name}.so.*.*.*"):
            if match := re.search(r"\.so\.(\d+\.\d+\.\d+)$", path.name):
                versions[name] = match[1]
    return versions


def _devices(folder: Path) -> list[Device]:
    candidates = [folder / "libggml.so", folder / "libggml.dylib", folder / "ggml.dll"]
    path = next((p for p in candidates if p.exists()), None)
    if path is None:
        return []
    ggml = ctypes.CDLL(str(path))
    ggml.ggml_backend_dev_count.restype = ctypes.c_size_t
    ggml.ggml_backend_dev_get.restype = ctypes.c_void_p
    ggml.ggml_backend_dev_get.argtypes = [ctypes.c_size_t]
    for text in ("ggml_backend_dev_name", "ggml_backend_dev_description"):
        getattr(ggml, text).restype = ctypes.c_char_p
        getattr(ggml, text).argtypes = [ctypes.c_void_p]
    ggml.ggml_backend_dev_type.restype = ctypes.c_int
    ggml.ggml_backend_dev_type.argtypes = [ctypes.c_void_p]
    size = ctypes.POINTER(ctypes.c_size_t)
    ggml.ggml_backend_dev_memory.argtypes = [ctypes.c_void_p, size, size]
    devices = []
    for index in range(ggml.ggml_backend_dev_count()):
        device = ggml.ggml_backend_dev_get(index)
        free, total = ctypes.c_size_t(), ctypes.c_size_t()
        ggml.ggml_backend_dev_memory(device, ctypes.byref(free), ctypes.byref(total))
        devices.append(
            Device(
                name=ggml.ggml_backend_dev_name(device).decode(errors="replace"),
                description=ggml.ggml_backend_dev_description(device).decode(errors="replace"),
                type=DEVICE_TYPES.get(ggml.ggml_backend_dev_type(device), "unknown"),
                memory_free=free.value,
                memory_total=total.value,
            )
        )
    return devices


def facts() -> BackendFacts:
    folder = Path(llama_cpp.__file__).parent / "lib"
    system = llama_cpp.llama_print_system_info().decode(errors="replace")
    build = {key.strip(): value.strip() for key, value in re.findall(r"([A-Za-z0-9_ ]+?) = ([^|]+)", system)}
    build |= {
        "gpu_offload": str(int(llama_cpp.llama_supports_gpu_offload())),
        "mmap": str(int(llama_cpp.llama_supports_mmap())),
        "mlock": str(int(llama_cpp.llama_supports_mlock())),
    }
    return BackendFacts(
        versions={"llama-cpp-python": llama_cpp.__version__, **_library_versions(folder)},
        build=build,
        devices=_devices(folder),
    )
