"""Install-time only: build llama-cpp-python for this CPU's instruction sets, explicitly, without AMX.

llama-cpp-python ships as source only, and its default build compiles llama.cpp with
``-march=native`` (GGML_NATIVE). On a CPU that reports AMX that compiles llama.cpp's AMX kernels,
which die with SIGILL on many such machines (cloud VMs included: AMX needs a per-process kernel
permission); and pip caches the wheel under a key that knows nothing of CPUs, so a later install on
another machine (a shared cache, a VM moved to another host) reuses it.

So the plugins that need the engine (llama-cpp, rerank) build it here, from ``setup.py``, with
explicit flags instead of ``-march=native``:

- x86_64: each instruction set the CPU reports (``/proc/cpuinfo``), as llama.cpp's own options:
  AVX, AVX2, FMA, F16C, BMI2, AVX-VNNI, and AVX-512 (F, CD, VL, DQ, BW) with VBMI, VNNI and BF16;
  **never AMX**. A CPU whose flags cannot be read gets the x86-64-v3 set (AVX2);
- anything else (aarch64): GGML_NATIVE off, the compiler's baseline for the architecture.

The wheel is built once into ``$KERNAI_ENGINE_CACHE`` (default ``~/.cache/kernai/engines``), in a
folder named by a hash of the version, the flags and the Python tag, never into pip's own wheel
cache, under the version ``0.3.36+kernai.<hash>``; the plugin then depends on that file
(``llama-cpp-python @ file:///...``), so pip installs exactly this build, never a cached native one,
and replaces a llama-cpp-python 0.3.36 built elsewhere that the environment already holds. A machine
with other instruction sets computes other flags, so another key: a cached wheel is only reused where
every instruction in it runs.

Environment:
- ``CMAKE_ARGS`` is appended to the flags (a GPU build: ``-DGGML_CUDA=on``) and is part of the key;
- ``KERNAI_LLAMA_CPP_ENGINE=index`` skips all this and depends on llama-cpp-python from the package
  index as it is (for prebuilt GPU wheels from an extra index, or a build of your own).

Run ``python engine_build.py`` to print the flags and the requirement for this machine.
"""

from __future__ import annotations

import base64
import fcntl
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ENGINE = "llama-cpp-python"
VERSION = "0.3.36"
INDEX_REQUIREMENT = f"{ENGINE}>={VERSION},<0.4"
MODE_ENV = "KERNAI_LLAMA_CPP_ENGINE"
CACHE_ENV = "KERNAI_ENGINE_CACHE"
FLAGS_FILE = "cmake-args.txt"
LAYOUT = "2"
"""Part of the cache key: raised when what this module puts in a cache folder changes (2: local version)."""

X86_OPTIONS: dict[str, set[str]] = {
    # llama.cpp's CMake option: the /proc/cpuinfo flags it compiles for
    "AVX": {"avx"},
    "AVX2": {"avx", "avx2"},
    "FMA": {"fma"},
    "F16C": {"f16c"},
    "BMI2": {"bmi2"},
    "AVX_VNNI": {"avx2", "avx_vnni"},
    "AVX512": {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw"},
    "AVX512_VBMI": {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512vbmi"},
    "AVX512_VNNI": {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_vnni"},
    "AVX512_BF16": {"avx512f", "avx512cd", "avx512vl", "avx512dq", "avx512bw", "avx512_bf16"},
}
X86_V3 = {"avx", "avx2", "fma", "f16c", "bmi2"}
"""What a CPU whose flags cannot be read is assumed to have (Haswell, Zen 1 and later)."""
X86_NEVER = ("AMX_TILE", "AMX_INT8", "AMX_BF16")
"""AMX needs a per-process kernel permission that llama.cpp does not always request: SIGILL."""


def cpu_flags() -> set[str]:
    """The CPU feature flags the kernel reports (``/proc/cpuinfo``); empty where there is none."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(value.split())
    return set()


def portable_cmake_args(machine: str | None = None, flags: set[str] | None = None) -> list[str]:
    """CMake definitions for this CPU's instruction sets, explicitly (never ``-march=native``), AMX off."""
    machine = (machine or platform.machine()).lower()
    args = ["-DGGML_NATIVE=OFF"]
    if machine in ("x86_64", "amd64"):
        flags = (cpu_flags() if flags is None else flags) or X86_V3
        args += [f"-DGGML_{name}={'ON' if needs <= flags else 'OFF'}" for name, needs in X86_OPTIONS.items()]
        args += [f"-DGGML_{name}=OFF" for name in X86_NEVER]
    return args


def cmake_args() -> list[str]:
    """The portable definitions followed by the user's ``CMAKE_ARGS`` (which win where they overlap)."""
    return [*portable_cmake_args(), *os.environ.get("CMAKE_ARGS", "").split()]


def cache_root() -> Path:
    if root := os.environ.get(CACHE_ENV):
        return Path(root)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "kernai" / "engines"


def build_key(args: list[str]) -> str:
    tag = f"{sys.implementation.name}{sys.version_info.major}{sys.version_info.minor}"
    text = "\n".join([ENGINE, VERSION, LAYOUT, tag, platform.machine(), sys.platform, *args])
    return f"{ENGINE}-{VERSION}-{tag}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def local_version(key: str) -> str:
    """The wheel's version: ``0.3.36+kernai.<hash>``. pip keeps an installed llama-cpp-python whose
    version equals the wheel's, whatever built it (a native build); a distinct local version makes it
    replace one, and replace ours when the flags (so the hash) change."""
    return f"{VERSION}+kernai.{key.rsplit('-', 1)[-1]}"


def relabel(wheel: Path, version: str) -> Path:
    """Rewrite ``wheel`` as ``version`` (its file name, dist-info folder, METADATA and RECORD)."""
    name, old_version, tags = wheel.name.split("-", 2)
    old_info, new_info = f"{name}-{old_version}.dist-info/", f"{name}-{version}.dist-info/"
    target = wheel.with_name(f"{name}-{version}-{tags}")
    record = []
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
        for item in source.infolist():
            if item.filename == old_info + "RECORD":
                continue
            data = source.read(item)
            filename = item.filename.replace(old_info, new_info, 1)
            if filename == new_info + "METADATA":
                data = re.sub(
                    rb"^Version: .*$", f"Version: {version}".encode(), data, count=1, flags=re.MULTILINE
                )
            entry = zipfile.ZipInfo(filename, item.date_time)
            entry.external_attr, entry.compress_type = item.external_attr, zipfile.ZIP_DEFLATED
            out.writestr(entry, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{filename},sha256={digest},{len(data)}")
        out.writestr(new_info + "RECORD", "\n".join([*record, f"{new_info}RECORD,,"]) + "\n")
    wheel.unlink()
    return target


def _wheel_in(folder: Path) -> Path | None:
    return next(iter(sorted(folder.glob("llama_cpp_python-*.whl"))), None)


def built_wheel() -> Path:
    """The portable wheel for this machine, built now (about 10 minutes on 2 cores) unless cached."""
    args = cmake_args()
    root = cache_root()
    folder = root / build_key(args)
    if (wheel := _wheel_in(folder)) is not None:
        return wheel
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another install building the same engine: wait for it
        if (wheel := _wheel_in(folder)) is not None:
            return wheel
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=root))
        try:
            log = staging / "build.log"
            print(
                f"kernai: building {ENGINE} {VERSION} for this CPU ({' '.join(args)}); log: {log}",
                file=sys.stderr,
                flush=True,
            )
            with log.open("w") as out:
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "wheel",
                        "--no-deps",
                        "--no-cache-dir",
                        "--no-binary",
                        ENGINE,
                        "--disable-pip-version-check",
                        "-w",
                        str(staging),
                        f"{ENGINE}=={VERSION}",
                    ],
                    env={**os.environ, "CMAKE_ARGS": " ".join(args)},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    check=False,
                )
            if done.returncode != 0 or _wheel_in(staging) is None:
                tail = "".join(log.read_text(errors="replace").splitlines(keepends=True)[-40:])
                raise RuntimeError(f"building {ENGINE} failed (pip exited {done.returncode}):\n{tail}")
            built = _wheel_in(staging)
            assert built is not None
            relabel(built, local_version(folder.name))
            (staging / FLAGS_FILE).write_text(" ".join(args) + "\n")
            log.unlink()
            os.replace(staging, folder)  # whole or not at all
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    wheel = _wheel_in(folder)
    assert wheel is not None
    return wheel


def engine_requirement() -> str:
    """The requirement the plugins depend on: this machine's portable wheel, or the index's."""
    if os.environ.get(MODE_ENV, "").strip().lower() == "index":
        return INDEX_REQUIREMENT
    return f"{ENGINE} @ {built_wheel().resolve().as_uri()}"


if __name__ == "__main__":
    print("cmake args:", " ".join(cmake_args()))
    print("cache:", cache_root() / build_key(cmake_args()))
    if "--build" in sys.argv:
        print(engine_requirement())
