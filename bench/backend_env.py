"""How long a backend install into its own environment takes, and how much disk the environment uses.

Each plugin folder is installed the way the gallery installs it (``kernai.gallery.backends.
build_environment``: a new venv, kernai linked in, the folder built into a wheel, ``pip --python ...
install``, the plugins asked what they declare) into a scratch data directory, ``BENCH_ROUNDS`` times
(default 3) after one warm-up round that fills pip's cache; each round starts from an empty
directory. Disk is ``du`` of the environment folder (the links to kernai are a few bytes: kernai
itself stays where the server has it).

Run: ``.venv/bin/python bench/backend_env.py [FOLDER ...]`` (default: the reference backend, silero-vad,
piper and whisper). It never touches the server's own environment.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from kernai.gallery.backends import build_environment
from kernai.gallery.schema import BackendVariant

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
PLUGINS = ("silero-vad", "piper", "whisper")
DEFAULT = [ROOT / "contrib_backends" / "reference", *(ROOT / "plugins" / name for name in PLUGINS)]


def disk(folder: Path) -> int:
    """Bytes of ``folder``, symbolic links counted as links (``du -s``, not following them)."""
    return int(subprocess.run(["du", "-sb", str(folder)], capture_output=True, text=True).stdout.split()[0])


async def install(folder: Path) -> tuple[float, int, list[str]]:
    """One install into a fresh data directory: seconds, bytes, the backends it declares."""
    with tempfile.TemporaryDirectory(prefix="kernai-bench-") as scratch:
        root = Path(scratch) / "backends"
        source = Path(scratch) / folder.name  # a copy: the build writes build/ and *.egg-info beside it
        shutil.copytree(folder, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "tests"))
        started = time.perf_counter()
        environment, plugins = await build_environment(
            root, folder.name, str(source), BackendVariant(), Path(scratch) / "wheels", lambda line: None
        )
        seconds = time.perf_counter() - started
        return seconds, disk(environment), [b.name for p in plugins for b in p.backends]


def main() -> None:
    folders = [Path(arg).resolve() for arg in sys.argv[1:]] or DEFAULT
    print(f"{'plugin':<12} {'backends':<16} {'install s (median)':>19} {'min':>6} {'max':>6} {'disk MiB':>9}")
    for folder in folders:
        asyncio.run(install(folder))  # warm-up: pip's cache holds every wheel afterwards
        runs = [asyncio.run(install(folder)) for _ in range(ROUNDS)]
        times = [seconds for seconds, _, _ in runs]
        print(
            f"{folder.name:<12} {','.join(runs[0][2]):<16} {statistics.median(times):>19.2f} "
            f"{min(times):>6.2f} {max(times):>6.2f} {runs[0][1] / 2**20:>9.1f}"
        )


if __name__ == "__main__":
    main()
